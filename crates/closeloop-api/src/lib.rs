//! The HTTP API of closeloop (axum): follow-up of cases by owners, event
//! intake for upstream systems, loop metrics for ops, health for operators.
//!
//! Architecture invariants: handlers hold no business rules (transitions
//! come from the core through the store); every error is mapped to a status
//! and logged in one place ([`ApiError`]); the server takes its listener and
//! its shutdown signal as parameters, so tests bind port 0.

mod auth;
mod error;
mod input;
mod limits;
mod links;
mod page;
mod server;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use closeloop_core::{event::event_from_value, Command, ContactOutcome, Status};
use closeloop_store::{CaseFilter, ReplaySelector, Store};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use auth::Caller;
pub use error::ApiError;
pub use input::{ApiJson, ApiQuery};
pub use limits::HttpLimits;
pub use server::HttpTimeouts;

/// One event of a `POST /v1/events` request, validated: the parsed event
/// and the bytes a broker would carry.
#[derive(Debug, Clone)]
pub struct ValidEvent {
    pub event: closeloop_core::FeedbackEvent,
    pub payload: Vec<u8>,
}

/// Where accepted events go: stored at once (single-node mode) or
/// published to the intake topic (Kafka mode). `Ok` only once every event
/// of the request is durable (committed, or acknowledged by the broker);
/// `Err` is the reason, answered 503 (the client retries the same request:
/// events are idempotent by `event_id`).
#[async_trait::async_trait]
pub trait EventIntake: Send + Sync {
    async fn accept(&self, events: Vec<ValidEvent>) -> Result<(), String>;
}

/// The active rules, for `GET /v1/rules/status` and `POST /v1/rules/reload`.
pub trait RulesControl: Send + Sync {
    fn status(&self) -> Value;
    /// Reload from the files; `Err` (the refusal) leaves the last good rules active.
    fn reload(&self) -> Result<Value, String>;
    /// An owner of the active directory.
    fn owner(&self, id: &str) -> Option<closeloop_core::Owner>;
    /// The cases a manager (an owner of the directory) may see.
    fn scope(&self, owner_id: &str) -> closeloop_core::access::Scope;
    /// Whether `email` is the address of a person of the owner directory.
    fn is_directory_email(&self, email: &str) -> bool;
}

/// Prometheus text exposition of the service's counters.
pub trait MetricsSource: Send + Sync {
    fn render(&self) -> String;
}

