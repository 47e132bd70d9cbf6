//! Score figures: NPS, CSAT and CES of every stored answer (alerting or
//! not), grouped by any dimension of the contract, or two at once, for a
//! period and a scope. Which scores make each class is the core's
//! (`closeloop_core::scoring`); this file only counts.

use chrono::{DateTime, Utc};
use closeloop_core::access::Scope;
use closeloop_core::scoring::{CesClass, CsatClass, NpsClass};
use serde::Serialize;

use crate::{Result, Store};

/// A dimension score figures group by; the store knows its expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreGrouping {
    Store,
    Region,
    Country,
    Segment,
    ProductLine,
    Touchpoint,
    Channel,
    Source,
    /// The UTC day, week (from Monday) or month the answer was given.
    Day,
    Week,
    Month,
}

impl ScoreGrouping {
    pub const ALL: [ScoreGrouping; 11] = [
        ScoreGrouping::Region,
        ScoreGrouping::Store,
        ScoreGrouping::Country,
        ScoreGrouping::Segment,
        ScoreGrouping::ProductLine,
        ScoreGrouping::Touchpoint,
        ScoreGrouping::Channel,
        ScoreGrouping::Source,
        ScoreGrouping::Day,
        ScoreGrouping::Week,
        ScoreGrouping::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScoreGrouping::Store => "store",
            ScoreGrouping::Region => "region",
            ScoreGrouping::Country => "country",
            ScoreGrouping::Segment => "segment",
            ScoreGrouping::ProductLine => "product_line",
            ScoreGrouping::Touchpoint => "touchpoint",
            ScoreGrouping::Channel => "channel",
            ScoreGrouping::Source => "source",
            ScoreGrouping::Day => "day",
            ScoreGrouping::Week => "week",
            ScoreGrouping::Month => "month",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// Whether the groups are periods (a trend), not places or kinds.
    pub fn is_time(self) -> bool {
        matches!(
            self,
            ScoreGrouping::Day | ScoreGrouping::Week | ScoreGrouping::Month
        )
    }

    fn expression(self) -> &'static str {
        match self {
            ScoreGrouping::Store => "store_id",
            ScoreGrouping::Region => "region",
            ScoreGrouping::Country => "country",
            ScoreGrouping::Segment => "segment",
            ScoreGrouping::ProductLine => "product_line",
            ScoreGrouping::Touchpoint => "touchpoint",
            ScoreGrouping::Channel => "channel",
            ScoreGrouping::Source => "source",
            ScoreGrouping::Day => "(occurred_at AT TIME ZONE 'UTC')::date",
            ScoreGrouping::Week => "date_trunc('week', occurred_at AT TIME ZONE 'UTC')::date",
            ScoreGrouping::Month => "date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date",
        }
    }
}

/// Which answers: a period `[from, to)`, a manager's scope (their stores
/// and regions; `None`: all), and optionally one region or store.
#[derive(Debug, Clone)]
pub struct ScoreFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scope: Option<Scope>,
    pub region: Option<String>,
    pub store: Option<String>,
}

impl ScoreFilter {
    pub fn period(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        ScoreFilter {
            from,
            to,
            scope: None,
            region: None,
            store: None,
        }
    }
}

/// Score figures of the answers of one group (and subgroup).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ScoreRow {
    pub group: Option<String>,
    /// The second dimension's value, when grouping by two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subgroup: Option<String>,
    pub responses: i64,
    pub nps_responses: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    /// % promoters − % detractors, from −100 to 100.
    pub nps: Option<f64>,
    pub csat_responses: i64,
    pub satisfied: i64,
    pub dissatisfied: i64,
    /// % satisfied.
    pub csat: Option<f64>,
    pub ces_responses: i64,
    pub high_effort: i64,
    pub low_effort: i64,
    /// Mean CES (1–7).
    pub ces: Option<f64>,
}

fn bounds(values: std::ops::RangeInclusive<u8>) -> String {
    format!("BETWEEN {} AND {}", values.start(), values.end())
}

impl Store {
    /// NPS, CSAT and CES of the answers of `[from, to)`, by one dimension.
    pub async fn score_metrics(
        &self,
        grouping: ScoreGrouping,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ScoreRow>> {
        self.score_table(grouping, None, &ScoreFilter::period(from, to))
            .await
    }

    /// Score figures by `first`, and by `second` within it when given.
    pub async fn score_table(
        &self,
        first: ScoreGrouping,
        second: Option<ScoreGrouping>,
        filter: &ScoreFilter,
    ) -> Result<Vec<ScoreRow>> {
        // The class bounds are the core's, written as literals: numbers
        // from closed enums, not input.
        let class =
            |column: &str, values| format!("count(*) FILTER (WHERE {column} {})", bounds(values));
        let (promoters, passives, detractors) = (
            class("nps", NpsClass::Promoter.values()),
            class("nps", NpsClass::Passive.values()),
            class("nps", NpsClass::Detractor.values()),
        );
        let (satisfied, dissatisfied) = (
            class("csat", CsatClass::Satisfied.values()),
            class("csat", CsatClass::Dissatisfied.values()),
        );
        let (high, low) = (
            class("ces", CesClass::HighEffort.values()),
            class("ces", CesClass::LowEffort.values()),
        );
        let subgroup = second.map_or("NULL".to_owned(), |g| format!("{}::text", g.expression()));
        let group_by = if second.is_some() { "1, 2" } else { "1" };
        let sql = format!(
            "SELECT {first}::text AS \"group\", {subgroup} AS subgroup,
                    count(*) AS responses,
                    count(nps) AS nps_responses,
                    {promoters} AS promoters, {passives} AS passives, {detractors} AS detractors,
                    round((100.0 * ({promoters} - {detractors}) / nullif(count(nps), 0))::numeric, 1)::float8 AS nps,
                    count(csat) AS csat_responses,
                    {satisfied} AS satisfied, {dissatisfied} AS dissatisfied,
                    round((100.0 * {satisfied} / nullif(count(csat), 0))::numeric, 1)::float8 AS csat,
                    count(ces) AS ces_responses,
                    {high} AS high_effort, {low} AS low_effort,
                    round(avg(ces)::numeric, 2)::float8 AS ces
             FROM feedback_events
             WHERE occurred_at >= $1 AND occurred_at < $2
               AND ($3::text[] IS NULL OR store_id = ANY($3) OR region = ANY($4))
               AND ($5::text IS NULL OR region = $5)
               AND ($6::text IS NULL OR store_id = $6)
             GROUP BY {group_by} ORDER BY {group_by}",
            first = first.expression(),
        );
        let (stores, regions) = match &filter.scope {
            None => (None, Vec::new()),
            Some(scope) => (
                Some(scope.stores.iter().cloned().collect::<Vec<_>>()),
                scope.regions.iter().cloned().collect(),
            ),
        };
        Ok(sqlx::query_as(&sql)
            .bind(filter.from)
            .bind(filter.to)
            .bind(stores)
            .bind(regions)
            .bind(&filter.region)
            .bind(&filter.store)
            .fetch_all(&self.pool)
            .await?)
    }
}
