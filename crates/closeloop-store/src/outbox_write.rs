//! Outbox rows gathered in a transaction and inserted in one statement.

use chrono::{DateTime, Utc};
use closeloop_core::Channel;
use closeloop_wire::{OutboxMessage, WebhookBody, OUTBOX_VERSION};
use uuid::Uuid;

use crate::Result;

/// Outbox rows gathered for one bulk insert.
#[derive(Default)]
pub(crate) struct OutboxRows {
    ids: Vec<Uuid>,
    case_ids: Vec<Option<Uuid>>,
    channels: Vec<String>,
    event_types: Vec<String>,
    recipients: Vec<String>,
    payloads: Vec<serde_json::Value>,
}

impl OutboxRows {
    /// Queue `message` to `recipient` (an email address or a webhook URL).
    /// `case_id` is `None` for a digest, which spans several cases.
    pub(crate) fn push(&mut self, case_id: Option<Uuid>, recipient: &str, message: OutboxMessage) {
        // v7: time-ordered, so ids sort roughly by creation, and unique
        // across instances without coordination.
        self.ids.push(Uuid::now_v7());
        self.case_ids.push(case_id);
        self.channels.push(message.channel().as_str().to_owned());
        self.event_types.push(message.event_type().to_owned());
        self.recipients.push(recipient.to_owned());
        self.payloads.push(message.payload());
    }

    /// Queue a case email (`Channel::Email`) or webhook about `body`.
    pub(crate) fn push_case(&mut self, channel: Channel, recipient: &str, body: WebhookBody) {
        let case_id = Some(body.data.id);
        let message = match channel {
            Channel::Email => OutboxMessage::CaseEmail(body),
            Channel::Webhook => OutboxMessage::CaseWebhook(body),
        };
        self.push(case_id, recipient, message);
    }

    /// The ids queued so far, in order.
    pub(crate) fn ids(&self) -> &[Uuid] {
        &self.ids
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) async fn insert(
        self,
        tx: &mut sqlx::PgConnection,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        if self.ids.is_empty() {
            return Ok(0);
        }
        let count = self.ids.len();
        // ORDER BY ordinality keeps seq in push order, which is the
        // per-case delivery order.
        sqlx::query(
            "INSERT INTO outbox (id, case_id, channel, event_type, recipient, payload, next_attempt_at, created_at,
                                 payload_version)
             SELECT u.id, u.case_id, u.channel, u.event_type, u.recipient, u.payload, $7, $7, $8
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
                  WITH ORDINALITY AS u(id, case_id, channel, event_type, recipient, payload, n)
             ORDER BY u.n",
        )
        .bind(self.ids)
        .bind(self.case_ids)
        .bind(self.channels)
        .bind(self.event_types)
        .bind(self.recipients)
        .bind(self.payloads)
        .bind(now)
        .bind(OUTBOX_VERSION)
        .execute(tx)
        .await?;
        Ok(count)
    }
}
