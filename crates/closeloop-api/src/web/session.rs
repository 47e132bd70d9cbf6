//! Who is looking at a page: a server-side session opened by a sign-in
//! link (or an API token, for ops), kept in an HttpOnly cookie; and the
//! form tokens (CSRF) every POST carries.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use closeloop_core::access::{token_hash, Role, Scope};
use closeloop_store::WebSession;

use crate::{ApiError, AppState, Caller};

pub(crate) const SESSION_COOKIE: &str = "closeloop_session";
/// The form token of pages seen before a session (sign-in): the same
/// value in the cookie and in the form (double submit).
pub(crate) const FORM_COOKIE: &str = "closeloop_form";
pub(crate) const LANG_COOKIE: &str = "closeloop_lang";

/// A fresh secret: 32 random bytes, URL-safe.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    B64.encode(bytes)
}

/// Whether two secrets are equal, in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a form carries the session's form token (`csrf`).
pub(crate) fn form_token_ok(live: &WebSession, form: &super::forms::FormFields) -> bool {
    form.get("csrf")
        .is_some_and(|given| same_secret(&live.csrf_token, given))
}

/// A cookie of the app: HttpOnly, SameSite=Lax, whole site, Secure when
/// the public URL is https.
pub(crate) fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: chrono::Duration,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.web.as_ref().is_some_and(|w| w.secure_cookies))
        .max_age(time_duration(max_age))
        .build()
}

fn time_duration(d: chrono::Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(d.num_seconds())
}

/// The cookie that ends a session in the browser.
pub(crate) fn expired(state: &AppState, name: &'static str) -> Cookie<'static> {
    cookie(state, name, String::new(), chrono::Duration::zero())
}

/// The live session of the request's cookie, if any.
pub(crate) async fn current(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<WebSession>, ApiError> {
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    if token.is_empty() {
        return Ok(None);
    }
    Ok(state
        .store
        .session(&token_hash(&token), state.clock.now())
        .await?)
}

/// The caller a session acts as: its name is the history's actor; a
/// manager sees their team's cases only.
pub(crate) fn caller(state: &AppState, session: &WebSession) -> Caller {
    let scope = match (session.role, &session.owner_id, &state.rules) {
        (Role::Manager, Some(owner), Some(rules)) => Some(rules.scope(owner)),
        (Role::Manager, _, _) => Some(Scope::default()),
        _ => None,
    };
    Caller::Token {
        name: session.name.clone(),
        role: session.role,
        scope,
    }
}

/// The form token of a page seen without a session: the cookie's, or a
/// new one (then the cookie must be set with the response).
pub(crate) fn anonymous_form_token(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(token) = jar.get(FORM_COOKIE).map(|c| c.value().to_owned()) {
        if token.len() >= 32 {
            return (jar, token);
        }
    }
    let token = random_token();
    let jar = jar.add(cookie(
        state,
        FORM_COOKIE,
        token.clone(),
        chrono::Duration::hours(12),
    ));
    (jar, token)
}

/// Whether a form posted without a session carries the form cookie's token.
pub(crate) fn anonymous_form_ok(jar: &CookieJar, given: Option<&str>) -> bool {
    match (jar.get(FORM_COOKIE), given) {
        (Some(cookie), Some(given)) => !given.is_empty() && same_secret(cookie.value(), given),
        _ => false,
    }
}

/// The language of a page: asked in the URL, else the switch's cookie,
/// else the session's, else `fallback` (the case owner's locale), else the
/// browser's first language.
pub(crate) fn language(
    state: &AppState,
    asked: Option<&str>,
    jar: &CookieJar,
    session: Option<&WebSession>,
    fallback: Option<&str>,
    headers: &HeaderMap,
) -> String {
    let Some(web) = &state.web else {
        return "en".into();
    };
    let browser = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
    let pick = asked
        .map(str::to_owned)
        .or_else(|| jar.get(LANG_COOKIE).map(|c| c.value().to_owned()))
        .or_else(|| session.map(|s| s.locale.clone()))
        .or_else(|| fallback.map(str::to_owned))
        .or(browser)
        .unwrap_or_else(|| "en".into());
    web.pages.language(&pick)
}

/// The display name of a session's person.
pub(crate) fn display_name(state: &AppState, live: &WebSession) -> String {
    live.owner_id
        .as_deref()
        .and_then(|id| state.rules.as_ref().and_then(|r| r.owner(id)))
        .map_or_else(|| live.name.clone(), |o| o.name)
}

/// The session of a page that needs one, or the way to the sign-in page.
pub(crate) async fn required(state: &AppState, jar: &CookieJar) -> Result<WebSession, Response> {
    match current(state, jar).await {
        Ok(Some(live)) => Ok(live),
        Ok(None) => Err(Redirect::to("/signin").into_response()),
        Err(error) => Err(error.into_response()),
    }
}

/// Keep the language a person switched to.
pub(crate) fn remember_language(
    state: &AppState,
    jar: CookieJar,
    asked: Option<&str>,
    lang: &str,
) -> CookieJar {
    match asked {
        Some(_) => jar.add(cookie(
            state,
            LANG_COOKIE,
            lang.to_owned(),
            chrono::Duration::days(365),
        )),
        None => jar,
    }
}

/// The person of a page that needs a session, in the page's language:
/// the session (else the way to the sign-in page), the language (the
/// URL's `lang`, else the switch's cookie, else the session's), and the
/// cookies to answer with (the switch remembered when `lang` was asked).
pub(crate) struct SignedIn {
    pub live: WebSession,
    pub lang: String,
    pub jar: CookieJar,
}

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let live = required(state, &jar).await?;
        let asked = parts.uri.query().and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "lang")
                .map(|(_, value)| value.into_owned())
        });
        let lang = language(
            state,
            asked.as_deref(),
            &jar,
            Some(&live),
            None,
            &parts.headers,
        );
        let jar = remember_language(state, jar, asked.as_deref(), &lang);
        Ok(SignedIn { live, lang, jar })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }
}
