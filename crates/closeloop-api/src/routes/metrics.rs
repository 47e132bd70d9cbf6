use closeloop_store::{CaseGrouping, ScoreGrouping};

use crate::exposition::{Exposition, Kind};

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

pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
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
    let now = state.clock.now();
    match state
        .store
        .loop_metrics(
            CaseGrouping::Owner,
            now - chrono::Duration::days(30),
            now,
            now,
        )
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
pub(crate) fn loop_exposition(rows: &[closeloop_store::LoopMetricsRow]) -> String {
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
    let mut out = Exposition::new();
    for (name, help, figure) in figures {
        out.family(name, help, Kind::Gauge);
        for row in rows {
            if let Some(value) = figure(row) {
                let owner = row.group.as_deref().unwrap_or("");
                out.sample(name, &[("owner", owner)], value);
            }
        }
    }
    out.finish()
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
