//! Loop metrics: who closes loops, and how fast.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Result, Store};

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
    pub p50_resolve_seconds: Option<f64>,
    pub p90_resolve_seconds: Option<f64>,
}

impl Store {
    /// Loop figures for cases opened in `[from, to)`, grouped by `group_by`
    /// (`owner`, `store` or `region`; anything else is refused by the caller).
    pub async fn loop_metrics(
        &self,
        group_column: &'static str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LoopMetricsRow>> {
        let sql = format!(
            "SELECT {group_column} AS \"group\",
                    count(*) AS opened,
                    count(acknowledged_at) AS acknowledged,
                    count(first_contact_at) AS contacted,
                    count(resolved_at) AS resolved,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - created_at)::float8) AS p50_ack_seconds,
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - created_at)::float8) AS p90_ack_seconds,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_contact_at - created_at)::float8) AS p50_contact_seconds,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at)::float8) AS p50_resolve_seconds,
                    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at)::float8) AS p90_resolve_seconds
             FROM cases WHERE created_at >= $1 AND created_at < $2
             GROUP BY 1 ORDER BY 1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }
}
