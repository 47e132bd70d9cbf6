//! Publishing feedback events, keyed by `customer.id`.

use std::path::Path;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::{ClientSettings, KafkaError, Result};

/// A producer of raw event payloads onto one topic.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic)
            .finish()
    }
}

/// The message key for a raw event: its `customer.id` when readable. An
/// unreadable event is still published (unkeyed) so that it reaches the
/// dead-letter topic with its reason instead of vanishing here.
pub fn key_of(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value
        .get("customer")?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

impl Publisher {
    pub fn new(settings: &ClientSettings, topic: &str) -> Result<Self> {
        let producer: FutureProducer = settings
            .client_config()
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Publisher {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Publish one payload and wait for the broker's acknowledgement.
    pub async fn publish(&self, payload: &[u8]) -> Result<()> {
        let key = key_of(payload);
        let mut record = FutureRecord::<String, [u8]>::to(&self.topic).payload(payload);
        if let Some(key) = &key {
            record = record.key(key);
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| KafkaError::Delivery {
                topic: self.topic.clone(),
                reason: e.to_string(),
            })?;
        Ok(())
    }

    /// Publish every line of a JSON-lines file, in order, keeping at most
    /// `in_flight` messages unacknowledged. Returns the number published.
    pub async fn publish_file(&self, path: &Path, in_flight: usize) -> Result<usize> {
        let text = tokio::fs::read(path)
            .await
            .map_err(|source| KafkaError::Read {
                path: path.display().to_string(),
                source,
            })?;
        let lines = closeloop_core::json::json_lines(&text);
        self.publish_all(&lines, in_flight).await
    }

    /// Publish every payload, in order, keeping at most `in_flight`
    /// unacknowledged, and return once the broker acknowledged them all
    /// (the first failure is returned; what was sent before it stays sent,
    /// which a retry of the same events makes harmless: idempotent by
    /// `event_id`).
    pub async fn publish_all(&self, payloads: &[&[u8]], in_flight: usize) -> Result<usize> {
        let mut pending = std::collections::VecDeque::new();
        for line in payloads {
            let key = key_of(line);
            let mut record = FutureRecord::<String, [u8]>::to(&self.topic).payload(*line);
            if let Some(key) = &key {
                record = record.key(key);
            }
            pending.push_back(
                self.producer
                    .send_result(record)
                    .map_err(|(e, _)| KafkaError::Client(e))?,
            );
            if pending.len() >= in_flight.max(1) {
                wait_one(&mut pending, &self.topic).await?;
            }
        }
        while !pending.is_empty() {
            wait_one(&mut pending, &self.topic).await?;
        }
        Ok(payloads.len())
    }
}

async fn wait_one(
    pending: &mut std::collections::VecDeque<rdkafka::producer::DeliveryFuture>,
    topic: &str,
) -> Result<()> {
    let Some(future) = pending.pop_front() else {
        return Ok(());
    };
    let delivery = |reason: String| KafkaError::Delivery {
        topic: topic.to_owned(),
        reason,
    };
    match future.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(delivery(e.to_string())),
        Err(_) => Err(delivery("producer dropped the message".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn key_is_customer_id_when_readable() {
        assert_eq!(
            key_of(br#"{"customer":{"id":"C-1"}}"#).as_deref(),
            Some("C-1")
        );
        assert_eq!(key_of(br#"{"customer":{"id":7}}"#), None);
        assert_eq!(key_of(b"not json"), None);
        assert_eq!(key_of(b""), None);
    }
}