/// The source of "now" for case transitions, injectable for tests.
pub type NowFn = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Root-cause codes a resolution must pick from.
    pub root_causes: Arc<Vec<String>>,
    pub intake: Option<Arc<dyn EventIntake>>,
    pub max_event_bytes: usize,
    pub now: NowFn,
    pub rules: Option<Arc<dyn RulesControl>>,
    /// Key of one-click email links; `None` disables them.
    pub link_secret: Option<Arc<Vec<u8>>>,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub limits: HttpLimits,
    /// `/v1` needs a bearer token (see [`auth`]).
    pub auth_required: bool,
    /// Header read and whole-request time limits.
    pub timeouts: HttpTimeouts,
    /// `/metrics` needs this bearer token when set.
    pub metrics_token: Option<String>,
    /// Domains whose addresses may be watchers besides the directory's
    /// people (`cases.watcher_domains`).
    pub watcher_domains: Arc<Vec<String>>,
    /// Proxies whose forwarding headers name the client (rate limit key).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    // Routes of one case: the caller's scope is checked first, before any
    // body is read, so a case outside it answers 404 whatever is sent (a
    // validation error would tell that it exists).
    let one_case = Router::new()
        .route("/v1/cases/{id}", get(get_case))
        .route("/v1/cases/{id}/acknowledge", post(acknowledge))
        .route("/v1/cases/{id}/notes", post(add_note))
        .route("/v1/cases/{id}/contact-attempts", post(record_contact))
        .route("/v1/cases/{id}/resolve", post(resolve))
        .route("/v1/cases/{id}/reopen", post(reopen))
        .route("/v1/cases/{id}/close", post(close))
        .route("/v1/cases/{id}/wait", post(wait_on_customer))
        .route("/v1/cases/{id}/resume", post(resume))
        .route("/v1/cases/{id}/reassign", post(reassign))
        .route("/v1/cases/{id}/trace", get(case_trace))
        .route(
            "/v1/cases/{id}/watchers",
            get(list_watchers).post(add_watcher),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            case_in_scope,
        ));
    let v1 = Router::new()
        .route("/v1/events", post(ingest_events))
        .route("/v1/cases", get(list_cases))
        .merge(one_case)
        .route("/v1/deliveries", get(list_deliveries))
        .route("/v1/deliveries/replay", post(replay_deliveries))
        .route("/v1/endpoints/disabled", get(disabled_endpoints))
        .route("/v1/endpoints/enable", post(enable_endpoint))
        .route("/v1/silences", get(list_silences).post(create_silence))
        .route("/v1/silences/{id}/expire", post(expire_silence))
        .route("/v1/root-causes", get(root_causes))
        .route("/v1/rules/status", get(rules_status))
        .route("/v1/rules/reload", post(rules_reload))
        .route("/v1/metrics/loop", get(loop_metrics))
        .route("/v1/metrics/scores", get(score_metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let limited = Router::new()
        .merge(v1)
        .route("/cases/{id}", get(case_page))
        .route("/a/{token}", get(links::confirm).post(links::apply))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let limited = match limits::ClientRateLimit::new(&limits, state.trusted_proxies.clone()) {
        Some(limit) => limited.layer(axum::middleware::from_fn_with_state(
            limit,
            limits::rate_limit,
        )),
        None => limited,
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(limited)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until `cancel` fires, then finish in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let timeouts = state.timeouts;
    server::serve_router(listener, router(state), timeouts, cancel).await
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(error) => {
            // The cause goes to the log, not to whoever probes.
            tracing::warn!(%error, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "error": "the database does not answer"})),
            )
                .into_response()
        }
    }
}

