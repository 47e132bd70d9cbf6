//! The manager's web app: sign-in by email link, the inbox, the case page.
//! Server-rendered from minijinja templates (`config/templates/web/`), in
//! the person's language; plain forms that work without JavaScript, which
//! only adds live updates (`/static/app.js`).
//!
//! Invariants:
//! - No page shows customer data without a live session whose scope covers
//!   the case, or a signed case link for that very case (emails).
//! - Every POST carries a form token: the session's, the signed link's
//!   (`closeloop_core::links::link_form_token`), or before sign-in the
//!   form cookie's (double submit). A POST without it changes nothing.
//! - Every response carries the security headers of [`security_headers`]:
//!   no inline script or style, no outside host, no framing, no referrer.
//! - Steps go through the store's transitions, as the API's do: a refused
//!   step is the core's refusal, shown in words.

// An `Err` here is the page to answer (a refusal, the sign-in page): one
// per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod assets;
mod case;
mod case_forms;
mod charts;
pub(crate) mod format;
mod forms;
mod inbox;
mod insights;
mod operations;
mod pages;
mod period;
mod samples;
mod scores;
mod session;
mod signin;
mod view;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

pub(crate) use forms::FormFields;
pub(crate) use pages::Kind;
pub use pages::Pages;
pub(crate) use view::refusal_text;

use crate::AppState;

/// What the web app needs besides the API's state.
#[derive(Debug)]
pub struct WebApp {
    pub pages: Pages,
    /// Cookies are `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Base of sign-in links, e.g. `https://closeloop.example.com`.
    pub public_url: String,
    pub session_ttl: chrono::Duration,
    pub sign_in_ttl: chrono::Duration,
    /// How often an open inbox asks for its list again.
    pub inbox_refresh: std::time::Duration,
}

impl WebApp {
    pub fn new(
        pages: Pages,
        public_url: &str,
        session_ttl: chrono::Duration,
        sign_in_ttl: chrono::Duration,
    ) -> Self {
        WebApp {
            pages,
            secure_cookies: public_url.starts_with("https://"),
            public_url: public_url.trim_end_matches('/').to_owned(),
            session_ttl,
            sign_in_ttl,
            inbox_refresh: std::time::Duration::from_secs(20),
        }
    }
}

/// The routes of the web app.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/inbox") }),
        )
        .route("/signin", get(signin::form).post(signin::request))
        .route("/signin/token", post(signin::with_token))
        .route(
            "/signin/{token}",
            get(signin::confirm).post(signin::open_session),
        )
        .route("/signout", post(signin::sign_out))
        .route("/inbox", get(inbox::page))
        .route("/inbox/list", get(inbox::list))
        .route("/inbox/acknowledge", post(inbox::acknowledge))
        .route("/insights", get(insights::page))
        .route("/insights.csv", get(insights::csv))
        .route("/insights/operations", get(operations::page))
        .route("/insights/operations/{action}", post(operations::act))
        .route("/insights/scores", get(scores::page))
        .route("/insights/scores.csv", get(scores::csv))
        .route("/cases/{id}", get(case::page))
        .route("/cases/{id}/do/{step}", post(case_forms::act))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
        .route("/static/icon.svg", get(assets::icon))
        .route("/manifest.webmanifest", get(assets::manifest))
}

/// The security headers of every response: pages load only what
/// closeloop serves, inline code never runs, nothing frames them, and no
/// URL (case links carry tokens) leaks in a Referer.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set =
        |headers: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
            headers.insert(name, HeaderValue::from_static(value));
        };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; manifest-src 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
    );
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    response
}

/// A rendered page; a template that fails at this point (checked at load,
/// so it should not) answers a plain 500.
pub(crate) fn render(
    web: &WebApp,
    status: StatusCode,
    page: &str,
    context: &impl Serialize,
) -> Response {
    match web.pages.render(page, context) {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            // Pages carry personal data: never stored by a shared cache.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(page, error = %error, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

/// The variables of `message.html`.
#[derive(Debug, Serialize)]
pub(crate) struct Message<'a> {
    #[serde(flatten)]
    pub layout: view::Layout<'a>,
    pub heading: String,
    pub message: String,
    pub action: Option<Link>,
    pub form: Option<MessageForm>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Link {
    pub href: String,
    pub label: String,
}

/// A one-button form on a message page (confirm a sign-in, a one-click step).
#[derive(Debug, Serialize)]
pub(crate) struct MessageForm {
    pub action: String,
    pub csrf: String,
    pub label: String,
    /// With a note field.
    pub note: bool,
}

/// The page answering a form posted without its form token (403), with
/// at most one link onwards.
pub(crate) fn form_refused(web: &WebApp, lang: &str, action: Option<Link>) -> Response {
    let catalog = web.pages.catalog(lang);
    message(
        web,
        lang,
        StatusCode::FORBIDDEN,
        catalog.text("link_refused_title"),
        catalog.text("csrf_refused"),
        action,
    )
}

/// A page that says one thing, with at most one link.
pub(crate) fn message(
    web: &WebApp,
    lang: &str,
    status: StatusCode,
    heading: String,
    text: String,
    action: Option<Link>,
) -> Response {
    let context = Message {
        layout: layout(&web.pages, lang, heading.clone()),
        heading,
        message: text,
        action,
        form: None,
    };
    render(web, status, "message.html", &context)
}

/// The web app, for a handler: its routes answer 404 when the service
/// runs without it (no page templates).
pub(crate) struct Web(pub std::sync::Arc<WebApp>);

impl axum::extract::FromRequestParts<AppState> for Web {
    type Rejection = Response;

    async fn from_request_parts(
        _: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        state
            .web
            .clone()
            .map(Web)
            .ok_or_else(|| (StatusCode::NOT_FOUND, "the web app is not enabled").into_response())
    }
}

/// "Please try again in a minute": the store could not answer.
pub(crate) fn unavailable(web: &WebApp, lang: &str, heading: &str) -> Response {
    let catalog = web.pages.catalog(lang);
    message(
        web,
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        catalog.text(heading),
        catalog.text("unavailable"),
        None,
    )
}

/// The layout of a page outside a session, with no language switch.
pub(crate) fn layout<'a>(pages: &'a Pages, lang: &'a str, title: String) -> view::Layout<'a> {
    view::layout(pages, lang, title, "", None, String::new())
}

/// The page language outside a session: the switch's cookie, else
/// `fallback` (a case owner's locale), else the browser's.
pub(crate) fn language(
    state: &AppState,
    jar: &axum_extra::extract::cookie::CookieJar,
    fallback: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> String {
    session::language(state, None, jar, None, fallback, headers)
}
