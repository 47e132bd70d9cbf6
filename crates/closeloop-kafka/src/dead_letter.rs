//! The dead-letter producer: invalid messages go to their own topic with the
//! reason and their origin in headers, so nothing is lost and each can be
//! fixed and replayed by hand.

use std::time::Duration;

use chrono::Utc;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::message::RawMessage;
use crate::{ClientSettings, Result};

/// Header names on dead-lettered messages.
pub const HEADER_REASON: &str = "closeloop.dlq.reason";
pub const HEADER_FIELD: &str = "closeloop.dlq.field";
pub const HEADER_TOPIC: &str = "closeloop.dlq.topic";
pub const HEADER_PARTITION: &str = "closeloop.dlq.partition";
pub const HEADER_OFFSET: &str = "closeloop.dlq.offset";
pub const HEADER_AT: &str = "closeloop.dlq.at";
pub const HEADER_TRUNCATED: &str = "closeloop.dlq.truncated";

/// Kept well under the common 1 MB broker limit, for the rare message that
/// the input topic accepted but the dead-letter topic would not.
const TRUNCATE_TO: usize = 512 * 1024;

pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub(crate) fn new(settings: &ClientSettings, topic: &str) -> Result<Self> {
        let producer = settings
            .client_config()
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(DeadLetters {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Send every rejected message, retrying until each is acknowledged or
    /// `cancel` fires. Returns false if cancelled before all were sent (the
    /// caller then must not commit).
    pub(crate) async fn send_all(
        &self,
        rejected: &[(&RawMessage, String, Option<String>)],
        cancel: &CancellationToken,
    ) -> bool {
        for (message, reason, field) in rejected {
            let mut truncated = false;
            let mut backoff = Duration::from_millis(100);
            loop {
                match self
                    .send_one(message, reason, field.as_deref(), truncated)
                    .await
                {
                    Ok(()) => break,
                    Err(RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge))
                        if !truncated =>
                    {
                        truncated = true;
                    }
                    Err(error) => {
                        warn!(%error, topic = %self.topic, "dead-letter send failed, retrying");
                        tokio::select! {
                            _ = cancel.cancelled() => return false,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        true
    }

    async fn send_one(
        &self,
        message: &RawMessage,
        reason: &str,
        field: Option<&str>,
        truncate: bool,
    ) -> Result<(), RdKafkaError> {
        let partition = message.position.partition.to_string();
        let offset = message.position.offset.to_string();
        let at = Utc::now().to_rfc3339();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: HEADER_TOPIC,
                value: Some(message.position.topic.as_str()),
            })
            .insert(Header {
                key: HEADER_PARTITION,
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: HEADER_OFFSET,
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: HEADER_AT,
                value: Some(at.as_str()),
            });
        if let Some(field) = field {
            headers = headers.insert(Header {
                key: HEADER_FIELD,
                value: Some(field),
            });
        }
        let payload = message.payload.as_deref().unwrap_or_default();
        let payload = if truncate {
            headers = headers.insert(Header {
                key: HEADER_TRUNCATED,
                value: Some("true"),
            });
            &payload[..payload.len().min(TRUNCATE_TO)]
        } else {
            payload
        };
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .payload(payload)
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}