/// `POST /v1/events`: one event object or an array of them. All are
/// validated first; if any is invalid nothing is published and the answer
/// names each bad element and field.
async fn ingest_events(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    // The contract's JSON; each event's fields are then checked by the core
    // parser, which names them (not by the generic sweep of `ApiJson`).
    let (items, single) = match input::json_body(body)? {
        Value::Array(items) => (items, false),
        other => (vec![other], true),
    };
    if items.is_empty() {
        return Err(ApiError::BadRequest("the array holds no event".into()));
    }
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let payload = serde_json::to_vec(item).map_err(|e| ApiError::Internal(e.to_string()))?;
        let result = if payload.len() > state.max_event_bytes {
            Err(closeloop_core::EventError::TooLarge {
                size: payload.len(),
                limit: state.max_event_bytes,
            })
        } else {
            event_from_value(item)
        };
        match result {
            Ok(event) => valid.push(ValidEvent { event, payload }),
            Err(error) => errors
                .push(json!({"index": index, "field": error.field(), "error": error.to_string()})),
        }
    }
    if !errors.is_empty() {
        let body = if single {
            let only = &errors[0];
            json!({"error": only["error"], "field": only["field"]})
        } else {
            json!({"error": format!("{} of {} events are invalid; none was accepted", errors.len(), items.len()), "errors": errors})
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    }
    let intake = state.intake.as_ref().ok_or_else(|| {
        ApiError::Unavailable("event intake is not configured on this instance".into())
    })?;
    let count = valid.len();
    intake.accept(valid).await.map_err(ApiError::Unavailable)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": count}))).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    owner: Option<String>,
    store: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_cases(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let status = match &query.status {
        None => None,
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            let all: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::BadRequest(format!(
                "status: must be one of {} (got \"{text}\")",
                all.join(", ")
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit: must be from 1 to 500".into()));
    }
    let filter = CaseFilter {
        status,
        owner_id: query.owner,
        store_id: query.store,
        limit,
        offset: query.offset.unwrap_or(0).max(0),
        scope: caller.scope().cloned(),
    };
    let cases = state.store.list_cases(&filter).await?;
    Ok(
        Json(json!({"cases": cases, "limit": filter.limit, "offset": filter.offset}))
            .into_response(),
    )
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("case {text} not found")))
}

/// The case id of the path, if the caller may see that case: outside a
/// manager's scope a case answers 404, exactly as a missing one.
/// Route layer of the one-case routes: 404 unless the caller may see the
/// case named in the path.
async fn case_in_scope(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = params.get("id").map(String::as_str).unwrap_or_default();
    match visible_case(&state, &caller, id).await {
        Ok(_) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn visible_case(state: &AppState, caller: &Caller, id: &str) -> Result<Uuid, ApiError> {
    let uuid = parse_id(id)?;
    if caller.scope().is_some() {
        let visible = state
            .store
            .case_views(&[uuid])
            .await?
            .first()
            .is_some_and(|case| caller.sees(case));
        if !visible {
            return Err(ApiError::NotFound(format!("case {id} not found")));
        }
    }
    Ok(uuid)
}

async fn get_case(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = state
        .store
        .case_detail(visible_case(&state, &caller, &id).await?)
        .await?;
    Ok(Json(detail).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorNote {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    outcome: ContactOutcome,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    root_cause: String,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    reason: String,
}

async fn run_command(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: Command,
    actor: Option<&str>,
) -> Result<Response, ApiError> {
    let id = visible_case(state, caller, id).await?;
    let actor = caller.actor(actor)?;
    let detail = state
        .store
        .apply_command(id, &command, &actor, (state.now)(), &state.root_causes)
        .await?;
    tracing::info!(case = %id, action = command.action(), actor, status = %detail.case.status, "case updated");
    Ok(Json(detail).into_response())
}

async fn acknowledge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ActorNote>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::Acknowledge { note: b.note },
        b.actor.as_deref(),
    )
    .await
}

async fn add_note(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ActorNote>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::AddNote {
            note: b.note.unwrap_or_default(),
        },
        b.actor.as_deref(),
    )
    .await
}

async fn record_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ContactBody>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::RecordContact {
            outcome: b.outcome,
            note: b.note,
        },
        b.actor.as_deref(),
    )
    .await
}

async fn resolve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ResolveBody>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::Resolve {
            root_cause: b.root_cause,
            note: b.note,
        },
        b.actor.as_deref(),
    )
    .await
}

async fn reopen(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReopenBody>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::Reopen { reason: b.reason },
        b.actor.as_deref(),
    )
    .await
}

async fn close(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ActorNote>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::Close { note: b.note },
        b.actor.as_deref(),
    )
    .await
}

async fn root_causes(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"root_causes": *state.root_causes}))
}

#[derive(Debug, Deserialize)]
struct MetricsQuery {
    group_by: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

async fn loop_metrics(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Response, ApiError> {
    let group_by = query.group_by.as_deref().unwrap_or("owner");
    let column = match group_by {
        "owner" => "owner_id",
        "store" => "store_id",
        "region" => "region",
        other => {
            return Err(ApiError::BadRequest(format!(
                "group_by: must be one of owner, store, region (got \"{other}\")"
            )))
        }
    };
    let to = query
        .to
        .unwrap_or_else(|| (state.now)() + chrono::Duration::seconds(1));
    let from = query.from.unwrap_or(to - chrono::Duration::days(30));
    let rows = state
        .store
        .loop_metrics(column, from, to, (state.now)())
        .await?;
    let causes = state.store.top_root_causes(column, from, to).await?;
    let groups: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut value = serde_json::to_value(row).unwrap_or_default();
            let top: Vec<Value> = causes
                .iter()
                .filter(|c| c.group == row.group)
                .take(5)
                .map(|c| json!({"root_cause": c.root_cause, "cases": c.cases}))
                .collect();
            value["top_root_causes"] = json!(top);
            value
        })
        .collect();
    Ok(
        Json(json!({"group_by": group_by, "from": from, "to": to, "groups": groups}))
            .into_response(),
    )
}

