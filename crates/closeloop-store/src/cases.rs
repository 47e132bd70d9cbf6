//! Reading cases and applying owner commands to them.
//!
//! A command runs in one transaction: the case row is locked, the core's
//! state machine decides, and the new state, its history entry and any
//! webhook for the owner commit together.

use chrono::{DateTime, Utc};
use closeloop_core::sla::Deadlines;
use closeloop_core::{
    CaseEventType, CaseState, Command, Effect, FeedbackEvent, Owner, Severity, Status,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::intake::OutboxRows;
use crate::sla::Notice;
use crate::{Result, Store, StoreError};

/// A case as the API and webhooks show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseView {
    pub id: Uuid,
    /// The case's page, for people.
    pub url: String,
    pub version: i32,
    pub status: Status,
    pub severity: Severity,
    pub owner_id: String,
    pub owner_name: String,
    /// BCP 47 tag choosing the language of notifications.
    pub owner_locale: String,
    /// How the owner was found: rule, store, region or default.
    pub route: String,
    pub rule_ids: Vec<String>,
    pub channels: Vec<String>,
    pub event_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub root_cause: Option<String>,
    pub contact_attempts: i32,
    /// The triggering event, with the customer's contact details.
    pub event: FeedbackEvent,
    /// The SLA clocks; absent when the case's severity has no targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<CaseSla>,
    /// When a later promoter response from the same customer closed the
    /// recovery loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<DateTime<Utc>>,
}

/// Where a case stands against its SLA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSla {
    pub deadlines: Deadlines,
    /// 0: not escalated; 1: the owner's manager was told; and so on.
    pub escalation_level: i16,
    /// Flagged: since when a deadline is missed.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The clocks are paused (waiting on the customer) since then.
    pub paused_at: Option<DateTime<Utc>>,
}

/// One history line as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct HistoryView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub note: Option<String>,
    pub details: serde_json::Value,
}

/// One notification of a case and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DeliveryView {
    pub id: Uuid,
    pub channel: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
}

/// A case with its full history and deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseView,
    pub history: Vec<HistoryView>,
    pub deliveries: Vec<DeliveryView>,
    /// Told of acknowledgement and resolution: escalation levels and subscribers.
    pub watchers: Vec<crate::sla::WatcherView>,
}

/// The checks of a one-click link: the case version it was issued for, its
/// single-use nonce, and the action (recorded with the nonce).
#[derive(Debug, Clone, Copy)]
pub struct LinkUse<'a> {
    pub version: i32,
    pub nonce: &'a str,
    pub action: &'a str,
}

/// What a command may need besides the case.
struct ApplyContext<'a> {
    root_causes: &'a [String],
    link: Option<LinkUse<'a>>,
    /// For a reassignment: the new owner, from the directory.
    new_owner: Option<&'a Owner>,
}

/// Filters for listing cases; all optional.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<Status>,
    pub owner_id: Option<String>,
    pub store_id: Option<String>,
    pub limit: i64,
    pub offset: i64,
    /// A manager's scope: only cases it covers.
    pub scope: Option<closeloop_core::access::Scope>,
}

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: Uuid,
    version: i32,
    status: String,
    severity: String,
    owner_id: String,
    owner_name: String,
    owner_locale: String,
    owner_webhook_url: Option<String>,
    route: String,
    rule_ids: Vec<String>,
    channels: Vec<String>,
    event_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    first_contact_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    root_cause: Option<String>,
    contact_attempts: i32,
    event: serde_json::Value,
    deadlines: Option<serde_json::Value>,
    escalation_level: i16,
    overdue_since: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    recovered_at: Option<DateTime<Utc>>,
}

const CASE_COLUMNS: &str = "id, version, status, severity, owner_id, owner_name, owner_locale, owner_webhook_url, route, rule_ids,
    channels, event_id, created_at, updated_at, acknowledged_at, first_contact_at, resolved_at, closed_at,
    resolved_by, root_cause, contact_attempts, event, deadlines, escalation_level, overdue_since, paused_at, recovered_at";

impl CaseRow {
    fn into_view(self, store: &Store) -> Result<CaseView> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("case {}: {what}", self.id));
        let sla = match &self.deadlines {
            None => None,
            Some(value) => Some(CaseSla {
                deadlines: serde_json::from_value(value.clone())
                    .map_err(|e| corrupt(&format!("deadlines: {e}")))?,
                escalation_level: self.escalation_level,
                overdue_since: self.overdue_since,
                paused_at: self.paused_at,
            }),
        };
        Ok(CaseView {
            sla,
            recovered_at: self.recovered_at,
            url: store.case_url(self.id),
            status: Status::parse(&self.status).ok_or_else(|| corrupt("unknown status"))?,
            severity: Severity::parse(&self.severity).ok_or_else(|| corrupt("unknown severity"))?,
            event: serde_json::from_value(self.event.clone())
                .map_err(|e| corrupt(&e.to_string()))?,
            id: self.id,
            version: self.version,
            owner_id: self.owner_id,
            owner_name: self.owner_name,
            owner_locale: self.owner_locale,
            route: self.route,
            rule_ids: self.rule_ids,
            channels: self.channels,
            event_id: self.event_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            acknowledged_at: self.acknowledged_at,
            first_contact_at: self.first_contact_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            resolved_by: self.resolved_by,
            root_cause: self.root_cause,
            contact_attempts: self.contact_attempts,
        })
    }
}

