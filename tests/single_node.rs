//! Single-node mode (`intake.mode = "single-node"`): no broker. Events come
//! in over HTTP or `closeloop publish`, go through the same intake path as
//! Kafka batches, and are answered 202 only once committed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use closeloop_tests::{
    eventually, post_json, post_json_as, story_event, webhook_validator, Options, TestEnv,
};
use serde_json::{json, Value};

const SHORT: Duration = Duration::from_secs(30);

fn single_node() -> Options {
    Options {
        single_node: true,
        // No broker is used: point the client at a closed port to prove it.
        kafka: Some("127.0.0.1:1".into()),
        ..Options::default()
    }
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    post_json(client, url, body).await
}

/// HTTP in, case committed before 202, email and webhook out, follow-up
/// through the API; every webhook matches the published schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_in_case_email_webhook_and_follow_up_without_a_broker() {
    let env = TestEnv::new(single_node()).await;
    let service = env.start_service().await;
    assert!(
        service.log_text().contains("SingleNode"),
        "{}",
        service.log_text()
    );
    let client = reqwest::Client::new();
    let event_id = format!("single-{}", env.name);

    let (status, body) = post(
        &client,
        env.api("/v1/events"),
        &story_event(&event_id, "C-1"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // Committed before the answer: the case is there at once, no waiting.
    let case_id: uuid::Uuid = sqlx::query_scalar("SELECT c.id FROM cases c WHERE c.event_id = $1")
        .bind(&event_id)
        .fetch_one(&env.db)
        .await
        .expect("the case exists as soon as 202 is answered");

    let email = eventually("the alert email", SHORT, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == "claire.martin@closeloop.local")
    })
    .await;
    assert!(email.text.contains("Livraison avec trois jours de retard"));
    assert!(email.text.contains(&format!("/cases/{case_id}")));

    // The same event again: 202, and nothing new (idempotent by event_id).
    let (status, _) = post(
        &client,
        env.api("/v1/events"),
        &json!([story_event(&event_id, "C-1")]),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 1);

    // Follow-up through the API.
    let url = |action: &str| env.api(&format!("/v1/cases/{case_id}/{action}"));
    for (action, body) in [
        ("acknowledge", json!({"actor": "claire.martin"})),
        (
            "contact-attempts",
            json!({"actor": "claire.martin", "outcome": "reached", "note": "refund of the delivery fees"}),
        ),
        (
            "resolve",
            json!({"actor": "claire.martin", "root_cause": "delivery_delay"}),
        ),
    ] {
        let (status, answer) = post(&client, url(action), &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }

    let validator = webhook_validator();
    let (webhooks, types) = env.webhooks.wait_for(4, SHORT).await;
    assert_eq!(
        types,
        [
            "case.created",
            "case.acknowledged",
            "case.updated",
            "case.resolved"
        ],
    );
    for webhook in &webhooks {
        let body = webhook.json();
        if let Err(error) = validator.validate(&body) {
            panic!(
                "{} does not match the schema: {error} at {}\n{body:#}",
                body["type"],
                error.instance_path()
            );
        }
    }
    assert_eq!(webhooks[3].json()["data"]["root_cause"], "delivery_delay");
}

/// A bad element refuses the whole array with 422 naming index and field;
/// `closeloop publish` stores the valid lines and names the refused ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_refused_with_the_field_and_nothing_is_lost() {
    let env = TestEnv::new(single_node()).await;
    let _service = env.start_service().await;
    let client = reqwest::Client::new();

    let mut bad = story_event("bad-1", "C-2");
    bad["scores"]["nps"] = json!(11);
    let good = story_event(&format!("good-{}", env.name), "C-3");
    let (status, body) = post(&client, env.api("/v1/events"), &json!([good, bad])).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(body["errors"][0]["field"], "scores.nps");
    assert_eq!(
        env.count("SELECT count(*) FROM feedback_events").await,
        0,
        "none stored"
    );

    let lines = [
        story_event("file-1", "C-4").to_string(),
        "{not json".to_owned(),
        story_event("file-2", "C-5").to_string(),
    ];
    let file = env.write_events("mixed.jsonl", &lines);
    let output = closeloop_tests::closeloop_command()
        .arg("--config")
        .arg(&env.config)
        .arg("publish")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a refused line makes publish fail"
    );
    assert!(stderr.contains("line 2: invalid JSON"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("stored 2 events"));
    assert_eq!(env.count("SELECT count(*) FROM feedback_events").await, 2);
}

