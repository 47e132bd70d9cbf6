//! The handlers, one file per resource. The route table is `router` in
//! `lib.rs`; the scope of one-case routes is checked by its route layer
//! ([`cases::case_in_scope`]) and handed to handlers as [`cases::VisibleCase`].

pub(crate) mod cases;
pub(crate) mod deliveries;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod rules;
pub(crate) mod silences;
pub(crate) mod steps;

/// What every handler file uses.
pub(crate) mod prelude {
    pub(crate) use axum::extract::{Path, State};
    pub(crate) use axum::http::StatusCode;
    pub(crate) use axum::response::{IntoResponse, Response};
    pub(crate) use axum::{Extension, Json};
    pub(crate) use chrono::{DateTime, Utc};
    pub(crate) use serde::Deserialize;
    pub(crate) use serde_json::{json, Value};
    pub(crate) use uuid::Uuid;

    pub(crate) use crate::input::{self, ApiJson, ApiQuery};
    pub(crate) use crate::{auth, ApiError, AppState, Caller};
}
