//! The manager's inbox: the active cases of a scope, most urgent first,
//! with counts per filter value; and a customer's other cases.

use closeloop_core::access::Scope;
use closeloop_core::{Severity, Status};
use uuid::Uuid;

use crate::metrics::scope_sets;
use crate::views::{CaseRow, CASE_COLUMNS};
use crate::{CaseView, Result, Store};

/// What the inbox shows. Without a status, every active case.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    /// A manager's scope; `None` sees every case (ops, admins).
    pub scope: Option<Scope>,
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub store_id: Option<String>,
    pub touchpoint: Option<String>,
    pub overdue_only: bool,
    /// Found in the customer's name or the comment (case-insensitive).
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of the inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    pub cases: Vec<CaseView>,
    /// Cases matching the filter, on every page.
    pub total: i64,
    /// Active cases of the scope per filter value (the filters aside).
    pub counts: InboxCounts,
}

/// Active cases of the scope per value of each filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxCounts {
    pub all: i64,
    pub overdue: i64,
    pub status: Vec<(String, i64)>,
    pub severity: Vec<(String, i64)>,
    pub store: Vec<(String, i64)>,
    pub touchpoint: Vec<(String, i64)>,
}

/// The deadline of the first stage not done yet: what the inbox sorts by.
const NEXT_DUE: &str =
    "CASE WHEN acknowledged_at IS NULL THEN (deadlines->'acknowledge'->>'due_at')::timestamptz
      WHEN first_contact_at IS NULL THEN (deadlines->'first_contact'->>'due_at')::timestamptz
      ELSE (deadlines->'resolve'->>'due_at')::timestamptz END";

/// The scope condition, on parameters $1 (owners; NULL: no scope), $2
/// (stores), $3 (regions), and the active statuses $4.
const IN_SCOPE: &str = "status = ANY($4)
    AND ($1::text[] IS NULL OR owner_id = ANY($1) OR store_id = ANY($2) OR region = ANY($3))";

#[derive(sqlx::FromRow)]
struct InboxRow {
    #[sqlx(flatten)]
    case: CaseRow,
    total: i64,
}

#[derive(sqlx::FromRow)]
struct CountRow {
    facet: String,
    value: Option<String>,
    n: i64,
}

impl Store {
    /// One page of the inbox of `filter`'s scope, with the scope's counts.
    pub async fn inbox(&self, filter: &InboxFilter) -> Result<InboxPage> {
        let (cases, total) = self.inbox_list(filter).await?;
        let counts = self.inbox_counts(filter.scope.as_ref()).await?;
        Ok(InboxPage {
            cases,
            total,
            counts,
        })
    }

    /// The cases of one page of the inbox, overdue first, then by the next
    /// deadline (cases without SLA last), then oldest first; and how many
    /// match the filter on every page (-1 past the last page).
    pub async fn inbox_list(&self, filter: &InboxFilter) -> Result<(Vec<CaseView>, i64)> {
        let (owners, stores, regions) = scope_sets(filter.scope.as_ref());
        let active = Status::active_names();
        let sql = format!(
            "SELECT {CASE_COLUMNS}, count(*) OVER () AS total FROM cases
             WHERE {IN_SCOPE}
               AND ($5::text IS NULL OR status = $5)
               AND ($6::text IS NULL OR severity = $6)
               AND ($7::text IS NULL OR store_id = $7)
               AND ($8::text IS NULL OR touchpoint = $8)
               AND (NOT $9 OR overdue_since IS NOT NULL)
               AND ($10::text IS NULL
                    OR strpos(lower(coalesce(event->'customer'->>'name', '')), lower($10)) > 0
                    OR strpos(lower(coalesce(event->>'comment', '')), lower($10)) > 0)
             ORDER BY (overdue_since IS NULL), ({NEXT_DUE}) NULLS LAST, created_at, id
             LIMIT $11 OFFSET $12"
        );
        let search = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let rows: Vec<InboxRow> = sqlx::query_as(&sql)
            .bind(&owners)
            .bind(&stores)
            .bind(&regions)
            .bind(&active)
            .bind(filter.status.map(Status::as_str))
            .bind(filter.severity.map(Severity::as_str))
            .bind(&filter.store_id)
            .bind(&filter.touchpoint)
            .bind(filter.overdue_only)
            .bind(search)
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(&self.pool)
            .await?;
        let total = match rows.first() {
            Some(row) => row.total,
            // Past the last page: count without it.
            None if filter.offset > 0 => -1,
            None => 0,
        };
        let cases = rows
            .into_iter()
            .map(|r| r.case.into_view(self))
            .collect::<Result<Vec<_>>>()?;
        Ok((cases, total))
    }

    /// Active cases of a scope per status, severity, store and touchpoint,
    /// in one statement.
    pub async fn inbox_counts(&self, scope: Option<&Scope>) -> Result<InboxCounts> {
        let (owners, stores, regions) = scope_sets(scope);
        let sql = format!(
            "SELECT CASE WHEN GROUPING(status) = 0 THEN 'status'
                         WHEN GROUPING(severity) = 0 THEN 'severity'
                         WHEN GROUPING(store_id) = 0 THEN 'store'
                         WHEN GROUPING(touchpoint) = 0 THEN 'touchpoint'
                         WHEN GROUPING(overdue) = 0 THEN 'overdue'
                         ELSE 'all' END AS facet,
                    coalesce(status, severity, store_id, touchpoint, overdue::text) AS value,
                    count(*) AS n
             FROM (SELECT status, severity, store_id, touchpoint, overdue_since IS NOT NULL AS overdue
                   FROM cases WHERE {IN_SCOPE}) AS c
             GROUP BY GROUPING SETS ((status), (severity), (store_id), (touchpoint), (overdue), ())"
        );
        let rows: Vec<CountRow> = sqlx::query_as(&sql)
            .bind(&owners)
            .bind(&stores)
            .bind(&regions)
            .bind(Status::active_names())
            .fetch_all(&self.pool)
            .await?;
        let mut counts = InboxCounts::default();
        for row in rows {
            let value = row.value.unwrap_or_default();
            match row.facet.as_str() {
                "all" => counts.all = row.n,
                "overdue" if value == "true" => counts.overdue = row.n,
                "status" => counts.status.push((value, row.n)),
                "severity" => counts.severity.push((value, row.n)),
                "store" if !value.is_empty() => counts.store.push((value, row.n)),
                "touchpoint" => counts.touchpoint.push((value, row.n)),
                _ => {}
            }
        }
        for list in [
            &mut counts.status,
            &mut counts.severity,
            &mut counts.store,
            &mut counts.touchpoint,
        ] {
            list.sort();
        }
        Ok(counts)
    }

    /// The customer's other cases, newest first (at most `limit`).
    pub async fn cases_of_customer(
        &self,
        customer_id: &str,
        except: Uuid,
        limit: i64,
    ) -> Result<Vec<CaseView>> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE customer_id = $1 AND id <> $2
             ORDER BY created_at DESC LIMIT $3"
        );
        let rows: Vec<CaseRow> = sqlx::query_as(&sql)
            .bind(customer_id)
            .bind(except)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|r| r.into_view(self)).collect()
    }
}
