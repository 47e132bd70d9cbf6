//! The authorization matrix: every route of the router × every kind of
//! caller has an expected answer. The routes are read from the router's own
//! source (`crates/closeloop-api/src/lib.rs` and the web app's
//! `web/mod.rs`), so a new route without an entry here fails the test until
//! someone decides who may use it.

use std::collections::BTreeSet;

use closeloop_tests::{post_json_as, repo_root, Options, TestEnv};
use serde_json::json;

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Past authorization: any answer but 401, 403 and 404.
    Allowed,
    /// 401: no or a bad token.
    Unauthorized,
    /// 403: the role may not use this part of the API.
    Forbidden,
    /// 404: a case outside the manager's scope does not exist for them.
    Hidden,
    /// Public by design (health, signed links): never 401 or 403.
    Public,
    /// A web app page: sessions and form tokens decide, not bearer tokens
    /// (`tests/web.rs` checks them): never 401.
    Page,
}
use Expect::*;

/// The callers, in the order of each row's expectations.
const CALLERS: [&str; 5] = [
    "admin",
    "ops",
    "manager in scope",
    "manager out of scope",
    "anonymous",
];

/// (method, route, expectations per caller, why).
fn matrix() -> Vec<(&'static str, &'static str, [Expect; 5], &'static str)> {
    let case = [Allowed, Allowed, Allowed, Hidden, Unauthorized];
    let operations = [Allowed, Allowed, Forbidden, Forbidden, Unauthorized];
    let open = [Public; 5];
    let page = [Page; 5];
    vec![
        (
            "POST",
            "/v1/events",
            operations,
            "event intake is for upstream systems",
        ),
        (
            "GET",
            "/v1/cases",
            [Allowed, Allowed, Allowed, Allowed, Unauthorized],
            "a manager's list is their scope",
        ),
        ("GET", "/v1/cases/{id}", case, ""),
        ("POST", "/v1/cases/{id}/acknowledge", case, ""),
        ("POST", "/v1/cases/{id}/notes", case, ""),
        ("POST", "/v1/cases/{id}/contact-attempts", case, ""),
        ("POST", "/v1/cases/{id}/resolve", case, ""),
        ("POST", "/v1/cases/{id}/reopen", case, ""),
        ("POST", "/v1/cases/{id}/close", case, ""),
        ("POST", "/v1/cases/{id}/wait", case, ""),
        ("POST", "/v1/cases/{id}/resume", case, ""),
        ("POST", "/v1/cases/{id}/reassign", case, ""),
        ("GET", "/v1/cases/{id}/trace", case, ""),
        ("GET", "/v1/cases/{id}/watchers", case, ""),
        ("POST", "/v1/cases/{id}/watchers", case, ""),
        ("GET", "/v1/deliveries", operations, ""),
        ("POST", "/v1/deliveries/replay", operations, ""),
        ("GET", "/v1/endpoints/disabled", operations, ""),
        ("POST", "/v1/endpoints/enable", operations, ""),
        ("GET", "/v1/silences", operations, ""),
        ("POST", "/v1/silences", operations, ""),
        ("POST", "/v1/silences/{id}/expire", operations, ""),
        (
            "GET",
            "/v1/root-causes",
            [Allowed, Allowed, Allowed, Allowed, Unauthorized],
            "",
        ),
        ("GET", "/v1/rules/status", operations, ""),
        ("POST", "/v1/rules/reload", operations, ""),
        ("GET", "/v1/metrics/loop", operations, ""),
        ("GET", "/v1/metrics/scores", operations, ""),
        // The web app: a session or the email's signed link (checked in
        // web.rs and e2e.rs); without either, 404 with no case data.
        ("GET", "/", page, "redirects to the inbox"),
        ("GET", "/signin", page, ""),
        ("POST", "/signin", page, "needs the form cookie's token"),
        (
            "POST",
            "/signin/token",
            page,
            "an API token opens a session",
        ),
        ("GET", "/signin/{token}", page, "shows one button"),
        ("POST", "/signin/{token}", page, "a sign-in link, once"),
        ("POST", "/signout", page, ""),
        ("GET", "/inbox", page, "a session, else the sign-in page"),
        ("GET", "/inbox/list", page, ""),
        (
            "POST",
            "/inbox/acknowledge",
            page,
            "a session and its form token",
        ),
        (
            "GET",
            "/insights",
            page,
            "a session; a manager's figures are their scope",
        ),
        ("GET", "/insights.csv", page, ""),
        ("GET", "/insights/scores", page, ""),
        ("GET", "/insights/scores.csv", page, ""),
        ("GET", "/insights/operations", page, "ops and admins only"),
        (
            "POST",
            "/insights/operations/{action}",
            page,
            "ops and admins, with a form token",
        ),
        (
            "GET",
            "/cases/{id}",
            page,
            "a session in scope or a signed link",
        ),
        (
            "POST",
            "/cases/{id}/do/{step}",
            page,
            "the same, and a form token",
        ),
        ("GET", "/static/app.css", open, "assets"),
        ("GET", "/static/app.js", open, "assets"),
        ("GET", "/static/icon.svg", open, "assets"),
        ("GET", "/manifest.webmanifest", open, "assets"),
        (
            "GET",
            "/a/{token}",
            open,
            "signed one-click links carry their own proof",
        ),
        (
            "POST",
            "/a/{token}",
            open,
            "signed one-click links carry their own proof",
        ),
        ("GET", "/healthz", open, "probes"),
        ("GET", "/readyz", open, "probes"),
        (
            "GET",
            "/metrics",
            open,
            "open unless http.metrics_token is set (tested apart)",
        ),
    ]
}

