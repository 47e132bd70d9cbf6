//! Digests: alert emails of owners on an hourly or daily digest are held in
//! `digest_items` and gathered into one email per owner once due.
//!
//! Building runs in one transaction over rows locked with `FOR UPDATE SKIP
//! LOCKED`, so several instances never build the same digest; and all due
//! items of an owner go into one email, so a service that was down for
//! hours sends one summary, not one per missed period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cases::CaseView;
use crate::{Result, Store};

/// The outbox payload of a digest email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestPayload {
    #[serde(rename = "type")]
    pub kind: String,
    pub owner_id: String,
    pub locale: String,
    pub built_at: DateTime<Utc>,
    pub cases: Vec<CaseView>,
}

impl Store {
    /// Queue one digest email per owner holding due items. Returns how many
    /// digests were queued.
    pub async fn build_due_digests(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<(Uuid, String, String, String)> = sqlx::query_as(
            "SELECT case_id, owner_id, recipient, locale FROM digest_items
             WHERE outbox_id IS NULL AND due_at <= $1
             ORDER BY owner_id, created_at
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut by_owner: BTreeMap<(String, String, String), Vec<Uuid>> = BTreeMap::new();
        for (case_id, owner, recipient, locale) in due {
            by_owner
                .entry((owner, recipient, locale))
                .or_default()
                .push(case_id);
        }
        let count = by_owner.len();
        for ((owner_id, recipient, locale), case_ids) in by_owner {
            let cases = self.case_views(&case_ids).await?;
            let payload = DigestPayload {
                kind: "digest".into(),
                owner_id,
                locale,
                built_at: now,
                cases,
            };
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO outbox (id, case_id, channel, event_type, recipient, payload, next_attempt_at, created_at)
                 VALUES ($1, NULL, 'email', 'digest', $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(&recipient)
            .bind(serde_json::to_value(&payload).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE digest_items SET outbox_id = $1 WHERE case_id = ANY($2)")
                .bind(id)
                .bind(&case_ids)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(count)
    }
}
