//! The weekly report: once the week is over in their calendar, every
//! regional manager and director (`closeloop_core::report::gets_report`)
//! gets the week of their scope: the scores against the week before, loop
//! health, the stores most in need of attention and why, and links into
//! the dashboard.
//!
//! Safe with several instances and after downtime: the store's
//! `(owner, week)` row is the claim, taken in the transaction that queues
//! the email; only the last full week is ever due.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use closeloop_core::access::Scope;
use closeloop_core::owners::{Owner, OwnerDirectory};
use closeloop_core::report::{
    attention, gets_report, last_full_week, Reason, ReportWeek, StoreWeek,
};
use closeloop_store::{
    CaseGrouping, LoopFilter, ScoreFilter, ScoreGrouping, ScoreRow, Store, StoreError,
};
use closeloop_wire::{AttentionV1, StoreAttentionV1, WeeklyReportV1};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::reload::ActivePolicy;

/// How often the scheduler looks for reports due (they are due from the
/// week's end; a few minutes late is fine).
const EVERY: Duration = Duration::from_secs(300);
/// Stores named in a report, at most.
const STORES: usize = 3;

pub struct ReportScheduler {
    pub store: Store,
    pub policy: Arc<ActivePolicy>,
    /// Base of the dashboard links.
    pub public_url: String,
    pub wake_dispatcher: Arc<Notify>,
    pub clock: Arc<dyn closeloop_core::clock::Clock>,
}

/// NPS of summed rows, rounded as the store rounds it.
fn nps(rows: &[ScoreRow]) -> Option<f64> {
    let (answers, promoters, detractors) = rows.iter().fold((0, 0, 0), |(a, p, d), r| {
        (a + r.nps_responses, p + r.promoters, d + r.detractors)
    });
    (answers > 0)
        .then(|| (1000.0 * (promoters - detractors) as f64 / answers as f64).round() / 10.0)
}

impl ReportScheduler {
    pub async fn run(&self, cancel: CancellationToken) {
        loop {
            match self.tick(self.clock.now()).await {
                Ok(0) => {}
                Ok(queued) => {
                    info!(reports = queued, "weekly reports queued");
                    self.wake_dispatcher.notify_one();
                }
                Err(error) => warn!(%error, "weekly reports failed; retrying later"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// Queue every report due at `now`; how many this instance queued.
    #[tracing::instrument(name = "weekly_reports", skip_all, fields(%now))]
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let policy = self.policy.current();
        let directory = policy.owners();
        let mut queued = 0;
        for owner in directory.owners().filter(|o| gets_report(directory, o)) {
            let week = last_full_week(directory.calendar_for(&owner.id), now);
            if self
                .store
                .weekly_report_queued(&owner.id, week.start)
                .await?
            {
                continue;
            }
            let report = self.report(directory, owner, &week).await?;
            if self
                .store
                .queue_weekly_report(&owner.id, week.start, &owner.email, report, now)
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }

    async fn report(
        &self,
        directory: &OwnerDirectory,
        owner: &Owner,
        week: &ReportWeek,
    ) -> Result<WeeklyReportV1, StoreError> {
        let scope = Scope::of(directory, &owner.id);
        let before = (week.start - (week.end - week.start), week.start);
        let scores = |from, to| ScoreFilter {
            from,
            to,
            scope: Some(scope.clone()),
            region: None,
            store: None,
        };
        let this_week = scores(week.start, week.end);
        let last_week = scores(before.0, before.1);
        let by_store_now = self
            .store
            .score_table(ScoreGrouping::Store, None, &this_week)
            .await?;
        let by_store_before = self
            .store
            .score_table(ScoreGrouping::Store, None, &last_week)
            .await?;
        let cases = LoopFilter {
            from: week.start,
            to: week.end,
            scope: Some(scope.clone()),
            region: None,
            store: None,
            owner: None,
        };
        let now = self.clock.now();
        let total = self.store.loop_figures(None, &cases, now).await?;
        let per_store = self
            .store
            .loop_figures(Some(CaseGrouping::Store), &cases, now)
            .await?;
        let causes = self
            .store
            .root_causes_of(Some(CaseGrouping::Store), &cases)
            .await?;
        let mut names: Vec<String> = by_store_now
            .iter()
            .filter_map(|r| r.group.clone())
            .chain(per_store.iter().filter_map(|r| r.group.clone()))
            .collect();
        names.sort();
        names.dedup();
        let weeks: Vec<StoreWeek> = names
            .into_iter()
            .map(|store| {
                let of = |rows: &[ScoreRow]| {
                    nps(&rows
                        .iter()
                        .filter(|r| r.group.as_deref() == Some(store.as_str()))
                        .cloned()
                        .collect::<Vec<_>>())
                };
                StoreWeek {
                    overdue: per_store
                        .iter()
                        .find(|r| r.group.as_deref() == Some(store.as_str()))
                        .map_or(0, |r| r.overdue),
                    nps: of(&by_store_now),
                    nps_before: of(&by_store_before),
                    top_cause: causes
                        .iter()
                        .find(|c| c.group.as_deref() == Some(store.as_str()))
                        .map(|c| (c.root_cause.clone(), c.cases)),
                    store,
                }
            })
            .collect();
        let base = self.public_url.trim_end_matches('/');
        let stores = attention(&weeks, STORES)
            .into_iter()
            .map(|(store, reasons)| StoreAttentionV1 {
                url: format!(
                    "{base}/insights?by=store&store={}&period=7d",
                    form_urlencoded::byte_serialize(store.as_bytes()).collect::<String>()
                ),
                store,
                reasons: reasons
                    .into_iter()
                    .map(|r| match r {
                        Reason::Overdue(cases) => AttentionV1::Overdue { cases },
                        Reason::NpsFell { from, to } => AttentionV1::NpsFell { from, to },
                        Reason::RootCause { cause, cases } => {
                            AttentionV1::RootCause { cause, cases }
                        }
                    })
                    .collect(),
            })
            .collect();
        let total = total.into_iter().next();
        Ok(WeeklyReportV1 {
            recipient_name: owner.name.clone(),
            locale: owner.locale.clone(),
            week: week.monday,
            responses: by_store_now.iter().map(|r| r.responses).sum(),
            nps: nps(&by_store_now),
            nps_before: nps(&by_store_before),
            opened: total.as_ref().map_or(0, |t| t.opened),
            resolved: total.as_ref().map_or(0, |t| t.resolved),
            overdue: total.as_ref().map_or(0, |t| t.overdue),
            ack_within_sla: total.as_ref().and_then(|t| t.ack_within_sla),
            resolve_within_sla: total.as_ref().and_then(|t| t.resolve_within_sla),
            stores,
            dashboard_url: format!("{base}/insights?period=7d"),
        })
    }
}
