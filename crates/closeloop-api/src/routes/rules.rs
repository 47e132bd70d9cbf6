use std::sync::Arc;

use super::prelude::*;
use crate::RulesControl;

pub(crate) fn rules_control(state: &AppState) -> Result<&Arc<dyn RulesControl>, ApiError> {
    state
        .rules
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("rules are not managed by this instance".into()))
}

pub(crate) async fn rules_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(rules_control(&state)?.status()).into_response())
}

/// Reload rules and owners now. A refused set answers 422 with every
/// problem; the last good set stays active.
pub(crate) async fn rules_reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    match rules_control(&state)?.reload() {
        Ok(status) => Ok(Json(status).into_response()),
        Err(error) => Err(ApiError::BadRequest(error)),
    }
}
