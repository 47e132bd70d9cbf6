//! The outbox as a work queue for dispatchers.
//!
//! Claiming marks rows with a lease and commits before any network I/O, so
//! a crashed dispatcher's rows come back when the lease expires, and several
//! dispatchers share the queue through `FOR UPDATE SKIP LOCKED` without
//! sending a row twice at once. A row is only claimable when no earlier row
//! of the same case and channel is still pending: per-case order is kept.

use chrono::{DateTime, Utc};
use closeloop_wire::{OutboxMessage, WireError};
use uuid::Uuid;

use crate::{Result, Store};

/// A notification claimed for sending.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    /// Stable across retries: the receiver's idempotency key.
    pub id: Uuid,
    /// `None` for a digest, which spans several cases.
    pub case_id: Option<Uuid>,
    pub channel: String,
    pub event_type: String,
    pub recipient: String,
    pub payload: serde_json::Value,
    /// The format of `payload` (`closeloop_wire::OUTBOX_VERSION` when written).
    pub payload_version: i16,
    /// The number of this attempt, from 1.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

impl Delivery {
    /// The message, read back through its version.
    pub fn message(&self) -> std::result::Result<OutboxMessage, WireError> {
        OutboxMessage::decode(
            self.payload_version,
            &self.channel,
            &self.event_type,
            self.payload.clone(),
        )
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    Sent {
        detail: String,
    },
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Give up: permanent failure or retries exhausted. Kept, never deleted.
    Dead {
        error: String,
    },
}

impl Store {
    /// Claim up to `limit` due deliveries until `lease_until`.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let rows = sqlx::query_as(
            "WITH due AS (
                 SELECT o.id FROM outbox o
                 WHERE o.status = 'pending'
                   AND o.next_attempt_at <= $1
                   AND (o.locked_until IS NULL OR o.locked_until <= $1)
                   AND NOT EXISTS (
                       SELECT 1 FROM outbox earlier
                       WHERE earlier.case_id = o.case_id AND earlier.channel = o.channel
                         AND earlier.status = 'pending' AND earlier.seq < o.seq)
                 ORDER BY o.next_attempt_at, o.seq
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             UPDATE outbox SET locked_until = $2, attempts = outbox.attempts + 1
             FROM due WHERE outbox.id = due.id
             RETURNING outbox.id, outbox.case_id, outbox.channel, outbox.event_type, outbox.recipient,
                       outbox.payload, outbox.payload_version, outbox.attempts, outbox.created_at",
        )
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Record how attempt `attempt` of delivery `id` ended.
    pub async fn record_attempt(
        &self,
        id: Uuid,
        attempt: i32,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.record_attempts(&[(id, attempt, result.clone())], now)
            .await
    }

