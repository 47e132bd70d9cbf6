//! What the API reads from requests, checked before any handler sees it:
//! JSON bodies (duplicate keys refused, as for events) and query strings
//! whose every string is free of NUL (PostgreSQL cannot store it), at most
//! [`MAX_TEXT_CHARS`] long, and whose every timestamp falls in years 1 to
//! 9999 (what PostgreSQL stores). A bad value is a 422 in the JSON error
//! shape, naming the field; never a 500 from the database.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, FixedOffset};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ApiError;

/// Longest string accepted in a body or a query (notes, reasons, names).
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Why `text`, found at `path`, is refused; `None` if it is fine.
fn refuse_text(path: &str, text: &str) -> Option<String> {
    if text.contains('\0') {
        return Some(format!("{path}: must not contain a NUL character"));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Some(format!(
            "{path}: must be at most {MAX_TEXT_CHARS} characters (got {chars})"
        ));
    }
    if let Ok(at) = text.parse::<DateTime<FixedOffset>>() {
        if !(1..=9999).contains(&at.year()) {
            return Some(format!(
                "{path}: must be a time between the years 1 and 9999"
            ));
        }
    }
    None
}

/// The first refused string of `value`, named by its path (`note`,
/// `items[2].reason`).
fn sweep(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => refuse_text(if path.is_empty() { "body" } else { path }, text),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| sweep(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            refuse_text(&child, key).or_else(|| sweep(item, &child))
        }),
        _ => None,
    }
}

/// A request body as the contract's JSON (duplicate keys refused, as on
/// Kafka); 413 over the body limit. Also the first step of `POST /v1/events`.
pub(crate) fn json_body(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    closeloop_core::json::parse_strict(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// A deserialization error naming the field (`limit: invalid digit…`), or
/// `whole` when it is about the input as a whole.
fn named<E: std::fmt::Display>(error: serde_path_to_error::Error<E>, whole: &str) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    ApiError::BadRequest(if path == "." {
        format!("{whole}{inner}")
    } else {
        format!("{path}: {inner}")
    })
}

/// A checked JSON value read as `T`, the field named in the error.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| named(e, ""))
}

/// A JSON body, checked, then read as `T` (an unknown or mistyped field is
/// named in the error).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = json_body(axum::body::Bytes::from_request(req, state).await)?;
        if let Some(reason) = sweep(&value, "") {
            return Err(ApiError::BadRequest(reason));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| named(e, ""))
    }
}

/// A query string, checked, then read as `T`; errors in the JSON shape.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?;
        if let Some(reason) = pairs
            .iter()
            .find_map(|(key, value)| refuse_text(key, key).or_else(|| refuse_text(key, value)))
        {
            return Err(ApiError::BadRequest(reason));
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| named(e, "query string: "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_names_the_field() {
        let cases = [
            (serde_json::json!({"note": "ok"}), None),
            (
                serde_json::json!({"note": "a\u{0}b"}),
                Some("note: must not contain a NUL"),
            ),
            (
                serde_json::json!({"a": [{"b": "x\u{0}"}]}),
                Some("a[0].b: must not contain a NUL"),
            ),
            (
                serde_json::json!({"from": "-009999-01-01T00:00:00Z"}),
                Some("from: must be a time between"),
            ),
            (
                serde_json::json!({"from": "+100000-01-01T00:00:00Z"}),
                Some("from: must be a time between"),
            ),
            (serde_json::json!({"from": "2026-11-20T10:00:00Z"}), None),
            (
                serde_json::json!({"note": "x".repeat(MAX_TEXT_CHARS + 1)}),
                Some("note: must be at most"),
            ),
        ];
        for (value, expected) in cases {
            let got = sweep(&value, "");
            match expected {
                None => assert_eq!(got, None, "{value}"),
                Some(words) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(words)),
                    "{value}: {got:?}"
                ),
            }
        }
    }
}
