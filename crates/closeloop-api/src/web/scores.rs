//! `GET /insights/scores`: NPS, CSAT and CES by any dimension of the
//! contract, or two at once, for a period, beside the period before; bars
//! per group or a trend line over days, weeks or months, drawn as SVG by
//! the templates; `GET /insights/scores.csv`: the same table. Figures are
//! the store's `score_table`, as `GET /v1/metrics/scores` answers them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use closeloop_store::{ScoreFilter, ScoreGrouping, ScoreRow, WebSession};
use serde::Serialize;

use super::charts::{bars, trend, Bar, Trend};
use super::insights::{csv_response, period_of, InsightsQuery};
use super::pages::Catalog;
use super::period::Period;
use super::session::{self, SignedIn};
use super::view::{layout, Layout};
use super::{render, Web, WebApp};
use crate::{ApiError, AppState};

#[derive(Debug, Default, serde::Deserialize, Clone)]
pub(crate) struct ScoresQuery {
    by: Option<String>,
    then: Option<String>,
    #[serde(flatten)]
    base: InsightsQuery,
}

struct Table {
    first: ScoreGrouping,
    second: Option<ScoreGrouping>,
    rows: Vec<ScoreRow>,
    /// The period before, by the first dimension alone (no second).
    previous: Vec<ScoreRow>,
}

fn share(part: i64, whole: i64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

fn figure(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// The columns of the table, in order (page and CSV alike).
const COLUMNS: [&str; 10] = [
    "col_responses",
    "col_nps",
    "col_promoters",
    "col_passives",
    "col_detractors",
    "col_nps_before",
    "col_nps_change",
    "col_csat",
    "col_ces",
    "col_high_effort",
];

fn cells(row: &ScoreRow, before: Option<&ScoreRow>) -> Vec<String> {
    let previous = before.and_then(|b| b.nps);
    let change = match (row.nps, previous) {
        (Some(now), Some(then)) => format!("{:+.1}", now - then),
        _ => "–".into(),
    };
    vec![
        row.responses.to_string(),
        figure(row.nps, 1),
        share(row.promoters, row.nps_responses),
        share(row.passives, row.nps_responses),
        share(row.detractors, row.nps_responses),
        figure(previous, 1),
        change,
        figure(row.csat, 1),
        figure(row.ces, 2),
        share(row.high_effort, row.ces_responses),
    ]
}

async fn table(
    state: &AppState,
    live: &WebSession,
    query: &ScoresQuery,
    period: &Period,
) -> Result<Table, ApiError> {
    let first = query
        .by
        .as_deref()
        .and_then(ScoreGrouping::parse)
        .unwrap_or(ScoreGrouping::Region);
    let second = query
        .then
        .as_deref()
        .and_then(ScoreGrouping::parse)
        .filter(|s| *s != first);
    let caller = session::caller(state, live);
    let blank = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let filter = ScoreFilter {
        from: period.from,
        to: period.to,
        scope: caller.scope().cloned(),
        region: blank(&query.base.region),
        store: blank(&query.base.store),
    };
    let before = period.previous();
    let earlier = ScoreFilter {
        from: before.from,
        to: before.to,
        ..filter.clone()
    };
    // The period before, by the first dimension alone (a trend's earlier
    // line, or each group's earlier figure), read at the same time.
    let compare = second.is_none();
    let (rows, previous) =
        tokio::try_join!(state.store.score_table(first, second, &filter), async {
            if compare {
                state.store.score_table(first, None, &earlier).await
            } else {
                Ok(Vec::new())
            }
        },)?;
    Ok(Table {
        first,
        second,
        rows,
        previous,
    })
}

/// A group's figures over the period before: the same group (a store, a
/// region). Periods (days, weeks) have none: the earlier ones are other
/// days, drawn as the trend's second line.
fn earlier_of<'t>(table: &'t Table, row: &ScoreRow) -> Option<&'t ScoreRow> {
    if table.first.is_time() {
        return None;
    }
    table.previous.iter().find(|p| p.group == row.group)
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct Row {
    group: String,
    subgroup: Option<String>,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct ScoresContext<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    /// The dates of the period, for the custom range's fields (YYYY-MM-DD).
    from: String,
    to: String,
    /// Ops and admins: the operations tab shows.
    operator: bool,
    dimensions: Vec<Choice>,
    seconds: Vec<Choice>,
    periods: Vec<Choice>,
    first_label: String,
    second_label: Option<String>,
    columns: Vec<String>,
    rows: Vec<Row>,
    bars: Vec<Bar>,
    trend: Option<Trend>,
    /// The same over the period before (a dashed line).
    trend_before: Option<Trend>,
    csv: String,
    region: String,
    store: String,
}

fn group_label(catalog: &Catalog, value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| catalog.text("none"))
}

