//! Loop metrics: who closes loops, and how fast.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Result, Store};

/// How loop figures are grouped; the store knows the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseGrouping {
    Owner,
    Store,
    Region,
}

impl CaseGrouping {
    pub const ALL: [CaseGrouping; 3] = [
        CaseGrouping::Owner,
        CaseGrouping::Store,
        CaseGrouping::Region,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseGrouping::Owner => "owner",
            CaseGrouping::Store => "store",
            CaseGrouping::Region => "region",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    fn column(self) -> &'static str {
        match self {
            CaseGrouping::Owner => "owner_id",
            CaseGrouping::Store => "store_id",
            CaseGrouping::Region => "region",
        }
    }
}

/// Figures for one group (an owner, a store or a region).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct LoopMetricsRow {
    pub group: Option<String>,
    pub opened: i64,
    pub acknowledged: i64,
    pub contacted: i64,
    pub resolved: i64,
    /// Median business seconds (the owner's calendar, less the time waiting
    /// on the customer) from opening to acknowledgement.
    pub p50_ack_seconds: Option<f64>,
    pub p90_ack_seconds: Option<f64>,
    pub p50_contact_seconds: Option<f64>,
    pub p90_contact_seconds: Option<f64>,
    pub p50_resolve_seconds: Option<f64>,
    pub p90_resolve_seconds: Option<f64>,
    /// Share (0–1) of cases acknowledged by their deadline, among those
    /// acknowledged or past it; none without SLA clocks.
    pub ack_within_sla: Option<f64>,
    pub contact_within_sla: Option<f64>,
    pub resolve_within_sla: Option<f64>,
    /// Cases that missed a deadline (flagged overdue).
    pub overdue: i64,
    /// Resolved cases whose customer later answered as a promoter.
    pub recovered: i64,
    /// recovered / resolved.
    pub recovery_rate: Option<f64>,
}

/// Which cases loop figures count: opened in `[from, to)`, in a manager's
/// scope (`None`: all), optionally of one region, store or owner.
#[derive(Debug, Clone)]
pub struct LoopFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scope: Option<closeloop_core::access::Scope>,
    pub region: Option<String>,
    pub store: Option<String>,
    pub owner: Option<String>,
}

impl LoopFilter {
    pub fn period(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        LoopFilter {
            from,
            to,
            scope: None,
            region: None,
            store: None,
            owner: None,
        }
    }
}

/// The filter's conditions on `cases`, on parameters $5 to $10.
const LOOP_WHERE: &str = "created_at >= $1 AND created_at < $2
    AND ($5::text[] IS NULL OR owner_id = ANY($5) OR store_id = ANY($6) OR region = ANY($7))
    AND ($8::text IS NULL OR region = $8)
    AND ($9::text IS NULL OR store_id = $9)
    AND ($10::text IS NULL OR owner_id = $10)";

impl Store {
    /// Loop figures for cases opened in `[from, to)`, grouped by `grouping`.
    pub async fn loop_metrics(
        &self,
        grouping: CaseGrouping,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoopMetricsRow>> {
        self.loop_figures(Some(grouping), &LoopFilter::period(from, to), now)
            .await
    }

    /// Loop figures of the cases of `filter`, by `grouping`, or one row for
    /// all of them (`None`, its group empty). A stage counts against its SLA
    /// once done or once its deadline is behind `now`. The counts and the
    /// times' percentiles are two statements read at once (on two pooled
    /// connections), joined by group.
    pub async fn loop_figures(
        &self,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoopMetricsRow>> {
        let (mut rows, times) = tokio::try_join!(
            self.loop_part(LoopPart::Counts, grouping, filter, now),
            self.loop_part(LoopPart::Times, grouping, filter, now),
        )?;
        let times: std::collections::HashMap<_, _> =
            times.into_iter().map(|t| (t.group.clone(), t)).collect();
        for row in &mut rows {
            if let Some(t) = times.get(&row.group) {
                row.p50_ack_seconds = t.p50_ack_seconds;
                row.p90_ack_seconds = t.p90_ack_seconds;
                row.p50_contact_seconds = t.p50_contact_seconds;
                row.p90_contact_seconds = t.p90_contact_seconds;
                row.p50_resolve_seconds = t.p50_resolve_seconds;
                row.p90_resolve_seconds = t.p90_resolve_seconds;
            }
        }
        Ok(rows)
    }

    /// One part of [`Store::loop_figures`], as rows whose other part is empty.
    async fn loop_part(
        &self,
        part: LoopPart,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoopMetricsRow>> {
        let within = |done: &str, due: &str| {
            format!(
                "round((count(*) FILTER (WHERE {done} IS NOT NULL AND {done} <= {due})::numeric
                        / nullif(count(*) FILTER (WHERE {due} IS NOT NULL AND ({done} IS NOT NULL OR {due} <= $3)), 0)), 4)::float8"
            )
        };
        let figures = match part {
            LoopPart::Counts => format!(
                "count(*) AS opened,
                 count(acknowledged_at) AS acknowledged,
                 count(first_contact_at) AS contacted,
                 count(resolved_at) AS resolved,
                 NULL::float8[] AS ack, NULL::float8[] AS contact, NULL::float8[] AS resolve,
                 {} AS ack_within_sla,
                 {} AS contact_within_sla,
                 {} AS resolve_within_sla,
                 count(overdue_since) AS overdue,
                 count(recovered_at) AS recovered,
                 round((count(recovered_at)::numeric
                        / nullif(count(*) FILTER (WHERE status = ANY($4) OR recovered_at IS NOT NULL), 0)), 4)::float8
                     AS recovery_rate",
                within("acknowledged_at", "ack_due_at"),
                within("first_contact_at", "contact_due_at"),
                within("resolved_at", "resolve_due_at"),
            ),
            // One sort per stage gives both percentiles.
            LoopPart::Times => "0::bigint AS opened, 0::bigint AS acknowledged, 0::bigint AS contacted,
                 0::bigint AS resolved,
                 percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY ack_business_seconds::float8) AS ack,
                 percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY contact_business_seconds::float8) AS contact,
                 percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY resolve_business_seconds::float8) AS resolve,
                 NULL::float8 AS ack_within_sla, NULL::float8 AS contact_within_sla,
                 NULL::float8 AS resolve_within_sla, 0::bigint AS overdue, 0::bigint AS recovered,
                 NULL::float8 AS recovery_rate"
                .to_owned(),
        };
        let (group_column, group_by) = match grouping {
            Some(g) => (g.column(), "GROUP BY 1"),
            None => ("NULL::text", ""),
        };
        // Every column read is in the index cases_loop (migration 17): the
        // rows themselves are not read.
        let sql = format!(
            "SELECT \"group\", opened, acknowledged, contacted, resolved,
                    ack[1] AS p50_ack_seconds, ack[2] AS p90_ack_seconds,
                    contact[1] AS p50_contact_seconds, contact[2] AS p90_contact_seconds,
                    resolve[1] AS p50_resolve_seconds, resolve[2] AS p90_resolve_seconds,
                    ack_within_sla, contact_within_sla, resolve_within_sla, overdue, recovered, recovery_rate
             FROM (SELECT {group_column} AS \"group\", {figures}
                   FROM cases WHERE {LOOP_WHERE} AND $3::timestamptz IS NOT NULL AND $4::text[] IS NOT NULL
                   {group_by}) AS figures
             ORDER BY 1"
        );
        let (owners, stores, regions) = scope_sets(filter.scope.as_ref());
        let mut tx = self.pool.begin().await?;
        // The percentiles sort a period's cases in memory.
        sqlx::query("SET LOCAL work_mem = '64MB'")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query_as(&sql)
            .bind(filter.from)
            .bind(filter.to)
            .bind(now)
            .bind(closeloop_core::Status::done_names())
            .bind(owners)
            .bind(stores)
            .bind(regions)
            .bind(&filter.region)
            .bind(&filter.store)
            .bind(&filter.owner)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// The two statements of the loop figures.
