//! The case state machine: every alert is a case that moves from `open` to
//! `resolved` (and `closed`), possibly `reopened`.
//!
//! A transition is a pure function of (state, command, actor, now): it returns
//! the next state, the history entry to append and the effects for adapters
//! to perform, or a [`TransitionError`] saying why it is refused.
//!
//! ```text
//!   open ──ack──▶ acknowledged ──contact──▶ contacted ──resolve──▶ resolved ──close──▶ closed
//!    │  └──────────contact────────────────▶    ▲ │                   │                   │
//!    │                                         └─┘ (more attempts)   └──reopen──▶ reopened ◀──reopen──┘
//!  reopened behaves like open.
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::TransitionError;
pub use crate::status::Status;

/// The actor of the service's own history lines (intake, SLA scheduler).
pub const SYSTEM_ACTOR: &str = "closeloop";

/// How a call to the customer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactOutcome {
    Reached,
    Voicemail,
    NoAnswer,
}

impl ContactOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactOutcome::Reached => "reached",
            ContactOutcome::Voicemail => "voicemail",
            ContactOutcome::NoAnswer => "no_answer",
        }
    }
}

/// What an owner (or ops) asks of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Acknowledge {
        note: Option<String>,
    },
    AddNote {
        note: String,
    },
    RecordContact {
        outcome: ContactOutcome,
        note: Option<String>,
    },
    Resolve {
        root_cause: String,
        note: Option<String>,
    },
    Reopen {
        reason: String,
    },
    Close {
        note: Option<String>,
    },
    /// Pause: waiting for the customer.
    WaitOnCustomer {
        note: Option<String>,
    },
    /// The customer is back: work resumes.
    Resume {
        note: Option<String>,
    },
    /// Give the case to another owner (checked against the directory by the caller).
    Reassign {
        owner_id: String,
        reason: String,
    },
}

impl Command {
    /// The verb recorded in history and used in refusals.
    pub fn action(&self) -> &'static str {
        match self {
            Command::Acknowledge { .. } => "acknowledge",
            Command::AddNote { .. } => "note",
            Command::RecordContact { .. } => "contact",
            Command::Resolve { .. } => "resolve",
            Command::Reopen { .. } => "reopen",
            Command::Close { .. } => "close",
            Command::WaitOnCustomer { .. } => "wait",
            Command::Resume { .. } => "resume",
            Command::Reassign { .. } => "reassign",
        }
    }
}

/// The versioned, webhook-visible events of a case's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseEventType {
    #[serde(rename = "case.created")]
    Created,
    #[serde(rename = "case.updated")]
    Updated,
    #[serde(rename = "case.acknowledged")]
    Acknowledged,
    #[serde(rename = "case.resolved")]
    Resolved,
    #[serde(rename = "case.reopened")]
    Reopened,
    /// Reserved for escalation along the owner's chain (SLA deadlines).
    #[serde(rename = "case.escalated")]
    Escalated,
}

impl CaseEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseEventType::Created => "case.created",
            CaseEventType::Updated => "case.updated",
            CaseEventType::Acknowledged => "case.acknowledged",
            CaseEventType::Resolved => "case.resolved",
            CaseEventType::Reopened => "case.reopened",
            CaseEventType::Escalated => "case.escalated",
        }
    }
}

/// What adapters must do after a transition commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Tell the owner's webhook endpoint (if any) about the change.
    NotifyWebhook(CaseEventType),
    /// Email the owner about the change (a reopened case is theirs to call
    /// again, whoever reopened it).
    EmailOwner(CaseEventType),
    /// The case now belongs to this owner: update it and tell them.
    ChangeOwner(String),
}

/// The mutable part of a case that transitions act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    pub status: Status,
    /// Bumped by every transition; clients use it to detect stale views.
    pub version: i32,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub root_cause: Option<String>,
    pub contact_attempts: i32,
}

/// One append-only history line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub note: Option<String>,
    pub details: serde_json::Value,
}

/// The result of an accepted command.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: CaseState,
    pub entry: HistoryEntry,
    pub effects: Vec<Effect>,
}

impl CaseState {
    /// A new case, opened at `at`.
    pub fn opened() -> Self {
        CaseState {
            status: Status::Open,
            version: 1,
            acknowledged_at: None,
            first_contact_at: None,
            resolved_at: None,
            closed_at: None,
            root_cause: None,
            contact_attempts: 0,
        }
    }

