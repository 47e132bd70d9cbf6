//! The HTTP API of closeloop (axum): follow-up of cases by owners, event
//! intake for upstream systems, loop metrics for ops, health for operators.
//!
//! Architecture invariants: handlers hold no business rules (transitions
//! come from the core through the store); every error is mapped to a status
//! and logged in one place ([`ApiError`]); the server takes its listener and
//! its shutdown signal as parameters, so tests bind port 0.

mod auth;
pub mod dto;
mod error;
mod input;
mod limits;
mod links;
mod routes;
mod server;
pub mod web;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use closeloop_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use routes::cases::{
    add_watcher, case_in_scope, case_trace, get_case, list_cases, list_watchers, reassign,
    root_causes,
};
use routes::deliveries::{disabled_endpoints, enable_endpoint, list_deliveries, replay_deliveries};
use routes::events::ingest_events;
use routes::health::readyz;
use routes::metrics::{loop_metrics, metrics, score_metrics};
use routes::rules::{rules_reload, rules_status};
use routes::silences::{create_silence, expire_silence, list_silences};
use routes::steps::case_step;

pub use auth::Caller;
pub use error::ApiError;
pub use input::{ApiJson, ApiQuery};
pub use limits::HttpLimits;
pub use routes::deliveries::replay_selector;
pub use routes::silences::{parse_duration, validate_silence};
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
    /// The person of the directory with this address (case-insensitive).
    fn owner_by_email(&self, email: &str) -> Option<closeloop_core::Owner>;
    /// The business hours and time zone an owner's clocks run in.
    fn calendar(&self, owner_id: &str) -> closeloop_core::sla::Calendar;
    /// Everyone of the directory, by name.
    fn owners(&self) -> Vec<closeloop_core::Owner>;
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Root-cause codes a resolution must pick from.
    pub root_causes: Arc<Vec<String>>,
    pub intake: Option<Arc<dyn EventIntake>>,
    pub max_event_bytes: usize,
    /// "Now" for transitions, tokens, links and metrics.
    pub clock: Arc<dyn closeloop_core::clock::Clock>,
    pub rules: Option<Arc<dyn RulesControl>>,
    /// Key of one-click email links; `None` disables them.
    pub link_secret: Option<Arc<Vec<u8>>>,
    /// The service's metrics (`/metrics`); HTTP requests are counted in it.
    pub telemetry: Option<Arc<closeloop_telemetry::Telemetry>>,
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
    /// The manager's web app (pages, sign-in, sessions); `None` serves none.
    pub web: Option<Arc<web::WebApp>>,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    // Routes of one case: the caller's scope is checked first, before any
    // body is read, so a case outside it answers 404 whatever is sent (a
    // validation error would tell that it exists).
    let one_case = Router::new()
        .route("/v1/cases/{id}", get(get_case))
        .route("/v1/cases/{id}/acknowledge", post(case_step))
        .route("/v1/cases/{id}/notes", post(case_step))
        .route("/v1/cases/{id}/contact-attempts", post(case_step))
        .route("/v1/cases/{id}/resolve", post(case_step))
        .route("/v1/cases/{id}/reopen", post(case_step))
        .route("/v1/cases/{id}/close", post(case_step))
        .route("/v1/cases/{id}/wait", post(case_step))
        .route("/v1/cases/{id}/resume", post(case_step))
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
        .merge(web::routes())
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
        // One `request` span per request (method, path: a case id is in
        // it; a link token is not), so the handler's log lines name the
        // request they belong to.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<axum::body::Body>| {
                    // One-click and sign-in link tokens are capabilities:
                    // not logged (a case link's is in the query, not logged).
                    let path = request.uri().path();
                    let path = if path.starts_with("/a/") {
                        "/a/…"
                    } else if path.starts_with("/signin/") && path != "/signin/token" {
                        "/signin/…"
                    } else {
                        path
                    };
                    tracing::info_span!("request", method = %request.method(), path)
                },
            ),
        )
        .layer(axum::middleware::from_fn(web::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .with_state(state)
}

/// Count and time every request by its route pattern (never its path: a
/// case id or a link token is not a label).
async fn count_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(telemetry) = state.telemetry.clone() else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    telemetry.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
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
