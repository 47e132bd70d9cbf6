//! `GET /cases/{id}`: the case page, for a signed-in person whose scope
//! covers the case, or with the signed link of an email for that case
//! alone. Its forms (`POST /cases/{id}/do/{step}`) are `case_forms.rs`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use closeloop_core::links::{link_form_token, verify_view};
use closeloop_core::sla::Stage;
use closeloop_core::steps::Step;
use closeloop_core::ContactOutcome;
use closeloop_store::{CaseDetail, StoreError, WebSession};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pages::{Catalog, Kind};
use super::session;
use super::view::{layout, score_chips, timeline, Clock, Layout, Line, Reader, ScoreChip};
use super::{message, render, Link, Web, WebApp};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct CaseQuery {
    /// The signed case link of an email.
    link: Option<String>,
    lang: Option<String>,
    /// The step just done, for the confirmation line.
    done: Option<String>,
}

/// Who opens the page and how they act on it.
pub(super) enum Access {
    Session(WebSession),
    /// A signed case link: this case only; the owner acts.
    Link(String),
}

impl Access {
    pub(super) fn session(&self) -> Option<&WebSession> {
        match self {
            Access::Session(live) => Some(live),
            Access::Link(_) => None,
        }
    }
}

pub(super) fn not_found(web: &WebApp, lang: &str) -> Response {
    let catalog = web.pages.catalog(lang);
    message(
        web,
        lang,
        StatusCode::NOT_FOUND,
        catalog.text("not_found_title"),
        catalog.text("not_found"),
        Some(Link {
            href: "/inbox".into(),
            label: catalog.text("nav_inbox"),
        }),
    )
}

/// Who may see case `id`: a session covering it, or a signed link for it.
/// `Err` is the page to answer (no customer data in it).
pub(super) async fn access(
    state: &AppState,
    web: &WebApp,
    jar: &CookieJar,
    headers: &HeaderMap,
    id: Uuid,
    link: Option<&str>,
) -> Result<(Access, CaseDetail, String), Response> {
    let live = session::current(state, jar)
        .await
        .map_err(IntoResponse::into_response)?;
    let detail = match state.store.case_detail(id).await {
        Ok(detail) => Some(detail),
        Err(StoreError::CaseNotFound(_)) => None,
        Err(error) => return Err(ApiError::from(error).into_response()),
    };
    let owner_locale = detail.as_ref().map(|d| d.case.owner_locale.clone());
    let lang = session::language(
        state,
        None,
        jar,
        live.as_ref(),
        owner_locale.as_deref(),
        headers,
    );
    let catalog = web.pages.catalog(&lang);
    if let Some(live) = live {
        let caller = session::caller(state, &live);
        return match detail {
            Some(detail) if caller.sees(&detail.case) => Ok((Access::Session(live), detail, lang)),
            _ => Err(not_found(web, &lang)),
        };
    }
    let Some(link) = link else {
        return Err(message(
            web,
            &lang,
            StatusCode::NOT_FOUND,
            catalog.text("open_from_email_title"),
            catalog.text("open_from_email"),
            Some(Link {
                href: "/signin".into(),
                label: catalog.text("signin_title"),
            }),
        ));
    };
    let refused = |reason: String| {
        message(
            web,
            &lang,
            StatusCode::FORBIDDEN,
            catalog.text("link_refused_title"),
            catalog.fill("link_invalid", &[("reason", &reason)]),
            Some(Link {
                href: "/signin".into(),
                label: catalog.text("signin_title"),
            }),
        )
    };
    let Some(secret) = &state.link_secret else {
        return Err(refused(catalog.text("links_disabled")));
    };
    let claims =
        verify_view(secret, link, state.clock.now()).map_err(|e| refused(e.to_string()))?;
    if claims.view_case != id.to_string() {
        return Err(refused("this link was issued for another case".into()));
    }
    match detail {
        Some(detail) => Ok((Access::Link(link.to_owned()), detail, lang)),
        None => Err(not_found(web, &lang)),
    }
}

#[derive(Serialize)]
struct Row {
    label: String,
    value: String,
}

