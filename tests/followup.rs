//! Closing the loop, end to end: SLA reminders and escalation along the
//! owner's chain, watchers, with the real `closeloop` binary, broker,
//! PostgreSQL and SMTP server. Targets are seconds long so the clocks run
//! out while the test watches; every hour counts (no calendar).

use std::time::Duration;

use closeloop_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(120);

const CLAIRE: &str = "claire.martin@closeloop.local"; // mgr-lyon-02, store LYON-02
const JULIEN: &str = "julien.faure@closeloop.local"; // rm-fr-ara, above Claire
const NATHALIE: &str = "nathalie.garnier@closeloop.local"; // cx-director, top

fn detractor(event_id: &str, customer: &str) -> String {
    json!({
        "event_id": event_id,
        "occurred_at": "2026-11-20T10:15:00+01:00",
        "source": "survey.post-delivery",
        "customer": {"id": customer, "name": "Julie Moreau", "email": "julie.moreau@example.org"},
        "journey": {"touchpoint": "delivery", "channel": "web"},
        "location": {"store_id": "LYON-02", "region": "FR-ARA", "country": "FR"},
        "scores": {"nps": 2},
        "comment": "Livraison avec trois jours de retard"
    })
    .to_string()
}

/// SLA settings with second-long targets, for every severity.
fn fast_sla(acknowledge: &str, first_contact: &str, resolve: &str) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "CLOSELOOP__SLA__POLL_INTERVAL".to_owned(),
            "200ms".to_owned(),
        ),
        ("CLOSELOOP__SLA__REMIND_AT".to_owned(), "0.5".to_owned()),
        ("CLOSELOOP__SLA__ESCALATE_EVERY".to_owned(), "4s".to_owned()),
    ];
    for severity in ["LOW", "MEDIUM", "HIGH", "CRITICAL"] {
        for (stage, value) in [
            ("ACKNOWLEDGE", acknowledge),
            ("FIRST_CONTACT", first_contact),
            ("RESOLVE", resolve),
        ] {
            vars.push((
                format!("CLOSELOOP__SLA__TARGETS__{severity}__{stage}"),
                value.to_owned(),
            ));
        }
    }
    vars
}

