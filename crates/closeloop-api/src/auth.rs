//! API tokens on `/v1`: who calls, with which role, and for a manager, which
//! cases they may see. Cases outside a manager's scope answer 404, as if they
//! did not exist, so ids cannot be probed; other areas a role may not use
//! answer 403.
//!
//! With `auth.required = false` (tests, a private demo) every caller is
//! [`Caller::Open`]: full access, the actor taken from the request body.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use closeloop_core::access::{token_hash, Area, Role, Scope};
use closeloop_store::CaseView;

use crate::{ApiError, AppState};

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Authentication is off.
    Open,
    /// A valid token.
    Token {
        name: String,
        role: Role,
        /// For managers: the cases they may see.
        scope: Option<Scope>,
    },
}

impl Caller {
    /// The actor recorded in case history: the token's name; without
    /// authentication, the `actor` the request names.
    pub fn actor(&self, given: Option<&str>) -> Result<String, ApiError> {
        match self {
            Caller::Token { name, .. } => Ok(name.clone()),
            Caller::Open => match given.map(str::trim) {
                Some(actor) if !actor.is_empty() => Ok(actor.to_owned()),
                _ => Err(ApiError::BadRequest("actor: required".into())),
            },
        }
    }

    /// A manager's scope; `None` for callers who see every case.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            Caller::Token { scope, .. } => scope.as_ref(),
            Caller::Open => None,
        }
    }

    /// Whether the caller may see `case`.
    pub fn sees(&self, case: &CaseView) -> bool {
        self.scope().is_none_or(|scope| {
            scope.covers(
                &case.owner_id,
                case.event.location.store_id.as_deref(),
                case.event.location.region.as_deref(),
            )
        })
    }
}

fn area_of(path: &str) -> Area {
    if path == "/v1/cases" || path.starts_with("/v1/cases/") || path == "/v1/root-causes" {
        Area::Cases
    } else {
        Area::Operations
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::Unauthorized(message.to_owned()).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
    response
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is
/// case-insensitive (RFC 7235: `bearer`, `BEARER`). `None` without one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let (scheme, token) = headers.get(AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Resolve the caller of a `/v1` request, or answer 401 / 403.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.auth_required {
        request.extensions_mut().insert(Caller::Open);
        return next.run(request).await;
    }
    let Some(presented) = bearer_token(request.headers()) else {
        return unauthorized(
            "authorization: send a token as `Authorization: Bearer <token>` (closeloop tokens create)",
        );
    };
    let token = match state
        .store
        .authenticate(&token_hash(presented), state.clock.now())
        .await
    {
        Ok(Some(token)) => token,
        Ok(None) => return unauthorized("authorization: unknown or revoked token"),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let path = request.uri().path();
    if !token.role.may(area_of(path)) {
        return ApiError::Forbidden(format!("role {} may not use {path}", token.role.as_str()))
            .into_response();
    }
    let scope = match (token.role, &token.owner_id, &state.rules) {
        (Role::Manager, Some(owner), Some(rules)) => Some(rules.scope(owner)),
        // A manager without a directory to scope them sees nothing.
        (Role::Manager, _, _) => Some(Scope::default()),
        _ => None,
    };
    tracing::debug!(token = %token.id, role = token.role.as_str(), "authenticated");
    request.extensions_mut().insert(Caller::Token {
        name: token.name,
        role: token.role,
        scope,
    });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_table() {
        let table = [
            ("/v1/cases", Area::Cases),
            ("/v1/cases/0190/acknowledge", Area::Cases),
            ("/v1/root-causes", Area::Cases),
            ("/v1/casesx", Area::Operations),
            ("/v1/silences", Area::Operations),
            ("/v1/rules/reload", Area::Operations),
            ("/v1/events", Area::Operations),
            ("/v1/metrics/loop", Area::Operations),
            ("/v1/deliveries/replay", Area::Operations),
        ];
        for (path, area) in table {
            assert_eq!(area_of(path), area, "{path}");
        }
    }

    #[test]
    fn actor_comes_from_the_token() {
        let token = Caller::Token {
            name: "claire.martin".into(),
            role: Role::Manager,
            scope: Some(Scope::default()),
        };
        assert_eq!(token.actor(Some("someone-else")).unwrap(), "claire.martin");
        assert_eq!(token.actor(None).unwrap(), "claire.martin");
        assert_eq!(Caller::Open.actor(Some("ops")).unwrap(), "ops");
        assert!(Caller::Open.actor(Some("  ")).is_err());
        assert!(Caller::Open.actor(None).is_err());
    }
}
