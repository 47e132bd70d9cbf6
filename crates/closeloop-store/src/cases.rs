//! Reading cases and applying owner commands to them.
//!
//! A command runs in one transaction: the case row is locked, the core's
//! state machine decides, and the new state, its history entry and any
//! webhook for the owner commit together.

use chrono::{DateTime, Utc};
use closeloop_core::{Command, Owner, Status};
use uuid::Uuid;

use crate::outbox_write::OutboxRows;
use crate::transition::Applied;
use crate::views::{CaseRow, CaseView, CASE_COLUMNS};
use crate::{Result, Store, StoreError};

/// One history line as shown.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDetail {
    pub case: CaseView,
    pub history: Vec<HistoryView>,
    pub deliveries: Vec<DeliveryView>,
    /// Told of acknowledgement and resolution: escalation levels and subscribers.
    pub watchers: Vec<crate::sla::WatcherView>,
}

/// The checks of a one-click link: its single-use nonce and the action
/// (recorded with the nonce). Whether the step is still possible is the
/// transition's answer, so a link keeps working after another step.
#[derive(Debug, Clone, Copy)]
pub struct LinkUse<'a> {
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
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1 FOR UPDATE");
        let row: CaseRow = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::CaseNotFound(id))?;
        if let Some(link) = ctx.link {
            use_link(&mut tx, &row, link, now).await?;
        }
        let state = row.clone().into_view(self)?.state();
        let transition = state.apply(command, actor, now, ctx.root_causes)?;
        let applied = Applied {
            command,
            transition: &transition,
            actor,
            new_owner: ctx.new_owner,
            shown_event: None,
        };
        let mut outbox = OutboxRows::default();
        self.write_transition(&mut tx, row, &applied, now, &mut outbox)
            .await?;
        outbox.insert(&mut tx, now).await?;
        tx.commit().await?;
        self.case_detail(id).await
    }
}

/// Spend a one-click link: only if its nonce was never used. The case row
/// is locked: two clicks of one link serialize here.
async fn use_link(
    tx: &mut sqlx::PgConnection,
    row: &CaseRow,
    link: LinkUse<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let used: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM used_links WHERE nonce = $1)")
            .bind(link.nonce)
            .fetch_one(&mut *tx)
            .await?;
    if used {
        return Err(StoreError::LinkUsed);
    }
    let fresh = sqlx::query(
        "INSERT INTO used_links (nonce, case_id, action, used_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(link.nonce)
    .bind(row.id)
    .bind(link.action)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if fresh.rows_affected() == 0 {
        return Err(StoreError::LinkUsed);
    }
    Ok(())
}