#[derive(Debug, Clone, Copy)]
enum LoopPart {
    Counts,
    Times,
}

/// A root cause and how many resolved cases gave it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RootCauseRow {
    pub group: Option<String>,
    pub root_cause: String,
    pub cases: i64,
}

impl Store {
    /// The most given root causes of cases opened in `[from, to)`, per group.
    pub async fn top_root_causes(
        &self,
        grouping: CaseGrouping,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RootCauseRow>> {
        self.root_causes_of(Some(grouping), &LoopFilter::period(from, to))
            .await
    }

    /// Root causes of the cases of `filter`, most given first, per group
    /// (`None`: over all, the group empty).
    pub async fn root_causes_of(
        &self,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
    ) -> Result<Vec<RootCauseRow>> {
        let group_column = grouping.map_or("NULL::text", CaseGrouping::column);
        // $3 and $4 are not used here: the filter's parameters keep their numbers.
        let sql = format!(
            "SELECT {group_column} AS \"group\", root_cause, count(*) AS cases
             FROM cases WHERE root_cause IS NOT NULL AND $3::int IS NULL AND $4::int IS NULL
               AND {LOOP_WHERE}
             GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
        );
        let (owners, stores, regions) = scope_sets(filter.scope.as_ref());
        Ok(sqlx::query_as(&sql)
            .bind(filter.from)
            .bind(filter.to)
            .bind(None::<i32>)
            .bind(None::<i32>)
            .bind(owners)
            .bind(stores)
            .bind(regions)
            .bind(&filter.region)
            .bind(&filter.store)
            .bind(&filter.owner)
            .fetch_all(&self.pool)
            .await?)
    }
}

impl Store {
    /// Active cases of a scope now, and how many of them are overdue (an
    /// index-only scan of `cases_active_scope`, migration 17).
    pub async fn open_and_overdue(
        &self,
        scope: Option<&closeloop_core::access::Scope>,
    ) -> Result<(i64, i64)> {
        let (owners, stores, regions) = scope_sets(scope);
        let sql = format!(
            "SELECT count(*), count(overdue_since) FROM cases
             WHERE status IN {}
               AND ($1::text[] IS NULL OR owner_id = ANY($1) OR store_id = ANY($2) OR region = ANY($3))",
            crate::status_list(&closeloop_core::Status::active_names())
        );
        Ok(sqlx::query_as(&sql)
            .bind(owners)
            .bind(stores)
            .bind(regions)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A scope as the three arrays of the scope condition (owners `NULL`: all).
pub(crate) fn scope_sets(
    scope: Option<&closeloop_core::access::Scope>,
) -> (Option<Vec<String>>, Vec<String>, Vec<String>) {
    match scope {
        None => (None, Vec::new(), Vec::new()),
        Some(s) => (
            Some(s.owners.iter().cloned().collect()),
            s.stores.iter().cloned().collect(),
            s.regions.iter().cloned().collect(),
        ),
    }
}
