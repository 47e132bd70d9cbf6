//! `GET /inbox`: the signed-in person's cases, most urgent first, with
//! filters and their counts; `/inbox/list` is the list alone (live
//! updates); `POST /inbox/acknowledge` takes several cases at once.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use closeloop_core::{Command, Severity, Status};
use closeloop_store::{InboxFilter, InboxPage, WebSession};
use serde::{Deserialize, Serialize};

use super::forms::FormFields;
use super::pages::{Catalog, Kind};
use super::session::{self, SignedIn};
use super::view::{card, layout, refusal_text, Card, Layout, Reader};
use super::{render, Web, WebApp};
use crate::{AppState, Caller};

/// Cases per page.
pub(crate) const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize, Clone)]
pub(crate) struct InboxQuery {
    status: Option<String>,
    severity: Option<String>,
    store: Option<String>,
    touchpoint: Option<String>,
    overdue: Option<String>,
    q: Option<String>,
    offset: Option<i64>,
    /// Set after a bulk step: how many were acknowledged.
    acked: Option<usize>,
}

fn blank_none(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl InboxQuery {
    fn filter(&self, caller: &Caller) -> InboxFilter {
        InboxFilter {
            scope: caller.scope().cloned(),
            status: self.status.as_deref().and_then(Status::parse),
            severity: self.severity.as_deref().and_then(Severity::parse),
            store_id: blank_none(&self.store),
            touchpoint: blank_none(&self.touchpoint),
            overdue_only: self.overdue.as_deref() == Some("1"),
            search: blank_none(&self.q),
            limit: PAGE_SIZE,
            offset: self.offset.unwrap_or(0).max(0),
        }
    }

    /// The query string of the filters (no offset, no language), `?…` or "".
    fn filters_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("severity", &self.severity),
            ("store", &self.store),
            ("touchpoint", &self.touchpoint),
            ("overdue", &self.overdue),
            ("q", &self.q),
        ] {
            if let Some(value) = blank_none(value) {
                out.append_pair(name, &value);
            }
        }
        let query = out.finish();
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    }
}

#[derive(Serialize)]
struct Opt {
    value: String,
    label: String,
    count: i64,
    selected: bool,
}

#[derive(Serialize)]
struct Facet {
    name: &'static str,
    label: String,
    options: Vec<Opt>,
}

#[derive(Serialize)]
struct Filters {
    any: bool,
    q: String,
    overdue: bool,
    facets: Vec<Facet>,
}

#[derive(Serialize)]
struct Counts {
    all: String,
    overdue: String,
}

#[derive(Serialize)]
struct PageNav {
    label: String,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct List {
    cards: Vec<Card>,
    empty: String,
    page: Option<PageNav>,
}

#[derive(Serialize)]
struct InboxContext<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    filters: Filters,
    counts: Counts,
    list: List,
    flash: Option<String>,
    errors: Vec<String>,
    query: String,
    /// How often the page's script asks for the list again, ms.
    refresh_ms: u64,
}

fn facet(
    catalog: &Catalog,
    name: &'static str,
    kind: Option<Kind>,
    counts: &[(String, i64)],
    chosen: &Option<String>,
) -> Facet {
    Facet {
        name,
        label: catalog.text(&format!("filter_{name}")),
        options: counts
            .iter()
            .map(|(value, count)| Opt {
                label: kind.map_or_else(|| value.clone(), |k| catalog.label(k, value)),
                selected: chosen.as_deref() == Some(value.as_str()),
                value: value.clone(),
                count: *count,
            })
            .collect(),
    }
}

/// The list part of a page of the inbox.
fn list_of(
    state: &AppState,
    catalog: &Catalog,
    lang: &str,
    query: &InboxQuery,
    (cases, total): (&[closeloop_store::CaseView], i64),
    filtered: bool,
) -> List {
    let now = state.clock.now();
    let always = closeloop_core::sla::Calendar::always_open();
    let cards = cases
        .iter()
        .map(|case| {
            let calendar = state
                .rules
                .as_ref()
                .map_or_else(|| always.clone(), |r| r.calendar(&case.owner_id));
            let reader = Reader {
                catalog,
                lang,
                calendar: &calendar,
                now,
            };
            card(&reader, case)
        })
        .collect::<Vec<_>>();
    let offset = query.offset.unwrap_or(0).max(0);
    let base = query.filters_query();
    let joiner = if base.is_empty() { "?" } else { "&" };
    let at = |offset: i64| format!("/inbox{base}{joiner}offset={offset}");
    let shown = i64::try_from(cards.len()).unwrap_or(0);
    let nav = (total > PAGE_SIZE || offset > 0).then(|| PageNav {
        label: catalog.fill(
            "page_of",
            &[
                ("from", &(offset + 1).to_string()),
                ("to", &(offset + shown).to_string()),
                ("total", &total.max(0).to_string()),
            ],
        ),
        prev: (offset > 0).then(|| at((offset - PAGE_SIZE).max(0))),
        next: (offset + shown < total).then(|| at(offset + PAGE_SIZE)),
    });
    List {
        empty: catalog.text(if filtered {
            "inbox_empty_filtered"
        } else {
            "inbox_empty"
        }),
        cards,
        page: nav,
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<InboxQuery>,
    signed: SignedIn,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, jar } = signed;
    let caller = session::caller(&state, &live);
    let filter = query.filter(&caller);
    let page = match state.store.inbox(&filter).await {
        Ok(page) => page,
        Err(error) => return crate::ApiError::from(error).into_response(),
    };
    let body = inbox_page(&state, web, &lang, &query, &page, &live, Vec::new());
    (jar, body).into_response()
}

