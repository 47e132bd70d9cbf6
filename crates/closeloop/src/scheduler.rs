//! The SLA scheduler: every `sla.poll_interval`, the cases whose clocks are
//! due get their reminders and escalations.
//!
//! Safe with several instances: the store locks due cases with `SKIP
//! LOCKED` and records what was sent in the same transaction. The decision
//! itself is the core's `sla::decide`; this module only finds, for each
//! case, its calendar and escalation chain in the active owner directory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use closeloop_core::sla::{self, SlaAction, SlaCase, SlaPolicy};
use closeloop_core::OwnerDirectory;
use closeloop_store::{Recipient, SlaCaseRow, SlaPlan, SlaTickOutcome, Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::reload::ActivePolicy;

/// Cases handled per transaction.
const BATCH: i64 = 500;

pub struct SlaScheduler {
    pub store: Store,
    pub policy: Arc<ActivePolicy>,
    pub sla: SlaPolicy,
    pub poll_interval: Duration,
    pub wake_dispatcher: Arc<Notify>,
    pub clock: Arc<dyn closeloop_core::clock::Clock>,
    pub telemetry: Arc<closeloop_telemetry::Telemetry>,
}

impl SlaScheduler {
    pub async fn run(&self, cancel: CancellationToken) {
        loop {
            let result = self.tick(self.clock.now()).await;
            if let Ok(outcome) = &result {
                let sla = &self.telemetry.sla;
                sla.reminders.inc_by(outcome.reminders as u64);
                sla.escalations.inc_by(outcome.escalations as u64);
            }
            match result {
                Ok(outcome) if outcome.emails > 0 => {
                    info!(
                        cases = outcome.cases,
                        reminders = outcome.reminders,
                        escalations = outcome.escalations,
                        emails = outcome.emails,
                        "sla follow-ups queued"
                    );
                    self.wake_dispatcher.notify_one();
                }
                Ok(_) => {}
                Err(error) => warn!(%error, "sla tick failed; retrying next interval"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Handle every case due at `now`, a batch per transaction.
    #[tracing::instrument(name = "sla_tick", skip_all, fields(%now))]
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<SlaTickOutcome, StoreError> {
        let policy = self.policy.current();
        let directory = policy.owners();
        let mut total = SlaTickOutcome::default();
        loop {
            let outcome = self
                .store
                .sla_tick(now, BATCH, |row| plan(&self.sla, directory, row, now))
                .await?;
            total.cases += outcome.cases;
            total.reminders += outcome.reminders;
            total.escalations += outcome.escalations;
            total.emails += outcome.emails;
            if outcome.cases < BATCH as usize {
                return Ok(total);
            }
        }
    }
}

/// What to do about one case: move or restart its clocks if a pause ended
/// or it was reopened, then let the core decide.
pub fn plan(
    policy: &SlaPolicy,
    directory: &OwnerDirectory,
    row: &SlaCaseRow,
    now: DateTime<Utc>,
) -> SlaPlan {
    let calendar = directory.calendar_for(&row.owner_id);
    let mut case = SlaCase {
        status: row.status,
        deadlines: match row.deadlines {
            Some(d) => d,
            None => {
                return SlaPlan {
                    deadlines: None,
                    decision: sla::SlaDecision {
                        actions: vec![],
                        reminded: row.reminded.clone(),
                        escalation_level: row.escalation_level,
                        overdue_since: row.overdue_since,
                        next_check: None,
                    },
                    recipients: vec![],
                    timezone: None,
                }
            }
        },
        acknowledged_at: row.acknowledged_at,
        first_contact_at: row.first_contact_at,
        resolved_at: row.resolved_at,
        reminded: row.reminded.clone(),
        escalation_level: row.escalation_level,
        overdue_since: row.overdue_since,
    };
    if let Some(restart) = row.clocks_restart_at {
        // Reopened: the work starts again, and so do the clocks.
        if let Some(fresh) = policy.deadlines(row.severity, calendar, restart) {
            case.deadlines = fresh;
        }
        case.reminded.clear();
        case.escalation_level = 0;
        case.overdue_since = None;
    } else if let (Some(paused), Some(resumed)) = (row.paused_at, row.resumed_at) {
        case.deadlines = case.deadlines.resumed(calendar, paused, resumed);
    }
    let chain = directory.escalation_chain(&row.owner_id);
    let decision = sla::decide(&case, calendar, policy.escalate_every, chain.len(), now);
    let recipients = decision
        .actions
        .iter()
        .map(|action| match *action {
            SlaAction::Escalate { level, .. } if level > 0 => {
                chain.get(usize::from(level) - 1).map_or_else(
                    || row.owner.clone(),
                    |owner| Recipient {
                        name: owner.name.clone(),
                        email: owner.email.clone(),
                        locale: owner.locale.clone(),
                    },
                )
            }
            _ => row.owner.clone(),
        })
        .collect();
    SlaPlan {
        deadlines: Some(case.deadlines),
        decision,
        recipients,
        timezone: Some(calendar.timezone().name().to_owned()),
    }
}