    /// The history entry that records a case's creation.
    /// The history line of a new case. `channels` are those that reach the
    /// owner; when there are none, the line says that nobody was notified
    /// (a webhook-only rule routed to an owner without a `webhook_url`).
    pub fn creation_entry(
        at: DateTime<Utc>,
        rule_ids: &[String],
        owner_id: &str,
        route: &str,
        channels: &[String],
    ) -> HistoryEntry {
        let notified = !channels.is_empty();
        HistoryEntry {
            at,
            actor: "closeloop".into(),
            action: "open".into(),
            from_status: None,
            to_status: Status::Open,
            note: (!notified).then(|| {
                "nobody was notified: no channel of the rules that fired reaches the owner".into()
            }),
            details: serde_json::json!({
                "rules": rule_ids, "owner": owner_id, "route": route,
                "channels": channels, "notified": notified,
            }),
        }
    }

    /// Apply `command` by `actor` at `now`. `root_causes` is the configured
    /// list a resolution must pick from.
    pub fn apply(
        &self,
        command: &Command,
        actor: &str,
        now: DateTime<Utc>,
        root_causes: &[String],
    ) -> Result<Transition, TransitionError> {
        if actor.trim().is_empty() {
            return Err(TransitionError::MissingText { field: "actor" });
        }
        let from = self.status;
        let refuse = || TransitionError::NotAllowed {
            action: command.action(),
            status: from,
        };
        let mut next = self.clone();
        next.version += 1;
        let mut details = serde_json::Value::Null;
        let (note, effects) = match command {
            Command::Acknowledge { note } => {
                if !matches!(from, Status::Open | Status::Reopened) {
                    return Err(refuse());
                }
                next.status = Status::Acknowledged;
                next.acknowledged_at.get_or_insert(now);
                (
                    note.clone(),
                    vec![Effect::NotifyWebhook(CaseEventType::Acknowledged)],
                )
            }
            Command::AddNote { note } => {
                if note.trim().is_empty() {
                    return Err(TransitionError::MissingText { field: "note" });
                }
                (Some(note.clone()), vec![])
            }
            Command::RecordContact { outcome, note } => {
                if !from.is_active() {
                    return Err(refuse());
                }
                // Calling the customer is the strongest acknowledgement there is.
                next.status = Status::Contacted;
                next.acknowledged_at.get_or_insert(now);
                next.first_contact_at.get_or_insert(now);
                next.contact_attempts += 1;
                details = serde_json::json!({ "outcome": outcome.as_str(), "attempt": next.contact_attempts });
                (
                    note.clone(),
                    vec![Effect::NotifyWebhook(CaseEventType::Updated)],
                )
            }
            Command::Resolve { root_cause, note } => {
                match from {
                    Status::Acknowledged | Status::Contacted | Status::WaitingOnCustomer => {}
                    Status::Open | Status::Reopened => {
                        return Err(TransitionError::NotAcknowledged { status: from })
                    }
                    Status::Resolved | Status::Closed => return Err(refuse()),
                }
                if root_cause.trim().is_empty() {
                    return Err(TransitionError::MissingText {
                        field: "root_cause",
                    });
                }
                if !root_causes.iter().any(|c| c == root_cause) {
                    return Err(TransitionError::UnknownRootCause {
                        given: root_cause.clone(),
                        allowed: root_causes.join(", "),
                    });
                }
                next.status = Status::Resolved;
                next.resolved_at = Some(now);
                next.root_cause = Some(root_cause.clone());
                details = serde_json::json!({ "root_cause": root_cause });
                (
                    note.clone(),
                    vec![Effect::NotifyWebhook(CaseEventType::Resolved)],
                )
            }
            Command::Reopen { reason } => {
                if !matches!(from, Status::Resolved | Status::Closed) {
                    return Err(refuse());
                }
                if reason.trim().is_empty() {
                    return Err(TransitionError::MissingText { field: "reason" });
                }
                next.status = Status::Reopened;
                next.resolved_at = None;
                next.closed_at = None;
                next.root_cause = None;
                (
                    Some(reason.clone()),
                    vec![
                        Effect::EmailOwner(CaseEventType::Reopened),
                        Effect::NotifyWebhook(CaseEventType::Reopened),
                    ],
                )
            }
            Command::Close { note } => {
                if from != Status::Resolved {
                    return Err(refuse());
                }
                next.status = Status::Closed;
                next.closed_at = Some(now);
                (
                    note.clone(),
                    vec![Effect::NotifyWebhook(CaseEventType::Updated)],
                )
            }
            Command::WaitOnCustomer { note } => {
                if !matches!(from, Status::Acknowledged | Status::Contacted) {
                    return Err(refuse());
                }
                next.status = Status::WaitingOnCustomer;
                (
                    note.clone(),
                    vec![Effect::NotifyWebhook(CaseEventType::Updated)],
                )
            }
            Command::Resume { note } => {
                if from != Status::WaitingOnCustomer {
                    return Err(refuse());
                }
                next.status = if next.first_contact_at.is_some() {
                    Status::Contacted
                } else {
                    Status::Acknowledged
                };
                (
                    note.clone(),
                    vec![Effect::NotifyWebhook(CaseEventType::Updated)],
                )
            }
            Command::Reassign { owner_id, reason } => {
                if !from.is_active() {
                    return Err(refuse());
                }
                if reason.trim().is_empty() {
                    return Err(TransitionError::MissingText { field: "reason" });
                }
                if owner_id.trim().is_empty() {
                    return Err(TransitionError::MissingText { field: "owner" });
                }
                details = serde_json::json!({ "owner": owner_id });
                (
                    Some(reason.clone()),
                    vec![
                        Effect::ChangeOwner(owner_id.clone()),
                        Effect::NotifyWebhook(CaseEventType::Updated),
                    ],
                )
            }
        };
        let entry = HistoryEntry {
            at: now,
            actor: actor.to_owned(),
            action: command.action().to_owned(),
            from_status: Some(from),
            to_status: next.status,
            note: note.filter(|n| !n.trim().is_empty()),
            details,
        };
        Ok(Transition {
            state: next,
            entry,
            effects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 10, minute, 0).unwrap()
    }

    fn state(status: Status) -> CaseState {
        CaseState {
            status,
            ..CaseState::opened()
        }
    }

    fn causes() -> Vec<String> {
        vec!["delivery_delay".into(), "product_defect".into()]
    }

    fn ack() -> Command {
        Command::Acknowledge { note: None }
    }
    fn contact(outcome: ContactOutcome) -> Command {
        Command::RecordContact {
            outcome,
            note: None,
        }
    }
    fn resolve(cause: &str) -> Command {
        Command::Resolve {
            root_cause: cause.into(),
            note: Some("refunded".into()),
        }
    }
    fn reopen() -> Command {
        Command::Reopen {
            reason: "customer called again".into(),
        }
    }
    fn close() -> Command {
        Command::Close { note: None }
    }
    fn note() -> Command {
        Command::AddNote {
            note: "left a message".into(),
        }
    }

    /// (from, command, expected: Ok(next status) or Err(refusal text))
    #[test]
    fn transition_table() {
        use Status::*;
        let cases: Vec<(Status, Command, Result<Status, &str>)> = vec![
            (Open, ack(), Ok(Acknowledged)),
            (Reopened, ack(), Ok(Acknowledged)),
            (
                Acknowledged,
                ack(),
                Err("cannot acknowledge a case that is acknowledged"),
            ),
            (
                Resolved,
                ack(),
                Err("cannot acknowledge a case that is resolved"),
            ),
            (Open, contact(ContactOutcome::Reached), Ok(Contacted)),
            (
                Acknowledged,
                contact(ContactOutcome::Voicemail),
                Ok(Contacted),
            ),
            (Contacted, contact(ContactOutcome::NoAnswer), Ok(Contacted)),
            (
                Resolved,
                contact(ContactOutcome::Reached),
                Err("cannot contact a case that is resolved"),
            ),
            (
                Closed,
                contact(ContactOutcome::Reached),
                Err("cannot contact a case that is closed"),
            ),
            (Acknowledged, resolve("delivery_delay"), Ok(Resolved)),
            (Contacted, resolve("product_defect"), Ok(Resolved)),
            (Open, resolve("delivery_delay"), Err("acknowledge it first")),
            (
                Reopened,
                resolve("delivery_delay"),
                Err("acknowledge it first"),
            ),
            (
                Resolved,
                resolve("delivery_delay"),
                Err("cannot resolve a case that is resolved"),
            ),
            (
                Contacted,
                resolve("aliens"),
                Err("root cause \"aliens\" is not one of: delivery_delay, product_defect"),
            ),
            (Contacted, resolve(" "), Err("root_cause must not be empty")),
            (Resolved, reopen(), Ok(Reopened)),
            (Closed, reopen(), Ok(Reopened)),
            (Open, reopen(), Err("cannot reopen a case that is open")),
            (
                Contacted,
                reopen(),
                Err("cannot reopen a case that is contacted"),
            ),
            (Resolved, close(), Ok(Closed)),
            (
                Contacted,
                close(),
                Err("cannot close a case that is contacted"),
            ),
            (Open, note(), Ok(Open)),
            (Closed, note(), Ok(Closed)),
            (
                Open,
                Command::AddNote { note: "".into() },
                Err("note must not be empty"),
            ),
            (
                Contacted,
                Command::WaitOnCustomer { note: None },
                Ok(WaitingOnCustomer),
            ),
            (
                Acknowledged,
                Command::WaitOnCustomer { note: None },
                Ok(WaitingOnCustomer),
            ),
            (
                Open,
                Command::WaitOnCustomer { note: None },
                Err("cannot wait a case that is open"),
            ),
            (
                WaitingOnCustomer,
                Command::Resume { note: None },
                Ok(Acknowledged),
            ),
            (
                Contacted,
                Command::Resume { note: None },
                Err("cannot resume a case that is contacted"),
            ),
            (
                WaitingOnCustomer,
                contact(ContactOutcome::Reached),
                Ok(Contacted),
            ),
            (WaitingOnCustomer, resolve("delivery_delay"), Ok(Resolved)),
            (
                WaitingOnCustomer,
                ack(),
                Err("cannot acknowledge a case that is waiting_on_customer"),
            ),
            (
                Open,
                Command::Reassign {
                    owner_id: "rm-ara".into(),
                    reason: "not my store".into(),
                },
                Ok(Open),
            ),
            (
                Contacted,
                Command::Reassign {
                    owner_id: "rm-ara".into(),
                    reason: " ".into(),
                },
                Err("reason must not be empty"),
            ),
            (
                Resolved,
                Command::Reassign {
                    owner_id: "rm-ara".into(),
                    reason: "x".into(),
                },
                Err("cannot reassign a case that is resolved"),
            ),
        ];
        for (from, command, expected) in cases {
            let result = state(from).apply(&command, "mgr-lyon-02", at(5), &causes());
            match (result, expected) {
                (Ok(t), Ok(to)) => {
                    assert_eq!(t.state.status, to, "{from} + {command:?}");
                    assert_eq!(t.state.version, 2);
                    assert_eq!(t.entry.from_status, Some(from));
                    assert_eq!(t.entry.to_status, to);
                    assert_eq!(t.entry.actor, "mgr-lyon-02");
                    assert_eq!(t.entry.at, at(5));
                }
                (Err(e), Err(text)) => assert!(
                    e.to_string().contains(text),
                    "{from} + {command:?}: `{e}` lacks `{text}`"
                ),
                (got, want) => panic!("{from} + {command:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_story_keeps_its_timestamps() {
        let s0 = CaseState::opened();
        let s1 = s0.apply(&ack(), "claire", at(2), &causes()).unwrap();
        assert_eq!(
            s1.effects,
            [Effect::NotifyWebhook(CaseEventType::Acknowledged)]
        );
        let s2 = s1
            .state
            .apply(
                &contact(ContactOutcome::NoAnswer),
                "claire",
                at(10),
                &causes(),
            )
            .unwrap();
        let s3 = s2
            .state
            .apply(
                &contact(ContactOutcome::Reached),
                "claire",
                at(30),
                &causes(),
            )
            .unwrap();
        assert_eq!(s3.entry.details["outcome"], "reached");
        assert_eq!(s3.entry.details["attempt"], 2);
        let s4 = s3
            .state
            .apply(&resolve("delivery_delay"), "claire", at(45), &causes())
            .unwrap();
        let end = s4.state;
        assert_eq!(end.status, Status::Resolved);
        assert_eq!(end.version, 5);
        assert_eq!(end.acknowledged_at, Some(at(2)));
        assert_eq!(end.first_contact_at, Some(at(10)));
        assert_eq!(end.resolved_at, Some(at(45)));
        assert_eq!(end.contact_attempts, 2);
        assert_eq!(end.root_cause.as_deref(), Some("delivery_delay"));
        assert_eq!(s4.effects, [Effect::NotifyWebhook(CaseEventType::Resolved)]);

        let reopened = end
            .apply(&reopen(), "ops", at(50), &causes())
            .unwrap()
            .state;
        assert_eq!(reopened.resolved_at, None);
        assert_eq!(reopened.root_cause, None);
        assert_eq!(
            reopened.acknowledged_at,
            Some(at(2)),
            "first acknowledgement is kept"
        );
    }

    #[test]
    fn an_actor_is_required() {
        let err = CaseState::opened()
            .apply(&ack(), " ", at(1), &causes())
            .unwrap_err();
        assert_eq!(err, TransitionError::MissingText { field: "actor" });
    }
}