/// kill -9 during a burst of concurrent HTTP posts: every event answered 202
/// is stored, and the restarted service carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_event_answered_202() {
    let env = TestEnv::new(single_node()).await;
    let mut service = env.start_service().await;
    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let url = env.api("/v1/events");
    let mut posters = Vec::new();
    for poster in 0..4 {
        let (accepted, url) = (accepted.clone(), url.clone());
        posters.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            for request in 0..400 {
                let ids: Vec<String> = (0..5)
                    .map(|i| format!("burst-{poster}-{request}-{i}"))
                    .collect();
                let body: Vec<Value> = ids
                    .iter()
                    .map(|id| story_event(id, &format!("C-{poster}-{request}")))
                    .collect();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 202 => accepted.lock().unwrap().extend(ids),
                    Ok(_) | Err(_) => {
                        // Refused, or the service died mid-request: the
                        // client would retry; nothing is promised.
                        if request > 0 {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
        }));
    }
    // Let the burst run, then kill the service in the middle of it.
    eventually("some events accepted", SHORT, || async {
        (accepted.lock().unwrap().len() >= 200).then_some(())
    })
    .await;
    service.kill_9();
    for poster in posters {
        poster.await.unwrap();
    }
    let answered: BTreeSet<String> = accepted.lock().unwrap().clone();
    let stored: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT event_id FROM feedback_events")
            .fetch_all(&env.db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert!(
        answered.len() >= 200,
        "the burst was under way: {}",
        answered.len()
    );
    let lost: Vec<_> = answered.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} events answered 202 but not stored: {lost:?}",
        lost.len()
    );

    // Restarted, it takes events again.
    let _service = env.start_service().await;
    let client = reqwest::Client::new();
    let (status, _) = post(&client, url, &story_event("after-restart", "C-9")).await;
    assert_eq!(status, 202);
    assert!(
        env.count("SELECT count(*) FROM feedback_events WHERE event_id = 'after-restart'")
            .await
            == 1
    );
}

/// No shared default key: without `links.secret` the service generates one
/// at first start, keeps it in the database, and keeps using it after a
/// restart; a link signed with the old public development key, or any other
/// key, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_links_are_signed_with_a_key_generated_at_first_start() {
    let env = TestEnv::new(Options {
        generated_link_key: true,
        ..single_node()
    })
    .await;
    let mut service = env.start_service().await;
    let client = reqwest::Client::new();
    let event_id = format!("key-{}", env.name);
    let (status, _) = post(
        &client,
        env.api("/v1/events"),
        &story_event(&event_id, "C-7"),
    )
    .await;
    assert_eq!(status, 202);
    let key: Vec<u8> = sqlx::query_scalar("SELECT secret FROM service_keys WHERE name = 'links'")
        .fetch_one(&env.db)
        .await
        .expect("the link key was generated and stored");
    assert_eq!(key.len(), 32);
    assert_ne!(key, b"closeloop-local-links-key-change-me".to_vec());

    let email = eventually("the alert email", SHORT, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == "claire.martin@closeloop.local")
    })
    .await;
    let link = email
        .text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/a/", env.base_url)))
        .unwrap_or_else(|| panic!("a one-click link in:\n{}", email.text))
        .to_owned();
    assert_eq!(client.get(&link).send().await.unwrap().status(), 200);

    // The same claims signed with the public development key, or another key.
    let token = link.rsplit('/').next().unwrap();
    let payload = token.split('.').next().unwrap();
    use base64::Engine;
    let claims: closeloop_core::links::LinkClaims = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    for forged_key in [
        &b"closeloop-local-links-key-change-me"[..],
        b"another-key-0123456789",
    ] {
        let forged = closeloop_core::links::sign(forged_key, &claims);
        let page = client
            .get(format!("{}/a/{forged}", env.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 410, "a forged link is refused");
        let text = page.text().await.unwrap();
        assert!(text.contains("not issued by closeloop"), "{text}");
    }

    // Restarted, the service reads the same key: the emailed link still works.
    service.terminate(Duration::from_secs(20)).unwrap();
    let _service = env.start_service().await;
    assert_eq!(client.get(&link).send().await.unwrap().status(), 200);
    assert_eq!(env.count("SELECT count(*) FROM service_keys").await, 1);
}

