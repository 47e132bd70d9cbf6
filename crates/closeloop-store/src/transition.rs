//! Writing a core transition of a case: its new state, its history line,
//! the clocks, and what it tells people (owner email, webhook, watchers).
//! The same code writes an owner's command and the intake's reopening, so
//! both record and notify alike.

use chrono::{DateTime, Utc};
use closeloop_core::{
    CaseEventType, Channel, Command, Effect, FeedbackEvent, Owner, Status, Transition,
};
use closeloop_wire::Notice;

use crate::history;
use crate::outbox_write::OutboxRows;
use crate::times::seconds;
use crate::views::{webhook_body, CaseRow, CaseView};
use crate::{Result, Store, StoreError};

/// A transition the core accepted, with what writing it needs.
pub(crate) struct Applied<'a> {
    pub command: &'a Command,
    pub transition: &'a Transition,
    pub actor: &'a str,
    /// For a reassignment: the new owner, from the directory.
    pub new_owner: Option<&'a Owner>,
    /// The answer the notifications show, when it is not the case's first
    /// (a reopening shows the new answer).
    pub shown_event: Option<&'a FeedbackEvent>,
}

/// Where the case's owner is told.
struct Contact {
    email: String,
    webhook_url: Option<String>,
}

impl Store {
    /// Write `applied` on the locked case `row`, queueing its notifications
    /// in `outbox`.
    pub(crate) async fn write_transition(
        &self,
        tx: &mut sqlx::PgConnection,
        row: CaseRow,
        applied: &Applied<'_>,
        now: DateTime<Utc>,
        outbox: &mut OutboxRows,
    ) -> Result<CaseView> {
        let mut contact = Contact {
            email: row.owner_email.clone(),
            webhook_url: row.owner_webhook_url.clone(),
        };
        let times_before = row.times_before();
        let mut view = row.into_view(self)?;
        let before = view.state();
        let next = &applied.transition.state;
        let resolved_by = match next.status {
            Status::Resolved => Some(applied.actor.to_owned()),
            Status::Closed => view.resolved_by.clone(),
            _ => None,
        };
        let times = self.times_after(&times_before, &before, next, now);
        sqlx::query(
            "UPDATE cases SET status = $2, version = $3, updated_at = $4, acknowledged_at = $5,
                    first_contact_at = $6, resolved_at = $7, closed_at = $8, root_cause = $9,
                    contact_attempts = $10, resolved_by = $11, waited_seconds = $12,
                    ack_business_seconds = $13, contact_business_seconds = $14,
                    resolve_business_seconds = $15, times_recorded = true
             WHERE id = $1",
        )
        .bind(view.id)
        .bind(next.status.as_str())
        .bind(next.version)
        .bind(now)
        .bind(next.acknowledged_at)
        .bind(next.first_contact_at)
        .bind(next.resolved_at)
        .bind(next.closed_at)
        .bind(&next.root_cause)
        .bind(next.contact_attempts)
        .bind(&resolved_by)
        .bind(times.waited.num_seconds())
        .bind(seconds(times.acknowledge))
        .bind(seconds(times.first_contact))
        .bind(seconds(times.resolve))
        .execute(&mut *tx)
        .await?;
        history::append(tx, &[(view.id, &applied.transition.entry)]).await?;
        view.status = next.status;
        view.version = next.version;
        view.updated_at = now;
        view.acknowledged_at = next.acknowledged_at;
        view.first_contact_at = next.first_contact_at;
        view.resolved_at = next.resolved_at;
        view.closed_at = next.closed_at;
        view.root_cause = next.root_cause.clone();
        view.contact_attempts = next.contact_attempts;
        view.resolved_by = resolved_by;
        for effect in &applied.transition.effects {
            if let Effect::ChangeOwner(owner_id) = effect {
                let owner = applied
                    .new_owner
                    .filter(|o| &o.id == owner_id)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "reassignment to {owner_id} without its directory entry"
                        ))
                    })?;
                contact = self.change_owner(tx, &mut view, owner, now, outbox).await?;
            }
        }
        self.track_clocks(tx, view.id, applied.command, applied.transition, now)
            .await?;
        if let Some(event) = applied.shown_event {
            view.event = event.clone();
        }
        self.queue_effects(tx, &view, &contact, applied, now, outbox)
            .await?;
        Ok(view)
    }

    /// The case is now `owner`'s, who learns of it as its first owner did.
    async fn change_owner(
        &self,
        tx: &mut sqlx::PgConnection,
        view: &mut CaseView,
        owner: &Owner,
        now: DateTime<Utc>,
        outbox: &mut OutboxRows,
    ) -> Result<Contact> {
        sqlx::query(
            "UPDATE cases SET owner_id = $2, owner_name = $3, owner_email = $4, owner_webhook_url = $5, owner_locale = $6
             WHERE id = $1",
        )
        .bind(view.id)
        .bind(&owner.id)
        .bind(&owner.name)
        .bind(&owner.email)
        .bind(&owner.webhook_url)
        .bind(&owner.locale)
        .execute(&mut *tx)
        .await?;
        view.owner_id = owner.id.clone();
        view.owner_name = owner.name.clone();
        view.owner_locale = owner.locale.clone();
        let body = webhook_body(CaseEventType::Updated, view, now);
        outbox.push_case(Channel::Email, &owner.email, body);
        Ok(Contact {
            email: owner.email.clone(),
            webhook_url: owner.webhook_url.clone(),
        })
    }

    /// The owner's email, the watchers' notices and the owner's webhook
    /// that the transition's effects call for, in that order.
    async fn queue_effects(
        &self,
        tx: &mut sqlx::PgConnection,
        view: &CaseView,
        contact: &Contact,
        applied: &Applied<'_>,
        now: DateTime<Utc>,
        outbox: &mut OutboxRows,
    ) -> Result<()> {
        let effects = &applied.transition.effects;
        for effect in effects {
            if let Effect::EmailOwner(event_type) = effect {
                let body = webhook_body(*event_type, view, now);
                outbox.push_case(Channel::Email, &contact.email, body);
            }
        }
        for effect in effects {
            let notice = match effect {
                Effect::NotifyWebhook(CaseEventType::Acknowledged) => Notice::Acknowledged,
                Effect::NotifyWebhook(CaseEventType::Resolved) => Notice::Resolved,
                _ => continue,
            };
            self.tell_watchers(tx, outbox, view, notice, applied.actor, now)
                .await?;
        }
        let Some(url) = &contact.webhook_url else {
            return Ok(());
        };
        for effect in effects {
            if let Effect::NotifyWebhook(event_type) = effect {
                let body = webhook_body(*event_type, view, now);
                outbox.push_case(Channel::Webhook, url, body);
            }
        }
        Ok(())
    }
}
