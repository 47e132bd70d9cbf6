//! Loop metrics: who closes loops, and how fast.

use chrono::{DateTime, Utc};
use closeloop_core::scoring::{CsatClass, NpsClass};
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

/// How score figures are grouped; the store knows the expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreGrouping {
    Store,
    Region,
    Touchpoint,
    /// The UTC day the answer was given.
    Day,
}

impl ScoreGrouping {
    pub const ALL: [ScoreGrouping; 4] = [
        ScoreGrouping::Store,
        ScoreGrouping::Region,
        ScoreGrouping::Touchpoint,
        ScoreGrouping::Day,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScoreGrouping::Store => "store",
            ScoreGrouping::Region => "region",
            ScoreGrouping::Touchpoint => "touchpoint",
            ScoreGrouping::Day => "day",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    fn expression(self) -> &'static str {
        match self {
            ScoreGrouping::Store => "store_id",
            ScoreGrouping::Region => "region",
            ScoreGrouping::Touchpoint => "touchpoint",
            ScoreGrouping::Day => "(occurred_at AT TIME ZONE 'UTC')::date",
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
    /// Median seconds from opening to acknowledgement.
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

impl Store {
    /// Loop figures for cases opened in `[from, to)`, grouped by `grouping`.
    /// A stage counts against its SLA once done or once its deadline is
    /// behind `now`.
    pub async fn loop_metrics(
        &self,
        grouping: CaseGrouping,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoopMetricsRow>> {
        let within = |done: &str, stage: &str| {
            let due = format!("(deadlines->'{stage}'->>'due_at')::timestamptz");
            format!(
                "round((count(*) FILTER (WHERE {done} IS NOT NULL AND {done} <= {due})::numeric
                        / nullif(count(*) FILTER (WHERE deadlines IS NOT NULL AND ({done} IS NOT NULL OR {due} <= $3)), 0)), 4)::float8"
            )
        };
        let (ack, contact, resolve) = (
            within("acknowledged_at", "acknowledge"),
            within("first_contact_at", "first_contact"),
            within("resolved_at", "resolve"),
        );
        let group_column = grouping.column();
        let sql = format!(
            "SELECT {group_column} AS \"group\",
                    count(*) AS opened,
                    count(acknowledged_at) AS acknowledged,
                    count(first_contact_at) AS contacted,
                    count(resolved_at) AS resolved,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - created_at)::float8) AS p50_ack_seconds,
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - created_at)::float8) AS p90_ack_seconds,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_contact_at - created_at)::float8) AS p50_contact_seconds,
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM first_contact_at - created_at)::float8) AS p90_contact_seconds,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at)::float8) AS p50_resolve_seconds,
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at)::float8) AS p90_resolve_seconds,
                    {ack} AS ack_within_sla,
                    {contact} AS contact_within_sla,
                    {resolve} AS resolve_within_sla,
                    count(overdue_since) AS overdue,
                    count(recovered_at) AS recovered,
                    round((count(recovered_at)::numeric
                           / nullif(count(*) FILTER (WHERE status = ANY($4) OR recovered_at IS NOT NULL), 0)), 4)::float8
                        AS recovery_rate
             FROM cases WHERE created_at >= $1 AND created_at < $2
             GROUP BY 1 ORDER BY 1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .bind(now)
            .bind(closeloop_core::Status::done_names())
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Score figures of every event received (alerting or not) in one group.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ScoreRow {
    pub group: Option<String>,
    pub responses: i64,
    pub nps_responses: i64,
    /// % promoters − % detractors, from −100 to 100.
    pub nps: Option<f64>,
    pub csat_responses: i64,
    /// % satisfied (4–5).
    pub csat: Option<f64>,
    pub ces_responses: i64,
    /// Mean CES (1–7).
    pub ces: Option<f64>,
}

/// A root cause and how many resolved cases gave it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RootCauseRow {
    pub group: Option<String>,
    pub root_cause: String,
    pub cases: i64,
}

impl Store {
    /// NPS, CSAT and CES of the events that occurred in `[from, to)`,
    /// grouped by `grouping`. The classes' scores come from the core.
    pub async fn score_metrics(
        &self,
        grouping: ScoreGrouping,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ScoreRow>> {
        let group_expr = grouping.expression();
        let sql = format!(
            "SELECT {group_expr}::text AS \"group\",
                    count(*) AS responses,
                    count(nps) AS nps_responses,
                    round((100.0 * (count(*) FILTER (WHERE nps BETWEEN $3 AND $4) - count(*) FILTER (WHERE nps BETWEEN $5 AND $6)) / nullif(count(nps), 0))::numeric, 1)::float8 AS nps,
                    count(csat) AS csat_responses,
                    round((100.0 * count(*) FILTER (WHERE csat BETWEEN $7 AND $8) / nullif(count(csat), 0))::numeric, 1)::float8 AS csat,
                    count(ces) AS ces_responses,
                    round(avg(ces)::numeric, 2)::float8 AS ces
             FROM feedback_events WHERE occurred_at >= $1 AND occurred_at < $2
             GROUP BY 1 ORDER BY 1"
        );
        let bounds = |r: std::ops::RangeInclusive<u8>| (i16::from(*r.start()), i16::from(*r.end()));
        let promoters = bounds(NpsClass::Promoter.values());
        let detractors = bounds(NpsClass::Detractor.values());
        let satisfied = bounds(CsatClass::Satisfied.values());
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .bind(promoters.0)
            .bind(promoters.1)
            .bind(detractors.0)
            .bind(detractors.1)
            .bind(satisfied.0)
            .bind(satisfied.1)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The most given root causes of cases opened in `[from, to)`, per group.
    pub async fn top_root_causes(
        &self,
        grouping: CaseGrouping,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RootCauseRow>> {
        let group_column = grouping.column();
        let sql = format!(
            "SELECT {group_column} AS \"group\", root_cause, count(*) AS cases
             FROM cases WHERE root_cause IS NOT NULL AND created_at >= $1 AND created_at < $2
             GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }
}