async fn case_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = state.store.case_detail(parse_id(&id)?).await?;
    Ok(Html(page::render(
        &detail,
        &state.root_causes,
        state.auth_required,
    ))
    .into_response())
}

/// `GET /v1/cases/{id}/trace`: why the case exists and what happened to
/// each of its notifications: the rules that matched, the routing path, and
/// every delivery attempt with its outcome.
async fn case_trace(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = visible_case(&state, &caller, &id).await?;
    let detail = state.store.case_detail(id).await?;
    let attempts = state.store.attempts_of_case(id).await?;
    let deliveries: Vec<Value> = detail
        .deliveries
        .iter()
        .map(|d| {
            let tries: Vec<_> = attempts.iter().filter(|a| a.outbox_id == d.id).collect();
            json!({
                "id": d.id, "channel": d.channel, "event_type": d.event_type, "status": d.status,
                "last_error": d.last_error, "created_at": d.created_at, "sent_at": d.sent_at,
                "next_attempt_at": d.next_attempt_at, "attempts": tries,
            })
        })
        .collect();
    Ok(Json(json!({
        "case_id": id,
        "event_id": detail.case.event_id,
        "rules": detail.case.rule_ids,
        "route": detail.case.route,
        "owner_id": detail.case.owner_id,
        "history": detail.history,
        "deliveries": deliveries,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct DeliveriesQuery {
    status: Option<String>,
    case: Option<Uuid>,
    limit: Option<i64>,
}

async fn list_deliveries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    if let Some(status) = &query.status {
        if !matches!(status.as_str(), "pending" | "sent" | "dead") {
            return Err(ApiError::BadRequest(format!(
                "status: must be one of pending, sent, dead (got \"{status}\")"
            )));
        }
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit: must be from 1 to 1000".into()));
    }
    let mut deliveries = state
        .store
        .list_deliveries(query.status.as_deref(), query.case, limit)
        .await?;
    // A webhook recipient is a URL that may carry a token: shown masked.
    for delivery in &mut deliveries {
        if delivery.channel == "webhook" {
            delivery.recipient = closeloop_core::redact::mask_url(&delivery.recipient);
        }
    }
    Ok(Json(json!({"deliveries": deliveries})).into_response())
}

/// Exactly one selector: `ids`, `case_id`, or `from` and `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    ids: Option<Vec<Uuid>>,
    case_id: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// Turn a replay request into a selector, refusing ambiguous ones.
pub fn replay_selector(
    ids: Option<Vec<Uuid>>,
    case_id: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<ReplaySelector, String> {
    match (ids, case_id, from, to) {
        (Some(ids), None, None, None) if !ids.is_empty() => Ok(ReplaySelector::Ids(ids)),
        (None, Some(case), None, None) => Ok(ReplaySelector::Case(case)),
        (None, None, Some(from), Some(to)) if from < to => {
            Ok(ReplaySelector::CreatedBetween(from, to))
        }
        (None, None, Some(_), Some(_)) => Err("from: must be before to".into()),
        _ => Err("give exactly one of: ids (non-empty), case_id, or from and to".into()),
    }
}

async fn replay_deliveries(
    State(state): State<AppState>,
    ApiJson(b): ApiJson<ReplayBody>,
) -> Result<Response, ApiError> {
    let selector = replay_selector(b.ids, b.case_id, b.from, b.to).map_err(ApiError::BadRequest)?;
    let replayed = state.store.replay_dead(&selector, (state.now)()).await?;
    tracing::info!(count = replayed.len(), "dead deliveries replayed");
    Ok(Json(json!({"replayed": replayed.len(), "ids": replayed})).into_response())
}

/// The short id of an endpoint URL: how the API names it without showing
/// the token the URL may carry.
fn endpoint_id(url: &str) -> String {
    closeloop_core::access::token_hash(url)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn disabled_endpoints(State(state): State<AppState>) -> Result<Response, ApiError> {
    let endpoints: Vec<Value> = state
        .store
        .disabled_endpoints()
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": endpoint_id(&e.url),
                "url": closeloop_core::redact::mask_url(&e.url),
                "disabled_at": e.disabled_at,
                "reason": e.reason,
            })
        })
        .collect();
    Ok(Json(json!({ "endpoints": endpoints })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    /// The endpoint's full URL, or
    #[serde(default)]
    url: Option<String>,
    /// its id from `GET /v1/endpoints/disabled`.
    #[serde(default)]
    id: Option<String>,
}

/// Re-enable a webhook endpoint disabled by a 410 answer. Its dead
/// deliveries stay dead until replayed.
async fn enable_endpoint(
    State(state): State<AppState>,
    ApiJson(b): ApiJson<EnableBody>,
) -> Result<Response, ApiError> {
    let url = match (b.url, b.id) {
        (Some(url), None) => url,
        (None, Some(id)) => state
            .store
            .disabled_endpoints()
            .await?
            .into_iter()
            .map(|e| e.url)
            .find(|url| endpoint_id(url) == id)
            .ok_or_else(|| ApiError::NotFound(format!("no disabled endpoint has id {id}")))?,
        _ => return Err(ApiError::BadRequest("give exactly one of url or id".into())),
    };
    let masked = closeloop_core::redact::mask_url(&url);
    if !state.store.enable_endpoint(&url).await? {
        return Err(ApiError::NotFound(format!(
            "endpoint {masked} is not disabled"
        )));
    }
    tracing::info!(endpoint = %masked, "webhook endpoint re-enabled");
    Ok(Json(json!({"enabled": masked, "id": endpoint_id(&url)})).into_response())
}

fn rules_control(state: &AppState) -> Result<&Arc<dyn RulesControl>, ApiError> {
    state
        .rules
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("rules are not managed by this instance".into()))
}

async fn rules_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(rules_control(&state)?.status()).into_response())
}

/// Reload rules and owners now. A refused set answers 422 with every
/// problem; the last good set stays active.
async fn rules_reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    match rules_control(&state)?.reload() {
        Ok(status) => Ok(Json(status).into_response()),
        Err(error) => Err(ApiError::BadRequest(error)),
    }
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    // Per-owner figures are not for everyone: with `http.metrics_token`,
    // the scraper presents it as a bearer token.
    if let Some(expected) = &state.metrics_token {
        let presented = auth::bearer_token(&headers).unwrap_or_default();
        // Hashes compared: no timing tells how much of the token was right.
        use closeloop_core::access::token_hash;
        if token_hash(presented) != token_hash(expected) {
            return ApiError::Unauthorized(
                "/metrics: send http.metrics_token as `Authorization: Bearer <token>`".into(),
            )
            .into_response();
        }
    }
    let mut body = state
        .metrics
        .as_ref()
        .map(|m| m.render())
        .unwrap_or_default();
    // The loop figures of the last 30 days, per owner. A scrape while the
    // database is down still gets the service's own counters.
    let now = (state.now)();
    match state
        .store
        .loop_metrics("owner_id", now - chrono::Duration::days(30), now, now)
        .await
    {
        Ok(rows) => body.push_str(&loop_exposition(&rows)),
        Err(error) => tracing::warn!(%error, "loop metrics unavailable for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// Prometheus text exposition of loop figures, one series per owner.
fn loop_exposition(rows: &[closeloop_store::LoopMetricsRow]) -> String {
    type Figure = fn(&closeloop_store::LoopMetricsRow) -> Option<f64>;
    let figures: [(&str, &str, Figure); 12] = [
        (
            "closeloop_loop_cases_opened",
            "Cases opened in the last 30 days.",
            |r| Some(r.opened as f64),
        ),
        (
            "closeloop_loop_cases_acknowledged",
            "Of those, acknowledged.",
            |r| Some(r.acknowledged as f64),
        ),
        (
            "closeloop_loop_cases_contacted",
            "Of those, with the customer contacted.",
            |r| Some(r.contacted as f64),
        ),
        (
            "closeloop_loop_cases_resolved",
            "Of those, resolved.",
            |r| Some(r.resolved as f64),
        ),
        (
            "closeloop_loop_cases_overdue",
            "Of those, flagged for a missed SLA deadline.",
            |r| Some(r.overdue as f64),
        ),
        (
            "closeloop_loop_ack_seconds_p50",
            "Median time to acknowledge.",
            |r| r.p50_ack_seconds,
        ),
        (
            "closeloop_loop_contact_seconds_p50",
            "Median time to first contact.",
            |r| r.p50_contact_seconds,
        ),
        (
            "closeloop_loop_resolve_seconds_p50",
            "Median time to resolve.",
            |r| r.p50_resolve_seconds,
        ),
        (
            "closeloop_loop_ack_within_sla_ratio",
            "Share acknowledged within SLA.",
            |r| r.ack_within_sla,
        ),
        (
            "closeloop_loop_contact_within_sla_ratio",
            "Share contacted within SLA.",
            |r| r.contact_within_sla,
        ),
        (
            "closeloop_loop_resolve_within_sla_ratio",
            "Share resolved within SLA.",
            |r| r.resolve_within_sla,
        ),
        (
            "closeloop_loop_recovery_ratio",
            "Share of resolved cases whose customer came back a promoter.",
            |r| r.recovery_rate,
        ),
    ];
    let mut out = String::new();
    for (name, help, figure) in figures {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for row in rows {
            if let Some(value) = figure(row) {
                let owner = row.group.as_deref().unwrap_or("");
                out.push_str(&format!(
                    "{name}{{owner=\"{}\"}} {value}\n",
                    escape_label(owner)
                ));
            }
        }
    }
    out
}

/// A label value as the exposition format wants it.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Check a silence before it is stored: the matcher compiles, the period is
/// sound, and someone owns it.
pub fn validate_silence(
    matcher: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: &str,
    reason: &str,
) -> Result<(), String> {
    closeloop_core::cel::Matcher::compile(matcher).map_err(|e| format!("matcher: {e}"))?;
    if ends_at <= starts_at {
        return Err("ends_at: must be after starts_at".into());
    }
    if created_by.trim().is_empty() {
        return Err("created_by: must not be empty".into());
    }
    if reason.trim().is_empty() {
        return Err(
            "reason: must not be empty (say why, for whoever finds this silence later)".into(),
        );
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    /// A CEL condition, as in rules: `store == "LYON-02"`.
    matcher: String,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// Instead of ends_at: "2h", "3d".
    duration: Option<String>,
    /// Ignored with a token: the token's name is who created it.
    #[serde(default)]
    created_by: Option<String>,
    reason: String,
}

fn silence_json(s: &closeloop_store::SilenceView, now: DateTime<Utc>) -> Value {
    let mut value = serde_json::to_value(s).unwrap_or_default();
    value["state"] = json!(s.state(now));
    value
}

async fn create_silence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(b): ApiJson<SilenceBody>,
) -> Result<Response, ApiError> {
    let created_by = caller
        .actor(b.created_by.as_deref())
        .map_err(|_| ApiError::BadRequest("created_by: required".into()))?;
    let now = (state.now)();
    let starts_at = b.starts_at.unwrap_or(now);
    let ends_at = match (b.ends_at, &b.duration) {
        (Some(end), None) => end,
        (None, Some(duration)) => {
            let d = parse_duration(duration).map_err(ApiError::BadRequest)?;
            starts_at
                .checked_add_signed(d)
                .ok_or_else(|| ApiError::BadRequest("duration: ends after the year 9999".into()))?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of ends_at or duration".into(),
            ))
        }
    };
    validate_silence(&b.matcher, starts_at, ends_at, &created_by, &b.reason)
        .map_err(ApiError::BadRequest)?;
    let silence = state
        .store
        .create_silence(&b.matcher, starts_at, ends_at, &created_by, &b.reason, now)
        .await?;
    tracing::info!(silence = %silence.id, created_by = %silence.created_by, until = %silence.ends_at, "silence created");
    Ok((StatusCode::CREATED, Json(silence_json(&silence, now))).into_response())
}

/// "90m", "2h", "3d", "1w" into a duration.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("duration: \"{text}\" is not like 90m, 2h, 3d or 1w"))?;
    let d = match unit {
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => {
            return Err(format!(
                "duration: \"{text}\" is not like 90m, 2h, 3d or 1w"
            ))
        }
    };
    if n <= 0 {
        return Err("duration: must be positive".into());
    }
    // A silence longer than ten years is a typo; past it, times overflow.
    match d {
        Some(d) if d <= chrono::Duration::days(3650) => Ok(d),
        _ => Err("duration: must be at most 3650d (ten years)".into()),
    }
}

