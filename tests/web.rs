//! The manager's web app on the real stack: sign-in by an emailed link,
//! the inbox, the case page and its steps, driven in headless Chromium;
//! and the refusals (no session, forged, expired or reused links, missing
//! form tokens, another store's case). Screenshots at phone and desktop
//! size, in French and English, land in `target/screenshots/`.

use std::time::Duration;

use closeloop_core::links::{sign_view, ViewClaims};
use closeloop_tests::browser::{Browser, Device};
use closeloop_tests::{eventually, post_json, story_event, Options, TestEnv};
use fantoccini::Locator;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

const SHORT: Duration = Duration::from_secs(30);
const LINK_KEY: &[u8] = b"closeloop-test-links-key";
const CLAIRE: &str = "claire.martin@closeloop.local";
const ANTOINE: &str = "antoine.roche@closeloop.local";

fn single_node() -> Options {
    Options {
        single_node: true,
        kafka: Some("127.0.0.1:1".into()),
        ..Options::default()
    }
}

/// An answer at `store` from `customer`.
fn answer(event_id: &str, customer: &str, store: &str, comment: &str) -> Value {
    let mut event = story_event(event_id, customer);
    event["location"]["store_id"] = store.into();
    event["customer"]["name"] = customer.into();
    event["comment"] = comment.into();
    event
}

async fn case_of(env: &TestEnv, event_id: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM cases WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&env.db)
        .await
        .unwrap()
}

