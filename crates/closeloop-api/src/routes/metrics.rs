use closeloop_store::{CaseGrouping, ScoreGrouping};

use super::prelude::*;

#[derive(Debug, Deserialize)]
pub(crate) struct MetricsQuery {
    group_by: Option<String>,
    /// Scores only: a second dimension within the first.
    then: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

pub(crate) async fn loop_metrics(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Response, ApiError> {
    let group_by = query.group_by.as_deref().unwrap_or("owner");
    let column = CaseGrouping::parse(group_by).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "group_by: must be one of owner, store, region (got \"{group_by}\")"
        ))
    })?;
    let to = query
        .to
        .unwrap_or_else(|| state.clock.now() + chrono::Duration::seconds(1));
    let from = query.from.unwrap_or(to - chrono::Duration::days(30));
    let rows = state
        .store
        .loop_metrics(column, from, to, state.clock.now())
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

/// `GET /metrics`: the service's metrics for Prometheus (OpenMetrics
/// text). The outbox gauges are read from the database at each scrape (the
/// same on every instance); a scrape while it is down keeps the last ones.
/// Loop and score figures per owner are not here: they are the dashboard's
/// and `/v1/metrics/*`, so no figure doubles when instances are summed.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    // With `http.metrics_token`, the scraper presents it as a bearer token.
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
    let Some(telemetry) = &state.telemetry else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled").into_response();
    };
    match state.store.outbox_health(state.clock.now()).await {
        Ok(health) => {
            let outbox = &telemetry.outbox;
            outbox.pending.set(health.pending);
            outbox.dead.set(health.dead);
            outbox
                .oldest_pending_age_seconds
                .set(health.oldest_pending_age_seconds);
        }
        Err(error) => tracing::warn!(%error, "outbox figures unavailable for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            closeloop_telemetry::CONTENT_TYPE,
        )],
        telemetry.render(),
    )
        .into_response()
}

/// A score dimension by name, or the refusal naming `field` and the words.
pub(crate) fn score_grouping(field: &str, text: &str) -> Result<ScoreGrouping, ApiError> {
    ScoreGrouping::parse(text).ok_or_else(|| {
        let all: Vec<&str> = ScoreGrouping::ALL.iter().map(|g| g.as_str()).collect();
        ApiError::BadRequest(format!(
            "{field}: must be one of {} (got \"{text}\")",
            all.join(", ")
        ))
    })
}

/// `GET /v1/metrics/scores?group_by=…&then=…&from=&to=`: NPS, CSAT and CES
/// of every event received, not only the flagged ones, by one dimension or
/// two (`then`), with the count of each class.
pub(crate) async fn score_metrics(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> Result<Response, ApiError> {
    let group_by = query.group_by.as_deref().unwrap_or("store");
    let first = score_grouping("group_by", group_by)?;
    let second = query
        .then
        .as_deref()
        .map(|t| score_grouping("then", t))
        .transpose()?;
    let to = query
        .to
        .unwrap_or_else(|| state.clock.now() + chrono::Duration::seconds(1));
    let from = query.from.unwrap_or(to - chrono::Duration::days(90));
    let filter = closeloop_store::ScoreFilter::period(from, to);
    let rows = state.store.score_table(first, second, &filter).await?;
    Ok(Json(json!({
        "group_by": group_by, "then": query.then, "from": from, "to": to, "groups": rows
    }))
    .into_response())
}