    /// Record how a round of attempts ended, in one transaction: one commit
    /// for the round instead of one per delivery.
    pub async fn record_attempts(
        &self,
        results: &[(Uuid, i32, DeliveryResult)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let mut sent = Vec::new();
        let (mut retry_ids, mut retry_at, mut retry_errors) = (Vec::new(), Vec::new(), Vec::new());
        let (mut dead_ids, mut dead_errors) = (Vec::new(), Vec::new());
        let (mut ids, mut attempts, mut outcomes, mut details) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, attempt, result) in results {
            let (outcome, detail) = match result {
                DeliveryResult::Sent { detail } => {
                    sent.push(*id);
                    ("sent", detail)
                }
                DeliveryResult::Retry { at, error } => {
                    retry_ids.push(*id);
                    retry_at.push(*at);
                    retry_errors.push(error.clone());
                    ("retry", error)
                }
                DeliveryResult::Dead { error } => {
                    dead_ids.push(*id);
                    dead_errors.push(error.clone());
                    ("dead", error)
                }
            };
            ids.push(*id);
            attempts.push(*attempt);
            outcomes.push(outcome);
            details.push(detail.clone());
        }
        let mut tx = self.pool.begin().await?;
        if !sent.is_empty() {
            sqlx::query("UPDATE outbox SET status = 'sent', sent_at = $2, locked_until = NULL, last_error = NULL WHERE id = ANY($1)")
                .bind(&sent)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        if !retry_ids.is_empty() {
            sqlx::query(
                "UPDATE outbox o SET next_attempt_at = u.at, locked_until = NULL, last_error = u.error
                 FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[]) AS u(id, at, error)
                 WHERE o.id = u.id AND o.status = 'pending'",
            )
            .bind(&retry_ids)
            .bind(&retry_at)
            .bind(&retry_errors)
            .execute(&mut *tx)
            .await?;
        }
        if !dead_ids.is_empty() {
            sqlx::query(
                "UPDATE outbox o SET status = 'dead', locked_until = NULL, last_error = u.error
                 FROM UNNEST($1::uuid[], $2::text[]) AS u(id, error) WHERE o.id = u.id",
            )
            .bind(&dead_ids)
            .bind(&dead_errors)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO delivery_attempts (outbox_id, attempt, at, outcome, detail)
             SELECT u.id, u.attempt, $3, u.outcome, u.detail
             FROM UNNEST($1::uuid[], $2::int4[], $4::text[], $5::text[]) AS u(id, attempt, outcome, detail)",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(now)
        .bind(&outcomes)
        .bind(&details)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deliveries per status (`pending`, `sent`, `dead`), for metrics and tests.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// Which deliveries to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelector {
    /// These delivery ids.
    Ids(Vec<Uuid>),
    /// Every dead delivery of one case.
    Case(Uuid),
    /// Every dead delivery created in `[from, to)`.
    CreatedBetween(DateTime<Utc>, DateTime<Utc>),
}

/// A delivery as listed by the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct DeliverySummary {
    pub id: Uuid,
    pub case_id: Option<Uuid>,
    pub channel: String,
    pub event_type: String,
    pub recipient: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AttemptView {
    pub outbox_id: Uuid,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub detail: Option<String>,
}

impl Store {
    /// Deliveries with `status` (any when `None`), newest first.
    pub async fn list_deliveries(
        &self,
        status: Option<&str>,
        case_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<DeliverySummary>> {
        Ok(sqlx::query_as(
            "SELECT id, case_id, channel, event_type, recipient, status, attempts, last_error, created_at, next_attempt_at, sent_at
             FROM outbox WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR case_id = $2)
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(status)
        .bind(case_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Put dead deliveries back in the queue, due at `now`, with a fresh
    /// retry schedule. Their past attempts stay recorded. Returns the ids
    /// replayed; deliveries that are not dead are left alone.
    pub async fn replay_dead(
        &self,
        selector: &ReplaySelector,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>> {
        let (ids, case_id, from, to) = match selector {
            ReplaySelector::Ids(ids) => (Some(ids.clone()), None, None, None),
            ReplaySelector::Case(case) => (None, Some(*case), None, None),
            ReplaySelector::CreatedBetween(from, to) => (None, None, Some(*from), Some(*to)),
        };
        Ok(sqlx::query_scalar(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $5, locked_until = NULL
             WHERE status = 'dead'
               AND ($1::uuid[] IS NULL OR id = ANY($1))
               AND ($2::uuid IS NULL OR case_id = $2)
               AND ($3::timestamptz IS NULL OR created_at >= $3)
               AND ($4::timestamptz IS NULL OR created_at < $4)
             RETURNING id",
        )
        .bind(ids)
        .bind(case_id)
        .bind(from)
        .bind(to)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every recorded attempt of a case's deliveries, in order.
    pub async fn attempts_of_case(&self, case_id: Uuid) -> Result<Vec<AttemptView>> {
        Ok(sqlx::query_as(
            "SELECT a.outbox_id, a.attempt, a.at, a.outcome, a.detail
             FROM delivery_attempts a JOIN outbox o ON o.id = a.outbox_id
             WHERE o.case_id = $1 ORDER BY a.id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A webhook endpoint taken out of service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct DisabledEndpoint {
    pub url: String,
    pub disabled_at: DateTime<Utc>,
    pub reason: String,
}

impl Store {
    /// Stop sending to `url` (it answered 410 Gone).
    pub async fn disable_endpoint(
        &self,
        url: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO disabled_endpoints (url, disabled_at, reason) VALUES ($1, $2, $3) ON CONFLICT (url) DO NOTHING")
            .bind(url)
            .bind(now)
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `url` is disabled, and since when and why.
    pub async fn disabled_endpoint(&self, url: &str) -> Result<Option<DisabledEndpoint>> {
        Ok(
            sqlx::query_as(
                "SELECT url, disabled_at, reason FROM disabled_endpoints WHERE url = $1",
            )
            .bind(url)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    pub async fn disabled_endpoints(&self) -> Result<Vec<DisabledEndpoint>> {
        Ok(sqlx::query_as(
            "SELECT url, disabled_at, reason FROM disabled_endpoints ORDER BY disabled_at",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Re-enable `url`. Returns whether it was disabled.
    pub async fn enable_endpoint(&self, url: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM disabled_endpoints WHERE url = $1")
            .bind(url)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Give a claimed delivery back without counting an attempt: its
    /// endpoint's circuit breaker is open until `until`.
    pub async fn defer(&self, id: Uuid, until: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = greatest(attempts - 1, 0), next_attempt_at = $2, locked_until = NULL
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The outbox at a glance, for the service's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OutboxHealth {
    pub pending: i64,
    pub dead: i64,
    /// Seconds since the oldest pending row was queued (0 when none).
    pub oldest_pending_age_seconds: f64,
}

impl Store {
    /// Pending and dead rows and the age of the oldest pending one, in one
    /// statement (the partial index of pending rows keeps it cheap).
    pub async fn outbox_health(&self, now: chrono::DateTime<chrono::Utc>) -> Result<OutboxHealth> {
        let (pending, dead, age): (i64, i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'pending'),
                    count(*) FILTER (WHERE status = 'dead'),
                    extract(epoch FROM $1 - min(created_at) FILTER (WHERE status = 'pending'))::float8
             FROM outbox WHERE status IN ('pending', 'dead')",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxHealth {
            pending,
            dead,
            oldest_pending_age_seconds: age.unwrap_or(0.0).max(0.0),
        })
    }
}
