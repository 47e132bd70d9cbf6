//! `GET /insights`: loop health for a period and a scope, and a table of
//! owners, stores or regions with drill-down (region → its stores → a
//! store's cases in the inbox); `GET /insights.csv`: the same table.
//! Ops and admins see every case; a manager their team's.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use closeloop_store::{CaseGrouping, LoopFilter, LoopMetricsRow, WebSession};
use serde::{Deserialize, Serialize};

use super::format::duration;
use super::pages::{Catalog, Kind};
use super::period::Period;
use super::session::{self, SignedIn};
use super::view::{layout, Layout};
use super::{render, Web, WebApp};
use crate::{ApiError, AppState};

#[derive(Debug, Default, Deserialize, Clone)]
pub(crate) struct InsightsQuery {
    pub period: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub region: Option<String>,
    pub store: Option<String>,
    pub owner: Option<String>,
    /// The table's rows: owner, store or region.
    pub by: Option<String>,
}

fn blank_none(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The period of a dashboard request, read in the person's calendar.
pub(crate) fn period_of(state: &AppState, live: &WebSession, query: &InsightsQuery) -> Period {
    let now = state.clock.now();
    let calendar = match (&live.owner_id, &state.rules) {
        (Some(owner), Some(rules)) => rules.calendar(owner),
        _ => closeloop_core::sla::Calendar::always_open(),
    };
    Period::parse(
        query.period.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
        now,
        calendar.day_start(now),
    )
}

/// A share (0–1) as "83 %"; "–" when there is none.
pub(crate) fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_owned(), |s| format!("{:.0} %", 100.0 * s))
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(
        || "–".to_owned(),
        |s| duration(chrono::Duration::seconds(s as i64)),
    )
}

#[derive(Serialize)]
struct Tile {
    label: String,
    value: String,
    /// `bad` when it needs attention.
    tone: &'static str,
}

#[derive(Serialize)]
struct Row {
    label: String,
    href: Option<String>,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct InsightsContext<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    /// The dates of the period, for the custom range's fields (YYYY-MM-DD).
    from: String,
    to: String,
    /// Ops and admins: the operations tab shows.
    operator: bool,
    heading: String,
    /// The name of the table's first column (Region, Store, Owner).
    group_label: String,
    tiles: Vec<Tile>,
    causes: Vec<Tile>,
    columns: Vec<String>,
    rows: Vec<Row>,
    periods: Vec<Choice>,
    groupings: Vec<Choice>,
    csv: String,
    filters: Vec<(String, String)>,
    period_query: String,
}

/// The table's columns, in order: the page and the CSV say the same.
const COLUMNS: [&str; 9] = [
    "col_opened",
    "col_resolved",
    "col_overdue",
    "col_ack_sla",
    "col_contact_sla",
    "col_resolve_sla",
    "col_p50_ack",
    "col_p50_resolve",
    "col_recovery",
];

fn cells(row: &LoopMetricsRow) -> Vec<String> {
    vec![
        row.opened.to_string(),
        row.resolved.to_string(),
        row.overdue.to_string(),
        percent(row.ack_within_sla),
        percent(row.contact_within_sla),
        percent(row.resolve_within_sla),
        seconds(row.p50_ack_seconds),
        seconds(row.p50_resolve_seconds),
        percent(row.recovery_rate),
    ]
}

struct Figures {
    grouping: CaseGrouping,
    filter: LoopFilter,
    total: Option<LoopMetricsRow>,
    rows: Vec<LoopMetricsRow>,
    causes: Vec<closeloop_store::RootCauseRow>,
    open_now: i64,
    overdue_now: i64,
}

