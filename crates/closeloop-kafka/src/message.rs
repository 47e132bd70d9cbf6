//! A consumed message as the intake and the dead-letter writer share it.

use rdkafka::message::Message;

/// Where a message was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// An owned copy of a consumed message, so the batch outlives the borrow.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage {
    pub(crate) position: MessagePosition,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
}

impl RawMessage {
    pub(crate) fn from_message(message: &impl Message) -> Self {
        RawMessage {
            position: MessagePosition {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
            },
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
        }
    }
}
