//! SLA bookkeeping: the clocks of each case, the scheduler's tick, and the
//! follow-up emails it queues (reminders, escalations, watcher notices).
//!
//! The store never decides: a tick locks the due cases with `FOR UPDATE SKIP
//! LOCKED` (several instances never handle one case at once), asks the
//! caller's plan (the core's `sla::decide`) what to do, and commits the new
//! clock state, the history lines and the emails together, so a reminder is
//! recorded and queued exactly once. All of a recipient's notices of one tick
//! go into one email: after downtime an owner gets one summary.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use closeloop_core::case::SYSTEM_ACTOR;
use closeloop_core::sla::{Deadlines, SlaAction, SlaDecision, Stage};
use closeloop_core::{CaseEventType, Command, HistoryEntry, Severity, Status, Transition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use closeloop_core::Channel;
use closeloop_wire::{FollowupItem, FollowupV1, Notice, OutboxMessage};

use crate::history;
use crate::outbox_write::OutboxRows;
use crate::views::{webhook_body, CaseView};
use crate::{Result, Store, StoreError};

/// Someone to notify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Recipient {
    pub name: String,
    pub email: String,
    pub locale: String,
}

/// A watcher of a case and why they watch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct WatcherView {
    pub name: String,
    pub email: String,
    pub locale: String,
    pub reason: String,
    pub added_at: DateTime<Utc>,
}

/// What the scheduler reads of a due case.
#[derive(Debug, Clone)]
pub struct SlaCaseRow {
    pub id: Uuid,
    pub status: Status,
    pub severity: Severity,
    pub owner_id: String,
    pub owner: Recipient,
    pub owner_webhook_url: Option<String>,
    pub deadlines: Option<Deadlines>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub reminded: BTreeSet<Stage>,
    pub escalation_level: u8,
    pub overdue_since: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub resumed_at: Option<DateTime<Utc>>,
    pub clocks_restart_at: Option<DateTime<Utc>>,
}

/// The plan for one case: its clocks (possibly moved by a pause or
/// restarted by a reopening), the core's decision, and who gets each action.
#[derive(Debug, Clone)]
pub struct SlaPlan {
    pub deadlines: Option<Deadlines>,
    pub decision: SlaDecision,
    /// One recipient per action of `decision.actions`, in order.
    pub recipients: Vec<Recipient>,
    /// The IANA time zone of the owner's calendar: emails read deadlines in it.
    pub timezone: Option<String>,
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaTickOutcome {
    pub cases: usize,
    pub reminders: usize,
    pub escalations: usize,
    pub emails: usize,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    id: Uuid,
    status: String,
    severity: String,
    owner_id: String,
    owner_name: String,
    owner_email: String,
    owner_locale: String,
    owner_webhook_url: Option<String>,
    deadlines: Option<serde_json::Value>,
    acknowledged_at: Option<DateTime<Utc>>,
    first_contact_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    sla_reminded: Vec<String>,
    escalation_level: i16,
    overdue_since: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    resumed_at: Option<DateTime<Utc>>,
    clocks_restart_at: Option<DateTime<Utc>>,
}

impl DueRow {
    fn into_row(self) -> Result<SlaCaseRow> {
        let corrupt = |what: String| StoreError::Corrupt(format!("case {}: {what}", self.id));
        Ok(SlaCaseRow {
            status: Status::parse(&self.status)
                .ok_or_else(|| corrupt(format!("unknown status {}", self.status)))?,
            severity: Severity::parse(&self.severity)
                .ok_or_else(|| corrupt(format!("unknown severity {}", self.severity)))?,
            deadlines: self
                .deadlines
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| corrupt(format!("deadlines: {e}")))?,
            reminded: self
                .sla_reminded
                .iter()
                .filter_map(|s| Stage::parse(s))
                .collect(),
            escalation_level: u8::try_from(self.escalation_level).unwrap_or(0),
            id: self.id,
            owner: Recipient {
                name: self.owner_name,
                email: self.owner_email,
                locale: self.owner_locale,
            },
            owner_id: self.owner_id,
            owner_webhook_url: self.owner_webhook_url,
            acknowledged_at: self.acknowledged_at,
            first_contact_at: self.first_contact_at,
            resolved_at: self.resolved_at,
            overdue_since: self.overdue_since,
            paused_at: self.paused_at,
            resumed_at: self.resumed_at,
            clocks_restart_at: self.clocks_restart_at,
        })
    }
}