async fn figures(
    state: &AppState,
    live: &WebSession,
    query: &InsightsQuery,
    period: &Period,
) -> Result<Figures, ApiError> {
    let caller = session::caller(state, live);
    let grouping =
        query
            .by
            .as_deref()
            .and_then(CaseGrouping::parse)
            .unwrap_or(if query.region.is_some() {
                CaseGrouping::Store
            } else {
                CaseGrouping::Region
            });
    let filter = LoopFilter {
        from: period.from,
        to: period.to,
        scope: caller.scope().cloned(),
        region: blank_none(&query.region),
        store: blank_none(&query.store),
        owner: blank_none(&query.owner),
    };
    let now = state.clock.now();
    // Four statements, each on its own connection of the pool at once.
    let ((total, rows), causes, (open_now, overdue_now)) = tokio::try_join!(
        state.store.loop_page(Some(grouping), &filter, now),
        state.store.root_causes_of(None, &filter),
        state.store.open_and_overdue(caller.scope()),
    )?;
    Ok(Figures {
        grouping,
        filter,
        total,
        rows,
        causes,
        open_now,
        overdue_now,
    })
}

/// Where a row leads: a region to its stores, an owner to their stores,
/// a store to its cases.
fn drill(grouping: CaseGrouping, value: &str, period: &Period) -> String {
    let value = form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    match grouping {
        CaseGrouping::Region => format!("/insights?by=store&region={value}&{}", period.query()),
        CaseGrouping::Owner => format!("/insights?by=store&owner={value}&{}", period.query()),
        CaseGrouping::Store => format!("/inbox?store={value}"),
    }
}

fn tiles(catalog: &Catalog, figures: &Figures) -> Vec<Tile> {
    let tile = |key: &str, value: String, bad: bool| Tile {
        label: catalog.text(key),
        value,
        tone: if bad { "bad" } else { "" },
    };
    let t = figures.total.as_ref();
    let share = |f: fn(&LoopMetricsRow) -> Option<f64>| t.and_then(f);
    let low = |v: Option<f64>| v.is_some_and(|v| v < 0.8);
    vec![
        tile("kpi_opened", t.map_or(0, |t| t.opened).to_string(), false),
        tile("kpi_open_now", figures.open_now.to_string(), false),
        tile(
            "kpi_overdue_now",
            figures.overdue_now.to_string(),
            figures.overdue_now > 0,
        ),
        tile(
            "kpi_ack_sla",
            percent(share(|t| t.ack_within_sla)),
            low(share(|t| t.ack_within_sla)),
        ),
        tile(
            "kpi_contact_sla",
            percent(share(|t| t.contact_within_sla)),
            low(share(|t| t.contact_within_sla)),
        ),
        tile(
            "kpi_resolve_sla",
            percent(share(|t| t.resolve_within_sla)),
            low(share(|t| t.resolve_within_sla)),
        ),
        tile(
            "kpi_ack_time",
            format!(
                "{} / {}",
                seconds(t.and_then(|t| t.p50_ack_seconds)),
                seconds(t.and_then(|t| t.p90_ack_seconds))
            ),
            false,
        ),
        tile(
            "kpi_contact_time",
            format!(
                "{} / {}",
                seconds(t.and_then(|t| t.p50_contact_seconds)),
                seconds(t.and_then(|t| t.p90_contact_seconds))
            ),
            false,
        ),
        tile(
            "kpi_resolve_time",
            format!(
                "{} / {}",
                seconds(t.and_then(|t| t.p50_resolve_seconds)),
                seconds(t.and_then(|t| t.p90_resolve_seconds))
            ),
            false,
        ),
        tile("kpi_recovery", percent(share(|t| t.recovery_rate)), false),
    ]
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<InsightsQuery>,
    signed: SignedIn,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, jar } = signed;
    let period = period_of(&state, &live, &query);
    let figures = match figures(&state, &live, &query, &period).await {
        Ok(figures) => figures,
        Err(error) => return error.into_response(),
    };
    let page = insights_page(&state, web, &lang, &live, &query, &period, &figures);
    (jar, page).into_response()
}

