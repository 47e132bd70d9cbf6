//! Landing pages of one-click email links. `GET` only shows what the link
//! will do (mail scanners open links: a GET must never act) with a note
//! field; `POST` applies it, once, if the case still allows that step.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use closeloop_core::links::{sign_view, verify, verify_view, LinkClaims, ViewClaims};
use closeloop_store::StoreError;
use serde::Deserialize;
use uuid::Uuid;

use crate::page::escape;
use crate::AppState;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>body{{font-family:sans-serif;max-width:32em;margin:1em auto;padding:0 1em;font-size:1.1em}}\
         textarea{{width:100%;min-height:5em;font-size:1em}}button{{font-size:1.1em;padding:.6em 1.2em;margin-top:.5em}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    (status, Html(html)).into_response()
}

fn refused(status: StatusCode, reason: &str) -> Response {
    page(
        status,
        "This link cannot be used",
        &format!(
            "<p>{}</p><p>Open the case from the email to act on it.</p>",
            escape(reason)
        ),
    )
}

/// Whether `link` opens case `id`: a genuine, unexpired case link issued
/// for that case. The refusal is a page that names the reason and shows no
/// case data.
pub(crate) fn check_view(
    state: &AppState,
    id: Uuid,
    link: Option<&str>,
) -> Result<(), Box<Response>> {
    let missing = || {
        Box::new(page(
            StatusCode::NOT_FOUND,
            "Open the case from your email",
            "<p>This page opens from the link in the alert email, which is signed for \
             this case. Ask for a new email if yours is lost.</p>",
        ))
    };
    let (Some(secret), Some(link)) = (&state.link_secret, link) else {
        return Err(missing());
    };
    let claims = verify_view(secret, link, state.clock.now())
        .map_err(|e| Box::new(refused(StatusCode::FORBIDDEN, &e.to_string())))?;
    if claims.view_case != id.to_string() {
        return Err(Box::new(refused(
            StatusCode::FORBIDDEN,
            "this link was issued for another case",
        )));
    }
    Ok(())
}

/// The case page, with a case link signed for it (as the emails carry).
fn case_page_link(state: &AppState, id: Uuid) -> String {
    let Some(secret) = &state.link_secret else {
        return format!("/cases/{id}");
    };
    let claims = ViewClaims {
        view_case: id.to_string(),
        expires_at: state.clock.now() + chrono::Duration::days(1),
    };
    format!("/cases/{id}?link={}", sign_view(secret, &claims))
}

fn claims(state: &AppState, token: &str) -> Result<(LinkClaims, Uuid), Box<Response>> {
    let Some(secret) = &state.link_secret else {
        return Err(Box::new(refused(
            StatusCode::NOT_FOUND,
            "one-click links are not enabled",
        )));
    };
    let claims = verify(secret, token, state.clock.now())
        .map_err(|e| Box::new(refused(StatusCode::GONE, &e.to_string())))?;
    let id = Uuid::parse_str(&claims.case_id)
        .map_err(|_| Box::new(refused(StatusCode::BAD_REQUEST, "this link is not valid")))?;
    Ok((claims, id))
}

/// `GET /a/{token}`: confirm what the link does.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let (claims, id) = match claims(&state, &token) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let detail = match state.store.case_detail(id).await {
        Ok(d) => d,
        Err(StoreError::CaseNotFound(_)) => {
            return refused(StatusCode::NOT_FOUND, "this case does not exist")
        }
        Err(e) => {
            tracing::warn!(error = %e, "a link page could not read its case");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "please try again in a minute",
            );
        }
    };
    let now = state.clock.now();
    if let Err(refusal) = claims
        .action
        .possible(&detail.case.state(), &state.root_causes, now)
    {
        return refused(
            StatusCode::CONFLICT,
            &format!("this step is no longer possible: {refusal}."),
        );
    }
    let event = &detail.case.event;
    let mut summary = format!("<p><b>{}</b>", escape(event.customer.display_name()));
    if let Some(phone) = &event.customer.phone {
        summary.push_str(&format!(" · <a href=\"tel:{0}\">{0}</a>", escape(phone)));
    }
    summary.push_str(&format!(
        " · {}</p>",
        escape(event.location.store_id.as_deref().unwrap_or("-"))
    ));
    if let Some(comment) = &event.comment {
        summary.push_str(&format!("<blockquote>{}</blockquote>", escape(comment)));
    }
    let body = format!(
        "{summary}<form method=\"post\"><p><label>Note (optional)<br><textarea name=\"note\"></textarea></label></p>\
         <button type=\"submit\">Confirm: {label}</button></form>",
        label = escape(&claims.action.label())
    );
    page(StatusCode::OK, &claims.action.label(), &body)
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    note: Option<String>,
}

/// `POST /a/{token}`: apply the action, once.
pub async fn apply(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    let (claims, id) = match claims(&state, &token) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let owner = match state.store.case_detail(id).await {
        Ok(d) => d.case.owner_id,
        Err(_) => return refused(StatusCode::NOT_FOUND, "this case does not exist"),
    };
    let note = form.note.filter(|n| !n.trim().is_empty());
    let command = claims.action.command(note);
    let actor = format!("{owner} (email link)");
    let result = state
        .store
        .apply_link(
            id,
            &command,
            &actor,
            state.clock.now(),
            &state.root_causes,
            closeloop_store::LinkUse {
                nonce: &claims.nonce,
                action: claims.action.kind(),
            },
        )
        .await;
    match result {
        Ok(detail) => {
            tracing::info!(case = %id, action = claims.action.kind(), "one-click action applied");
            page(
                StatusCode::OK,
                "Done",
                &format!(
                    "<p>{}: recorded. The case is now <b>{}</b>.</p><p><a href=\"{}\">See the case</a></p>",
                    escape(&claims.action.label()),
                    detail.case.status,
                    escape(&case_page_link(&state, id))
                ),
            )
        }
        Err(StoreError::LinkUsed) => refused(StatusCode::GONE, "this link was already used."),
        Err(StoreError::Transition(e)) => refused(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "a link could not be applied");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "please try again in a minute",
            )
        }
    }
}