#[derive(Debug, Deserialize)]
struct SilencesQuery {
    state: Option<String>,
}

async fn list_silences(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SilencesQuery>,
) -> Result<Response, ApiError> {
    let now = (state.now)();
    if let Some(s) = &q.state {
        if !matches!(s.as_str(), "pending" | "active" | "expired") {
            return Err(ApiError::BadRequest(format!(
                "state: must be one of pending, active, expired (got \"{s}\")"
            )));
        }
    }
    let silences: Vec<Value> = state
        .store
        .silences()
        .await?
        .iter()
        .filter(|s| q.state.as_deref().is_none_or(|want| s.state(now) == want))
        .map(|s| silence_json(s, now))
        .collect();
    Ok(Json(json!({"silences": silences})).into_response())
}

async fn expire_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::NotFound(format!("silence {id} not found")))?;
    let now = (state.now)();
    let silence = state
        .store
        .expire_silence(id, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("silence {id} not found")))?;
    tracing::info!(silence = %id, "silence expired");
    Ok(Json(silence_json(&silence, now)).into_response())
}

/// `GET /v1/metrics/scores?group_by=store|region|touchpoint|day&from=&to=`:
/// NPS, CSAT and CES of every event received, not only the flagged ones.
async fn score_metrics(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Response, ApiError> {
    let group_by = query.group_by.as_deref().unwrap_or("store");
    let expr = match group_by {
        "store" => "store_id",
        "region" => "region",
        "touchpoint" => "touchpoint",
        "day" => "(occurred_at AT TIME ZONE 'UTC')::date",
        other => {
            return Err(ApiError::BadRequest(format!(
                "group_by: must be one of store, region, touchpoint, day (got \"{other}\")"
            )))
        }
    };
    let to = query
        .to
        .unwrap_or_else(|| (state.now)() + chrono::Duration::seconds(1));
    let from = query.from.unwrap_or(to - chrono::Duration::days(90));
    let rows = state.store.score_metrics(expr, from, to).await?;
    Ok(Json(json!({"group_by": group_by, "from": from, "to": to, "groups": rows})).into_response())
}

async fn wait_on_customer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ActorNote>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::WaitOnCustomer { note: b.note },
        b.actor.as_deref(),
    )
    .await
}

