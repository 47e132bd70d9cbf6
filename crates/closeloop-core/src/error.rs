//! Errors of the core crate.
//!
//! The core performs no I/O, so nothing here is transient: every error is a
//! refusal of some input (an event, a rules file, a case command) and carries
//! enough context (field, rule, line) for a human to fix that input.

use std::fmt;

use crate::status::Status;

/// The crate's error: one variant per kind of refused input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid event: {0}")]
    Event(#[from] EventError),
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

/// Why a feedback event was refused. The `Display` text is the reason stored
/// with dead letters and returned to HTTP clients, so it always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("empty message: an event must be a JSON object")]
    Empty,
    #[error("invalid JSON: {message}")]
    InvalidJson { message: String },
    #[error("event is not a JSON object (got {found})")]
    NotAnObject { found: &'static str },
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
}

impl EventError {
    /// The contract field at fault, when the event was readable JSON.
    pub fn field(&self) -> Option<&str> {
        match self {
            EventError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// One problem in a rules or owners file, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// The rule or owner the problem belongs to (`rule "nps-detractor"`).
    pub item: Option<String>,
    /// The key at fault (`when.nps.max`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one file: a file is checked whole, so an ops
/// engineer sees all mistakes at once rather than one per attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {problem}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a case command was refused; the API answers it as 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {action} a case that is {status}")]
    NotAllowed {
        action: &'static str,
        status: Status,
    },
    #[error("cannot resolve a case that is {status}: acknowledge it first")]
    NotAcknowledged { status: Status },
    #[error("root cause \"{given}\" is not one of: {allowed}")]
    UnknownRootCause { given: String, allowed: String },
    #[error("{field} must not be empty")]
    MissingText { field: &'static str },
}

/// Result alias of the core crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