impl CaseView {
    fn state(&self) -> CaseState {
        CaseState {
            status: self.status,
            version: self.version,
            acknowledged_at: self.acknowledged_at,
            first_contact_at: self.first_contact_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            root_cause: self.root_cause.clone(),
            contact_attempts: self.contact_attempts,
        }
    }
}

/// The webhook body announcing `event_type` for a case (Standard Webhooks
/// shape: `type`, `timestamp`, `data`). Frozen in the outbox, so every retry
/// sends the same bytes.
pub(crate) fn webhook_body(
    event_type: CaseEventType,
    case: &CaseView,
    now: DateTime<Utc>,
) -> serde_json::Value {
    serde_json::json!({
        "type": event_type.as_str(),
        "timestamp": now,
        "data": case,
    })
}

impl Store {
    /// Cases matching `filter`, newest first.
    pub async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseView>> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases
             WHERE ($1::text IS NULL OR status = $1)
               AND ($2::text IS NULL OR owner_id = $2)
               AND ($3::text IS NULL OR store_id = $3)
               AND ($6::text[] IS NULL OR owner_id = ANY($6) OR store_id = ANY($7) OR region = ANY($8))
             ORDER BY created_at DESC, id DESC
             LIMIT $4 OFFSET $5"
        );
        let scope = filter.scope.as_ref();
        let set =
            |pick: fn(&closeloop_core::access::Scope) -> &std::collections::BTreeSet<String>| {
                scope.map(|s| pick(s).iter().cloned().collect::<Vec<String>>())
            };
        let rows: Vec<CaseRow> = sqlx::query_as(&sql)
            .bind(filter.status.map(Status::as_str))
            .bind(&filter.owner_id)
            .bind(&filter.store_id)
            .bind(filter.limit)
            .bind(filter.offset)
            .bind(set(|s| &s.owners))
            .bind(set(|s| &s.stores).unwrap_or_default())
            .bind(set(|s| &s.regions).unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|r| r.into_view(self)).collect()
    }

    /// Several cases by id, oldest first.
    pub async fn case_views(&self, ids: &[Uuid]) -> Result<Vec<CaseView>> {
        self.case_views_in(&self.pool, ids).await
    }

    /// Several cases by id, oldest first, read with `executor` (a
    /// transaction sees its own changes).
    pub(crate) async fn case_views_in<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        ids: &[Uuid],
    ) -> Result<Vec<CaseView>> {
        let sql =
            format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ANY($1) ORDER BY created_at, id");
        let rows: Vec<CaseRow> = sqlx::query_as(&sql).bind(ids).fetch_all(executor).await?;
        rows.into_iter().map(|r| r.into_view(self)).collect()
    }

    /// One case with its history and deliveries.
    pub async fn case_detail(&self, id: Uuid) -> Result<CaseDetail> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1");
        let row: CaseRow = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::CaseNotFound(id))?;
        let history = sqlx::query_as(
            "SELECT at, actor, action, from_status, to_status, note, details
             FROM case_history WHERE case_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let deliveries = sqlx::query_as(
            "SELECT id, channel, event_type, status, attempts, last_error, created_at, sent_at, next_attempt_at
             FROM outbox WHERE case_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(CaseDetail {
            case: row.into_view(self)?,
            history,
            deliveries,
            watchers: self.watchers(id).await?,
        })
    }

    /// Apply an owner's command to a case. A refusal from the state machine
    /// is returned as [`StoreError::Transition`] and changes nothing.
    pub async fn apply_command(
        &self,
        id: Uuid,
        command: &Command,
        actor: &str,
        now: DateTime<Utc>,
        root_causes: &[String],
    ) -> Result<CaseDetail> {
        self.apply_checked(
            id,
            command,
            actor,
            now,
            ApplyContext {
                root_causes,
                link: None,
                new_owner: None,
            },
        )
        .await
    }

    /// Apply the command of a one-click link: only if the case is still at
    /// `version` and the link's `nonce` was never used, recorded in the same
    /// transaction so a link works once.
    pub async fn apply_link(
        &self,
        id: Uuid,
        command: &Command,
        actor: &str,
        now: DateTime<Utc>,
        root_causes: &[String],
        link: LinkUse<'_>,
    ) -> Result<CaseDetail> {
        self.apply_checked(
            id,
            command,
            actor,
            now,
            ApplyContext {
                root_causes,
                link: Some(link),
                new_owner: None,
            },
        )
        .await
    }

    /// Give an active case to `owner` (found in the directory by the caller),
    /// with a reason; the new owner gets the alert email and, with a webhook
    /// endpoint, the case.updated webhook.
    pub async fn reassign(
        &self,
        id: Uuid,
        owner: &Owner,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CaseDetail> {
        let command = Command::Reassign {
            owner_id: owner.id.clone(),
            reason: reason.to_owned(),
        };
        self.apply_checked(
            id,
            &command,
            actor,
            now,
            ApplyContext {
                root_causes: &[],
                link: None,
                new_owner: Some(owner),
            },
        )
        .await
    }

    async fn apply_checked(
        &self,
        id: Uuid,
        command: &Command,
        actor: &str,
        now: DateTime<Utc>,
        ctx: ApplyContext<'_>,
    ) -> Result<CaseDetail> {
        let root_causes = ctx.root_causes;
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1 FOR UPDATE");
        let row: CaseRow = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::CaseNotFound(id))?;
        if let Some(LinkUse {
            version,
            nonce,
            action,
        }) = ctx.link
        {
            // The case row is locked: two clicks of one link serialize here.
            let used: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM used_links WHERE nonce = $1)")
                    .bind(nonce)
                    .fetch_one(&mut *tx)
                    .await?;
            if used {
                return Err(StoreError::LinkUsed);
            }
            if row.version != version {
                return Err(StoreError::StaleVersion {
                    expected: version,
                    actual: row.version,
                });
            }
            let fresh = sqlx::query("INSERT INTO used_links (nonce, case_id, action, used_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(nonce)
                .bind(id)
                .bind(action)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if fresh.rows_affected() == 0 {
                return Err(StoreError::LinkUsed);
            }
        }
        let webhook_url = row.owner_webhook_url.clone();
        let mut view = row.into_view(self)?;
        let transition = view.state().apply(command, actor, now, root_causes)?;
        let next = &transition.state;
        let resolved_by = match next.status {
            Status::Resolved => Some(actor.to_owned()),
            Status::Closed => view.resolved_by.clone(),
            _ => None,
        };
        sqlx::query(
            "UPDATE cases SET status = $2, version = $3, updated_at = $4, acknowledged_at = $5,
                    first_contact_at = $6, resolved_at = $7, closed_at = $8, root_cause = $9,
                    contact_attempts = $10, resolved_by = $11
             WHERE id = $1",
        )
        .bind(id)
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
        .execute(&mut *tx)
        .await?;
        let entry = &transition.entry;
        sqlx::query(
            "INSERT INTO case_history (case_id, at, actor, action, from_status, to_status, note, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(entry.from_status.map(Status::as_str))
        .bind(entry.to_status.as_str())
        .bind(&entry.note)
        .bind(&entry.details)
        .execute(&mut *tx)
        .await?;

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
        let mut webhook_url = webhook_url;
        let mut outbox = OutboxRows::default();
        for effect in &transition.effects {
            let Effect::ChangeOwner(owner_id) = effect else {
                continue;
            };
            let owner = ctx.new_owner.filter(|o| &o.id == owner_id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "reassignment to {owner_id} without its directory entry"
                ))
            })?;
            sqlx::query(
                "UPDATE cases SET owner_id = $2, owner_name = $3, owner_email = $4, owner_webhook_url = $5, owner_locale = $6
                 WHERE id = $1",
            )
            .bind(id)
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
            webhook_url = owner.webhook_url.clone();
            // The new owner learns of the case as its first owner did.
            outbox.push(
                id,
                "email",
                CaseEventType::Updated,
                &owner.email,
                webhook_body(CaseEventType::Updated, &view, now),
            );
        }
        self.track_clocks(&mut tx, id, command, &transition, now)
            .await?;
        for effect in &transition.effects {
            let notice = match effect {
                Effect::NotifyWebhook(CaseEventType::Acknowledged) => Notice::Acknowledged,
                Effect::NotifyWebhook(CaseEventType::Resolved) => Notice::Resolved,
                _ => continue,
            };
            self.tell_watchers(&mut tx, &mut outbox, &view, notice, actor, now)
                .await?;
        }
        if let Some(url) = &webhook_url {
            for effect in &transition.effects {
                let Effect::NotifyWebhook(event_type) = effect else {
                    continue;
                };
                outbox.push(
                    id,
                    "webhook",
                    *event_type,
                    url,
                    webhook_body(*event_type, &view, now),
                );
            }
        }
        outbox.insert(&mut tx, now).await?;
        tx.commit().await?;
        self.case_detail(id).await
    }
}