/// The inputs a probe of a running instance found to panic or answer 500
/// (issue 14): each now gets a 4xx in the JSON error shape naming the field.
/// And the smaller holes: `bearer` in any case, a silence's author from the
/// token, not the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probed_inputs_get_a_4xx_naming_the_field() {
    let env = TestEnv::new(Options {
        auth: true,
        ..single_node()
    })
    .await;
    let _service = env.start_service().await;
    let token = env
        .cli(&["tokens", "create", "--name", "ops.probe", "--role", "ops"])
        .trim()
        .to_owned();
    let client = reqwest::Client::new();
    let (status, _) = post_json_as(
        &client,
        &token,
        env.api("/v1/events"),
        &story_event("probe-1", "C-1"),
    )
    .await;
    assert_eq!(status, 202);
    let case_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM cases WHERE event_id = 'probe-1'")
        .fetch_one(&env.db)
        .await
        .unwrap();

    // (method, path, body, field named in the error)
    let probes: Vec<(&str, String, Option<Value>, &str)> = vec![
        (
            "POST",
            "/v1/silences".into(),
            Some(json!({"matcher": "store == \"X\"", "duration": "999999999999w", "reason": "r"})),
            "duration",
        ),
        ("GET", "/v1/cases?store=a%00b".into(), None, "store"),
        (
            "GET",
            "/v1/metrics/loop?from=-009999-01-01T00:00:00Z".into(),
            None,
            "from",
        ),
        (
            "POST",
            format!("/v1/cases/{case_id}/notes"),
            Some(json!({"note": "a\u{0}b"})),
            "note",
        ),
        (
            "POST",
            format!("/v1/cases/{case_id}/notes"),
            Some(json!({"note": "x".repeat(10_001)})),
            "note",
        ),
        (
            "POST",
            "/v1/silences".into(),
            Some(json!({"matcher": "store == \"X\"", "duration": "2h", "reason": "a\u{0}"})),
            "reason",
        ),
        ("GET", "/v1/cases?limit=abc".into(), None, "limit"),
    ];
    for (method, path, body, field) in probes {
        let mut request = client
            .request(method.parse().unwrap(), env.api(&path))
            .header("authorization", format!("bearer {token}"));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(field),
            "{method} {path}: `{field}` not named in {answer}"
        );
    }

    // A silence's author is the token's name, whatever the body says.
    let (status, silence) = post_json_as(
        &client,
        &token,
        env.api("/v1/silences"),
        &json!({"matcher": "store == \"X\"", "duration": "2h", "created_by": "someone-else", "reason": "maintenance"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["created_by"], "ops.probe");
    // The service is still up and answering.
    let ready = client
        .get(format!("{}/readyz", env.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// A half-sent request (slowloris) is cut after `http.header_read_timeout`;
/// a request whose body never completes is answered 408 after
/// `http.request_timeout`. Other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new(single_node()).await;
    let _service = env
        .start_service_with(&[
            ("CLOSELOOP__HTTP__HEADER_READ_TIMEOUT", "1s"),
            ("CLOSELOOP__HTTP__REQUEST_TIMEOUT", "2s"),
        ])
        .await;
    let address = env.base_url.trim_start_matches("http://").to_owned();

    // Headers that never end.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(15), slow.read(&mut buffer))
        .await
        .expect("the server closes the connection instead of waiting forever");
    assert!(
        matches!(read, Ok(0) | Err(_))
            || String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408"),
        "cut: {read:?} {}",
        String::from_utf8_lossy(&buffer)
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // A body announced but never sent.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"event_id\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stalled.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Meanwhile and afterwards, everyone else is served.
    let ready = reqwest::get(format!("{}/readyz", env.base_url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// With `http.metrics_token`, `/metrics` (per-owner loop figures) answers
/// only the scraper that presents it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_behind_a_token() {
    let env = TestEnv::new(single_node()).await;
    let _service = env
        .start_service_with(&[("CLOSELOOP__HTTP__METRICS_TOKEN", "scrape-secret-0123456789")])
        .await;
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", env.base_url);
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = client
        .get(&url)
        .bearer_auth("scrape-secret-0123456788")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let scraper = client
        .get(&url)
        .bearer_auth("scrape-secret-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(scraper.status(), 200);
    assert!(scraper
        .text()
        .await
        .unwrap()
        .contains("closeloop_alerts_unnotified_total"));
}

/// Any valid event renders deliverable emails: every field at its longest
/// (a 10,000-character comment on one line, a 200-character name, 128-
/// character store and touchpoint, 64 attributes of 1,000 characters) still
/// reaches the SMTP server, which refuses lines over 998 characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_valid_event_still_gets_its_email() {
    let env = TestEnv::new(single_node()).await;
    let _service = env.start_service().await;
    let client = reqwest::Client::new();
    let attributes: serde_json::Map<String, Value> = (0..64)
        .map(|i| {
            (
                format!("k{i:02}{}", "k".repeat(125)),
                json!("v".repeat(1000)),
            )
        })
        .collect();
    let mut event = story_event("longest-1", "C-LONG");
    event["customer"]["name"] = json!("N".repeat(200));
    event["location"]["store_id"] = json!("LYON-02");
    event["journey"]["touchpoint"] = json!("t".repeat(128));
    event["product_line"] = json!("p".repeat(128));
    event["comment"] = json!("é".repeat(10_000));
    event["attributes"] = Value::Object(attributes);
    let (status, body) = post(&client, env.api("/v1/events"), &event).await;
    assert_eq!(status, 202, "{body}");
    let email = eventually("the alert email of the longest event", SHORT, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == "claire.martin@closeloop.local")
    })
    .await;
    assert!(
        email.text.contains(&"é".repeat(200)),
        "the comment is in the email"
    );
    let dead = env
        .count("SELECT count(*) FROM outbox WHERE status = 'dead'")
        .await;
    assert_eq!(dead, 0, "no delivery is dead");
}

/// An endpoint disabled by 410 Gone is listed with its URL masked (URLs
/// often carry a token) and an id, and re-enabled by that id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_endpoints_are_listed_masked_and_enabled_by_id() {
    let env = TestEnv::new(single_node()).await;
    let _service = env.start_service().await;
    env.webhooks.fail_next(410);
    let client = reqwest::Client::new();
    let (status, _) = post(
        &client,
        env.api("/v1/events"),
        &story_event("gone-1", "C-G"),
    )
    .await;
    assert_eq!(status, 202);
    let listed = eventually("the endpoint disabled by 410", SHORT, || async {
        let body: Value = client
            .get(env.api("/v1/endpoints/disabled"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let first = body["endpoints"].get(0)?.clone();
        Some(first)
    })
    .await;
    let full = env.webhooks.url.clone();
    let shown = listed["url"].as_str().unwrap();
    assert_ne!(shown, full);
    assert!(shown.ends_with("/***"), "{shown}");
    assert!(
        full.starts_with(shown.trim_end_matches("***")),
        "{shown} points where {full} does"
    );
    let id = listed["id"].as_str().unwrap();
    let (status, body) = post(&client, env.api("/v1/endpoints/enable"), &json!({"id": id})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.to_string().contains(&full),
        "the answer masks the URL too: {body}"
    );
    let after: Value = env.get_json("/v1/endpoints/disabled").await;
    assert_eq!(after["endpoints"], json!([]));
    let deliveries: Value = env.get_json("/v1/deliveries").await;
    let webhooks: Vec<&Value> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "webhook")
        .collect();
    assert!(!webhooks.is_empty());
    for delivery in webhooks {
        assert_eq!(delivery["recipient"].as_str(), Some(shown), "{delivery}");
    }
}