fn as_refs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn case_id_of(env: &TestEnv, event_id: &str) -> Uuid {
    eventually(&format!("the case of {event_id}"), LONG, || async {
        sqlx::query_scalar("SELECT id FROM cases WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&env.db)
            .await
            .unwrap()
    })
    .await
}

fn emails_to(env: &TestEnv, to: &str, subject_starts: &str) -> Vec<ReceivedEmail> {
    env.smtp
        .emails()
        .into_iter()
        .filter(|e| e.to == to && e.subject.starts_with(subject_starts))
        .collect()
}

async fn post(url: String, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The owner is reminded once, the case escalates up the chain level by
/// level, and the escalation levels and subscribers hear of the
/// acknowledgement and resolution. Two instances run the scheduler at once:
/// still one reminder, one escalation per level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_escalation_and_watchers() {
    let env = TestEnv::new(Options::default()).await;
    let sla = fast_sla("4s", "1h", "2h");
    let _first = env.start_service_with(&as_refs(&sla)).await;
    let _second = env
        .start_instance_with(&format!("{}-2", env.name), &as_refs(&sla))
        .await;

    let event_id = format!("sla-{}", env.name);
    env.publish(&env.write_events("sla.jsonl", &[detractor(&event_id, "C-SLA-1")]));
    let case_id = case_id_of(&env, &event_id).await;

    // Half of the 4 s: Claire is reminded.
    let reminder = eventually("the acknowledgement reminder", LONG, || async {
        emails_to(&env, CLAIRE, "Rappel : prise en charge, échéance")
            .into_iter()
            .next()
    })
    .await;
    assert!(
        reminder.text.contains(&format!("/cases/{case_id}")),
        "{}",
        reminder.text
    );
    // At 4 s: Julien (one level up); 4 s later: Nathalie (the top).
    let escalation = eventually("the escalation to the regional manager", LONG, || async {
        emails_to(&env, JULIEN, "Escalade : prise en charge en retard")
            .into_iter()
            .next()
    })
    .await;
    assert!(
        escalation.subject.contains("Claire Martin"),
        "{}",
        escalation.subject
    );
    eventually("the escalation to the director", LONG, || async {
        emails_to(&env, NATHALIE, "Escalade :").into_iter().next()
    })
    .await;

    let case: Value = reqwest::get(env.api(&format!("/v1/cases/{case_id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(case["sla"]["escalation_level"], 2, "{case}");
    assert!(case["sla"]["overdue_since"].is_string(), "flagged: {case}");
    let watchers: Vec<&str> = case["watchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["email"].as_str().unwrap())
        .collect();
    assert_eq!(watchers.len(), 2, "{watchers:?}");
    assert!(watchers.contains(&JULIEN) && watchers.contains(&NATHALIE));
    let actions: Vec<&str> = case["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "remind").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "escalate").count(),
        2,
        "{actions:?}"
    );

    // Someone subscribes; bad input names the field.
    let watchers_url = env.api(&format!("/v1/cases/{case_id}/watchers"));
    let (status, body) = post(
        watchers_url.clone(),
        json!({"actor": "ops", "name": "Quality team", "email": "not-an-address"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("email:"),
        "{body}"
    );
    let (status, body) = post(
        watchers_url,
        json!({"actor": "ops", "name": "Quality team", "email": "quality@closeloop.local"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["watchers"].as_array().unwrap().len(), 3, "{body}");

    // Claire acts: every watcher is told, once.
    let url = |action: &str| env.api(&format!("/v1/cases/{case_id}/{action}"));
    let (status, body) = post(url("acknowledge"), json!({"actor": "claire.martin"})).await;
    assert_eq!(status, 200, "{body}");
    // The owners' directory says French; the subscriber took the default, English.
    for (watcher, subject) in [
        (JULIEN, "Pris en charge par claire.martin"),
        (NATHALIE, "Pris en charge par claire.martin"),
        ("quality@closeloop.local", "Acknowledged by claire.martin"),
    ] {
        eventually(
            &format!("{watcher} told of the acknowledgement"),
            LONG,
            || async { emails_to(&env, watcher, subject).into_iter().next() },
        )
        .await;
    }
    let (status, body) = post(
        url("contact-attempts"),
        json!({"actor": "claire.martin", "outcome": "reached"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        url("resolve"),
        json!({"actor": "claire.martin", "root_cause": "delivery_delay"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the director told of the resolution", LONG, || async {
        emails_to(&env, NATHALIE, "Résolu par claire.martin")
            .into_iter()
            .next()
    })
    .await;

    // The loop metrics see the late acknowledgement, in JSON and Prometheus.
    let metrics: Value = reqwest::get(env.api("/v1/metrics/loop?group_by=owner"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claire = metrics["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "mgr-lyon-02")
        .cloned()
        .unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(
        (
            &claire["opened"],
            &claire["overdue"],
            &claire["ack_within_sla"]
        ),
        (&json!(1), &json!(1), &json!(0.0)),
        "{claire}"
    );
    assert_eq!(claire["resolve_within_sla"], json!(1.0), "{claire}");
    let exposition = reqwest::get(env.api("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "closeloop_loop_cases_overdue{owner=\"mgr-lyon-02\"} 1",
        "closeloop_loop_ack_within_sla_ratio{owner=\"mgr-lyon-02\"} 0",
    ] {
        assert!(exposition.contains(line), "{line} in:\n{exposition}");
    }

    // A few more ticks of both schedulers: nothing was sent twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(emails_to(&env, CLAIRE, "Rappel").len(), 1);
    assert_eq!(emails_to(&env, JULIEN, "Escalade").len(), 1);
    assert_eq!(emails_to(&env, NATHALIE, "Escalade").len(), 1);
    assert_eq!(emails_to(&env, JULIEN, "Pris en charge").len(), 1);
    assert_eq!(emails_to(&env, NATHALIE, "Résolu").len(), 1);
    assert_eq!(
        emails_to(&env, "quality@closeloop.local", "Resolved").len(),
        1
    );
}

/// Waiting on the customer pauses the clocks: no reminder while paused, and
/// the deadline moves by the time the pause took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_the_customer_pauses_the_clocks() {
    let env = TestEnv::new(Options::default()).await;
    let sla = fast_sla("1h", "6s", "2h");
    let _service = env.start_service_with(&as_refs(&sla)).await;
    let event_id = format!("pause-{}", env.name);
    env.publish(&env.write_events("pause.jsonl", &[detractor(&event_id, "C-SLA-2")]));
    let case_id = case_id_of(&env, &event_id).await;
    let url = |action: &str| env.api(&format!("/v1/cases/{case_id}/{action}"));
    let (status, body) = post(url("acknowledge"), json!({"actor": "claire.martin"})).await;
    assert_eq!(status, 200, "{body}");
    let due_before = body["sla"]["deadlines"]["first_contact"]["due_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = post(url("wait"), json!({"actor": "claire.martin"})).await;
    assert_eq!(status, 200, "{body}");
    // Past the first-contact reminder (3 s) and deadline (6 s): silence.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        emails_to(&env, CLAIRE, "Rappel").is_empty()
            && emails_to(&env, JULIEN, "Escalade").is_empty(),
        "nothing while paused"
    );
    let (status, body) = post(url("resume"), json!({"actor": "claire.martin"})).await;
    assert_eq!(status, 200, "{body}");
    let moved: Value = eventually("the deadline moved", LONG, || async {
        let case: Value = reqwest::get(env.api(&format!("/v1/cases/{case_id}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let due = case["sla"]["deadlines"]["first_contact"]["due_at"].as_str()?;
        (due != due_before).then_some(case)
    })
    .await;
    let before = chrono::DateTime::parse_from_rfc3339(&due_before).unwrap();
    let after = chrono::DateTime::parse_from_rfc3339(
        moved["sla"]["deadlines"]["first_contact"]["due_at"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let shift = (after - before).num_milliseconds();
    assert!(
        (7_500..=12_000).contains(&shift),
        "moved by the ~8 s pause, got {shift} ms"
    );
    // The clock runs again: the escalation comes after the moved deadline.
    eventually("the escalation after the pause", LONG, || async {
        emails_to(&env, JULIEN, "Escalade : premier contact en retard")
            .into_iter()
            .next()
    })
    .await;
}

fn answer(event_id: &str, customer: &str, nps: u8, comment: &str) -> String {
    json!({
        "event_id": event_id,
        "occurred_at": "2026-11-21T10:15:00+01:00",
        "source": "survey.post-delivery",
        "customer": {"id": customer, "name": "Julie Moreau"},
        "journey": {"touchpoint": "delivery", "channel": "web"},
        "location": {"store_id": "LYON-02", "region": "FR-ARA", "country": "FR"},
        "scores": {"nps": nps},
        "comment": comment
    })
    .to_string()
}

async fn resolve(env: &TestEnv, case_id: Uuid) {
    let url = |action: &str| env.api(&format!("/v1/cases/{case_id}/{action}"));
    for (action, body) in [
        ("acknowledge", json!({"actor": "claire.martin"})),
        (
            "resolve",
            json!({"actor": "claire.martin", "root_cause": "delivery_delay"}),
        ),
    ] {
        let (status, body) = post(url(action), body).await;
        assert_eq!(status, 200, "{action}: {body}");
    }
}

async fn case_json(env: &TestEnv, case_id: Uuid) -> Value {
    reqwest::get(env.api(&format!("/v1/cases/{case_id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// After resolution, the customer's next answer closes the loop: a
/// promoter marks the case recovered; a new detractor reopens it (no second
/// case) and its owner hears of it with the new comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_loop() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let (happy, unhappy) = (format!("C-R1-{}", env.name), format!("C-R2-{}", env.name));
    env.publish(&env.write_events(
        "first.jsonl",
        &[
            answer(
                &format!("r1-{}", env.name),
                &happy,
                2,
                "livraison en retard",
            ),
            answer(&format!("r2-{}", env.name), &unhappy, 1, "colis abîmé"),
        ],
    ));
    let recovered_case = case_id_of(&env, &format!("r1-{}", env.name)).await;
    let reopened_case = case_id_of(&env, &format!("r2-{}", env.name)).await;
    resolve(&env, recovered_case).await;
    resolve(&env, reopened_case).await;

    env.publish(&env.write_events(
        "second.jsonl",
        &[
            answer(
                &format!("r1b-{}", env.name),
                &happy,
                10,
                "merci pour le rappel",
            ),
            answer(
                &format!("r2b-{}", env.name),
                &unhappy,
                0,
                "toujours pas remboursé",
            ),
        ],
    ));
    let case = eventually("the promoter marks the case recovered", LONG, || async {
        let case = case_json(&env, recovered_case).await;
        case["recovered_at"].is_string().then_some(case)
    })
    .await;
    assert_eq!(
        case["status"], "resolved",
        "recovery keeps the status: {case}"
    );
    let last = case["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "recovered", "{case}");
    assert_eq!(last["details"]["event_id"], format!("r1b-{}", env.name));

    let case = eventually("the detractor reopens the case", LONG, || async {
        let case = case_json(&env, reopened_case).await;
        (case["status"] == "reopened").then_some(case)
    })
    .await;
    assert!(
        case["resolved_at"].is_null() && case["root_cause"].is_null(),
        "{case}"
    );
    let last = case["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["action"].as_str(),
            last["details"]["event_id"].as_str()
        ),
        (Some("reopen"), Some(format!("r2b-{}", env.name).as_str())),
        "{case}"
    );
    let second_cases = env
        .count(&format!(
            "SELECT count(*) FROM cases WHERE event_id IN ('r1b-{0}', 'r2b-{0}')",
            env.name
        ))
        .await;
    assert_eq!(second_cases, 0, "no new case for the second answers");
    let email = eventually("the owner told of the reopening", LONG, || async {
        env.smtp
            .emails()
            .into_iter()
            .find(|e| e.to == CLAIRE && e.text.contains("toujours pas remboursé"))
    })
    .await;
    assert!(
        email.text.contains(&format!("/cases/{reopened_case}")),
        "{}",
        email.text
    );
}
