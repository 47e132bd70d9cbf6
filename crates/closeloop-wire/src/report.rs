//! The weekly report email: a regional manager's or director's week, for
//! their scope.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a store needs attention this week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttentionV1 {
    /// Cases of the week that missed a deadline.
    Overdue {
        cases: i64,
    },
    NpsFell {
        from: f64,
        to: f64,
    },
    /// A root cause given often (a code of `rules.root_causes`).
    RootCause {
        cause: String,
        cases: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreAttentionV1 {
    pub store: String,
    pub reasons: Vec<AttentionV1>,
    /// The store's page of the dashboard.
    pub url: String,
}

/// One person's weekly report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyReportV1 {
    pub recipient_name: String,
    pub locale: String,
    /// The Monday the week starts (in the recipient's calendar).
    pub week: NaiveDate,
    pub responses: i64,
    pub nps: Option<f64>,
    pub nps_before: Option<f64>,
    pub opened: i64,
    pub resolved: i64,
    pub overdue: i64,
    /// Shares from 0 to 1.
    pub ack_within_sla: Option<f64>,
    pub resolve_within_sla: Option<f64>,
    pub stores: Vec<StoreAttentionV1>,
    /// The dashboard, for the week and the scope.
    pub dashboard_url: String,
}
