//! The API's response bodies, defined here and built from the store's read
//! model. The case object itself is the published one (`CaseV1`, the
//! webhook's `data`): one schema for the same case wherever it appears.

use chrono::{DateTime, Utc};
use closeloop_store::{CaseDetail, CaseView, DeliveryView, HistoryView, WatcherView};
use closeloop_wire::CaseV1;
use serde::Serialize;
use uuid::Uuid;

/// `GET /v1/cases/{id}` and the answer of every case step.
#[derive(Debug, Serialize)]
pub struct CaseDetailBody {
    #[serde(flatten)]
    pub case: CaseV1,
    pub history: Vec<HistoryItem>,
    pub deliveries: Vec<DeliveryItem>,
    /// Told of acknowledgement and resolution: escalation levels and subscribers.
    pub watchers: Vec<WatcherItem>,
}

/// One line of a case's history.
#[derive(Debug, Serialize)]
pub struct HistoryItem {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub note: Option<String>,
    pub details: serde_json::Value,
}

/// One notification of a case and how its delivery went.
#[derive(Debug, Serialize)]
pub struct DeliveryItem {
    pub id: Uuid,
    pub channel: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
}

/// Someone told of a case's acknowledgement and resolution.
#[derive(Debug, Serialize)]
pub struct WatcherItem {
    pub name: String,
    pub email: String,
    pub locale: String,
    pub reason: String,
    pub added_at: DateTime<Utc>,
}

/// `GET /v1/cases`.
#[derive(Debug, Serialize)]
pub struct CaseListBody {
    pub cases: Vec<CaseV1>,
    pub limit: i64,
    pub offset: i64,
}

impl From<&HistoryView> for HistoryItem {
    fn from(h: &HistoryView) -> Self {
        HistoryItem {
            at: h.at,
            actor: h.actor.clone(),
            action: h.action.clone(),
            from_status: h.from_status.clone(),
            to_status: h.to_status.clone(),
            note: h.note.clone(),
            details: h.details.clone(),
        }
    }
}

impl From<&DeliveryView> for DeliveryItem {
    fn from(d: &DeliveryView) -> Self {
        DeliveryItem {
            id: d.id,
            channel: d.channel.clone(),
            event_type: d.event_type.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            sent_at: d.sent_at,
            next_attempt_at: d.next_attempt_at,
        }
    }
}

impl From<&WatcherView> for WatcherItem {
    fn from(w: &WatcherView) -> Self {
        WatcherItem {
            name: w.name.clone(),
            email: w.email.clone(),
            locale: w.locale.clone(),
            reason: w.reason.clone(),
            added_at: w.added_at,
        }
    }
}

impl From<&CaseDetail> for CaseDetailBody {
    fn from(detail: &CaseDetail) -> Self {
        CaseDetailBody {
            case: detail.case.to_wire(),
            history: detail.history.iter().map(HistoryItem::from).collect(),
            deliveries: detail.deliveries.iter().map(DeliveryItem::from).collect(),
            watchers: detail.watchers.iter().map(WatcherItem::from).collect(),
        }
    }
}

impl CaseListBody {
    pub fn new(cases: &[CaseView], limit: i64, offset: i64) -> Self {
        CaseListBody {
            cases: cases.iter().map(CaseView::to_wire).collect(),
            limit,
            offset,
        }
    }
}