/// The newest sign-in link emailed to `to`, once there are `count` of them.
async fn sign_in_link(env: &TestEnv, to: &str, count: usize) -> String {
    let prefix = format!("{}/signin/", env.base_url);
    eventually("a sign-in email", SHORT, || async {
        let links: Vec<String> = env
            .smtp
            .emails()
            .iter()
            .filter(|e| e.to == to)
            .filter_map(|e| {
                let start = e.text.find(&prefix)?;
                let rest = &e.text[start..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                Some(rest[..end].to_owned())
            })
            .collect();
        (links.len() >= count).then(|| links.last().cloned().unwrap())
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of a Set-Cookie header of `response`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The value of the first `name="csrf"` field of a page.
fn form_token(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Sign `email` in over plain HTTP; the session cookie (`name=value`) and
/// the sign-in link used.
async fn http_session(env: &TestEnv, email: &str, nth: usize) -> (String, String) {
    let client = no_redirects();
    let form = client.get(env.api("/signin")).send().await.unwrap();
    let form_cookie = set_cookie(&form, "closeloop_form").unwrap();
    let token = form_token(&form.text().await.unwrap());
    let sent = client
        .post(env.api("/signin"))
        .header(COOKIE, &form_cookie)
        .form(&[("csrf", token.as_str()), ("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let link = sign_in_link(env, email, nth).await;
    let confirm = client
        .get(&link)
        .header(COOKIE, &form_cookie)
        .send()
        .await
        .unwrap();
    let token = form_token(&confirm.text().await.unwrap());
    let opened = client
        .post(&link)
        .header(COOKIE, &form_cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    assert_eq!(opened.headers()[LOCATION], "/inbox");
    let session = set_cookie(&opened, "closeloop_session").expect("a session cookie");
    let raw = opened.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let all: Vec<&str> = opened
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("closeloop_session="))
        .collect();
    assert!(
        all[0].contains("HttpOnly") && all[0].contains("SameSite=Lax"),
        "{raw}"
    );
    (session, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_no_customer_data_without_a_session_or_a_valid_link() {
    let env = TestEnv::new(single_node()).await;
    let _service = env.start_service().await;
    let client = no_redirects();
    let http = reqwest::Client::new();
    let (status, _) = post_json(
        &http,
        env.api("/v1/events"),
        &answer("web-a", "Julie Moreau", "LYON-02", "Livraison en retard"),
    )
    .await;
    assert_eq!(status, 202);
    let case = case_of(&env, "web-a").await;
    let page = env.api(&format!("/cases/{case}"));

    // No session, no link: a page that says how to get in, no customer.
    let bare = client.get(&page).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::NOT_FOUND);
    let headers = bare.headers().clone();
    let body = bare.text().await.unwrap();
    assert!(
        !body.contains("Julie Moreau") && !body.contains("+33"),
        "{body}"
    );
    assert!(body.contains("signin"), "{body}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    // A forged, an expired and another case's link: refused, no data.
    let expired = sign_view(
        LINK_KEY,
        &ViewClaims {
            view_case: case.to_string(),
            expires_at: chrono::Utc::now() - chrono::Duration::minutes(1),
        },
    );
    let other = sign_view(
        LINK_KEY,
        &ViewClaims {
            view_case: uuid::Uuid::now_v7().to_string(),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    );
    let forged = sign_view(
        b"not-the-key",
        &ViewClaims {
            view_case: case.to_string(),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        },
    );
    for (what, link, words) in [
        ("expired", expired, "expired"),
        ("another case's", other, "another case"),
        ("forged", forged, "not issued by closeloop"),
    ] {
        let response = client
            .get(format!("{page}?link={link}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("Julie Moreau"), "{what}: {body}");
        assert!(body.contains(words), "{what}: {body}");
    }
    // The email's own link opens the case.
    let link = env.case_link(case).await;
    let opened = client.get(&link).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(opened.text().await.unwrap().contains("Julie Moreau"));

    // A sign-in link works once; a made-up one is not valid.
    let (claire, used) = http_session(&env, CLAIRE, 1).await;
    let again = client.get(&used).send().await.unwrap();
    let form_cookie = set_cookie(&again, "closeloop_form").unwrap();
    let token = form_token(&again.text().await.unwrap());
    let reused = client
        .post(&used)
        .header(COOKIE, &form_cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), StatusCode::GONE);
    assert!(reused.text().await.unwrap().contains("already used"));
    let made_up = client
        .post(env.api("/signin/abcdefabcdefabcdefabcdefabcdefabcdefabcdefa"))
        .header(COOKIE, &form_cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), StatusCode::NOT_FOUND);
    // Without the form cookie's token, a sign-in form is refused.
    let no_token = client
        .post(&used)
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);

    // Claire's session sees her case; a POST without its form token
    // changes nothing.
    let mine = client
        .get(&page)
        .header(COOKIE, &claire)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), StatusCode::OK);
    let refused = client
        .post(format!("{page}/do/acknowledge"))
        .header(COOKIE, &claire)
        .form(&[("note", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let status: String = sqlx::query_scalar("SELECT status FROM cases WHERE id = $1")
        .bind(case)
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(status, "open");

    // The LYON-01 manager: Claire's case is not found for him.
    let (antoine, _) = http_session(&env, ANTOINE, 1).await;
    let theirs = client
        .get(&page)
        .header(COOKIE, &antoine)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert!(!theirs.text().await.unwrap().contains("Julie Moreau"));
    let inbox = client
        .get(env.api("/inbox"))
        .header(COOKIE, &antoine)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!inbox.contains("Julie Moreau"), "{inbox}");
    // Ops end every session of a person from the command line.
    let said = env.cli(&["sessions", "revoke", "--owner", "mgr-lyon-01"]);
    assert!(said.contains("1 session(s) of mgr-lyon-01 ended"), "{said}");
    let ended = client
        .get(env.api("/inbox"))
        .header(COOKIE, &antoine)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);

    // An address outside the directory gets the same answer, and no email.
    let before = env.smtp.emails().len();
    let form = client.get(env.api("/signin")).send().await.unwrap();
    let form_cookie = set_cookie(&form, "closeloop_form").unwrap();
    let token = form_token(&form.text().await.unwrap());
    let stranger = client
        .post(env.api("/signin"))
        .header(COOKIE, &form_cookie)
        .form(&[("csrf", token.as_str()), ("email", "someone@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.smtp.emails().len(), before);

    // Sign-out revokes the session server-side: the cookie opens nothing.
    let inbox = client
        .get(env.api("/inbox"))
        .header(COOKIE, &claire)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = form_token(&inbox);
    let out = client
        .post(env.api("/signout"))
        .header(COOKIE, &claire)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = client
        .get(env.api("/inbox"))
        .header(COOKIE, &claire)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[LOCATION], "/signin");
    let revoked: i64 = env
        .count("SELECT count(*) FROM web_sessions WHERE revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked, 2);
}

/// The story in a real browser, as a store manager on a phone: the email's
/// sign-in link, the inbox, a filter, the case, "I'm on it", a call, the
/// resolution with a root cause, the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_signs_in_and_closes_the_loop_in_chromium() {
    let env = TestEnv::new(single_node()).await;
    // The inbox asks for its list every second (20 s by default).
    let _service = env
        .start_service_with(&[("CLOSELOOP__WEB__INBOX_REFRESH", "1s")])
        .await;
    let http = reqwest::Client::new();
    for (id, customer, store, comment) in [
        (
            "web-1",
            "Julie Moreau",
            "LYON-02",
            "Livraison avec trois jours de retard, personne ne m'a prévenue.",
        ),
        (
            "web-2",
            "Paul Girard",
            "LYON-02",
            "Le lave-linge fuit depuis l'installation.",
        ),
        (
            "web-3",
            "Nina Blanc",
            "LYON-01",
            "Accueil désagréable en caisse.",
        ),
    ] {
        let (status, body) = post_json(
            &http,
            env.api("/v1/events"),
            &answer(id, customer, store, comment),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    let case = case_of(&env, "web-1").await;

    let browser = Browser::start(Device::Phone).await;
    browser.goto(&env.api("/signin")).await;
    browser.fill("#email", CLAIRE).await;
    browser.click_to_page("form[action='/signin'] button").await;
    assert!(browser.text().await.contains(CLAIRE));
    let link = sign_in_link(&env, CLAIRE, 1).await;
    browser.goto(&link).await;
    browser.click_to_page("main form button").await;

    // The inbox, in Claire's French: her two cases, not LYON-01's.
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/inbox");
    let inbox = browser.text().await;
    assert!(inbox.contains("Mes dossiers"), "{inbox}");
    assert!(
        inbox.contains("Julie Moreau") && inbox.contains("Paul Girard"),
        "{inbox}"
    );
    assert!(!inbox.contains("Nina Blanc"), "{inbox}");
    assert!(inbox.contains("2 à traiter"), "{inbox}");
    assert!(inbox.contains("Prendre en charge sous"), "{inbox}");
    browser.screenshot("inbox-fr-phone").await;
    let violations = browser.serious_a11y_violations().await;
    assert!(violations.is_empty(), "inbox: {violations:?}");

    // A search narrows the list.
    browser.click("details.filters summary").await;
    browser.fill("#q", "fuit").await;
    browser
        .click_to_page("details.filters button[type=submit]")
        .await;
    let filtered = browser.text().await;
    assert!(
        filtered.contains("Paul Girard") && !filtered.contains("Julie Moreau"),
        "{filtered}"
    );
    browser.goto(&env.api("/inbox")).await;

    // The case: the customer first, a tap-to-call link, the clocks.
    browser
        .click_to_page(&format!("a[href='/cases/{case}']"))
        .await;
    let page = browser.text().await;
    assert!(page.contains("Rappeler Julie Moreau"), "{page}");
    assert!(page.contains("NPS 3 · détracteur"), "{page}");
    assert!(
        page.contains("Livraison avec trois jours de retard"),
        "{page}"
    );
    let call = browser
        .client
        .find(Locator::Css("a[href^='tel:']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(call.as_deref(), Some("tel:+33612345678"));
    browser.screenshot("case-fr-phone").await;
    let violations = browser.serious_a11y_violations().await;
    assert!(violations.is_empty(), "case page: {violations:?}");

    // I'm on it; a call; resolved with a root cause picked by its label.
    browser
        .click_to_page("form[action$='/do/acknowledge'] button")
        .await;
    let acked = browser.text().await;
    assert!(acked.contains("C'est fait : Pris en charge."), "{acked}");
    browser.click("input[name=outcome][value=reached]").await;
    browser
        .fill("#contact-note", "Rappel fait, excuses présentées")
        .await;
    browser
        .click_to_page("form[action$='/do/contact'] button")
        .await;
    assert!(browser.text().await.contains("C'est fait : Appel noté."));
    browser.select("#root-cause", "delivery_delay").await;
    browser.fill("#resolve-note", "Geste commercial").await;
    browser
        .click_to_page("form[action$='/do/resolve'] button")
        .await;
    let done = browser.text().await;
    assert!(done.contains("C'est fait : Résolu."), "{done}");
    for line in [
        "Dossier ouvert",
        "Pris en charge",
        "Appel noté",
        "Rappel fait, excuses présentées",
        "Résolu",
        "Retard de livraison",
        "Geste commercial",
        "par Claire Martin",
    ] {
        assert!(done.contains(line), "history misses {line}: {done}");
    }
    browser.screenshot("case-resolved-fr-phone").await;
    let (status, root_cause): (String, Option<String>) =
        sqlx::query_as("SELECT status, root_cause FROM cases WHERE id = $1")
            .bind(case)
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), root_cause.as_deref()),
        ("resolved", Some("delivery_delay"))
    );

    // A step the case no longer allows is refused in words.
    let other = case_of(&env, "web-2").await;
    browser.goto(&env.api(&format!("/cases/{other}"))).await;
    assert!(
        browser
            .client
            .find(Locator::Css("form[action$='/do/resolve']"))
            .await
            .is_err(),
        "a new case offers no resolution"
    );

    // Several cases at once: the rest of LYON-02's new cases.
    let third = case_of(&env, "web-2").await;
    browser.goto(&env.api("/inbox")).await;
    browser
        .click(&format!("input[name=case][value='{third}']"))
        .await;
    browser.click_to_page("form.bulk button[type=submit]").await;
    let bulk = browser.text().await;
    assert!(bulk.contains("Pris en charge : 1."), "{bulk}");
    let status: String = sqlx::query_scalar("SELECT status FROM cases WHERE id = $1")
        .bind(third)
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(status, "acknowledged");

    // A new case appears in the open inbox, without a reload.
    browser.goto(&env.api("/inbox")).await;
    let (status, _) = post_json(
        &http,
        env.api("/v1/events"),
        &answer("web-4", "Zoé Lambert", "LYON-02", "Colis abîmé."),
    )
    .await;
    assert_eq!(status, 202);
    eventually("the new case in the open inbox", SHORT, || async {
        browser.text().await.contains("Zoé Lambert").then_some(())
    })
    .await;

    // English from the switch, on the phone.
    browser.goto(&env.api("/inbox?lang=en")).await;
    let english = browser.text().await;
    assert!(
        english.contains("My cases") && english.contains("Paul Girard"),
        "{english}"
    );
    browser.screenshot("inbox-en-phone").await;
    browser.goto(&env.api(&format!("/cases/{other}"))).await;
    browser.screenshot("case-en-phone").await;

    // The same session on a desktop browser (its cookie carried over).
    let session = browser
        .client
        .get_named_cookie("closeloop_session")
        .await
        .unwrap();
    assert!(session.http_only().unwrap_or(false));
    let desktop = Browser::start(Device::Desktop).await;
    desktop.goto(&env.api("/signin")).await;
    desktop
        .client
        .add_cookie(session.into_owned())
        .await
        .unwrap();
    desktop.goto(&env.api("/inbox?lang=en")).await;
    assert!(desktop.text().await.contains("Paul Girard"));
    desktop.screenshot("inbox-en-desktop").await;
    desktop.goto(&env.api(&format!("/cases/{case}"))).await;
    let english = desktop.text().await;
    assert!(
        english.contains("Call back Julie Moreau") && english.contains("Delivery delay"),
        "{english}"
    );
    desktop.screenshot("case-en-desktop").await;
    desktop.goto(&env.api("/inbox?lang=fr")).await;
    desktop.screenshot("inbox-fr-desktop").await;
    desktop.goto(&env.api(&format!("/cases/{other}"))).await;
    desktop.screenshot("case-fr-desktop").await;
    desktop.close().await;
    browser.close().await;
}