fn insights_page(
    state: &AppState,
    web: &WebApp,
    lang: &str,
    live: &WebSession,
    query: &InsightsQuery,
    period: &Period,
    figures: &Figures,
) -> Response {
    let catalog = web.pages.catalog(lang);
    let label = |value: &Option<String>| -> String {
        let Some(value) = value else {
            return catalog.text("none");
        };
        match (figures.grouping, &state.rules) {
            (CaseGrouping::Owner, Some(rules)) => {
                rules.owner(value).map_or_else(|| value.clone(), |o| o.name)
            }
            _ => value.clone(),
        }
    };
    let rows = figures
        .rows
        .iter()
        .map(|row| Row {
            label: label(&row.group),
            href: row
                .group
                .as_deref()
                .map(|g| drill(figures.grouping, g, period)),
            cells: cells(row),
        })
        .collect();
    let mut filters = Vec::new();
    for (key, value) in [
        ("filter_region", &figures.filter.region),
        ("filter_store", &figures.filter.store),
        ("filter_owner", &figures.filter.owner),
    ] {
        if let Some(value) = value {
            filters.push((catalog.text(key), value.clone()));
        }
    }
    let kept = |name: &str, value: &Option<String>| {
        blank_none(value).map(|v| {
            format!(
                "&{name}={}",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
    };
    let scope_query: String = [
        kept("region", &query.region),
        kept("store", &query.store),
        kept("owner", &query.owner),
        Some(format!("&by={}", figures.grouping.as_str())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let path = format!("/insights?{}{scope_query}", period.query());
    let context = InsightsContext {
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
            catalog.text("insights_title"),
            &path,
            Some(session::display_name(state, live)),
            live.csrf_token.clone(),
        ),
        heading: catalog.text("insights_title"),
        group_label: catalog.text(&format!("by_{}", figures.grouping.as_str())),
        tiles: tiles(catalog, figures),
        causes: figures
            .causes
            .iter()
            .take(5)
            .map(|c| Tile {
                label: catalog.label(Kind::RootCause, &c.root_cause),
                value: c.cases.to_string(),
                tone: "",
            })
            .collect(),
        columns: COLUMNS.iter().map(|c| catalog.text(c)).collect(),
        rows,
        periods: ["today", "7d", "30d", "90d", "custom"]
            .into_iter()
            .map(|p| Choice {
                value: p.into(),
                label: catalog.text(&format!("period_{p}")),
                selected: period.name == p,
            })
            .collect(),
        groupings: CaseGrouping::ALL
            .into_iter()
            .map(|g| Choice {
                value: g.as_str().into(),
                label: catalog.text(&format!("by_{}", g.as_str())),
                selected: g == figures.grouping,
            })
            .collect(),
        csv: format!("/insights.csv?{}{scope_query}", period.query()),
        filters,
        period_query: period.query(),
    };
    render(web, StatusCode::OK, "insights.html", &context)
}

/// `GET /insights.csv`: the table of the page, figure for figure.
pub(crate) async fn csv(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<InsightsQuery>,
    signed: SignedIn,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, .. } = signed;
    let catalog = web.pages.catalog(&lang);
    let period = period_of(&state, &live, &query);
    let figures = match figures(&state, &live, &query, &period).await {
        Ok(figures) => figures,
        Err(error) => return error.into_response(),
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut head = vec![catalog.text(&format!("by_{}", figures.grouping.as_str()))];
    head.extend(COLUMNS.iter().map(|c| catalog.text(c)));
    let _ = out.write_record(&head);
    for row in &figures.rows {
        let mut record = vec![row.group.clone().unwrap_or_default()];
        record.extend(cells(row));
        let _ = out.write_record(&record);
    }
    csv_response(out, "loop-health.csv")
}

/// A CSV download of `out`.
pub(crate) fn csv_response(out: csv::Writer<Vec<u8>>, name: &str) -> Response {
    let body = out.into_inner().unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}
