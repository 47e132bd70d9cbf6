use closeloop_store::ReplaySelector;

use super::prelude::*;

#[derive(Debug, Deserialize)]
pub(crate) struct DeliveriesQuery {
    status: Option<String>,
    case: Option<Uuid>,
    limit: Option<i64>,
}

pub(crate) async fn list_deliveries(
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
pub(crate) struct ReplayBody {
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

pub(crate) async fn replay_deliveries(
    State(state): State<AppState>,
    ApiJson(b): ApiJson<ReplayBody>,
) -> Result<Response, ApiError> {
    let selector = replay_selector(b.ids, b.case_id, b.from, b.to).map_err(ApiError::BadRequest)?;
    let replayed = state
        .store
        .replay_dead(&selector, state.clock.now())
        .await?;
    tracing::info!(count = replayed.len(), "dead deliveries replayed");
    Ok(Json(json!({"replayed": replayed.len(), "ids": replayed})).into_response())
}

/// The short id of an endpoint URL: how the API names it without showing
/// the token the URL may carry.
pub(crate) fn endpoint_id(url: &str) -> String {
    closeloop_core::access::token_hash(url)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) async fn disabled_endpoints(
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
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
pub(crate) struct EnableBody {
    /// The endpoint's full URL, or
    #[serde(default)]
    url: Option<String>,
    /// its id from `GET /v1/endpoints/disabled`.
    #[serde(default)]
    id: Option<String>,
}

/// Re-enable a webhook endpoint disabled by a 410 answer. Its dead
/// deliveries stay dead until replayed.
pub(crate) async fn enable_endpoint(
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
