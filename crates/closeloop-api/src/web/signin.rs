//! Signing in without a password: an email of the owner directory gets a
//! single-use link valid minutes (`sign_in_links`); the link's page asks
//! for one tap (mail scanners open links: a GET never signs in), which
//! opens a server-side session. Ops and admins may sign in with an API
//! token instead. Sign-out revokes the session.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use closeloop_core::access::token_hash;
use closeloop_store::{NewSession, SignInUse, WebSession};
use serde::{Deserialize, Serialize};

use super::forms::FormFields;
use super::session::{self, SESSION_COOKIE};
use super::view::{layout, Layout};
use super::{form_refused, message, render, unavailable, Link, Message, MessageForm, Web, WebApp};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct LangQuery {
    lang: Option<String>,
}

#[derive(Serialize)]
struct SignInPage<'a> {
    #[serde(flatten)]
    layout: Layout<'a>,
    email: String,
    error: Option<String>,
}

fn form_page(
    state: &AppState,
    web: &WebApp,
    jar: CookieJar,
    lang: &str,
    status: StatusCode,
    email: String,
    error: Option<String>,
) -> Response {
    let (jar, csrf) = session::anonymous_form_token(state, jar);
    let catalog = web.pages.catalog(lang);
    let context = SignInPage {
        layout: layout(
            &web.pages,
            lang,
            catalog.text("signin_title"),
            "/signin",
            None,
            csrf,
        ),
        email,
        error,
    };
    (jar, render(web, status, "signin.html", &context)).into_response()
}

/// `GET /signin`.
pub(crate) async fn form(
    State(state): State<AppState>,
    Web(web): Web,
    Query(query): Query<LangQuery>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let web = &*web;
    let lang = session::language(&state, query.lang.as_deref(), &jar, None, None, &headers);
    let jar = session::remember_language(&state, jar, query.lang.as_deref(), &lang);
    form_page(&state, web, jar, &lang, StatusCode::OK, String::new(), None)
}

fn refused_form(web: &WebApp, lang: &str) -> Response {
    let link = Link {
        href: "/signin".into(),
        label: web.pages.catalog(lang).text("signin_title"),
    };
    form_refused(web, lang, Some(link))
}

/// `POST /signin`: send a link to a person of the directory. The answer
/// is the same whether the address is known or not (no probing).
pub(crate) async fn request(
    State(state): State<AppState>,
    Web(web): Web,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let web = &*web;
    let form = FormFields::parse(&body);
    let lang = session::language(&state, None, &jar, None, None, &headers);
    if !session::anonymous_form_ok(&jar, form.get("csrf")) {
        return refused_form(web, &lang);
    }
    let catalog = web.pages.catalog(&lang);
    let email = form.get("email").unwrap_or_default().to_owned();
    if !closeloop_core::owners::looks_like_email(&email) {
        let error = Some(catalog.text("email_invalid"));
        return form_page(
            &state,
            web,
            jar,
            &lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            email,
            error,
        );
    }
    let owner = state.rules.as_ref().and_then(|r| r.owner_by_email(&email));
    if let Some(owner) = owner {
        let token = session::random_token();
        let now = state.clock.now();
        let expires_at = now + web.sign_in_ttl;
        let payload = closeloop_wire::SignInV1 {
            recipient_name: owner.name.clone(),
            locale: owner.locale.clone(),
            url: format!("{}/signin/{token}", web.public_url),
            expires_at,
            valid_minutes: u32::try_from(web.sign_in_ttl.num_minutes()).unwrap_or(15),
        };
        match state
            .store
            .request_sign_in(&owner.id, &owner.email, &token_hash(&token), payload, now)
            .await
        {
            Ok(true) => tracing::info!(owner = %owner.id, "sign-in link queued"),
            Ok(false) => {
                tracing::warn!(owner = %owner.id, "sign-in link refused: too many asked lately")
            }
            Err(error) => {
                tracing::warn!(%error, "a sign-in link could not be queued");
                return unavailable(web, &lang, "signin_title");
            }
        }
    } else {
        tracing::info!("sign-in asked for an address outside the directory");
    }
    let minutes = web.sign_in_ttl.num_minutes().to_string();
    message(
        web,
        &lang,
        StatusCode::OK,
        catalog.text("signin_sent_title"),
        catalog.fill("signin_sent", &[("email", &email), ("minutes", &minutes)]),
        None,
    )
}

/// `GET /signin/{token}`: one button that signs in (the link is used only
/// by the POST).
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Web(web): Web,
    Path(token): Path<String>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Response {
    let web = &*web;
    let lang = session::language(&state, None, &jar, None, None, &headers);
    let (jar, csrf) = session::anonymous_form_token(&state, jar);
    let catalog = web.pages.catalog(&lang);
    let heading = catalog.text("signin_confirm_title");
    let context = Message {
        layout: layout(&web.pages, &lang, heading.clone(), "", None, String::new()),
        heading,
        message: catalog.text("signin_confirm"),
        action: None,
        form: Some(MessageForm {
            action: format!("/signin/{token}"),
            csrf,
            label: catalog.text("signin_continue"),
            note: false,
        }),
    };
    (jar, render(web, StatusCode::OK, "message.html", &context)).into_response()
}

