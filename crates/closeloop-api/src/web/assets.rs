//! What pages load, served by closeloop itself (no outside host): the
//! stylesheet, the small script of live updates, the icon and the web app
//! manifest. Compiled in; they are not meant to be edited per installation.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");
const ICON: &str = include_str!("../../assets/icon.svg");
const MANIFEST: &str = include_str!("../../assets/manifest.webmanifest");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub(crate) async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

pub(crate) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

pub(crate) async fn manifest() -> Response {
    asset("application/manifest+json", MANIFEST)
}
