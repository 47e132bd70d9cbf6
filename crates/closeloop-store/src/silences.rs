//! Silences: stored mute periods. What a matcher means is the core's
//! business (a CEL condition); here they are only kept and listed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store};

/// A silence as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SilenceView {
    pub id: Uuid,
    /// A CEL condition over the event, as in rules.
    pub matcher: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub expired_at: Option<DateTime<Utc>>,
    /// Alerts it muted so far.
    pub silenced: i64,
}

impl SilenceView {
    /// `pending`, `active` or `expired` at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if self.expired_at.is_some() || self.ends_at <= now {
            "expired"
        } else if self.starts_at > now {
            "pending"
        } else {
            "active"
        }
    }
}

const COLUMNS: &str =
    "s.id, s.matcher, s.starts_at, s.ends_at, s.created_by, s.reason, s.created_at, s.expired_at,
    (SELECT count(*) FROM silenced_alerts a WHERE a.silence_id = s.id) AS silenced";

impl Store {
    pub async fn create_silence(
        &self,
        matcher: &str,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        created_by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<SilenceView> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO silences (id, matcher, starts_at, ends_at, created_by, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(matcher)
        .bind(starts_at)
        .bind(ends_at)
        .bind(created_by)
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.silence(id)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt(format!("silence {id} vanished")))
    }

    pub async fn silence(&self, id: Uuid) -> Result<Option<SilenceView>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM silences s WHERE s.id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every silence, newest first (expired ones stay visible).
    pub async fn silences(&self) -> Result<Vec<SilenceView>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM silences s ORDER BY s.created_at DESC"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Silences in force at `now`.
    pub async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<SilenceView>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM silences s
             WHERE s.expired_at IS NULL AND s.starts_at <= $1 AND s.ends_at > $1
             ORDER BY s.created_at"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// End a silence now. Returns it, or `None` if unknown.
    pub async fn expire_silence(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<SilenceView>> {
        sqlx::query("UPDATE silences SET expired_at = $2 WHERE id = $1 AND expired_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.silence(id).await
    }
}
