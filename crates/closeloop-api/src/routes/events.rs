use closeloop_core::event::event_from_value;

use super::prelude::*;
use crate::ValidEvent;

/// `POST /v1/events`: one event object or an array of them. All are
/// validated first; if any is invalid nothing is published and the answer
/// names each bad element and field.
pub(crate) async fn ingest_events(
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