fn choices(catalog: &Catalog, chosen: Option<ScoreGrouping>) -> Vec<Choice> {
    ScoreGrouping::ALL
        .into_iter()
        .map(|g| Choice {
            value: g.as_str().into(),
            label: catalog.text(&format!("by_{}", g.as_str())),
            selected: Some(g) == chosen,
        })
        .collect()
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<ScoresQuery>,
    signed: SignedIn,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, jar } = signed;
    let period = period_of(&state, &live, &query.base);
    let table = match table(&state, &live, &query, &period).await {
        Ok(table) => table,
        Err(error) => return error.into_response(),
    };
    let page = scores_page(&state, web, &lang, &live, &query, &period, &table);
    (jar, page).into_response()
}

fn scores_page(
    state: &AppState,
    web: &WebApp,
    lang: &str,
    live: &WebSession,
    query: &ScoresQuery,
    period: &Period,
    table: &Table,
) -> Response {
    let catalog = web.pages.catalog(lang);
    let before = |row: &ScoreRow| earlier_of(table, row);
    let rows = table
        .rows
        .iter()
        .map(|row| Row {
            group: group_label(catalog, &row.group),
            subgroup: table.second.map(|_| group_label(catalog, &row.subgroup)),
            cells: cells(row, before(row)),
        })
        .collect();
    let nps: Vec<(String, f64)> = table
        .rows
        .iter()
        .filter(|_| table.second.is_none())
        .filter_map(|r| Some((group_label(catalog, &r.group), r.nps?)))
        .collect();
    let (chart, line) = if table.first.is_time() {
        (Vec::new(), trend(&nps, -100.0, 100.0))
    } else {
        (bars(&nps, -100.0, 100.0), None)
    };
    // The period before, as a second line under the trend.
    let earlier: Vec<(String, f64)> = table
        .previous
        .iter()
        .filter_map(|r| Some((group_label(catalog, &r.group), r.nps?)))
        .collect();
    let line_before = line.as_ref().and_then(|_| trend(&earlier, -100.0, 100.0));
    let mut query_text = format!("by={}", table.first.as_str());
    if let Some(second) = table.second {
        query_text.push_str(&format!("&then={}", second.as_str()));
    }
    for (name, value) in [("region", &query.base.region), ("store", &query.base.store)] {
        if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            query_text.push_str(&format!("&{name}={value}"));
        }
    }
    query_text.push_str(&format!("&{}", period.query()));
    let path = format!("/insights/scores?{query_text}");
    let context = ScoresContext {
        from: period.from.format("%Y-%m-%d").to_string(),
        to: (period.to - chrono::Duration::seconds(1))
            .format("%Y-%m-%d")
            .to_string(),
        operator: matches!(
            live.role,
            closeloop_core::access::Role::Ops | closeloop_core::access::Role::Admin
        ),
        layout: layout(
            &web.pages,
            lang,
            catalog.text("scores_title"),
            &path,
            Some(session::display_name(state, live)),
            live.csrf_token.clone(),
        ),
        dimensions: choices(catalog, Some(table.first)),
        seconds: choices(catalog, table.second),
        periods: ["today", "7d", "30d", "90d", "custom"]
            .into_iter()
            .map(|p| Choice {
                value: p.into(),
                label: catalog.text(&format!("period_{p}")),
                selected: period.name == p,
            })
            .collect(),
        first_label: catalog.text(&format!("by_{}", table.first.as_str())),
        second_label: table
            .second
            .map(|s| catalog.text(&format!("by_{}", s.as_str()))),
        columns: COLUMNS.iter().map(|c| catalog.text(c)).collect(),
        rows,
        bars: chart,
        trend: line,
        trend_before: line_before,
        csv: format!("/insights/scores.csv?{query_text}"),
        region: query.base.region.clone().unwrap_or_default(),
        store: query.base.store.clone().unwrap_or_default(),
    };
    render(web, StatusCode::OK, "scores.html", &context)
}

/// `GET /insights/scores.csv`: the table of the page, figure for figure.
pub(crate) async fn csv(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<ScoresQuery>,
    signed: SignedIn,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, .. } = signed;
    let catalog = web.pages.catalog(&lang);
    let period = period_of(&state, &live, &query.base);
    let table = match table(&state, &live, &query, &period).await {
        Ok(table) => table,
        Err(error) => return error.into_response(),
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut head = vec![catalog.text(&format!("by_{}", table.first.as_str()))];
    if let Some(second) = table.second {
        head.push(catalog.text(&format!("by_{}", second.as_str())));
    }
    head.extend(COLUMNS.iter().map(|c| catalog.text(c)));
    let _ = out.write_record(&head);
    for row in &table.rows {
        let mut record = vec![row.group.clone().unwrap_or_default()];
        if table.second.is_some() {
            record.push(row.subgroup.clone().unwrap_or_default());
        }
        let before = earlier_of(&table, row);
        record.extend(cells(row, before));
        let _ = out.write_record(&record);
    }
    csv_response(out, "scores.csv")
}