#[derive(Serialize)]
struct CaseBlock {
    title: String,
    scores: Vec<ScoreChip>,
    phone: Option<String>,
    phone_href: String,
    call: String,
    email: Option<String>,
    mailto: String,
    write: String,
    comment: Option<String>,
    answered: String,
    details: Vec<Row>,
}

#[derive(Serialize)]
struct Opt {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct Options {
    root_causes: Vec<Opt>,
    outcomes: Vec<Opt>,
    owners: Vec<Opt>,
}

#[derive(Serialize)]
struct Forms {
    base: String,
    link: Option<String>,
}

#[derive(Serialize)]
struct Earlier {
    text: String,
    href: Option<String>,
}

#[derive(Serialize)]
struct CaseContext<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    case: CaseBlock,
    clocks: Vec<Clock>,
    steps: Vec<&'static str>,
    options: Options,
    forms: Forms,
    history: Vec<Line>,
    earlier: Vec<Earlier>,
    flash: Option<String>,
    error: Option<String>,
    signed_in: bool,
}

fn case_block(reader: &Reader<'_>, detail: &CaseDetail, owner_name: &str) -> CaseBlock {
    let catalog = reader.catalog;
    let case = &detail.case;
    let event = &case.event;
    let customer = event.customer.display_name().to_owned();
    let phone = event.customer.phone.clone();
    let email = event.customer.email.clone();
    let mut details = vec![
        Row {
            label: catalog.text("detail_status"),
            value: catalog.label(Kind::Status, case.status.as_str()),
        },
        Row {
            label: catalog.text("detail_severity"),
            value: catalog.label(Kind::Severity, case.severity.as_str()),
        },
        Row {
            label: catalog.text("detail_owner"),
            value: owner_name.to_owned(),
        },
        Row {
            label: catalog.text("detail_opened"),
            value: reader.full(case.created_at),
        },
    ];
    let optional = [
        ("detail_store", event.location.store_id.clone()),
        ("detail_region", event.location.region.clone()),
        ("detail_channel", event.journey.channel.clone()),
        ("detail_product_line", event.product_line.clone()),
        (
            "detail_root_cause",
            case.root_cause
                .as_deref()
                .map(|c| catalog.label(Kind::RootCause, c)),
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            details.push(Row {
                label: catalog.text(key),
                value,
            });
        }
    }
    for (name, value) in &event.attributes {
        details.push(Row {
            label: super::format::humanize(name),
            value: value.to_string(),
        });
    }
    CaseBlock {
        title: catalog.fill("case_title", &[("customer", &customer)]),
        scores: score_chips(catalog, &event.scores),
        phone_href: phone
            .as_deref()
            .map(|p| format!("tel:{}", p.replace([' ', '.'], "")))
            .unwrap_or_default(),
        call: catalog.fill("call", &[("phone", phone.as_deref().unwrap_or(""))]),
        phone,
        mailto: email
            .as_deref()
            .map(|e| format!("mailto:{e}"))
            .unwrap_or_default(),
        write: catalog.fill("write", &[("email", email.as_deref().unwrap_or(""))]),
        email,
        comment: event.comment.clone().filter(|c| !c.trim().is_empty()),
        answered: catalog.fill(
            "answered",
            &[
                (
                    "at",
                    &reader.full(event.occurred_at.with_timezone(&chrono::Utc)),
                ),
                (
                    "touchpoint",
                    &catalog.label(Kind::Touchpoint, &event.journey.touchpoint),
                ),
            ],
        ),
        details,
    }
}

