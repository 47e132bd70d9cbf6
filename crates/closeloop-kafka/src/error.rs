//! Errors of the Kafka adapter.

use rdkafka::error::KafkaError as RdKafkaError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client error: {0}")]
    Client(#[from] RdKafkaError),
    #[error("could not create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("delivery to {topic} failed: {reason}")]
    Delivery { topic: String, reason: String },
}

pub type Result<T, E = KafkaError> = std::result::Result<T, E>;
