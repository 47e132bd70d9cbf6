//! closeloop's pure core: the feedback event model, the standard score
//! classifications, the rules engine, owner routing and the case state machine.
//!
//! Architecture invariant: this crate performs no I/O and never reads the
//! clock or a random source. Time is a parameter. Everything here is
//! deterministic and unit-tested without any server, so it cannot fail for
//! I/O reasons; adapters (Kafka, PostgreSQL, SMTP, HTTP) live in other crates.
//!
//! - [`event`]: `feedback-event-v1`, parsed and validated ([`parse_event`]).
//! - [`scoring`]: NPS / CSAT / CES classifications.
//! - [`rules`]: the rules file and its compiled evaluation; [`locate`]: where
//!   things stand in it (TOML spans).
//! - [`owners`]: the owner directory and routing.
//! - [`policy`]: rules + owners → the [`Alert`] an event calls for.
//! - [`case`]: the case state machine.
//! - [`batch`]: the intake's plan for a batch (new cases, attachments,
//!   silences, recovery and reopening, fatigue cap).
//! - [`access`]: roles, a manager's scope, token hashing.
//! - [`sla`]: business-hours calendars, SLA deadlines, reminders and escalation;
//!   [`durations`]: the business time each stage of a case took, and the
//!   percentiles of loop health.

pub mod access;
pub mod batch;
pub mod case;
pub mod channel;
pub mod clock;
pub mod coalesce;
pub mod durations;
pub mod error;
pub mod event;
pub mod json;
pub mod links;
pub mod locate;
pub mod owners;
pub mod policy;
pub mod redact;
pub mod report;
pub mod rules;
pub mod scoring;
pub mod severity;
pub mod sla;
pub mod status;
pub mod steps;
pub mod text;

pub use case::{
    CaseEventType, CaseState, Command, ContactOutcome, Effect, HistoryEntry, Status, Transition,
};
pub use channel::Channel;
pub use error::{ConfigErrors, ConfigProblem, Error, EventError, Result, TransitionError};
pub use event::{parse_event, FeedbackEvent};
pub use owners::{DigestMode, Owner, OwnerDirectory, RouteVia};
pub use policy::{Alert, PlannedNotification, Policy};
pub use rules::{cel, RuleSet};
pub use severity::Severity;