fn inbox_page(
    state: &AppState,
    web: &WebApp,
    lang: &str,
    query: &InboxQuery,
    page: &InboxPage,
    live: &WebSession,
    errors: Vec<String>,
) -> Response {
    let catalog = web.pages.catalog(lang);
    let counts = &page.counts;
    let filters_query = query.filters_query();
    let any = !filters_query.is_empty();
    let filters = Filters {
        any,
        q: query.q.clone().unwrap_or_default(),
        overdue: query.overdue.as_deref() == Some("1"),
        facets: vec![
            facet(
                catalog,
                "status",
                Some(Kind::Status),
                &counts.status,
                &query.status,
            ),
            facet(
                catalog,
                "severity",
                Some(Kind::Severity),
                &counts.severity,
                &query.severity,
            ),
            facet(catalog, "store", None, &counts.store, &query.store),
            facet(
                catalog,
                "touchpoint",
                Some(Kind::Touchpoint),
                &counts.touchpoint,
                &query.touchpoint,
            ),
        ],
    };
    let path = format!("/inbox{filters_query}");
    let context = InboxContext {
        layout: layout(
            &web.pages,
            lang,
            catalog.text("inbox_title"),
            &path,
            Some(session::display_name(state, live)),
            live.csrf_token.clone(),
        ),
        counts: Counts {
            all: catalog.fill("count_all", &[("n", &counts.all.to_string())]),
            overdue: catalog.fill("count_overdue", &[("n", &counts.overdue.to_string())]),
        },
        list: list_of(state, catalog, lang, query, (&page.cases, page.total), any),
        filters,
        flash: query
            .acked
            .map(|n| catalog.fill("acked_some", &[("n", &n.to_string())])),
        errors,
        query: filters_query,
        refresh_ms: u64::try_from(web.inbox_refresh.as_millis()).unwrap_or(20_000),
    };
    render(web, StatusCode::OK, "inbox.html", &context)
}

#[derive(Serialize)]
struct ListContext<'a> {
    t: &'a std::collections::BTreeMap<String, String>,
    list: List,
}

/// `GET /inbox/list`: the list alone, for the page's live updates.
pub(crate) async fn list(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<InboxQuery>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let web = &*web;
    let (state, query, jar, headers) = (&state, &query, &jar, &headers);
    let live = match session::current(state, jar).await {
        Ok(Some(live)) => live,
        // No session (it ended): the page keeps its list; the next
        // navigation leads to the sign-in page.
        Ok(None) => return StatusCode::FORBIDDEN.into_response(),
        Err(error) => return error.into_response(),
    };
    let lang = session::language(state, None, jar, Some(&live), None, headers);
    let caller = session::caller(state, &live);
    // The list alone: the counts stay as the page showed them.
    let (cases, total) = match state.store.inbox_list(&query.filter(&caller)).await {
        Ok(list) => list,
        Err(error) => return crate::ApiError::from(error).into_response(),
    };
    let catalog = web.pages.catalog(&lang);
    let any = !query.filters_query().is_empty();
    let context = ListContext {
        t: &catalog.text,
        list: list_of(state, catalog, &lang, query, (&cases, total), any),
    };
    render(web, StatusCode::OK, "inbox_list.html", &context)
}

/// `POST /inbox/acknowledge`: "I'm on it" for every ticked case the
/// person may see; the others are refused by name.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Web(web): Web,
    signed: SignedIn,
    body: Bytes,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, .. } = signed;
    let form = FormFields::parse(&body);
    let catalog = web.pages.catalog(&lang);
    if !session::form_token_ok(&live, &form) {
        return super::form_refused(web, &lang, None);
    }
    let caller = session::caller(&state, &live);
    let ids: Vec<uuid::Uuid> = form
        .all("case")
        .iter()
        .filter_map(|id| uuid::Uuid::parse_str(id).ok())
        .collect();
    let cases = match state.store.case_views(&ids).await {
        Ok(cases) => cases,
        Err(error) => return crate::ApiError::from(error).into_response(),
    };
    let mut done = 0;
    let mut errors = Vec::new();
    let now = state.clock.now();
    for case in cases.iter().filter(|c| caller.sees(c)) {
        let command = Command::Acknowledge { note: None };
        match state
            .store
            .apply_command(case.id, &command, &live.name, now, &state.root_causes)
            .await
        {
            Ok(_) => done += 1,
            Err(error) => errors.push(catalog.fill(
                "ack_refused",
                &[
                    ("customer", case.event.customer.display_name()),
                    ("reason", &refusal_text(catalog, &error)),
                ],
            )),
        }
    }
    tracing::info!(acknowledged = done, refused = errors.len(), actor = %live.name, "bulk acknowledge");
    let back = form
        .get("back")
        .filter(|b| b.starts_with('?'))
        .unwrap_or("");
    if ids.is_empty() {
        errors.push(catalog.text("ack_none"));
    }
    if errors.is_empty() {
        let joiner = if back.is_empty() { "?" } else { "&" };
        return Redirect::to(&format!("/inbox{back}{joiner}acked={done}")).into_response();
    }
    // Some were refused: the inbox again, with the reasons.
    let query: InboxQuery =
        serde_urlencoded::from_str(back.trim_start_matches('?')).unwrap_or_default();
    let page = match state.store.inbox(&query.filter(&caller)).await {
        Ok(page) => page,
        Err(error) => return crate::ApiError::from(error).into_response(),
    };
    let query = InboxQuery {
        acked: Some(done),
        ..query
    };
    let mut response = inbox_page(&state, web, &lang, &query, &page, &live, errors);
    *response.status_mut() = StatusCode::CONFLICT;
    response
}
