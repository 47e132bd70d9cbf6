//! Weekly reports: one per person and week. The row `(owner, week)` is
//! the claim: whichever instance inserts it queues the email, in the same
//! transaction; the others find it there and send nothing.

use chrono::{DateTime, Utc};
use closeloop_wire::{OutboxMessage, WeeklyReportV1};

use crate::outbox_write::OutboxRows;
use crate::{Result, Store};

impl Store {
    /// Whether the report of `owner_id` for the week starting at
    /// `week_start` is already queued (a cheap look before building one).
    pub async fn weekly_report_queued(
        &self,
        owner_id: &str,
        week_start: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM weekly_reports WHERE owner_id = $1 AND week_start = $2)",
        )
        .bind(owner_id)
        .bind(week_start)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Claim the week's report and queue its email to `recipient`, in one
    /// transaction; `false` when another instance queued it first.
    pub async fn queue_weekly_report(
        &self,
        owner_id: &str,
        week_start: DateTime<Utc>,
        recipient: &str,
        report: WeeklyReportV1,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO weekly_reports (owner_id, week_start, queued_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(owner_id)
        .bind(week_start)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(false);
        }
        let mut rows = OutboxRows::default();
        rows.push(None, recipient, OutboxMessage::WeeklyReport(report));
        rows.insert(&mut tx, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
