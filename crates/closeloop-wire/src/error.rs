use thiserror::Error;

/// Why a stored message cannot be read. Always permanent: retrying the same
/// bytes gives the same answer.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("outbox message version {0} is unknown to this build (it reads up to {max})", max = crate::OUTBOX_VERSION)]
    UnknownVersion(i16),
    #[error("unknown outbox channel {channel:?} (event type {event_type:?})")]
    UnknownKind { channel: String, event_type: String },
    #[error("unreadable {kind} message: {reason}")]
    Unreadable { kind: &'static str, reason: String },
}
