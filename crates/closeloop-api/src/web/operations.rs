//! `GET /insights/operations`, for ops and admins: dead deliveries with
//! their replay button, webhook endpoints disabled by a 410 with their
//! re-enable button, the active rules and the last refused reload, and the
//! silences with create and expire. Each button is a form (session form
//! token) that calls the store as the API's routes do, then comes back.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use closeloop_core::access::Role;
use closeloop_store::{ReplaySelector, WebSession};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::forms::FormFields;
use super::session::{self, SignedIn};
use super::view::{layout, Layout, Reader};
use super::{form_refused, message, render, Web, WebApp};
use crate::routes::deliveries::endpoint_id;
use crate::{AppState, Caller};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OperationsQuery {
    /// What was just done, or refused.
    done: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Delivery {
    id: String,
    case_href: Option<String>,
    what: String,
    to: String,
    error: String,
    at: String,
}

#[derive(Serialize)]
struct Endpoint {
    id: String,
    url: String,
    reason: String,
    since: String,
}

#[derive(Serialize)]
struct Silence {
    id: String,
    matcher: String,
    state: String,
    until: String,
    reason: String,
    by: String,
    muted: i64,
}

#[derive(Serialize)]
struct Rules {
    version: String,
    rules: String,
    loaded_at: String,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct OperationsContext<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    deliveries: Vec<Delivery>,
    endpoints: Vec<Endpoint>,
    silences: Vec<Silence>,
    rules: Option<Rules>,
    flash: Option<String>,
    error: Option<String>,
}

/// Ops and admins only; a manager gets a page that says so.
fn operator(web: &WebApp, lang: &str, live: &WebSession) -> Result<(), Response> {
    if matches!(live.role, Role::Ops | Role::Admin) {
        return Ok(());
    }
    let catalog = web.pages.catalog(lang);
    Err(message(
        web,
        lang,
        StatusCode::FORBIDDEN,
        catalog.text("operations_title"),
        catalog.text("operations_only"),
        None,
    ))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<OperationsQuery>,
    signed: SignedIn,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, jar } = signed;
    if let Err(refused) = operator(web, &lang, &live) {
        return refused;
    }
    match operations_page(&state, web, &lang, &live, &query).await {
        Ok(page) => (jar, page).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn operations_page(
    state: &AppState,
    web: &WebApp,
    lang: &str,
    live: &WebSession,
    query: &OperationsQuery,
) -> Result<Response, crate::ApiError> {
    let catalog = web.pages.catalog(lang);
    let now = state.clock.now();
    let calendar = closeloop_core::sla::Calendar::always_open();
    let reader = Reader {
        catalog,
        lang,
        calendar: &calendar,
        now,
    };
    let deliveries = state
        .store
        .list_deliveries(Some("dead"), None, 50)
        .await?
        .into_iter()
        .map(|d| Delivery {
            id: d.id.to_string(),
            case_href: d.case_id.map(|id| format!("/cases/{id}")),
            what: format!(
                "{} ({})",
                catalog.label(super::Kind::Notification, &d.event_type),
                catalog.label(super::Kind::Delivery, &d.channel)
            ),
            // A webhook URL may carry a token: masked, as in the API.
            to: if d.channel == "webhook" {
                closeloop_core::redact::mask_url(&d.recipient)
            } else {
                d.recipient
            },
            error: d.last_error.unwrap_or_default(),
            at: reader.full(d.created_at),
        })
        .collect();
    let endpoints = state
        .store
        .disabled_endpoints()
        .await?
        .into_iter()
        .map(|e| Endpoint {
            id: endpoint_id(&e.url),
            url: closeloop_core::redact::mask_url(&e.url),
            reason: e.reason,
            since: reader.full(e.disabled_at),
        })
        .collect();
    let silences = state
        .store
        .silences()
        .await?
        .into_iter()
        .filter(|s| s.state(now) != "expired")
        .map(|s| Silence {
            id: s.id.to_string(),
            state: catalog.text(&format!("silence_{}", s.state(now))),
            until: reader.full(s.ends_at),
            matcher: s.matcher,
            reason: s.reason,
            by: s.created_by,
            muted: s.silenced,
        })
        .collect();
    let rules = state.rules.as_ref().map(|r| {
        let status = r.status();
        let text = |key: &str| status[key].as_str().unwrap_or_default().to_owned();
        Rules {
            version: text("version").chars().take(12).collect(),
            rules: format!(
                "{} · {}",
                catalog.fill("rules_count", &[("n", &status["rules"].to_string())]),
                catalog.fill("owners_count", &[("n", &status["owners"].to_string())])
            ),
            loaded_at: chrono::DateTime::parse_from_rfc3339(&text("loaded_at"))
                .map(|at| reader.full(at.with_timezone(&chrono::Utc)))
                .unwrap_or_default(),
            last_error: status["last_error"].as_str().map(str::to_owned),
        }
    });
    let context = OperationsContext {
        layout: layout(
            &web.pages,
            lang,
            catalog.text("operations_title"),
            "/insights/operations",
            Some(session::display_name(state, live)),
            live.csrf_token.clone(),
        ),
        deliveries,
        endpoints,
        silences,
        rules,
        flash: query
            .done
            .as_deref()
            .filter(|d| ["replayed", "enabled", "silenced", "expired"].contains(d))
            .map(|d| catalog.text(&format!("done_{d}"))),
        error: query.error.clone(),
    };
    Ok(render(web, StatusCode::OK, "operations.html", &context))
}

/// Back to the page, saying what happened.
fn back(result: Result<&str, String>) -> Response {
    let query = match result {
        Ok(done) => format!("done={done}"),
        Err(error) => format!(
            "error={}",
            form_urlencoded::byte_serialize(error.as_bytes()).collect::<String>()
        ),
    };
    Redirect::to(&format!("/insights/operations?{query}")).into_response()
}

/// `POST /insights/operations/{action}`: replay, enable, silence, expire.
pub(crate) async fn act(
    State(state): State<AppState>,
    Web(web): Web,
    Path(action): Path<String>,
    signed: SignedIn,
    body: Bytes,
) -> Response {
    let web = &*web;
    let SignedIn { live, lang, .. } = signed;
    if let Err(refused) = operator(web, &lang, &live) {
        return refused;
    }
    let form = FormFields::parse(&body);
    if !session::form_token_ok(&live, &form) {
        return form_refused(web, &lang, None);
    }
    let caller = session::caller(&state, &live);
    let now = state.clock.now();
    let result = match action.as_str() {
        "replay" => replay(&state, &form, now).await,
        "enable" => enable(&state, &form).await,
        "silence" => silence(&state, &caller, &form, now).await,
        "expire" => expire(&state, &form, now).await,
        _ => Err(format!("unknown action {action}")),
    };
    if let Ok(done) = &result {
        tracing::info!(action = %action, actor = %live.name, done, "operation from the web app");
    }
    back(result)
}

async fn replay(
    state: &AppState,
    form: &FormFields,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'static str, String> {
    let ids: Vec<Uuid> = form
        .all("id")
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    if ids.is_empty() {
        return Err("id: pick a delivery to replay".into());
    }
    state
        .store
        .replay_dead(&ReplaySelector::Ids(ids), now)
        .await
        .map_err(|e| e.to_string())?;
    Ok("replayed")
}

async fn enable(state: &AppState, form: &FormFields) -> Result<&'static str, String> {
    let id = form.get("id").ok_or("id: pick an endpoint")?;
    let url = state
        .store
        .disabled_endpoints()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| e.url)
        .find(|url| endpoint_id(url) == id)
        .ok_or_else(|| format!("no disabled endpoint has id {id}"))?;
    state
        .store
        .enable_endpoint(&url)
        .await
        .map_err(|e| e.to_string())?;
    Ok("enabled")
}

async fn silence(
    state: &AppState,
    caller: &Caller,
    form: &FormFields,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'static str, String> {
    let matcher = form.get("matcher").ok_or("matcher: required")?;
    let duration = crate::parse_duration(form.get("duration").unwrap_or("2h"))?;
    let reason = form.get("reason").unwrap_or_default();
    let created_by = caller
        .actor(None)
        .map_err(|_| "created_by: required".to_owned())?;
    let ends_at = now + duration;
    crate::validate_silence(matcher, now, ends_at, &created_by, reason)?;
    state
        .store
        .create_silence(matcher, now, ends_at, &created_by, reason, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok("silenced")
}

async fn expire(
    state: &AppState,
    form: &FormFields,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'static str, String> {
    let id = form
        .get("id")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or("id: pick a silence")?;
    state
        .store
        .expire_silence(id, now)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("silence {id} not found"))?;
    Ok("expired")
}