/// The earliest instant of a set of clocks: when a new case is first due a look.
pub fn first_check(deadlines: &Deadlines) -> DateTime<Utc> {
    Stage::ALL
        .iter()
        .flat_map(|&s| [deadlines.get(s).remind_at, deadlines.get(s).due_at])
        .min()
        .unwrap_or(deadlines.acknowledge.due_at)
}

impl Store {
    /// Handle up to `limit` cases whose SLA check is due at `now`: lock
    /// them, ask `plan` (the core's decision, through the caller), record
    /// each decision on its case, and queue the follow-up emails (one per
    /// recipient) and escalation webhooks, all in one transaction.
    pub async fn sla_tick(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        mut plan: impl FnMut(&SlaCaseRow) -> SlaPlan,
    ) -> Result<SlaTickOutcome> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<DueRow> = sqlx::query_as(
            "SELECT id, status, severity, owner_id, owner_name, owner_email, owner_locale, owner_webhook_url,
                    deadlines, acknowledged_at, first_contact_at, resolved_at, sla_reminded, escalation_level,
                    overdue_since, paused_at, resumed_at, clocks_restart_at
             FROM cases WHERE next_sla_at <= $1
             ORDER BY next_sla_at LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut outcome = SlaTickOutcome {
            cases: due.len(),
            ..SlaTickOutcome::default()
        };
        if due.is_empty() {
            return Ok(outcome);
        }
        let mut notices = Notices::default();
        for row in due {
            let row = row.into_row()?;
            let plan = plan(&row);
            self.record_decision(&mut tx, &row, &plan, now, &mut notices, &mut outcome)
                .await?;
        }
        let lines: Vec<(Uuid, &HistoryEntry)> =
            notices.history.iter().map(|(id, e)| (*id, e)).collect();
        history::append(&mut tx, &lines).await?;
        outcome.emails = self.queue_notices(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Record one case's decision: its clocks and escalation watchers;
    /// gather its history lines and who must be told in `notices`.
    async fn record_decision(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &SlaCaseRow,
        plan: &SlaPlan,
        now: DateTime<Utc>,
        notices: &mut Notices,
        outcome: &mut SlaTickOutcome,
    ) -> Result<()> {
        let decision = &plan.decision;
        if let Some(tz) = &plan.timezone {
            notices.timezones.insert(row.id, tz.clone());
        }
        let reminded: Vec<&str> = decision.reminded.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "UPDATE cases SET deadlines = $2, sla_reminded = $3, escalation_level = $4, overdue_since = $5,
                    next_sla_at = $6, clocks_restart_at = NULL, resumed_at = NULL,
                    paused_at = CASE WHEN resumed_at IS NOT NULL THEN NULL ELSE paused_at END
             WHERE id = $1",
        )
        .bind(row.id)
        .bind(plan.deadlines.map(|d| serde_json::to_value(d).unwrap_or_default()))
        .bind(&reminded)
        .bind(i16::from(decision.escalation_level))
        .bind(decision.overdue_since)
        .bind(decision.next_check)
        .execute(&mut *tx)
        .await?;
        for (action, recipient) in decision.actions.iter().zip(&plan.recipients) {
            let (name, stage, due_at, level) = match *action {
                SlaAction::Remind { stage, due_at } => {
                    outcome.reminders += 1;
                    ("remind", stage, due_at, None)
                }
                SlaAction::Escalate {
                    stage,
                    due_at,
                    level,
                } => {
                    outcome.escalations += 1;
                    if level > 0 {
                        self.add_watcher(&mut *tx, row.id, recipient, "escalation", now)
                            .await?;
                    }
                    if let Some(url) = &row.owner_webhook_url {
                        notices.webhooks.push((row.id, url.clone()));
                    }
                    ("escalate", stage, due_at, Some(level))
                }
            };
            let entry = HistoryEntry {
                at: now,
                actor: SYSTEM_ACTOR.into(),
                action: name.into(),
                from_status: Some(row.status),
                to_status: row.status,
                note: None,
                details: serde_json::json!({
                    "stage": stage.as_str(), "due_at": due_at, "level": level, "to": recipient.email,
                }),
            };
            notices.history.push((row.id, entry));
            notices
                .mail
                .entry(recipient.email.clone())
                .or_insert_with(|| (recipient.clone(), Vec::new()))
                .1
                .push((row.id, *action));
        }
        Ok(())
    }

    /// Queue one follow-up email per recipient and the escalation
    /// webhooks; returns the number of emails.
    async fn queue_notices(
        &self,
        tx: &mut sqlx::PgConnection,
        notices: Notices,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut ids: Vec<Uuid> = notices
            .mail
            .values()
            .flat_map(|(_, items)| items.iter().map(|(id, _)| *id))
            .chain(notices.webhooks.iter().map(|(id, _)| *id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let views: BTreeMap<Uuid, CaseView> = self
            .case_views_in(&mut *tx, &ids)
            .await?
            .into_iter()
            .map(|v| (v.id, v))
            .collect();
        let mut outbox = OutboxRows::default();
        for (recipient, actions) in notices.mail.into_values() {
            let items: Vec<FollowupItem> = actions
                .iter()
                .filter_map(|(id, action)| {
                    let tz = notices.timezones.get(id).cloned();
                    Some(followup_item(*action, views.get(id)?, tz))
                })
                .collect();
            // A single-case email belongs to its case (it shows in the case's
            // deliveries); a summary belongs to no one case.
            let case_id = (items.len() == 1).then(|| items[0].case.id);
            push_followup(&mut outbox, case_id, &recipient, items, now);
        }
        let emails = outbox.len();
        for (id, url) in notices.webhooks {
            if let Some(view) = views.get(&id) {
                let body = webhook_body(CaseEventType::Escalated, view, now);
                outbox.push_case(Channel::Webhook, &url, body);
            }
        }
        outbox.insert(&mut *tx, now).await?;
        Ok(emails)
    }

    /// Subscribe someone to a case's acknowledgement and resolution.
    pub async fn subscribe_watcher(
        &self,
        case_id: Uuid,
        watcher: &Recipient,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<WatcherView>> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM cases WHERE id = $1 FOR UPDATE")
                .bind(case_id)
                .fetch_optional(&mut *tx)
                .await?;
        let status = status.ok_or(StoreError::CaseNotFound(case_id))?;
        self.add_watcher(&mut tx, case_id, watcher, "subscribed", now)
            .await?;
        sqlx::query(
            "INSERT INTO case_history (case_id, at, actor, action, from_status, to_status, note, details)
             VALUES ($1, $2, $3, 'watch', $4, $4, NULL, $5)",
        )
        .bind(case_id)
        .bind(now)
        .bind(actor)
        .bind(&status)
        .bind(serde_json::json!({ "watcher": watcher.name }))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.watchers(case_id).await
    }

    /// The watchers of a case.
    pub async fn watchers(&self, case_id: Uuid) -> Result<Vec<WatcherView>> {
        Ok(sqlx::query_as(
            "SELECT name, email, locale, reason, added_at FROM case_watchers
             WHERE case_id = $1 ORDER BY added_at, email",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_watcher(
        &self,
        tx: &mut sqlx::PgConnection,
        case_id: Uuid,
        watcher: &Recipient,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO case_watchers (case_id, email, name, locale, reason, added_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(case_id)
        .bind(&watcher.email)
        .bind(&watcher.name)
        .bind(&watcher.locale)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Queue one notice per watcher of `case` (acknowledged or resolved).
    pub(crate) async fn tell_watchers(
        &self,
        tx: &mut sqlx::PgConnection,
        outbox: &mut OutboxRows,
        case: &CaseView,
        notice: Notice,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let watchers: Vec<Recipient> = sqlx::query_as(
            "SELECT name, email, locale FROM case_watchers WHERE case_id = $1 ORDER BY added_at, email",
        )
        .bind(case.id)
        .fetch_all(&mut *tx)
        .await?;
        for watcher in watchers {
            let item = FollowupItem {
                notice,
                stage: None,
                due_at: None,
                actor: Some(actor.to_owned()),
                timezone: None,
                case: case.to_wire(),
            };
            push_followup(outbox, Some(case.id), &watcher, vec![item], now);
        }
        Ok(())
    }

    /// Keep the SLA clocks in step with a transition: a pause stops the
    /// scheduler's look at the case, a resumption or reopening asks it to
    /// move or restart the clocks at once.
    pub(crate) async fn track_clocks(
        &self,
        tx: &mut sqlx::PgConnection,
        id: Uuid,
        command: &Command,
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let from = transition.entry.from_status;
        let to = transition.state.status;
        let sql = match command {
            Command::WaitOnCustomer { .. } => {
                "UPDATE cases SET paused_at = $2, resumed_at = NULL, next_sla_at = NULL WHERE id = $1"
            }
            Command::Resume { .. } if from == Some(Status::WaitingOnCustomer) => {
                "UPDATE cases SET resumed_at = $2, next_sla_at = $2 WHERE id = $1 AND deadlines IS NOT NULL"
            }
            Command::Reopen { .. } if to == Status::Reopened => {
                "UPDATE cases SET clocks_restart_at = $2, next_sla_at = $2, overdue_since = NULL
                 WHERE id = $1 AND deadlines IS NOT NULL"
            }
            _ => return Ok(()),
        };
        sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// What an SLA tick gathers across its cases: per recipient email, the
/// recipient and the (case, action) pairs; the cases whose owner's webhook
/// hears of an escalation; and the history lines to append.
#[derive(Default)]
struct Notices {
    mail: BTreeMap<String, (Recipient, Vec<(Uuid, SlaAction)>)>,
    /// The time zone of each case's plan.
    timezones: BTreeMap<Uuid, String>,
    webhooks: Vec<(Uuid, String)>,
    /// The `remind` / `escalate` history lines, appended in one statement.
    history: Vec<(Uuid, HistoryEntry)>,
}

/// One case of a follow-up email: a reminder, or an escalation (to the
/// next level) or overdue notice (to the owner, with nobody above).
fn followup_item(action: SlaAction, case: &CaseView, timezone: Option<String>) -> FollowupItem {
    let (notice, stage, due_at) = match action {
        SlaAction::Remind { stage, due_at } => (Notice::Reminder, stage, due_at),
        SlaAction::Escalate {
            stage,
            due_at,
            level: 0,
        } => (Notice::Overdue, stage, due_at),
        SlaAction::Escalate { stage, due_at, .. } => (Notice::Escalation, stage, due_at),
    };
    FollowupItem {
        notice,
        stage: Some(stage),
        due_at: Some(due_at),
        actor: None,
        timezone,
        case: case.to_wire(),
    }
}

fn push_followup(
    outbox: &mut OutboxRows,
    case_id: Option<Uuid>,
    recipient: &Recipient,
    items: Vec<FollowupItem>,
    now: DateTime<Utc>,
) {
    if items.is_empty() {
        return;
    }
    let message = OutboxMessage::Followup(FollowupV1 {
        recipient_name: recipient.name.clone(),
        locale: recipient.locale.clone(),
        built_at: now,
        items,
    });
    outbox.push(case_id, &recipient.email, message);
}
