//! Recording each case's business times (the core's `durations`): on every
//! transition, by its statement (`transition.rs`), and once for the cases stored before the
//! times were recorded. The calendars come from the caller's directory
//! (the store knows none), through [`Store::with_calendars`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use closeloop_core::durations::{self, StageTimes};
use closeloop_core::sla::Calendar;
use closeloop_core::CaseState;
use uuid::Uuid;

use crate::views::{CaseRow, TimesBefore};
use crate::{Result, Store};

/// The business hours an owner's clocks run in, by owner id.
pub type CalendarSource = Arc<dyn Fn(&str) -> Calendar + Send + Sync>;

impl Store {
    /// Read owners' calendars from `calendars` (without it, every owner's
    /// time is wall-clock time).
    pub fn with_calendars(mut self, calendars: CalendarSource) -> Self {
        self.calendars = Some(calendars);
        self
    }

    pub(crate) fn calendar_of(&self, owner_id: &str) -> Calendar {
        match &self.calendars {
            Some(source) => source(owner_id),
            None => Calendar::always_open(),
        }
    }

    /// A case's times after its transition from `before` to `after` at
    /// `now`, from what its row held before (`case`); the transition's
    /// statement writes them.
    pub(crate) fn times_after(
        &self,
        case: &TimesBefore,
        before: &CaseState,
        after: &CaseState,
        now: DateTime<Utc>,
    ) -> StageTimes {
        let calendar = self.calendar_of(&case.owner_id);
        let times = case
            .recorded
            .unwrap_or_else(|| durations::from_instants(&calendar, case.clocks, before));
        durations::after_transition(&calendar, case.clocks, times, before, after, now)
    }

    /// Compute the times of up to `limit` cases stored before times were
    /// recorded, from their instants in their owner's calendar; how many.
    pub async fn record_missing_times(&self, limit: i64) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "SELECT {} FROM cases WHERE NOT times_recorded ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            crate::views::CASE_COLUMNS
        );
        let rows: Vec<CaseRow> = sqlx::query_as(&sql).bind(limit).fetch_all(&mut *tx).await?;
        for row in &rows {
            let before = row.times_before();
            let calendar = self.calendar_of(&before.owner_id);
            let state = row.clone().into_view(self)?.state();
            let times = durations::from_instants(&calendar, before.clocks, &state);
            write_times(&mut tx, row.id, &times).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}

/// A stage's time as stored, in whole seconds.
pub(crate) fn seconds(time: Option<chrono::Duration>) -> Option<i64> {
    time.map(|d| d.num_seconds())
}

async fn write_times(tx: &mut sqlx::PgConnection, id: Uuid, times: &StageTimes) -> Result<()> {
    sqlx::query(
        "UPDATE cases SET waited_seconds = $2, ack_business_seconds = $3,
                contact_business_seconds = $4, resolve_business_seconds = $5, times_recorded = true
         WHERE id = $1",
    )
    .bind(id)
    .bind(times.waited.num_seconds())
    .bind(seconds(times.acknowledge))
    .bind(seconds(times.first_contact))
    .bind(seconds(times.resolve))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
