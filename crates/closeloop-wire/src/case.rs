//! The case as it leaves the service: the `data` of a case webhook, and the
//! case frozen in alert, digest and follow-up emails.

use chrono::{DateTime, Utc};
use closeloop_core::sla::Deadlines;
use closeloop_core::{CaseEventType, FeedbackEvent, Severity, Status};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A case, version 1 of the published schema (`$defs/case`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseV1 {
    pub id: Uuid,
    /// The case's page, for people.
    pub url: String,
    pub version: i32,
    pub status: Status,
    pub severity: Severity,
    pub owner_id: String,
    pub owner_name: String,
    /// BCP 47 tag choosing the language of notifications.
    pub owner_locale: String,
    /// How the owner was found: rule, store, region or default.
    pub route: String,
    pub rule_ids: Vec<String>,
    pub channels: Vec<String>,
    pub event_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub root_cause: Option<String>,
    pub contact_attempts: i32,
    /// The answer the notification is about, with the customer's contact
    /// details.
    pub event: FeedbackEvent,
    /// The SLA clocks; absent when the case's severity has no targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<CaseSlaV1>,
    /// When a later promoter answer of the same customer closed the loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<DateTime<Utc>>,
}

impl CaseV1 {
    /// The part of the case the state machine acts on.
    pub fn state(&self) -> closeloop_core::CaseState {
        closeloop_core::CaseState {
            status: self.status,
            version: self.version,
            acknowledged_at: self.acknowledged_at,
            first_contact_at: self.first_contact_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            root_cause: self.root_cause.clone(),
            contact_attempts: self.contact_attempts,
        }
    }
}

/// Where a case stands against its SLA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSlaV1 {
    pub deadlines: Deadlines,
    /// 0: not escalated; 1: the owner's manager was told; and so on.
    pub escalation_level: i16,
    /// Flagged: since when a deadline is missed.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The clocks are paused (waiting on the customer) since then.
    pub paused_at: Option<DateTime<Utc>>,
}

/// A case webhook body, Standard Webhooks shape (`type`, `timestamp`,
/// `data`). Frozen in the outbox, so every retry sends the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    #[serde(rename = "type")]
    pub event_type: CaseEventType,
    pub timestamp: DateTime<Utc>,
    pub data: CaseV1,
}

impl WebhookBody {
    pub fn new(event_type: CaseEventType, case: CaseV1, now: DateTime<Utc>) -> Self {
        WebhookBody {
            event_type,
            timestamp: now,
            data: case,
        }
    }
}

/// A digest email: an owner's alert emails of a period, gathered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestV1 {
    pub owner_id: String,
    pub locale: String,
    pub built_at: DateTime<Utc>,
    pub cases: Vec<CaseV1>,
}
