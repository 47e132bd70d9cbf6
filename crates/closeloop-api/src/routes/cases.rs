use closeloop_core::Status;
use closeloop_store::CaseFilter;

use crate::dto::{CaseDetailBody, CaseListBody, HistoryItem};

use super::prelude::*;
use super::rules::rules_control;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    owner: Option<String>,
    store: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub(crate) async fn list_cases(
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
    Ok(Json(CaseListBody::new(&cases, filter.limit, filter.offset)).into_response())
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("case {text} not found")))
}

/// The case id of the path, if the caller may see that case: outside a
/// manager's scope a case answers 404, exactly as a missing one.
/// Route layer of the one-case routes: 404 unless the caller may see the
/// case named in the path.
pub(crate) async fn case_in_scope(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = params.get("id").map(String::as_str).unwrap_or_default();
    let mut request = request;
    match visible_case(&state, &caller, id).await {
        Ok(id) => {
            request.extensions_mut().insert(VisibleCase(id));
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// The case of the path, once the route layer ([`case_in_scope`]) found
/// that the caller may see it. A handler that takes it cannot be reached
/// around the scope check: without the layer it answers 500, never data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VisibleCase(pub Uuid);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for VisibleCase {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<VisibleCase>()
            .copied()
            .ok_or_else(|| ApiError::Internal("a one-case route is missing its scope layer".into()))
    }
}

pub(crate) async fn visible_case(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Uuid, ApiError> {
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

pub(crate) async fn get_case(
    State(state): State<AppState>,
    VisibleCase(id): VisibleCase,
) -> Result<Response, ApiError> {
    let detail = state.store.case_detail(id).await?;
    Ok(Json(CaseDetailBody::from(&detail)).into_response())
}

pub(crate) async fn root_causes(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"root_causes": *state.root_causes}))
}

/// `GET /v1/cases/{id}/trace`: why the case exists and what happened to
/// each of its notifications: the rules that matched, the routing path, and
/// every delivery attempt with its outcome.
pub(crate) async fn case_trace(
    State(state): State<AppState>,
    VisibleCase(id): VisibleCase,
) -> Result<Response, ApiError> {
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
        "history": detail.history.iter().map(HistoryItem::from).collect::<Vec<_>>(),
        "deliveries": deliveries,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReassignBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    owner: String,
    reason: String,
}

/// Give the case to another owner of the directory, with a reason.
pub(crate) async fn reassign(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    VisibleCase(id): VisibleCase,
    ApiJson(b): ApiJson<ReassignBody>,
) -> Result<Response, ApiError> {
    let actor = caller.actor(b.actor.as_deref())?;
    let owner = rules_control(&state)?.owner(&b.owner).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "owner: unknown owner \"{}\" (not in the owner directory)",
            b.owner
        ))
    })?;
    let detail = state
        .store
        .reassign(id, &owner, &b.reason, &actor, state.clock.now())
        .await?;
    tracing::info!(case = %id, owner = %owner.id, actor, "case reassigned");
    Ok(Json(CaseDetailBody::from(&detail)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatcherBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    name: String,
    email: String,
    #[serde(default)]
    locale: Option<String>,
}

pub(crate) async fn list_watchers(
    State(state): State<AppState>,
    VisibleCase(id): VisibleCase,
) -> Result<Response, ApiError> {
    // 404 for an unknown case, as for every case route.
    state.store.case_detail(id).await?;
    Ok(Json(json!({ "watchers": state.store.watchers(id).await? })).into_response())
}

/// A watcher as asked, if allowed: a name, an address of the directory or
/// of an allowed domain (anything else would send customer data outside).
pub(crate) fn watcher_of(
    state: &AppState,
    name: &str,
    email: &str,
    locale: Option<&str>,
) -> Result<closeloop_store::Recipient, ApiError> {
    let (name, email) = (name.trim(), email.trim());
    if name.is_empty() {
        return Err(ApiError::BadRequest("name: must not be empty".into()));
    }
    if !closeloop_core::owners::looks_like_email(email) {
        return Err(ApiError::BadRequest(format!(
            "email: \"{email}\" is not an email address"
        )));
    }
    let in_directory = state
        .rules
        .as_ref()
        .is_some_and(|r| r.is_directory_email(email));
    if !closeloop_core::access::watcher_allowed(email, in_directory, &state.watcher_domains) {
        return Err(ApiError::BadRequest(
            "email: watchers must be people of the owner directory or have an address on an allowed domain (cases.watcher_domains)".into(),
        ));
    }
    Ok(closeloop_store::Recipient {
        name: name.to_owned(),
        email: email.to_owned(),
        locale: locale.unwrap_or("en").to_owned(),
    })
}

/// Subscribe someone to a case: they are told when it is acknowledged and
/// when it is resolved.
pub(crate) async fn add_watcher(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    VisibleCase(id): VisibleCase,
    ApiJson(b): ApiJson<WatcherBody>,
) -> Result<Response, ApiError> {
    let actor = caller.actor(b.actor.as_deref())?;
    let watcher = watcher_of(&state, &b.name, &b.email, b.locale.as_deref())?;
    let watchers = state
        .store
        .subscribe_watcher(id, &watcher, &actor, state.clock.now())
        .await?;
    tracing::info!(case = %id, actor, "watcher subscribed");
    Ok(Json(json!({ "watchers": watchers })).into_response())
}