/// Open a session and set its cookie; then the inbox.
async fn start_session(
    state: &AppState,
    web: &WebApp,
    jar: CookieJar,
    new: NewSessionOf,
) -> Result<Response, closeloop_store::StoreError> {
    let token = session::random_token();
    let csrf = session::random_token();
    let now = state.clock.now();
    let expires_at = now + web.session_ttl;
    state
        .store
        .open_session(
            &NewSession {
                token_hash: &token_hash(&token),
                role: new.role,
                owner_id: new.owner_id.as_deref(),
                name: &new.name,
                locale: &new.locale,
                csrf_token: &csrf,
                expires_at,
            },
            now,
        )
        .await?;
    tracing::info!(owner = ?new.owner_id, role = new.role.as_str(), "web session opened");
    let jar = jar
        .add(session::cookie(
            state,
            SESSION_COOKIE,
            token,
            web.session_ttl,
        ))
        .remove(session::expired(state, session::FORM_COOKIE));
    Ok((jar, Redirect::to("/inbox")).into_response())
}

struct NewSessionOf {
    role: closeloop_core::access::Role,
    owner_id: Option<String>,
    name: String,
    locale: String,
}

/// `POST /signin/{token}`: use the link, once.
pub(crate) async fn open_session(
    State(state): State<AppState>,
    Web(web): Web,
    Path(token): Path<String>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let web = &*web;
    let lang = session::language(&state, None, &jar, None, None, &headers);
    let form = FormFields::parse(&body);
    if !session::anonymous_form_ok(&jar, form.get("csrf")) {
        return refused_form(web, &lang);
    }
    let catalog = web.pages.catalog(&lang);
    let refused = |key: &str, status: StatusCode| {
        message(
            web,
            &lang,
            status,
            catalog.text("link_refused_title"),
            catalog.text(key),
            Some(Link {
                href: "/signin".into(),
                label: catalog.text("ask_new_link"),
            }),
        )
    };
    let owner_id = match state
        .store
        .use_sign_in(&token_hash(&token), state.clock.now())
        .await
    {
        Ok(SignInUse::Owner(owner)) => owner,
        Ok(SignInUse::Used) => return refused("link_used", StatusCode::GONE),
        Ok(SignInUse::Expired) => return refused("link_expired", StatusCode::GONE),
        Ok(SignInUse::Unknown) => return refused("link_unknown", StatusCode::NOT_FOUND),
        Err(error) => {
            tracing::warn!(%error, "a sign-in link could not be checked");
            return unavailable(web, &lang, "signin_title");
        }
    };
    // The person may have left the directory since the link was sent.
    let Some(owner) = state.rules.as_ref().and_then(|r| r.owner(&owner_id)) else {
        return refused("link_unknown", StatusCode::NOT_FOUND);
    };
    let new = NewSessionOf {
        role: closeloop_core::access::Role::Manager,
        owner_id: Some(owner.id.clone()),
        name: owner.id.clone(),
        locale: owner.locale.clone(),
    };
    match start_session(&state, web, jar, new).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, "a web session could not be opened");
            unavailable(web, &lang, "signin_title")
        }
    }
}

/// `POST /signin/token`: ops and admins sign in with their API token; the
/// browser keeps the session cookie, never the token.
pub(crate) async fn with_token(
    State(state): State<AppState>,
    Web(web): Web,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let web = &*web;
    let lang = session::language(&state, None, &jar, None, None, &headers);
    let form = FormFields::parse(&body);
    if !session::anonymous_form_ok(&jar, form.get("csrf")) {
        return refused_form(web, &lang);
    }
    let catalog = web.pages.catalog(&lang);
    let presented = form.get("token").unwrap_or_default();
    let token = match state
        .store
        .authenticate(&token_hash(presented), state.clock.now())
        .await
    {
        Ok(Some(token)) => token,
        Ok(None) => {
            let error = Some(catalog.text("token_refused"));
            return form_page(
                &state,
                web,
                jar,
                &lang,
                StatusCode::UNAUTHORIZED,
                String::new(),
                error,
            );
        }
        Err(error) => {
            tracing::warn!(%error, "a token sign-in could not be checked");
            return unavailable(web, &lang, "signin_title");
        }
    };
    let new = NewSessionOf {
        role: token.role,
        owner_id: token.owner_id,
        name: token.name,
        locale: lang.clone(),
    };
    match start_session(&state, web, jar, new).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, "a web session could not be opened");
            unavailable(web, &lang, "signin_title")
        }
    }
}

/// `POST /signout`: revoke the session, forget the cookie.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let live: Option<WebSession> = session::current(&state, &jar).await.ok().flatten();
    if let Some(live) = live {
        if !session::form_token_ok(&live, &form) {
            return (
                StatusCode::FORBIDDEN,
                "sign-out needs the page's form token",
            )
                .into_response();
        }
        if let Err(error) = state.store.revoke_session(live.id, state.clock.now()).await {
            tracing::warn!(%error, "a session could not be revoked");
            return (StatusCode::SERVICE_UNAVAILABLE, "please try again").into_response();
        }
        tracing::info!(session = %live.id, "web session ended");
    }
    let jar = jar.remove(session::expired(&state, SESSION_COOKIE));
    (jar, Redirect::to("/signin")).into_response()
}
