//! Landing pages of one-click email links. `GET` only shows what the link
//! will do (mail scanners open links: a GET must never act) with a note
//! field; `POST` applies it, once, if the case still allows that step.
//! Pages are the web app's `message.html`, in the case owner's language.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use closeloop_core::links::{sign_view, verify, LinkClaims, ViewClaims};
use closeloop_store::StoreError;
use uuid::Uuid;

use crate::web::{self, Link, Message, MessageForm, WebApp};
use crate::AppState;

fn refused(web: &WebApp, lang: &str, status: StatusCode, reason: String) -> Response {
    let catalog = web.pages.catalog(lang);
    web::message(
        web,
        lang,
        status,
        catalog.text("link_refused_title"),
        reason,
        None,
    )
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

/// The claims of a link token, or the refusal page.
fn claims(
    state: &AppState,
    web: &WebApp,
    lang: &str,
    token: &str,
) -> Result<(LinkClaims, Uuid), Box<Response>> {
    let catalog = web.pages.catalog(lang);
    let Some(secret) = &state.link_secret else {
        return Err(Box::new(refused(
            web,
            lang,
            StatusCode::NOT_FOUND,
            catalog.text("links_disabled"),
        )));
    };
    let claims = verify(secret, token, state.clock.now()).map_err(|e| {
        Box::new(refused(
            web,
            lang,
            StatusCode::GONE,
            catalog.fill("link_invalid", &[("reason", &e.to_string())]),
        ))
    })?;
    let id = Uuid::parse_str(&claims.case_id).map_err(|_| {
        Box::new(refused(
            web,
            lang,
            StatusCode::BAD_REQUEST,
            catalog.fill("link_invalid", &[("reason", "?")]),
        ))
    })?;
    Ok((claims, id))
}

/// The language of a link page: the case owner's.
fn language_of(state: &AppState, headers: &HeaderMap, owner_locale: Option<&str>) -> String {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    web::language(state, &jar, owner_locale, headers)
}

/// The label of a one-click action in `lang`: "Resolved (Out of stock)".
fn action_label(web: &WebApp, lang: &str, claims: &LinkClaims) -> String {
    use closeloop_core::links::LinkAction;
    let catalog = web.pages.catalog(lang);
    match &claims.action {
        LinkAction::Resolve(root_cause) => format!(
            "{} ({})",
            catalog.text("step_resolve"),
            catalog.label(web::Kind::RootCause, root_cause)
        ),
        LinkAction::Reached | LinkAction::Voicemail | LinkAction::NoAnswer => format!(
            "{} ({})",
            catalog.text("step_contact"),
            catalog.label(web::Kind::Outcome, claims.action.kind())
        ),
        LinkAction::Acknowledge => catalog.text("step_acknowledge"),
        LinkAction::NotMine => catalog.text("not_mine"),
    }
}

/// `GET /a/{token}`: confirm what the link does.
pub async fn confirm(
    State(state): State<AppState>,
    web::Web(web): web::Web,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let web = &*web;
    let lang = language_of(&state, &headers, None);
    let (claims, id) = match claims(&state, web, &lang, &token) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let detail = match state.store.case_detail(id).await {
        Ok(d) => d,
        Err(StoreError::CaseNotFound(_)) => {
            let catalog = web.pages.catalog(&lang);
            return refused(web, &lang, StatusCode::NOT_FOUND, catalog.text("not_found"));
        }
        Err(e) => {
            tracing::warn!(error = %e, "a link page could not read its case");
            let catalog = web.pages.catalog(&lang);
            return refused(
                web,
                &lang,
                StatusCode::SERVICE_UNAVAILABLE,
                catalog.text("unavailable"),
            );
        }
    };
    let lang = language_of(&state, &headers, Some(&detail.case.owner_locale));
    let catalog = web.pages.catalog(&lang);
    let now = state.clock.now();
    if let Err(refusal) = claims
        .action
        .possible(&detail.case.state(), &state.root_causes, now)
    {
        let reason = web::refusal_text(catalog, &StoreError::Transition(refusal));
        return refused(
            web,
            &lang,
            StatusCode::CONFLICT,
            catalog.fill("link_not_possible", &[("reason", &reason)]),
        );
    }
    let event = &detail.case.event;
    let mut summary = event.customer.display_name().to_owned();
    if let Some(store) = &event.location.store_id {
        summary.push_str(&format!(" · {store}"));
    }
    if let Some(comment) = &event.comment {
        summary.push_str(&format!(" · « {comment} »"));
    }
    let label = action_label(web, &lang, &claims);
    let heading = catalog.fill("one_click_confirm", &[("what", &label)]);
    let context = Message {
        layout: web::layout(&web.pages, &lang, heading.clone()),
        heading,
        message: summary,
        action: None,
        form: Some(MessageForm {
            action: format!("/a/{token}"),
            // The link itself is the capability; its own form token.
            csrf: String::new(),
            label: catalog.text("one_click_title"),
            note: true,
        }),
    };
    web::render(web, StatusCode::OK, "message.html", &context)
}

/// `POST /a/{token}`: apply the action, once.
pub async fn apply(
    State(state): State<AppState>,
    web::Web(web): web::Web,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let web = &*web;
    let lang = language_of(&state, &headers, None);
    let (claims, id) = match claims(&state, web, &lang, &token) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let (owner, locale) = match state.store.case_detail(id).await {
        Ok(d) => (d.case.owner_id, d.case.owner_locale),
        Err(_) => {
            let catalog = web.pages.catalog(&lang);
            return refused(web, &lang, StatusCode::NOT_FOUND, catalog.text("not_found"));
        }
    };
    let lang = language_of(&state, &headers, Some(&locale));
    let catalog = web.pages.catalog(&lang);
    let form = web::FormFields::parse(&body);
    let note = form.get("note").map(str::to_owned);
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
            let what = action_label(web, &lang, &claims);
            let status = catalog.label(web::Kind::Status, detail.case.status.as_str());
            web::message(
                web,
                &lang,
                StatusCode::OK,
                catalog.text("one_click_title"),
                catalog.fill("one_click_done", &[("what", &what), ("status", &status)]),
                Some(Link {
                    href: case_page_link(&state, id),
                    label: catalog.text("see_case"),
                }),
            )
        }
        Err(StoreError::LinkUsed) => {
            refused(web, &lang, StatusCode::GONE, catalog.text("link_gone"))
        }
        Err(error @ StoreError::Transition(_)) => refused(
            web,
            &lang,
            StatusCode::CONFLICT,
            web::refusal_text(catalog, &error),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "a link could not be applied");
            refused(
                web,
                &lang,
                StatusCode::SERVICE_UNAVAILABLE,
                catalog.text("unavailable"),
            )
        }
    }
}
