//! Score figures: NPS, CSAT and CES of every stored answer (alerting or
//! not), grouped by any dimension of the contract, or two at once, for a
//! period and a scope. Which scores make each class is the core's
//! (`closeloop_core::scoring`); this file only counts.

use chrono::{DateTime, Utc};
use closeloop_core::access::Scope;
use closeloop_core::scoring::{CesClass, CsatClass, NpsClass};
use serde::Serialize;

use crate::score_days::{value_columns, value_counts, Split};
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

    /// The roll-up's dimension for a grouping that is neither a place nor
    /// a period.
    fn dimension(self) -> Option<&'static str> {
        match self {
            ScoreGrouping::Segment => Some("segment"),
            ScoreGrouping::ProductLine => Some("product_line"),
            ScoreGrouping::Touchpoint => Some("touchpoint"),
            ScoreGrouping::Channel => Some("channel"),
            ScoreGrouping::Source => Some("source"),
            _ => None,
        }
    }

    /// The grouping's expression over a roll-up row.
    fn rolled_expression(self) -> &'static str {
        match self {
            ScoreGrouping::Store => "store_id",
            ScoreGrouping::Region => "region",
            ScoreGrouping::Country => "country",
            ScoreGrouping::Day => "day",
            ScoreGrouping::Week => "date_trunc('week', day::timestamp)::date",
            ScoreGrouping::Month => "date_trunc('month', day::timestamp)::date",
            _ => "value",
        }
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

/// The roll-up's slice holding the groupings: `""` when they are places
/// and periods only, the dimension's name when one of them is another
/// dimension; `None` when two are (the roll-up keeps no pairs).
fn roll_up_slice(first: ScoreGrouping, second: Option<ScoreGrouping>) -> Option<&'static str> {
    let others: Vec<&'static str> = std::iter::once(first)
        .chain(second)
        .filter_map(ScoreGrouping::dimension)
        .collect();
    match others.as_slice() {
        [] => Some(""),
        [one] => Some(one),
        _ => None,
    }
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

    /// Score figures by `first`, and by `second` within it when given: the
    /// whole UTC days of the period from the roll-up when it holds the
    /// groupings (at most one dimension besides place and time), the rest
    /// from the answers themselves.
    pub async fn score_table(
        &self,
        first: ScoreGrouping,
        second: Option<ScoreGrouping>,
        filter: &ScoreFilter,
    ) -> Result<Vec<ScoreRow>> {
        let slice = roll_up_slice(first, second);
        let split = Split::of(filter.from, filter.to, slice.is_some());
        let columns = value_columns();
        let raw_counts = value_counts();
        // Sums of value columns; class bounds are the core's, written as
        // literals: numbers from closed enums, not input.
        let total = |score: &str, values: std::ops::RangeInclusive<u8>| {
            let terms: Vec<String> = values.map(|v| format!("{score}_{v}")).collect();
            format!("sum({})::bigint", terms.join(" + "))
        };
        let (promoters, detractors) = (
            total("nps", NpsClass::Promoter.values()),
            total("nps", NpsClass::Detractor.values()),
        );
        let (nps_all, csat_all, ces_all) = (
            total("nps", 0..=10),
            total("csat", 1..=5),
            total("ces", 1..=7),
        );
        let satisfied = total("csat", CsatClass::Satisfied.values());
        let ces_sum = format!(
            "sum({})",
            (1..=7)
                .map(|v| format!("{v} * ces_{v}"))
                .collect::<Vec<_>>()
                .join(" + ")
        );
        let place = |g: Option<ScoreGrouping>, rolled: bool| match g {
            None => "NULL::text".to_owned(),
            Some(g) if rolled => g.rolled_expression().to_owned(),
            Some(g) => g.expression().to_owned(),
        };
        let sql = format!(
            "WITH parts AS (
               SELECT {first_rolled} AS g, {second_rolled} AS s, responses, {columns}
               FROM score_days
               WHERE dimension = $9 AND day >= ($7 AT TIME ZONE 'UTC')::date AND day < ($8 AT TIME ZONE 'UTC')::date
                 AND ($3::text[] IS NULL OR store_id = ANY($3) OR region = ANY($4))
                 AND ($5::text IS NULL OR region = $5)
                 AND ($6::text IS NULL OR store_id = $6)
               UNION ALL
               SELECT {first_raw}, {second_raw}, count(*), {raw_counts}
               FROM feedback_events
               WHERE ((occurred_at >= $1 AND occurred_at < $7) OR (occurred_at >= $8 AND occurred_at < $2))
                 AND ($3::text[] IS NULL OR store_id = ANY($3) OR region = ANY($4))
                 AND ($5::text IS NULL OR region = $5)
                 AND ($6::text IS NULL OR store_id = $6)
               GROUP BY 1, 2)
             SELECT g::text AS \"group\", s::text AS subgroup,
                    sum(responses)::bigint AS responses,
                    {nps_all} AS nps_responses,
                    {promoters} AS promoters, {passives} AS passives, {detractors} AS detractors,
                    round((100.0 * ({promoters} - {detractors}) / nullif({nps_all}, 0))::numeric, 1)::float8 AS nps,
                    {csat_all} AS csat_responses,
                    {satisfied} AS satisfied, {dissatisfied} AS dissatisfied,
                    round((100.0 * {satisfied} / nullif({csat_all}, 0))::numeric, 1)::float8 AS csat,
                    {ces_all} AS ces_responses,
                    {high} AS high_effort, {low} AS low_effort,
                    round(({ces_sum}::numeric / nullif({ces_all}, 0)), 2)::float8 AS ces
             FROM parts
             GROUP BY 1, 2 ORDER BY 1, 2",
            first_rolled = place(Some(first), true),
            second_rolled = place(second, true),
            first_raw = place(Some(first), false),
            second_raw = place(second, false),
            columns = columns.join(", "),
            passives = total("nps", NpsClass::Passive.values()),
            dissatisfied = total("csat", CsatClass::Dissatisfied.values()),
            high = total("ces", CesClass::HighEffort.values()),
            low = total("ces", CesClass::LowEffort.values()),
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
            .bind(split.days_from)
            .bind(split.days_to)
            .bind(slice)
            // Planned for its own parameters every time: a prepared
            // statement's generic plan does not know the period's size.
            .persistent(false)
            .fetch_all(&self.pool)
            .await?)
    }
}