/// Every (method, path) the router declares, read from its source.
fn declared_routes() -> BTreeSet<(String, String)> {
    let source = ["lib.rs", "web/mod.rs"]
        .map(|file| {
            std::fs::read_to_string(repo_root().join("crates/closeloop-api/src").join(file))
                .unwrap()
        })
        .join("\n");
    let mut routes = BTreeSet::new();
    for piece in source.split(".route(").skip(1) {
        let piece = piece.trim_start();
        let Some(rest) = piece.strip_prefix('"') else {
            continue;
        };
        let path = &rest[..rest.find('"').unwrap()];
        // The method router ends at the route call's closing parenthesis.
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in piece.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let methods = &piece[..end];
        for (token, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("put(", "PUT"),
            ("delete(", "DELETE"),
            ("patch(", "PATCH"),
        ] {
            if methods.contains(token) {
                routes.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn every_route_has_a_row_in_the_matrix() {
    let declared = declared_routes();
    assert!(
        declared.len() >= 30,
        "the router's routes were read: {declared:?}"
    );
    let listed: BTreeSet<(String, String)> = matrix()
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = declared.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&declared).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that no longer exist: {stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let env = TestEnv::new(Options {
        auth: true,
        single_node: true,
        kafka: Some("127.0.0.1:1".into()),
        ..Options::default()
    })
    .await;
    let _service = env.start_service().await;
    let token = |name: &str, role: &str, owner: Option<&str>| {
        let mut args = vec!["tokens", "create", "--name", name, "--role", role];
        if let Some(owner) = owner {
            args.extend(["--owner", owner]);
        }
        env.cli(&args).trim().to_owned()
    };
    let tokens: [Option<String>; 5] = [
        Some(token("matrix.admin", "admin", None)),
        Some(token("matrix.ops", "ops", None)),
        Some(token("claire.martin", "manager", Some("mgr-lyon-02"))),
        Some(token("paris.manager", "manager", Some("mgr-paris-01"))),
        None,
    ];
    let client = reqwest::Client::new();
    let admin = tokens[0].clone().unwrap();
    // A LYON-02 case (Claire's store), and a silence to expire.
    let event = json!({"event_id": "matrix-1", "occurred_at": "2026-11-20T10:15:00+01:00", "source": "s",
        "customer": {"id": "C-1"}, "journey": {"touchpoint": "delivery"},
        "location": {"store_id": "LYON-02", "region": "FR-ARA"}, "scores": {"nps": 2}});
    let (status, _) = post_json_as(&client, &admin, env.api("/v1/events"), &event).await;
    assert_eq!(status, 202);
    let case_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM cases WHERE event_id = 'matrix-1'")
            .fetch_one(&env.db)
            .await
            .unwrap();
    let (_, silence) = post_json_as(
        &client,
        &admin,
        env.api("/v1/silences"),
        &json!({"matcher": "store == \"NOWHERE\"", "duration": "1h", "reason": "matrix"}),
    )
    .await;
    let silence_id = silence["id"].as_str().expect("a silence").to_owned();

    let mut failures = Vec::new();
    for (method, route, expected, why) in matrix() {
        let path = route
            .replace("/v1/silences/{id}", &format!("/v1/silences/{silence_id}"))
            .replace("{id}", &case_id.to_string())
            .replace("{token}", "not-a-signed-link")
            .replace("{step}", "acknowledge")
            .replace("{action}", "replay");
        for (caller, (token, expect)) in CALLERS.iter().zip(tokens.iter().zip(expected)) {
            let mut request = client.request(method.parse().unwrap(), env.api(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if method == "POST" {
                // An empty body: authorization is decided before validation,
                // and nothing is changed for good (no reassignment).
                request = request.json(&json!({}));
            }
            let status = request.send().await.unwrap().status().as_u16();
            let ok = match expect {
                Allowed => !matches!(status, 401 | 403 | 404),
                Unauthorized => status == 401,
                Forbidden => status == 403,
                Hidden => status == 404,
                Public => !matches!(status, 401 | 403),
                Page => status != 401,
            };
            if !ok {
                failures.push(format!(
                    "{method} {route} as {caller}: got {status}, expected {expect:?} {why}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
