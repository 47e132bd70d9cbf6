//! Send failures, classified where they happen: a permanent failure is
//! never retried (the delivery is dead at once), a transient one is retried
//! on the schedule, no sooner than the receiver asked.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The endpoint answered 410 Gone: it must be disabled.
    #[error("permanent failure: {0}")]
    Gone(String),
    #[error("transient failure: {message}")]
    Transient {
        message: String,
        /// The receiver's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl NotifyError {
    pub fn transient(message: impl Into<String>) -> Self {
        NotifyError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

pub type Result<T, E = NotifyError> = std::result::Result<T, E>;
