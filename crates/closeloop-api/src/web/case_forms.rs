//! `POST /cases/{id}/do/{step}`: the forms of the case page, each one step
//! through the store's transitions (as the API's), then the page again.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use closeloop_core::links::check_link_form_token;
use closeloop_core::steps::Step;
use closeloop_core::{Command, ContactOutcome};
use uuid::Uuid;

use super::case::{access, case_page, not_found, Access};
use super::forms::FormFields;
use super::session;
use super::view::refusal_text;
use super::{form_refused, Web};
use crate::AppState;

/// The command of a posted step form, or the missing field.
fn command_of(step: &str, form: &FormFields) -> Result<Command, &'static str> {
    let note = || form.get("note").map(str::to_owned);
    Ok(match Step::parse(step) {
        Some(Step::Acknowledge) => Command::Acknowledge { note: note() },
        Some(Step::Contact) => Command::RecordContact {
            outcome: match form.get("outcome") {
                Some("voicemail") => ContactOutcome::Voicemail,
                Some("no_answer") => ContactOutcome::NoAnswer,
                Some("reached") => ContactOutcome::Reached,
                _ => return Err("outcome"),
            },
            note: note(),
        },
        Some(Step::Wait) => Command::WaitOnCustomer { note: note() },
        Some(Step::Resume) => Command::Resume { note: note() },
        Some(Step::Resolve) => Command::Resolve {
            root_cause: form.get("root_cause").ok_or("root_cause")?.to_owned(),
            note: note(),
        },
        Some(Step::Reopen) => Command::Reopen {
            reason: form.get("reason").ok_or("reason")?.to_owned(),
        },
        Some(Step::Close) => Command::Close { note: note() },
        Some(Step::Note) => Command::AddNote {
            note: note().ok_or("note")?,
        },
        None => return Err("step"),
    })
}

/// `POST /cases/{id}/do/{step}`: one step, then the page again (303, so a
/// reload does not post twice); a refusal shows the page with the reason.
pub(crate) async fn act(
    State(state): State<AppState>,
    Web(web): Web,
    Path((id, step)): Path<(String, String)>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let web = &*web;
    let Ok(id) = Uuid::parse_str(&id) else {
        let lang = session::language(&state, None, &jar, None, None, &headers);
        return not_found(web, &lang);
    };
    let form = FormFields::parse(&body);
    let (access, detail, lang) =
        match access(&state, web, &jar, &headers, id, form.get("link")).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let catalog = web.pages.catalog(&lang);
    let csrf_ok = match (&access, form.get("csrf")) {
        (Access::Session(live), Some(given)) => session::same_secret(&live.csrf_token, given),
        (Access::Link(link), Some(given)) => state
            .link_secret
            .as_ref()
            .is_some_and(|s| check_link_form_token(s, link, given)),
        _ => false,
    };
    if !csrf_ok {
        return form_refused(web, &lang, None);
    }
    let actor = match &access {
        Access::Session(live) => live.name.clone(),
        Access::Link(_) => format!("{} (email link)", detail.case.owner_id),
    };
    let now = state.clock.now();
    let result = match step.as_str() {
        "reassign" => reassign(&state, &access, id, &form, &actor).await,
        "watch" => watch(&state, id, &form, &actor, &lang).await,
        _ => match command_of(&step, &form) {
            Ok(command) => state
                .store
                .apply_command(id, &command, &actor, now, &state.root_causes)
                .await
                .map(|_| ())
                .map_err(|e| refusal_text(catalog, &e)),
            Err(field) => Err(catalog.fill("missing_text", &[("field", field)])),
        },
    };
    match result {
        Ok(()) => {
            tracing::info!(case = %id, step = %step, "case step from the web app");
            let link = match &access {
                Access::Link(link) => format!("&link={link}"),
                Access::Session(..) => String::new(),
            };
            Redirect::to(&format!("/cases/{id}?done={step}{link}")).into_response()
        }
        Err(reason) => {
            // The page as it is now, with the reason.
            let detail = state.store.case_detail(id).await.unwrap_or(detail);
            let error = Some(catalog.fill("refused", &[("reason", &reason)]));
            case_page(
                &state,
                web,
                &lang,
                &access,
                &detail,
                StatusCode::CONFLICT,
                None,
                error,
            )
            .await
        }
    }
}

async fn reassign(
    state: &AppState,
    access: &Access,
    id: Uuid,
    form: &FormFields,
    actor: &str,
) -> Result<(), String> {
    // Giving a case away takes a session: a forwarded email cannot.
    if access.session().is_none() {
        return Err("sign in to reassign a case".into());
    }
    let owner_id = form.get("owner").ok_or("owner")?;
    let reason = form.get("reason").ok_or("reason")?;
    let owner = state
        .rules
        .as_ref()
        .and_then(|r| r.owner(owner_id))
        .ok_or_else(|| format!("unknown owner \"{owner_id}\""))?;
    state
        .store
        .reassign(id, &owner, reason, actor, state.clock.now())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn watch(
    state: &AppState,
    id: Uuid,
    form: &FormFields,
    actor: &str,
    lang: &str,
) -> Result<(), String> {
    let watcher = crate::routes::cases::watcher_of(
        state,
        form.get("name").unwrap_or_default(),
        form.get("email").unwrap_or_default(),
        Some(lang),
    )
    .map_err(|e| e.to_string())?;
    state
        .store
        .subscribe_watcher(id, &watcher, actor, state.clock.now())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
