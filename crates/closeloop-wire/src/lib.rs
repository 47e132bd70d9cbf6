//! closeloop's wire contracts, each defined once: what leaves the service
//! (the case webhook body, `docs/schemas/case-webhook-v1.schema.json`) and
//! what waits in the outbox between the transaction that queues it and the
//! dispatcher that sends it ([`OutboxMessage`], versioned).
//!
//! Architecture invariants:
//! - Pure: serde types and their conversions, no I/O. The store writes
//!   these types and notify reads them; neither knows the other's rows.
//! - A stored message of a known version always reads back: new fields are
//!   optional (`serde(default)`), and `tests/data/outbox-v1/` holds rows in
//!   the first format that the suite delivers.

mod case;
mod error;
mod followup;
mod outbox;
mod report;
mod sign_in;

pub use case::{CaseSlaV1, CaseV1, DigestV1, WebhookBody};
pub use error::WireError;
pub use followup::{FollowupItem, FollowupV1, Notice};
pub use outbox::{OutboxMessage, OUTBOX_VERSION};
pub use report::{AttentionV1, StoreAttentionV1, WeeklyReportV1};
pub use sign_in::SignInV1;
