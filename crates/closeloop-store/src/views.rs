//! The case as this crate reads it from its row: the view the API, the
//! webhooks and the emails show, and the state the core's transitions act on.

use chrono::{DateTime, Duration, Utc};
use closeloop_core::durations::{CaseClocks, StageTimes};
use closeloop_core::event::event_from_value;
use closeloop_core::sla::Deadlines;
use closeloop_core::{CaseEventType, CaseState, FeedbackEvent, Severity, Status};
use closeloop_wire::{CaseSlaV1, CaseV1, WebhookBody};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// A case as the store reads it: the read model, not a contract (the API
/// answers its own DTOs; webhooks and emails carry `CaseV1`).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseView {
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
    /// The triggering event, with the customer's contact details.
    pub event: FeedbackEvent,
    /// The SLA clocks; absent when the case's severity has no targets.
    pub sla: Option<CaseSla>,
    /// When a later promoter response from the same customer closed the
    /// recovery loop.
    pub recovered_at: Option<DateTime<Utc>>,
}

/// Where a case stands against its SLA.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSla {
    pub deadlines: Deadlines,
    /// 0: not escalated; 1: the owner's manager was told; and so on.
    pub escalation_level: i16,
    /// Flagged: since when a deadline is missed.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The clocks are paused (waiting on the customer) since then.
    pub paused_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CaseRow {
    pub(crate) id: Uuid,
    pub(crate) version: i32,
    status: String,
    severity: String,
    owner_id: String,
    owner_name: String,
    owner_locale: String,
    pub(crate) owner_email: String,
    pub(crate) owner_webhook_url: Option<String>,
    route: String,
    rule_ids: Vec<String>,
    channels: Vec<String>,
    event_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    first_contact_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    root_cause: Option<String>,
    contact_attempts: i32,
    event: serde_json::Value,
    deadlines: Option<serde_json::Value>,
    escalation_level: i16,
    overdue_since: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    recovered_at: Option<DateTime<Utc>>,
    /// What the business times of a transition start from.
    #[sqlx(flatten)]
    pub(crate) times: TimesRow,
}

/// A case's times before a transition, read from its row.
pub(crate) struct TimesBefore {
    pub(crate) owner_id: String,
    pub(crate) clocks: CaseClocks,
    pub(crate) recorded: Option<StageTimes>,
}

/// The business times a case records (`closeloop_core::durations`) and the
/// instant its clocks last restarted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TimesRow {
    clocks_restart_at: Option<DateTime<Utc>>,
    waited_seconds: i64,
    ack_business_seconds: Option<i64>,
    contact_business_seconds: Option<i64>,
    resolve_business_seconds: Option<i64>,
    /// False for a case stored before times were recorded, until computed.
    times_recorded: bool,
}

pub(crate) const CASE_COLUMNS: &str = "id, version, status, severity, owner_id, owner_name, owner_locale, owner_email, owner_webhook_url, route, rule_ids,
    channels, event_id, created_at, updated_at, acknowledged_at, first_contact_at, resolved_at, closed_at,
    resolved_by, root_cause, contact_attempts, event, deadlines, escalation_level, overdue_since, paused_at, recovered_at,
    clocks_restart_at, waited_seconds, ack_business_seconds, contact_business_seconds, resolve_business_seconds,
    times_recorded";

impl CaseRow {
    pub(crate) fn into_view(self, store: &Store) -> Result<CaseView> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("case {}: {what}", self.id));
        let sla = match &self.deadlines {
            None => None,
            Some(value) => Some(CaseSla {
                deadlines: serde_json::from_value(value.clone())
                    .map_err(|e| corrupt(&format!("deadlines: {e}")))?,
                escalation_level: self.escalation_level,
                overdue_since: self.overdue_since,
                paused_at: self.paused_at,
            }),
        };
        Ok(CaseView {
            sla,
            recovered_at: self.recovered_at,
            url: store.case_url(self.id),
            status: Status::parse(&self.status).ok_or_else(|| corrupt("unknown status"))?,
            severity: Severity::parse(&self.severity).ok_or_else(|| corrupt("unknown severity"))?,
            // Back through the contract's parser: a stored event is checked
            // as strictly as a received one.
            event: event_from_value(&self.event).map_err(|e| corrupt(&format!("event: {e}")))?,
            id: self.id,
            version: self.version,
            owner_id: self.owner_id,
            owner_name: self.owner_name,
            owner_locale: self.owner_locale,
            route: self.route,
            rule_ids: self.rule_ids,
            channels: self.channels,
            event_id: self.event_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            acknowledged_at: self.acknowledged_at,
            first_contact_at: self.first_contact_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            resolved_by: self.resolved_by,
            root_cause: self.root_cause,
            contact_attempts: self.contact_attempts,
        })
    }
}

impl CaseRow {
    /// What the business times of its next transition start from.
    pub(crate) fn times_before(&self) -> TimesBefore {
        TimesBefore {
            owner_id: self.owner_id.clone(),
            clocks: self.clocks(),
            recorded: self.times.recorded(),
        }
    }

    /// The instants the business times count from.
    pub(crate) fn clocks(&self) -> CaseClocks {
        CaseClocks {
            opened_at: self.created_at,
            restarted_at: self.times.clocks_restart_at,
            paused_at: self.paused_at,
        }
    }
}

impl TimesRow {
    /// The recorded times; `None` for a case whose times were never computed.
    pub(crate) fn recorded(&self) -> Option<StageTimes> {
        let seconds = |s: Option<i64>| s.map(Duration::seconds);
        self.times_recorded.then(|| StageTimes {
            waited: Duration::seconds(self.waited_seconds),
            acknowledge: seconds(self.ack_business_seconds),
            first_contact: seconds(self.contact_business_seconds),
            resolve: seconds(self.resolve_business_seconds),
        })
    }
}

impl CaseView {
    /// The part of the case the state machine acts on.
    pub fn state(&self) -> CaseState {
        CaseState {
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

impl CaseView {
    /// The case as it leaves the service (webhook `data`, emails).
    pub fn to_wire(&self) -> CaseV1 {
        CaseV1 {
            id: self.id,
            url: self.url.clone(),
            version: self.version,
            status: self.status,
            severity: self.severity,
            owner_id: self.owner_id.clone(),
            owner_name: self.owner_name.clone(),
            owner_locale: self.owner_locale.clone(),
            route: self.route.clone(),
            rule_ids: self.rule_ids.clone(),
            channels: self.channels.clone(),
            event_id: self.event_id.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            acknowledged_at: self.acknowledged_at,
            first_contact_at: self.first_contact_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            resolved_by: self.resolved_by.clone(),
            root_cause: self.root_cause.clone(),
            contact_attempts: self.contact_attempts,
            event: self.event.clone(),
            sla: self.sla.as_ref().map(|s| CaseSlaV1 {
                deadlines: s.deadlines,
                escalation_level: s.escalation_level,
                overdue_since: s.overdue_since,
                paused_at: s.paused_at,
            }),
            recovered_at: self.recovered_at,
        }
    }
}

/// The webhook body announcing `event_type` for a case.
pub(crate) fn webhook_body(
    event_type: CaseEventType,
    case: &CaseView,
    now: DateTime<Utc>,
) -> WebhookBody {
    WebhookBody::new(event_type, case.to_wire(), now)
}
