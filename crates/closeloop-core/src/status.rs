//! Where a case stands.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Acknowledged,
    Contacted,
    Resolved,
    Closed,
    Reopened,
    /// The owner waits for the customer (a document, a visit): the case is
    /// still theirs, but its clocks are paused.
    WaitingOnCustomer,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Open,
        Status::Acknowledged,
        Status::Contacted,
        Status::Resolved,
        Status::Closed,
        Status::Reopened,
        Status::WaitingOnCustomer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Contacted => "contacted",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
            Status::Reopened => "reopened",
            Status::WaitingOnCustomer => "waiting_on_customer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the case still needs work from its owner.
    pub fn is_active(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }

    /// The stored names of the active statuses (for queries).
    pub fn active_names() -> Vec<&'static str> {
        Status::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(Status::as_str)
            .collect()
    }

    /// The stored names of the statuses a case ends in (for queries).
    pub fn done_names() -> Vec<&'static str> {
        Status::ALL
            .into_iter()
            .filter(|s| !s.is_active())
            .map(Status::as_str)
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
