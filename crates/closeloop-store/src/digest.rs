//! Digests: alert emails of owners on an hourly or daily digest are held in
//! `digest_items` and gathered into one email per owner once due.
//!
//! Building runs in one transaction over rows locked with `FOR UPDATE SKIP
//! LOCKED`, so several instances never build the same digest; and all due
//! items of an owner go into one email, so a service that was down for
//! hours sends one summary, not one per missed period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use closeloop_wire::{DigestV1, OutboxMessage};
use uuid::Uuid;

use crate::outbox_write::OutboxRows;
use crate::views::CaseView;
use crate::{Result, Store};

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
        let mut outbox = OutboxRows::default();
        let mut batches = Vec::with_capacity(count);
        for ((owner_id, recipient, locale), case_ids) in by_owner {
            let cases = self.case_views(&case_ids).await?;
            let message = OutboxMessage::Digest(DigestV1 {
                owner_id,
                locale,
                built_at: now,
                cases: cases.iter().map(CaseView::to_wire).collect(),
            });
            outbox.push(None, &recipient, message);
            batches.push(case_ids);
        }
        let ids = outbox.ids().to_vec();
        outbox.insert(&mut tx, now).await?;
        for (id, case_ids) in ids.into_iter().zip(batches) {
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