async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ActorNote>,
) -> Result<Response, ApiError> {
    run_command(
        &state,
        &caller,
        &id,
        Command::Resume { note: b.note },
        b.actor.as_deref(),
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    owner: String,
    reason: String,
}

/// Give the case to another owner of the directory, with a reason.
async fn reassign(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReassignBody>,
) -> Result<Response, ApiError> {
    let id = visible_case(&state, &caller, &id).await?;
    let actor = caller.actor(b.actor.as_deref())?;
    let owner = rules_control(&state)?.owner(&b.owner).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "owner: unknown owner \"{}\" (not in the owner directory)",
            b.owner
        ))
    })?;
    let detail = state
        .store
        .reassign(id, &owner, &b.reason, &actor, (state.now)())
        .await?;
    tracing::info!(case = %id, owner = %owner.id, actor, "case reassigned");
    Ok(Json(detail).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatcherBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    name: String,
    email: String,
    #[serde(default)]
    locale: Option<String>,
}

async fn list_watchers(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = visible_case(&state, &caller, &id).await?;
    // 404 for an unknown case, as for every case route.
    state.store.case_detail(id).await?;
    Ok(Json(json!({ "watchers": state.store.watchers(id).await? })).into_response())
}

/// Subscribe someone to a case: they are told when it is acknowledged and
/// when it is resolved.
async fn add_watcher(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<WatcherBody>,
) -> Result<Response, ApiError> {
    let id = visible_case(&state, &caller, &id).await?;
    let actor = caller.actor(b.actor.as_deref())?;
    if b.name.trim().is_empty() {
        return Err(ApiError::BadRequest("name: must not be empty".into()));
    }
    if !closeloop_core::owners::looks_like_email(b.email.trim()) {
        return Err(ApiError::BadRequest(format!(
            "email: \"{}\" is not an email address",
            b.email
        )));
    }
    let in_directory = state
        .rules
        .as_ref()
        .is_some_and(|r| r.is_directory_email(b.email.trim()));
    if !closeloop_core::access::watcher_allowed(
        b.email.trim(),
        in_directory,
        &state.watcher_domains,
    ) {
        return Err(ApiError::BadRequest(
            "email: watchers must be people of the owner directory or have an address on an allowed domain (cases.watcher_domains)".into(),
        ));
    }
    let watcher = closeloop_store::Recipient {
        name: b.name.trim().to_owned(),
        email: b.email.trim().to_owned(),
        locale: b.locale.unwrap_or_else(|| "en".into()),
    };
    let watchers = state
        .store
        .subscribe_watcher(id, &watcher, &actor, (state.now)())
        .await?;
    tracing::info!(case = %id, actor, "watcher subscribed");
    Ok(Json(json!({ "watchers": watchers })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
    }

    #[test]
    fn durations_and_silence_checks() {
        assert_eq!(
            parse_duration("90m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert_eq!(parse_duration("3d").unwrap(), chrono::Duration::days(3));
        for bad in ["", "2", "2y", "-1h", "0h", "h", "999999999999w", "3651d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        assert!(validate_silence(r#"store == "LYON-02""#, now, later, "ops", "outage").is_ok());
        let cases = [
            (
                r#"stor == "LYON-02""#,
                now,
                later,
                "ops",
                "outage",
                "matcher: line 1, column 1: unknown field `stor`",
            ),
            (
                r#"store == "LYON-02""#,
                later,
                now,
                "ops",
                "outage",
                "ends_at: must be after starts_at",
            ),
            (
                r#"store == "LYON-02""#,
                now,
                later,
                " ",
                "outage",
                "created_by",
            ),
            (r#"store == "LYON-02""#, now, later, "ops", "", "reason"),
        ];
        for (matcher, start, end, by, reason, expected) in cases {
            let err = validate_silence(matcher, start, end, by, reason).unwrap_err();
            assert!(err.contains(expected), "`{expected}` missing from `{err}`");
        }
    }
}
