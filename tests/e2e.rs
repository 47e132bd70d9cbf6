//! End-to-end tests: the real `closeloop` binary against the real broker
//! (tansu), PostgreSQL, an SMTP server and an HTTP webhook receiver.

use std::collections::HashSet;
use std::time::Duration;

use closeloop_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(30);

fn story_event(event_id: &str) -> Value {
    closeloop_tests::story_event(event_id, "C-88231")
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    closeloop_tests::post_json(client, url, &body).await
}

/// The story of the foundation issue, from publish to a closed loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_closes_the_loop() {
    let env = TestEnv::new(Options::default()).await;
    let mut service = env.start_service().await;
    let event_id = format!("story-{}", env.name);
    env.publish(&env.write_events("story.jsonl", &[story_event(&event_id).to_string()]));

    // A case opens, owned by the store manager.
    let case_id = env.case_id_of(&event_id).await;
    let client = reqwest::Client::new();
    let case: Value = client
        .get(env.api(&format!("/v1/cases/{case_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(case["owner_id"], "mgr-lyon-02");
    assert_eq!(case["route"], "store");
    assert_eq!(case["severity"], "high");
    assert_eq!(case["status"], "open");
    assert_eq!(case["rule_ids"], json!(["nps-detractor"]));

    // The store manager gets the email with score, comment and contact.
    let email = eventually("the alert email", SHORT, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == "claire.martin@closeloop.local")
    })
    .await;
    // Claire reads French: the severity and touchpoint are translated.
    for expected in ["[HAUTE]", "Julie Moreau", "NPS 3", "LYON-02", "livraison"] {
        assert!(
            email.subject.contains(expected),
            "subject `{}` lacks {expected}",
            email.subject
        );
    }
    for expected in [
        "Livraison avec trois jours de retard",
        "Julie Moreau",
        "julie.moreau@example.org",
        "+33 6 12 34 56 78",
        &format!("{}/cases/{case_id}?link=", env.base_url),
    ] {
        assert!(
            email.text.contains(expected),
            "email text lacks {expected}:\n{}",
            email.text
        );
    }
    assert!(email.html.contains("Livraison avec trois jours de retard"));
    assert!(
        email.text.starts_with("Julie Moreau attend votre rappel"),
        "Claire's locale is fr-FR: {}",
        email.text
    );

    // The store's CRM receives a signed webhook.
    let created = eventually("the case.created webhook", SHORT, || async {
        env.webhooks.received().into_iter().next()
    })
    .await;
    assert!(
        created.signature_is_valid(WEBHOOK_SECRET),
        "webhook signature must verify"
    );
    assert!(
        !created.signature_is_valid("whsec_c2Vjb25kLXNlY3JldC0xMjM0NTY3OA=="),
        "a wrong secret must not verify"
    );
    let body = created.json();
    assert_eq!(body["type"], "case.created");
    assert_eq!(body["data"]["id"], case_id.to_string());
    let outbox_id: Uuid =
        sqlx::query_scalar("SELECT id FROM outbox WHERE case_id = $1 AND channel = 'webhook'")
            .bind(case_id)
            .fetch_one(&env.db)
            .await
            .unwrap();
    assert_eq!(
        created.id,
        outbox_id.to_string(),
        "webhook-id is the stable outbox id"
    );
    assert_eq!(
        email.message_id,
        format!(
            "{}@closeloop",
            sqlx::query_scalar::<_, Uuid>(
                "SELECT id FROM outbox WHERE case_id = $1 AND channel = 'email'"
            )
            .bind(case_id)
            .fetch_one(&env.db)
            .await
            .unwrap()
        )
    );

    // The manager acts through the API.
    let url = |action: &str| env.api(&format!("/v1/cases/{case_id}/{action}"));
    let (status, refused) = post(
        &client,
        url("resolve"),
        json!({"actor": "claire.martin", "root_cause": "delivery_delay"}),
    )
    .await;
    assert_eq!(
        status, 409,
        "resolving an unacknowledged case is refused: {refused}"
    );
    assert!(refused["error"]
        .as_str()
        .unwrap()
        .contains("acknowledge it first"));

    let (status, acked) = post(
        &client,
        url("acknowledge"),
        json!({"actor": "claire.martin"}),
    )
    .await;
    assert_eq!(
        (status, acked["status"].as_str()),
        (200, Some("acknowledged")),
        "{acked}"
    );
    let (status, _) = post(
        &client,
        url("acknowledge"),
        json!({"actor": "claire.martin"}),
    )
    .await;
    assert_eq!(status, 409, "acknowledging twice is refused");

    let (status, _) = post(
        &client,
        url("contact-attempts"),
        json!({"actor": "claire.martin", "outcome": "no_answer"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, contacted) = post(
        &client,
        url("contact-attempts"),
        json!({"actor": "claire.martin", "outcome": "reached", "note": "apologised, voucher offered"}),
    )
    .await;
    assert_eq!(
        (status, contacted["status"].as_str()),
        (200, Some("contacted"))
    );
    assert_eq!(contacted["contact_attempts"], 2);

    let (status, invalid) = post(&client, url("resolve"), json!({"actor": "claire.martin"})).await;
    assert_eq!(
        status, 422,
        "a missing root cause is a bad request: {invalid}"
    );
    assert!(invalid["error"].as_str().unwrap().contains("root_cause"));
    let (status, invalid) = post(
        &client,
        url("resolve"),
        json!({"actor": "claire.martin", "root_cause": "aliens"}),
    )
    .await;
    assert_eq!(status, 409, "{invalid}");
    assert!(invalid["error"].as_str().unwrap().contains("not one of"));

    let (status, resolved) = post(
        &client,
        url("resolve"),
        json!({"actor": "claire.martin", "root_cause": "delivery_delay", "note": "carrier delay, refund of delivery fees"}),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["root_cause"], "delivery_delay");
    assert_eq!(resolved["resolved_by"], "claire.martin");

    // The case is closed with its full history.
    let detail: Value = client
        .get(env.api(&format!("/v1/cases/{case_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let history = detail["history"].as_array().unwrap();
    let steps: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap(),
                h["actor"].as_str().unwrap(),
                h["to_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("open", "closeloop", "open"),
            ("acknowledge", "claire.martin", "acknowledged"),
            ("contact", "claire.martin", "contacted"),
            ("contact", "claire.martin", "contacted"),
            ("resolve", "claire.martin", "resolved"),
        ]
    );
    assert_eq!(history[3]["details"]["outcome"], "reached");
    assert_eq!(history[4]["note"], "carrier delay, refund of delivery fees");
    assert!(detail["acknowledged_at"].is_string() && detail["resolved_at"].is_string());
    assert_eq!(detail["version"], 5);

    // The CRM hears of every step, in order.
    let (hooks, types) = env.webhooks.wait_for(5, SHORT).await;
    assert_eq!(
        types,
        [
            "case.created",
            "case.acknowledged",
            "case.updated",
            "case.updated",
            "case.resolved"
        ]
    );
    let versions: Vec<i64> = hooks
        .iter()
        .map(|h| h.json()["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert!(hooks.iter().all(|h| h.signature_is_valid(WEBHOOK_SECRET)));

    // Ops see who closed the loop, and how fast.
    let metrics: Value = client
        .get(env.api("/v1/metrics/loop?group_by=owner"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = metrics["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "mgr-lyon-02")
        .expect("a row for the owner");
    assert_eq!(
        (row["opened"].as_i64(), row["resolved"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(row["p50_resolve_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        row["top_root_causes"],
        json!([{"root_cause": "delivery_delay", "cases": 1}])
    );

    // The page linked from the email shows the case; without the email's
    // signed link, or with one altered or of another case, it shows none of it.
    let link = env.case_link(case_id).await;
    let page = client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    // In the owner's language (Claire Martin: fr-FR).
    assert!(
        page.contains("Julie Moreau") && page.contains("Résolu"),
        "{page}"
    );
    let bare = format!("{}/cases/{case_id}", env.base_url);
    let altered = format!("{}x", link.trim_end_matches(|c: char| c != '.'));
    let other = link.replace(&case_id.to_string(), &uuid::Uuid::now_v7().to_string());
    for (url, status) in [(&bare, 404), (&altered, 403), (&other, 403)] {
        let page = client.get(url.as_str()).send().await.unwrap();
        assert_eq!(page.status(), status, "{url}");
        let page = page.text().await.unwrap();
        assert!(
            !page.contains("Julie Moreau") && !page.contains("julie.moreau"),
            "{url}: {page}"
        );
    }

    // SIGTERM drains and exits cleanly.
    let status = service.terminate(Duration::from_secs(25)).unwrap();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        service.log_text()
    );
    let log = service.log_text();
    assert!(log.contains("stopped cleanly"));
    // The documented order: intake (batch stored and committed), then the
    // dispatcher and scheduler, then the HTTP server.
    let stages: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("stopped the ").nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(
        stages,
        ["intake", "dispatcher and scheduler", "http server"],
        "{log}"
    );
}

/// Publishing the same events again creates no case and sends no email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_twice_creates_nothing_new() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    // The first 700 lines hold alerts of both channels (LYON-02 has a CRM webhook).
    let lines = sample_lines(700);
    let policy = env.policy();
    let alerts: Vec<_> = lines
        .iter()
        .filter_map(|l| policy.decide(&closeloop_core::parse_event(l.as_bytes(), 1 << 20).unwrap()))
        .collect();
    let expected_cases = alerts.len() as i64;
    let expected_emails = alerts
        .iter()
        .filter(|a| a.channels.contains(&closeloop_core::Channel::Email))
        .count();
    let expected_webhooks = alerts
        .iter()
        .filter(|a| a.channels.contains(&closeloop_core::Channel::Webhook))
        .count();
    assert!(
        expected_cases > 50 && expected_webhooks > 0,
        "the sample exercises both channels"
    );
    let file = env.write_events("sample.jsonl", &lines);

    env.publish(&file);
    env.wait_caught_up(LONG).await;
    eventually("every notification sent", LONG, || async {
        (env.count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await
            == (expected_emails + expected_webhooks) as i64)
            .then_some(())
    })
    .await;
    assert_eq!(
        env.count("SELECT count(*) FROM cases").await,
        expected_cases
    );
    assert_eq!(env.count("SELECT count(*) FROM feedback_events").await, 700);
    eventually("every email in the mailbox", SHORT, || async {
        (env.smtp.emails().len() == expected_emails).then_some(())
    })
    .await;

    env.publish(&file);
    env.wait_caught_up(LONG).await;
    // Give the dispatcher the chance to (wrongly) send something.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM cases").await,
        expected_cases,
        "no new case"
    );
    assert_eq!(env.count("SELECT count(*) FROM feedback_events").await, 700);
    assert_eq!(
        env.count("SELECT count(*) FROM outbox").await,
        (expected_emails + expected_webhooks) as i64
    );
    assert_eq!(env.smtp.emails().len(), expected_emails, "no new email");
    assert_eq!(
        env.webhooks.received().len(),
        expected_webhooks,
        "no new webhook"
    );

    // Scores of every event received, not only the flagged ones.
    let (mut n, mut promoters, mut detractors, mut csat_n, mut satisfied, mut ces_n, mut ces_sum) =
        (0, 0, 0, 0, 0, 0, 0);
    for line in &lines {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["location"]["region"] != "FR-ARA" {
            continue;
        }
        if let Some(nps) = event["scores"]["nps"].as_i64() {
            n += 1;
            promoters += i64::from(nps >= 9);
            detractors += i64::from(nps <= 6);
        }
        if let Some(csat) = event["scores"]["csat"].as_i64() {
            csat_n += 1;
            satisfied += i64::from(csat >= 4);
        }
        if let Some(ces) = event["scores"]["ces"].as_i64() {
            ces_n += 1;
            ces_sum += ces;
        }
    }
    let scores: Value =
        reqwest::get(env.api("/v1/metrics/scores?group_by=region&from=2026-01-01T00:00:00Z"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let ara = scores["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "FR-ARA")
        .expect("FR-ARA scores");
    let round = |x: f64, digits: i32| (x * 10f64.powi(digits)).round() / 10f64.powi(digits);
    assert_eq!(ara["nps_responses"].as_i64(), Some(n));
    assert_eq!(
        ara["nps"].as_f64(),
        Some(round(100.0 * (promoters - detractors) as f64 / n as f64, 1))
    );
    assert_eq!(
        ara["csat"].as_f64(),
        Some(round(100.0 * satisfied as f64 / csat_n as f64, 1))
    );
    assert_eq!(
        ara["ces"].as_f64(),
        Some(round(ces_sum as f64 / ces_n as f64, 2))
    );
}

/// Every invalid event lands on the dead-letter topic with its reason and
/// origin, and the next good event is still processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dead_letter_topic() {
    let env = TestEnv::new(Options {
        partitions: 1,
        ..Options::default()
    })
    .await;
    let _service = env.start_service().await;
    let invalid = test_data("feedback-invalid.jsonl");
    let invalid_count = std::fs::read_to_string(&invalid).unwrap().lines().count();
    env.publish(&invalid);
    let good = format!("good-after-poison-{}", env.name);
    env.publish(&env.write_events("good.jsonl", &[story_event(&good).to_string()]));

    env.case_id_of(&good).await;
    let letters = env.dead_letters(invalid_count, LONG);
    assert_eq!(
        letters.len(),
        invalid_count,
        "every invalid line is dead-lettered"
    );
    for letter in &letters {
        assert!(!letter.headers["closeloop.dlq.reason"].is_empty());
        assert_eq!(letter.headers["closeloop.dlq.topic"], env.topic);
        assert_eq!(letter.headers["closeloop.dlq.partition"], "0");
        assert!(letter.headers["closeloop.dlq.offset"]
            .parse::<i64>()
            .is_ok());
    }
    let offsets: HashSet<&str> = letters
        .iter()
        .map(|l| l.headers["closeloop.dlq.offset"].as_str())
        .collect();
    assert_eq!(
        offsets.len(),
        invalid_count,
        "each dead letter names its own offset"
    );
    let nps = letters
        .iter()
        .find(|l| {
            l.headers["closeloop.dlq.reason"]
                == "scores.nps: must be an integer from 0 to 10 (got 11)"
        })
        .expect("the nps=11 event, with its reason");
    assert_eq!(nps.headers["closeloop.dlq.field"], "scores.nps");
    assert!(
        String::from_utf8_lossy(&nps.payload).contains("\"nps\":11"),
        "the original payload is kept"
    );
    assert_eq!(env.count("SELECT count(*) FROM feedback_events").await, 1);
}

/// HTTP intake validates whole requests, names the field, and publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_intake_and_api_validation() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let client = reqwest::Client::new();
    let events = env.api("/v1/events");

    let mut bad = story_event("http-bad");
    bad["scores"]["nps"] = json!(11);
    let (status, body) = post(&client, events.clone(), bad.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "scores.nps");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("must be an integer from 0 to 10"));

    let good = format!("http-good-{}", env.name);
    let (status, body) = post(&client, events.clone(), json!([story_event(&good), bad])).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(body["errors"][0]["field"], "scores.nps");

    let response = client
        .post(events.clone())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());

    let (status, body) = post(&client, events.clone(), json!([story_event(&good)])).await;
    assert_eq!((status, body["accepted"].as_i64()), (202, Some(1)));
    env.case_id_of(&good).await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM feedback_events WHERE event_id = 'http-bad'"
        )
        .fetch_one(&env.db)
        .await
        .unwrap(),
        0,
        "a refused request publishes nothing"
    );

    let response = client
        .get(env.api("/v1/cases?status=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("status: must be one of"));
    let response = client
        .get(env.api("/v1/cases/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = client
        .get(env.api(&format!("/v1/cases/{}", Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let listed: Value = client
        .get(env.api("/v1/cases?status=open&store=LYON-02"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["cases"].as_array().unwrap().len(), 1);
    let listed: Value = client
        .get(env.api("/v1/cases?owner=nobody"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["cases"].as_array().unwrap().len(), 0);
    assert_eq!(
        client
            .get(env.api("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A webhook refused with 503 is retried on the schedule, and the retry
/// survives a kill -9 of the service: it is persisted, not in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_send_retries_across_a_restart() {
    let env = TestEnv::new(Options::default()).await;
    let mut service = env.start_service().await;
    env.webhooks.fail_next(503);
    let event_id = format!("retry-{}", env.name);
    env.publish(&env.write_events("story.jsonl", &[story_event(&event_id).to_string()]));

    let case_id = env.case_id_of(&event_id).await;
    eventually("the first, failed attempt", LONG, || async {
        (env.count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'retry'")
            .await
            == 1)
            .then_some(())
    })
    .await;
    service.kill_9();
    let _restarted = env.start_service().await;

    let hook = eventually("the retried webhook", LONG, || async {
        env.webhooks.received().into_iter().next()
    })
    .await;
    assert!(hook.signature_is_valid(WEBHOOK_SECRET));
    let (outbox_id, attempts, status): (Uuid, i32, String) = sqlx::query_as(
        "SELECT id, attempts, status FROM outbox WHERE case_id = $1 AND channel = 'webhook'",
    )
    .bind(case_id)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(
        hook.id,
        outbox_id.to_string(),
        "the retry carries the same webhook-id"
    );
    assert_eq!((attempts, status.as_str()), (2, "sent"));
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM delivery_attempts WHERE outbox_id = $1 ORDER BY id",
    )
    .bind(outbox_id)
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(outcomes, ["retry", "sent"]);
    let error: Option<String> = sqlx::query_scalar(
        "SELECT detail FROM delivery_attempts WHERE outbox_id = $1 AND outcome = 'retry'",
    )
    .bind(outbox_id)
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert!(error.unwrap().contains("HTTP 503"));
}

/// A permanently refused webhook is dead, listed, traced, and can be
/// replayed by id (CLI) or by case (API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_deliveries_are_kept_traced_and_replayed() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    env.webhooks.fail_next(400);
    env.webhooks.fail_next(400);
    let event_id = format!("dead-{}", env.name);
    env.publish(&env.write_events("story.jsonl", &[story_event(&event_id).to_string()]));
    let case_id = env.case_id_of(&event_id).await;
    let client = reqwest::Client::new();

    let dead_ids = || async {
        let listed: Value = client
            .get(env.api("/v1/deliveries?status=dead"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<String> = listed["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        (!ids.is_empty()).then_some(ids)
    };
    let dead = eventually("the dead delivery", LONG, dead_ids).await;
    assert_eq!(dead.len(), 1);

    // Replay by id from the CLI: refused again (second 400), dead again.
    let out = env.cli(&["deliveries", "replay", "--id", &dead[0]]);
    assert!(out.contains("replayed 1 dead deliveries"), "{out}");
    eventually("the second refusal", LONG, || async {
        (env.count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'dead'")
            .await
            == 2)
            .then_some(())
    })
    .await;
    eventually("the delivery dead again", LONG, dead_ids).await;

    // Replay by case through the API: delivered.
    let (status, body) = post(
        &client,
        env.api("/v1/deliveries/replay"),
        json!({"case_id": case_id}),
    )
    .await;
    assert_eq!(
        (status, body["replayed"].as_i64()),
        (200, Some(1)),
        "{body}"
    );
    let hook = eventually("the replayed webhook", LONG, || async {
        env.webhooks.received().into_iter().next()
    })
    .await;
    assert_eq!(hook.id, dead[0], "a replay keeps the webhook-id");

    let trace: Value = client
        .get(env.api(&format!("/v1/cases/{case_id}/trace")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trace["rules"], json!(["nps-detractor"]));
    assert_eq!(trace["route"], "store");
    let webhook = trace["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "webhook")
        .unwrap();
    assert_eq!(webhook["status"], "sent");
    let outcomes: Vec<&str> = webhook["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["dead", "dead", "sent"]);
    assert!(webhook["attempts"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("HTTP 400"));

    let (status, body) = post(
        &client,
        env.api("/v1/deliveries/replay"),
        json!({"case_id": case_id, "ids": [dead[0]]}),
    )
    .await;
    assert_eq!(status, 422, "an ambiguous replay is refused: {body}");
}

/// Rules reload while the service runs: an invalid set is refused (the last
/// good one keeps deciding), a valid one takes over between batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_hot_reload_keeps_the_last_good_set() {
    let env = TestEnv::new(Options::default()).await;
    let service = env.start_service().await;
    let client = reqwest::Client::new();
    let status = || async {
        client
            .get(env.api("/v1/rules/status"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let first = status().await;
    assert_eq!(first["rules"], 3);
    let good = std::fs::read_to_string(&env.rules_file).unwrap();

    // A broken file: refused through the API with the rule and column named.
    let broken = good.replace(r#"condition = "nps <= 6""#, r#"condition = "nps <= \"6\"""#);
    assert_ne!(broken, good);
    std::fs::write(&env.rules_file, &broken).unwrap();
    let (code, body) = post(&client, env.api("/v1/rules/reload"), json!({})).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("rule \"nps-detractor\": condition: column"),
        "{body}"
    );
    let refused = status().await;
    assert_eq!(
        refused["version"], first["version"],
        "the last good rules stay active"
    );
    assert!(refused["last_error"]
        .as_str()
        .unwrap()
        .contains("type mismatch"));
    let metrics = client
        .get(env.api("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("closeloop_rules_last_reload_failed 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("closeloop_rules_reload_failures_total 0"),
        "{metrics}"
    );

    // The old rules still decide: a detractor opens a case.
    let detractor = format!("reload-1-{}", env.name);
    env.publish(&env.write_events("d.jsonl", &[story_event(&detractor).to_string()]));
    env.case_id_of(&detractor).await;

    // A valid change is picked up from the file: passives now alert too.
    let passives = good.clone()
        + "\n[[rule]]\nid = \"passive-delivery\"\nseverity = \"low\"\nchannels = [\"email\"]\ncondition = 'nps_class == \"passive\" && touchpoint == \"delivery\"'\n";
    std::fs::write(&env.rules_file, &passives).unwrap();
    let reloaded = eventually("the new rules", SHORT, || async {
        let s = status().await;
        (s["rules"] == 4 && s["last_error"].is_null()).then_some(s)
    })
    .await;
    assert_ne!(reloaded["version"], first["version"]);
    let passive = format!("reload-2-{}", env.name);
    let mut event = story_event(&passive);
    event["scores"] = json!({"nps": 8});
    // Another customer: the first one's case is still open and would coalesce.
    event["customer"]["id"] = json!("C-passive");
    env.publish(&env.write_events("p.jsonl", &[event.to_string()]));
    let case_id = env.case_id_of(&passive).await;
    let case: Value = client
        .get(env.api(&format!("/v1/cases/{case_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(case["rule_ids"], json!(["passive-delivery"]));
    assert_eq!(case["severity"], "low");

    // SIGHUP reloads too (here: back to the original set).
    std::fs::write(&env.rules_file, &good).unwrap();
    let pid = service.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    eventually("the original rules again", SHORT, || async {
        (status().await["rules"] == 3).then_some(())
    })
    .await;
}

/// A customer who complains again while their case is open gets no second
/// case and their manager no second alert; the case gathers the events and
/// takes the higher severity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_complaints_coalesce_into_one_case() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let first = format!("co-1-{}", env.name);
    env.publish(&env.write_events("1.jsonl", &[story_event(&first).to_string()]));
    let case_id = env.case_id_of(&first).await;
    eventually("the first alert email", LONG, || async {
        (env.smtp.emails().len() == 1).then_some(())
    })
    .await;

    // Same customer, same store, a legal threat this time (critical).
    let second = format!("co-2-{}", env.name);
    let mut angry = story_event(&second);
    angry["comment"] = json!("Je contacte mon avocat");
    // And the same customer at another store: a case of its own.
    let third = format!("co-3-{}", env.name);
    let mut elsewhere = story_event(&third);
    elsewhere["location"] = json!({"store_id": "LYON-01", "region": "FR-ARA"});
    env.publish(&env.write_events("2.jsonl", &[angry.to_string(), elsewhere.to_string()]));
    let other_case = env.case_id_of(&third).await;
    assert_ne!(other_case, case_id);
    env.wait_caught_up(LONG).await;

    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_id FROM case_events WHERE case_id = $1 ORDER BY attached_at, event_id",
    )
    .bind(case_id)
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(events, [first.clone(), second.clone()]);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM cases WHERE event_id = '{second}'"
        ))
        .await,
        0,
        "no second case"
    );
    let client = reqwest::Client::new();
    let case: Value = client
        .get(env.api(&format!("/v1/cases/{case_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(case["severity"], "critical", "raised by the angrier answer");
    let attach = case["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["action"] == "attach")
        .expect("an attach entry");
    assert_eq!(attach["details"]["event_id"], second);
    assert_eq!(
        attach["details"]["rules"],
        json!(["churn-or-legal-threat", "nps-detractor"])
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let to_claire = env
        .smtp
        .emails()
        .into_iter()
        .filter(|e| e.to == "claire.martin@closeloop.local")
        .count();
    assert_eq!(to_claire, 1, "no second alert for the same case");
}

/// A silence mutes matching alerts (recorded, no case, no email) until it is
/// expired; expired silences stay listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mute_but_record() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let client = reqwest::Client::new();
    let (status, body) = post(
        &client,
        env.api("/v1/silences"),
        json!({"matcher": "stor == \"LYON-02\"", "duration": "2h", "created_by": "ops", "reason": "flood"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("matcher: line 1, column 1: unknown field `stor`"));

    let (status, silence) = post(
        &client,
        env.api("/v1/silences"),
        json!({"matcher": "store == \"LYON-02\"", "duration": "2h", "created_by": "ops.lyon", "reason": "road closed, deliveries late"}),
    )
    .await;
    assert_eq!(
        (status, silence["state"].as_str()),
        (201, Some("active")),
        "{silence}"
    );

    let muted = format!("muted-{}", env.name);
    env.publish(&env.write_events("1.jsonl", &[story_event(&muted).to_string()]));
    env.wait_caught_up(LONG).await;
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM silenced_alerts WHERE event_id = '{muted}'"
        ))
        .await,
        1,
        "recorded as silenced"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM cases").await,
        0,
        "no case while silenced"
    );

    // The CLI lists it with its count, then expires it.
    let listed = env.cli(&["silences", "list"]);
    assert!(
        listed.contains("active")
            && listed.contains("(1 silenced)")
            && listed.contains("road closed"),
        "{listed}"
    );
    let id = silence["id"].as_str().unwrap();
    assert!(env.cli(&["silences", "expire", id]).contains("expired"));

    let after = format!("after-{}", env.name);
    let mut event = story_event(&after);
    event["customer"]["id"] = json!("C-after");
    env.publish(&env.write_events("2.jsonl", &[event.to_string()]));
    env.case_id_of(&after).await;
    let expired: Value = client
        .get(env.api("/v1/silences?state=expired"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        expired["silences"][0]["id"], id,
        "expired silences stay visible"
    );
    assert_eq!(expired["silences"][0]["silenced"], 1);
}

/// The manager acts from the email: the link's page confirms (a GET never
/// acts), the POST applies once; a used, stale or forged link is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_links_from_the_email() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let event_id = format!("links-{}", env.name);
    env.publish(&env.write_events("story.jsonl", &[story_event(&event_id).to_string()]));
    let case_id = env.case_id_of(&event_id).await;
    let email = eventually("the alert email", LONG, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == "claire.martin@closeloop.local")
    })
    .await;
    // Claire reads French: "Je m'en occupe : <url>", "Client joint : <url>", ...
    let link = |label: &str| -> String {
        let line = email
            .text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` link in:\n{}", email.text));
        line[line.find("http").unwrap()..].trim().to_owned()
    };
    let (ack, reached) = (link("Je m'en occupe"), link("Client joint"));
    // A new case cannot be resolved yet: its email offers no resolve link.
    assert!(
        !email.text.contains("Résolu ("),
        "resolve links on a new case:\n{}",
        email.text
    );
    assert!(ack.starts_with(&format!("{}/a/", env.base_url)));

    let client = reqwest::Client::new();
    let page = client.get(&ack).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    // In the owner's language (fr-FR), with who and what it is about.
    assert!(page.contains("Confirmer : Je m&#x27;en occupe"), "{page}");
    assert!(
        page.contains("Julie Moreau") && page.contains("LYON-02"),
        "{page}"
    );
    let status = || async {
        let c: Value = client
            .get(env.api(&format!("/v1/cases/{case_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        c
    };
    assert_eq!(status().await["status"], "open", "a GET does not act");

    let done = client
        .post(&ack)
        .form(&[("note", "je rappelle ce soir")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let text = done.text().await.unwrap();
    assert!(
        text.contains("Le dossier est maintenant « Pris en charge »"),
        "{text}"
    );
    let case = status().await;
    assert_eq!(case["status"], "acknowledged");
    let last = case["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["actor"].as_str(), last["note"].as_str()),
        (
            Some("mgr-lyon-02 (email link)"),
            Some("je rappelle ce soir")
        )
    );

    let again = client
        .post(&ack)
        .form(&[("note", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410, "single use");
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("Ce lien a déjà servi."));
    // The email's other links keep working after a first step.
    let page = client.get(&reached).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "still possible after the acknowledgement"
    );
    let done = client
        .post(&reached)
        .form(&[("note", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("Client contacté"), "{done}");
    assert!(done.contains("?link="), "the page link is signed: {done}");
    assert_eq!(status().await["status"], "contacted");
    let forged = ack.replace("/a/", "/a/x");
    let forged = client.get(&forged).send().await.unwrap();
    assert!(
        forged.status() == 410 || forged.status() == 400,
        "{}",
        forged.status()
    );
    assert_eq!(
        status().await["status"],
        "contacted",
        "refused links change nothing"
    );
}

/// Waiting on the customer pauses and resumes; a reassignment moves the case
/// to another owner of the directory, who gets the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_resume_and_reassign() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let event_id = format!("reassign-{}", env.name);
    env.publish(&env.write_events("story.jsonl", &[story_event(&event_id).to_string()]));
    let case_id = env.case_id_of(&event_id).await;
    let client = reqwest::Client::new();
    let url = |action: &str| env.api(&format!("/v1/cases/{case_id}/{action}"));

    let (status, body) = post(&client, url("wait"), json!({"actor": "claire.martin"})).await;
    assert_eq!(status, 409, "an open case cannot wait: {body}");
    post(
        &client,
        url("acknowledge"),
        json!({"actor": "claire.martin"}),
    )
    .await;
    let (status, body) = post(
        &client,
        url("wait"),
        json!({"actor": "claire.martin", "note": "customer sends photos"}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("waiting_on_customer")),
        "{body}"
    );
    let (status, body) = post(&client, url("resume"), json!({"actor": "claire.martin"})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("acknowledged")),
        "{body}"
    );

    let (status, body) = post(
        &client,
        url("reassign"),
        json!({"actor": "claire.martin", "owner": "ghost", "reason": "x"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("unknown owner \"ghost\""));
    let (status, body) = post(
        &client,
        url("reassign"),
        json!({"actor": "claire.martin", "owner": "rm-fr-ara", "reason": "order from LYON-01"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["owner_id"].as_str(), body["owner_name"].as_str()),
        (Some("rm-fr-ara"), Some("Julien Faure"))
    );
    let last = body["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["note"].as_str()),
        (Some("reassign"), Some("order from LYON-01"))
    );
    assert_eq!(last["details"]["owner"], "rm-fr-ara");
    eventually("the new owner's email", LONG, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == "julien.faure@closeloop.local")
    })
    .await;
}

/// Kafka mode: a large array is published concurrently and answered only
/// once the broker acknowledged every event; all of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_http_array_is_published_whole() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let events: Vec<Value> = (0..2500)
        .map(|i| {
            json!({"event_id": format!("bulk-{i}"), "occurred_at": "2026-11-20T10:15:00+01:00",
                   "source": "s", "customer": {"id": format!("C-{i}")},
                   "journey": {"touchpoint": "delivery"}, "scores": {"nps": 9}})
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (status, body) = post(&client, env.api("/v1/events"), json!(events)).await;
    assert_eq!(
        (status, body["accepted"].as_i64()),
        (202, Some(2500)),
        "{body}"
    );
    eventually("every event of the array stored", LONG, || async {
        (env.count("SELECT count(*) FROM feedback_events").await == 2500).then_some(())
    })
    .await;
}