/// Render the page of a case for `access`, with a confirmation or an error.
#[allow(clippy::too_many_arguments)]
pub(super) async fn case_page(
    state: &AppState,
    web: &WebApp,
    lang: &str,
    access: &Access,
    detail: &CaseDetail,
    status: StatusCode,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let catalog = web.pages.catalog(lang);
    let case = &detail.case;
    let now = state.clock.now();
    let calendar = state
        .rules
        .as_ref()
        .map_or_else(closeloop_core::sla::Calendar::always_open, |r| {
            r.calendar(&case.owner_id)
        });
    let reader = Reader {
        catalog,
        lang,
        calendar: &calendar,
        now,
    };
    let name_of = |actor: &str| -> String {
        let id = actor.trim_end_matches(" (email link)");
        state
            .rules
            .as_ref()
            .and_then(|r| r.owner(id))
            .map_or_else(|| actor.to_owned(), |o| o.name)
    };
    let owner_name = name_of(&case.owner_id);
    let block = case_block(&reader, detail, &owner_name);
    let steps = Step::offered(&case.state(), &state.root_causes, now)
        .into_iter()
        .map(Step::as_str)
        .collect();
    let (csrf, link, who) = match access {
        Access::Session(live) => (
            live.csrf_token.clone(),
            None,
            Some(session::display_name(state, live)),
        ),
        Access::Link(link) => (
            state
                .link_secret
                .as_ref()
                .map(|s| link_form_token(s, link))
                .unwrap_or_default(),
            Some(link.clone()),
            None,
        ),
    };
    let earlier = match access {
        Access::Session(..) => state
            .store
            .cases_of_customer(&case.event.customer.id, case.id, 10)
            .await
            .unwrap_or_default()
            .iter()
            .map(|other| Earlier {
                text: format!(
                    "{} · {} · {}",
                    reader.full(other.created_at),
                    other.event.scores.summary(),
                    catalog.label(Kind::Status, other.status.as_str())
                ),
                href: Some(format!("/cases/{}", other.id)),
            })
            .collect(),
        // A forwarded link opens this case only.
        Access::Link(_) => Vec::new(),
    };
    let owners = match (access, &state.rules) {
        (Access::Session(..), Some(rules)) => rules
            .owners()
            .into_iter()
            .filter(|o| o.id != case.owner_id)
            .map(|o| Opt {
                label: o.name.clone(),
                value: o.id,
            })
            .collect(),
        _ => Vec::new(),
    };
    let path = match &link {
        Some(link) => format!("/cases/{}?link={link}", case.id),
        None => format!("/cases/{}", case.id),
    };
    let context = CaseContext {
        layout: layout(&web.pages, lang, block.title.clone(), &path, who, csrf),
        clocks: Stage::ALL
            .into_iter()
            .filter_map(|stage| reader.clock(case, stage))
            .collect(),
        steps,
        options: Options {
            root_causes: state
                .root_causes
                .iter()
                .map(|c| Opt {
                    value: c.clone(),
                    label: catalog.label(Kind::RootCause, c),
                })
                .collect(),
            outcomes: [
                ContactOutcome::Reached,
                ContactOutcome::Voicemail,
                ContactOutcome::NoAnswer,
            ]
            .into_iter()
            .map(|o| Opt {
                value: o.as_str().to_owned(),
                label: catalog.label(Kind::Outcome, o.as_str()),
            })
            .collect(),
            owners,
        },
        forms: Forms {
            base: format!("/cases/{}/do", case.id),
            link,
        },
        history: timeline(&reader, &detail.history, &detail.deliveries, &name_of),
        earlier,
        flash,
        error,
        signed_in: access.session().is_some(),
        case: block,
    };
    render(web, status, "case.html", &context)
}

/// `GET /cases/{id}`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Web(web): Web,
    Path(id): Path<String>,
    Query(query): Query<CaseQuery>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let web = &*web;
    let Ok(id) = Uuid::parse_str(&id) else {
        let lang = session::language(&state, None, &jar, None, None, &headers);
        return not_found(web, &lang);
    };
    let (access, detail, lang) =
        match access(&state, web, &jar, &headers, id, query.link.as_deref()).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let lang = match &query.lang {
        Some(asked) => web.pages.language(asked),
        None => lang,
    };
    let jar = session::remember_language(&state, jar, query.lang.as_deref(), &lang);
    let catalog = web.pages.catalog(&lang);
    let flash = query
        .done
        .as_deref()
        .and_then(|d| done_label(catalog, d))
        .map(|what| catalog.fill("done", &[("what", &what)]));
    let page = case_page(
        &state,
        web,
        &lang,
        &access,
        &detail,
        StatusCode::OK,
        flash,
        None,
    )
    .await;
    (jar, page).into_response()
}

/// What was just done, as the history names it ("Call logged").
fn done_label(catalog: &Catalog, step: &str) -> Option<String> {
    let known = Step::parse(step).is_some() || matches!(step, "reassign" | "watch");
    known.then(|| catalog.label(Kind::Action, step))
}
