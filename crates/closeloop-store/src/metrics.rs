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
    /// once done or once its deadline is behind `now`.
    pub async fn loop_figures(
        &self,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoopMetricsRow>> {
        let (total, rows) = self.loop_page(grouping, filter, now).await?;
        Ok(match grouping {
            None => total.into_iter().collect(),
            Some(_) => rows,
        })
    }

    /// The figures of all the cases of `filter` and, with a `grouping`, by
    /// group: two statements read at once (on two pooled connections), the
    /// counts (the total and the groups in one scan) and each group's
    /// business times, whose percentiles are the core's
    /// (`durations::percentile`), the total's over every group's times.
    pub async fn loop_page(
        &self,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<(Option<LoopMetricsRow>, Vec<LoopMetricsRow>)> {
        let (counts, times) = tokio::try_join!(
            self.loop_counts(grouping, filter, now),
            self.loop_times(grouping, filter, now),
        )?;
        let mut total = None;
        let mut rows = Vec::new();
        for row in counts {
            if row.total {
                total = Some(row.figures);
            } else {
                rows.push(row.figures);
            }
        }
        let mut all = StageSeconds::default();
        for (group, mut seconds) in times {
            seconds.sort();
            if let Some(row) = rows.iter_mut().find(|r| r.group == group) {
                seconds.fill(row);
            }
            all.extend(seconds);
        }
        if let Some(total) = &mut total {
            all.sort();
            all.fill(total);
        }
        Ok((total, rows))
    }

    /// Counts and shares: the total row, and with a grouping the groups.
    async fn loop_counts(
        &self,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<CountsRow>> {
        let within = |done: &str, due: &str| {
            format!(
                "round((count(*) FILTER (WHERE {done} IS NOT NULL AND {done} <= {due})::numeric
                        / nullif(count(*) FILTER (WHERE {due} IS NOT NULL AND ({done} IS NOT NULL OR {due} <= $3)), 0)), 4)::float8"
            )
        };
        let (group, total, group_by) = match grouping {
            Some(g) => (
                g.column(),
                format!("GROUPING({}) = 1", g.column()),
                format!("GROUP BY GROUPING SETS (({}), ())", g.column()),
            ),
            None => ("NULL::text", "true".to_owned(), String::new()),
        };
        // Every column read is in the index cases_loop (migration 17): the
        // rows themselves are not read.
        let sql = format!(
            "SELECT {group} AS \"group\", {total} AS total,
                    count(*) AS opened,
                    count(acknowledged_at) AS acknowledged,
                    count(first_contact_at) AS contacted,
                    count(resolved_at) AS resolved,
                    NULL::float8 AS p50_ack_seconds, NULL::float8 AS p90_ack_seconds,
                    NULL::float8 AS p50_contact_seconds, NULL::float8 AS p90_contact_seconds,
                    NULL::float8 AS p50_resolve_seconds, NULL::float8 AS p90_resolve_seconds,
                    {ack} AS ack_within_sla,
                    {contact} AS contact_within_sla,
                    {resolve} AS resolve_within_sla,
                    count(overdue_since) AS overdue,
                    count(recovered_at) AS recovered,
                    round((count(recovered_at)::numeric
                           / nullif(count(*) FILTER (WHERE status = ANY($4) OR recovered_at IS NOT NULL), 0)), 4)::float8
                        AS recovery_rate
             FROM cases WHERE {LOOP_WHERE}
             {group_by}
             ORDER BY 2, 1",
            ack = within("acknowledged_at", "ack_due_at"),
            contact = within("first_contact_at", "contact_due_at"),
            resolve = within("resolved_at", "resolve_due_at"),
        );
        self.loop_query(&sql, filter, now).await
    }

    /// Each group's business times per stage (one group without grouping).
    async fn loop_times(
        &self,
        grouping: Option<CaseGrouping>,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Option<String>, StageSeconds)>> {
        let (group, group_by) = match grouping {
            Some(g) => (g.column(), "GROUP BY 1"),
            None => ("NULL::text", ""),
        };
        let times = |column: &str| {
            format!("coalesce(array_agg({column}) FILTER (WHERE {column} IS NOT NULL), '{{}}')")
        };
        // $3 and $4 are not used here: the filter's parameters keep their numbers.
        let sql = format!(
            "SELECT {group} AS \"group\", {ack} AS ack, {contact} AS contact, {resolve} AS resolve
             FROM cases WHERE {LOOP_WHERE} AND $3::timestamptz IS NOT NULL AND $4::text[] IS NOT NULL
             {group_by}",
            ack = times("ack_business_seconds"),
            contact = times("contact_business_seconds"),
            resolve = times("resolve_business_seconds"),
        );
        let rows: Vec<TimesRow> = self.loop_query(&sql, filter, now).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let seconds = StageSeconds {
                    ack: r.ack,
                    contact: r.contact,
                    resolve: r.resolve,
                };
                (r.group, seconds)
            })
            .collect())
    }

    /// Run a loop statement on the filter's parameters ($1 to $10).
    async fn loop_query<T>(
        &self,
        sql: &str,
        filter: &LoopFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let (owners, stores, regions) = scope_sets(filter.scope.as_ref());
        Ok(sqlx::query_as(sql)
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
            // Planned for its own parameters every time: a prepared
            // statement's generic plan does not know the period's size.
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// A counts row, and whether it is the total of the grouping sets.
#[derive(sqlx::FromRow)]
struct CountsRow {
    total: bool,
    #[sqlx(flatten)]
    figures: LoopMetricsRow,
}

/// A group's business seconds as the statement gives them.
#[derive(sqlx::FromRow)]
struct TimesRow {
    group: Option<String>,
    ack: Vec<i64>,
    contact: Vec<i64>,
    resolve: Vec<i64>,
}

/// The business seconds of a group's cases, per stage reached.
#[derive(Debug, Default)]
struct StageSeconds {
    ack: Vec<i64>,
    contact: Vec<i64>,
    resolve: Vec<i64>,
}

impl StageSeconds {
    fn sort(&mut self) {
        self.ack.sort_unstable();
        self.contact.sort_unstable();
        self.resolve.sort_unstable();
    }

    fn extend(&mut self, other: StageSeconds) {
        self.ack.extend(other.ack);
        self.contact.extend(other.contact);
        self.resolve.extend(other.resolve);
    }

    /// Write the medians and p90s of the sorted seconds into `row`.
    fn fill(&self, row: &mut LoopMetricsRow) {
        use closeloop_core::durations::percentile;
        row.p50_ack_seconds = percentile(&self.ack, 0.5);
        row.p90_ack_seconds = percentile(&self.ack, 0.9);
        row.p50_contact_seconds = percentile(&self.contact, 0.5);
        row.p90_contact_seconds = percentile(&self.contact, 0.9);
        row.p50_resolve_seconds = percentile(&self.resolve, 0.5);
        row.p90_resolve_seconds = percentile(&self.resolve, 0.9);
    }
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
            // Planned for its own parameters every time: a prepared
            // statement's generic plan does not know the period's size.
            .persistent(false)
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
            .persistent(false)
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
