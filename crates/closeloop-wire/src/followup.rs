//! Follow-up emails: reminders, escalations, overdue notices and watchers'
//! notices, gathered per recipient.

use chrono::{DateTime, Utc};
use closeloop_core::sla::Stage;
use serde::{Deserialize, Serialize};

use crate::case::CaseV1;

/// Why a follow-up email talks about a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A deadline is near (to the owner).
    Reminder,
    /// A deadline passed and the case comes up to you (the next level).
    Escalation,
    /// A deadline passed and nobody is above the owner: the owner is told.
    Overdue,
    /// A case you watch was acknowledged.
    Acknowledged,
    /// A case you watch was resolved.
    Resolved,
}

/// One case in a follow-up email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowupItem {
    pub notice: Notice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// Who acted (acknowledged or resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The IANA time zone of the case's store (its owner's calendar), in
    /// which the email shows `due_at`; UTC when absent (older messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub case: CaseV1,
}

/// A follow-up email to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowupV1 {
    pub recipient_name: String,
    pub locale: String,
    pub built_at: DateTime<Utc>,
    pub items: Vec<FollowupItem>,
}
