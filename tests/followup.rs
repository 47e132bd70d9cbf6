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

fn emails_to(env: &TestEnv, to: &str, subject_starts: &str) -> Vec<ReceivedEmail> {
    env.smtp
        .emails()
        .into_iter()
        .filter(|e| e.to == to && e.subject.starts_with(subject_starts))
        .collect()
}

async fn post(url: String, body: Value) -> (u16, Value) {
    closeloop_tests::post_json(&reqwest::Client::new(), url, &body).await
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
    let case_id = env.case_id_of(&event_id).await;

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
    // The deadline as the store reads it: Paris time, French order.
    assert!(
        reminder.subject.contains(" à ") && !reminder.text.contains("UTC"),
        "{}\n{}",
        reminder.subject,
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

    let case = env.get_json(&format!("/v1/cases/{case_id}")).await;
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

    // The case page (in the owner's French) shows the missed deadline.
    let page = reqwest::get(env.case_link(case_id).await)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("en retard depuis") && page.contains("class=\"overdue\""),
        "{page}"
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
    // An outside address is refused: watchers receive customer data.
    let (status, body) = post(
        watchers_url.clone(),
        json!({"actor": "ops", "name": "Outsider", "email": "collector@evil.example"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("owner directory"),
        "{body}"
    );
    let (status, body) = post(
        watchers_url.clone(),
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
    let claire = metrics_group(
        &env.get_json("/v1/metrics/loop?group_by=owner").await,
        "mgr-lyon-02",
    );
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
    // Per-owner loop figures are the dashboard's and the API's, not
    // Prometheus series (summed over instances, they would double).
    let exposition = reqwest::get(env.api("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!exposition.contains("mgr-lyon-02"), "{exposition}");
    assert!(
        exposition.contains("closeloop_sla_escalations_total"),
        "{exposition}"
    );

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
    let case_id = env.case_id_of(&event_id).await;
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
        let case = env.get_json(&format!("/v1/cases/{case_id}")).await;
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
    let recovered_case = env.case_id_of(&format!("r1-{}", env.name)).await;
    let reopened_case = env.case_id_of(&format!("r2-{}", env.name)).await;
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
        let case = env.get_json(&format!("/v1/cases/{recovered_case}")).await;
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
        let case = env.get_json(&format!("/v1/cases/{reopened_case}")).await;
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

/// An owner's `reopen` and a customer's new alerting answer are one
/// transition: both write a `reopen` line and both email the owner and
/// call their webhook with `case.reopened`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_reopen_paths_notify_alike() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let (by_answer, by_owner) = (format!("C-A-{}", env.name), format!("C-O-{}", env.name));
    env.publish(&env.write_events(
        "first.jsonl",
        &[
            answer(&format!("a1-{}", env.name), &by_answer, 2, "colis perdu"),
            answer(&format!("o1-{}", env.name), &by_owner, 1, "vendeur absent"),
        ],
    ));
    let answer_case = env.case_id_of(&format!("a1-{}", env.name)).await;
    let owner_case = env.case_id_of(&format!("o1-{}", env.name)).await;
    resolve(&env, answer_case).await;
    resolve(&env, owner_case).await;

    let (status, body) = post(
        env.api(&format!("/v1/cases/{owner_case}/reopen")),
        json!({"actor": "claire.martin", "reason": "la cliente a rappelé"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    env.publish(&env.write_events(
        "second.jsonl",
        &[answer(
            &format!("a2-{}", env.name),
            &by_answer,
            0,
            "toujours rien",
        )],
    ));
    for case in [answer_case, owner_case] {
        let detail = eventually("the case reopened", LONG, || async {
            let case = env.get_json(&format!("/v1/cases/{case}")).await;
            (case["status"] == "reopened").then_some(case)
        })
        .await;
        let last = detail["history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["action"], "reopen", "{detail}");
        assert_eq!(last["to_status"], "reopened", "{detail}");
    }
    let notified = |case: Uuid| {
        let env = &env;
        async move {
            let mut kinds = Vec::new();
            for channel in ["email", "webhook"] {
                let n = env
                    .count(&format!(
                        "SELECT count(*) FROM outbox WHERE case_id = '{case}'
                         AND event_type = 'case.reopened' AND channel = '{channel}'"
                    ))
                    .await;
                kinds.push((channel, n));
            }
            kinds
        }
    };
    let expected = vec![("email", 1), ("webhook", 1)];
    assert_eq!(
        notified(answer_case).await,
        expected,
        "reopened by the answer"
    );
    assert_eq!(
        notified(owner_case).await,
        expected,
        "reopened by the owner"
    );
    for case in [answer_case, owner_case] {
        let sent = format!(
            "SELECT count(*) FROM outbox WHERE case_id = '{case}' AND event_type = 'case.reopened'
             AND channel = 'email' AND status = 'sent'"
        );
        eventually("the owner's reopening email sent", LONG, || async {
            (env.count(&sent).await == 1).then_some(())
        })
        .await;
    }
    let links = env
        .smtp
        .emails()
        .into_iter()
        .filter(|e| e.to == CLAIRE && e.text.contains(&format!("/cases/{owner_case}")))
        .count();
    assert_eq!(links, 2, "the alert, then the reopening");
}

fn event_at(event_id: &str, customer: &str, store: &str, region: &str) -> String {
    json!({
        "event_id": event_id,
        "occurred_at": "2026-11-21T10:15:00+01:00",
        "source": "survey.post-delivery",
        "customer": {"id": customer},
        "journey": {"touchpoint": "delivery"},
        "location": {"store_id": store, "region": region, "country": "FR"},
        "scores": {"nps": 1}
    })
    .to_string()
}

async fn call(method: &str, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url).json(&body),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Tokens with roles: a manager sees and acts on the cases of their scope
/// only (other cases answer 404), ops sees all, no token or a revoked one
/// gets 401, and the actor recorded is the token's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_manager_scope() {
    let env = TestEnv::new(Options {
        auth: true,
        ..Options::default()
    })
    .await;
    let _service = env.start_service().await;
    let create = |name: &str, role: &str, owner: Option<&str>| {
        let mut args = vec!["tokens", "create", "--name", name, "--role", role];
        if let Some(owner) = owner {
            args.extend(["--owner", owner]);
        }
        env.cli(&args).trim().to_owned()
    };
    let ops = create("ops.team", "ops", None);
    let claire = create("claire.martin", "manager", Some("mgr-lyon-02"));
    let julien = create("julien.faure", "manager", Some("rm-fr-ara"));
    let paris = create("paris.manager", "manager", Some("mgr-paris-01"));
    assert!(ops.starts_with("clt_") && ops.len() > 40, "{ops}");

    let (lyon_event, paris_event) = (format!("lyon-{}", env.name), format!("paris-{}", env.name));
    env.publish(&env.write_events(
        "two.jsonl",
        &[
            event_at(&lyon_event, "C-A1", "LYON-02", "FR-ARA"),
            event_at(&paris_event, "C-A2", "PARIS-01", "FR-IDF"),
        ],
    ));
    let lyon = env.case_id_of(&lyon_event).await;
    let paris_case = env.case_id_of(&paris_event).await;

    // No token, a wrong one: 401.
    let (status, body) = call("GET", env.api("/v1/cases"), None, Value::Null).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("authorization:"),
        "{body}"
    );
    let (status, _) = call("GET", env.api("/v1/cases"), Some("clt_forged"), Value::Null).await;
    assert_eq!(status, 401);

    // Each manager lists their scope only; ops lists everything.
    let listed = |body: &Value| -> Vec<String> {
        body["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for (token, expected) in [
        (&claire, vec![lyon.to_string()]),
        (&julien, vec![lyon.to_string()]),
        (&paris, vec![paris_case.to_string()]),
    ] {
        let (status, body) = call("GET", env.api("/v1/cases"), Some(token), Value::Null).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(listed(&body), expected);
    }
    let (_, body) = call("GET", env.api("/v1/cases"), Some(&ops), Value::Null).await;
    assert_eq!(listed(&body).len(), 2, "{body}");

    // Outside the scope, a case does not exist: read, act, trace, watch.
    for (method, path) in [
        ("GET", format!("/v1/cases/{paris_case}")),
        ("POST", format!("/v1/cases/{paris_case}/acknowledge")),
        ("GET", format!("/v1/cases/{paris_case}/trace")),
        ("GET", format!("/v1/cases/{paris_case}/watchers")),
    ] {
        let (status, body) = call(method, env.api(&path), Some(&claire), json!({})).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(
            body["error"],
            format!("case {paris_case} not found"),
            "same answer as a missing case"
        );
    }
    // Operations are not for managers.
    for path in [
        "/v1/silences",
        "/v1/rules/status",
        "/v1/deliveries",
        "/v1/metrics/loop",
    ] {
        let (status, body) = call("GET", env.api(path), Some(&claire), Value::Null).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = call("GET", env.api("/v1/rules/status"), Some(&ops), Value::Null).await;
    assert_eq!(status, 200);

    // The case page (from the email's signed link) keeps no API token in
    // the browser: its forms carry the link's form token, and it shows the
    // SLA clocks.
    let page = reqwest::get(env.case_link(lyon).await)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in ["name=\"csrf\"", "Prendre en charge sous", "Résoudre sous"] {
        assert!(page.contains(expected), "{expected} in the page:\n{page}");
    }
    for absent in ["localStorage", "Bearer", "<script>"] {
        assert!(!page.contains(absent), "{absent} in the page:\n{page}");
    }

    // In scope: the action records the token's name, whatever the body says.
    let (status, body) = call(
        "POST",
        env.api(&format!("/v1/cases/{lyon}/acknowledge")),
        Some(&claire),
        json!({"actor": "someone.else", "note": "je rappelle"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let last = body["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("acknowledge"), Some("claire.martin"))
    );
    // The regional manager acts on a case of a store under them.
    let (status, body) = call(
        "POST",
        env.api(&format!("/v1/cases/{lyon}/notes")),
        Some(&julien),
        json!({"note": "vu"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Only hashes are stored; a revoked token stops working at once.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&env.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
    assert!(stored.contains(&closeloop_core::access::token_hash(&claire)));
    assert!(!stored.iter().any(|h| h == claire.as_bytes()));
    let listing = env.cli(&["tokens", "list"]);
    assert!(!listing.contains(&claire), "list never shows a token");
    let id = listing
        .lines()
        .find(|l| l.contains("claire.martin"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    env.cli(&["tokens", "revoke", &id]);
    let (status, _) = call("GET", env.api("/v1/cases"), Some(&claire), Value::Null).await;
    assert_eq!(status, 401);
    assert!(env.cli(&["tokens", "list"]).contains("revoked"));
}

/// After downtime the scheduler does not replay missed ticks: deadlines that
/// passed while nobody looked give no stale reminders, and each person gets
/// one summary email for all their cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_sends_one_summary_per_person() {
    let env = TestEnv::new(Options::default()).await;
    let mut sla = fast_sla("2s", "1h", "2h");
    // The scheduler looks once at start, then not for 25 s: as if it were
    // down while the three deadlines passed.
    // Escalation one level at a time, an hour apart: level 1 is due.
    sla.retain(|(k, _)| {
        k != "CLOSELOOP__SLA__POLL_INTERVAL" && k != "CLOSELOOP__SLA__ESCALATE_EVERY"
    });
    sla.push(("CLOSELOOP__SLA__POLL_INTERVAL".into(), "25s".into()));
    sla.push(("CLOSELOOP__SLA__ESCALATE_EVERY".into(), "1h".into()));
    let _service = env.start_service_with(&as_refs(&sla)).await;
    let lines: Vec<String> = (1..=3)
        .map(|i| detractor(&format!("late-{i}-{}", env.name), &format!("C-LATE-{i}")))
        .collect();
    env.publish(&env.write_events("late.jsonl", &lines));
    for i in 1..=3 {
        env.case_id_of(&format!("late-{i}-{}", env.name)).await;
    }
    let summary = eventually("one summary to the regional manager", LONG, || async {
        emails_to(&env, JULIEN, "3 dossiers demandent votre attention")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        summary.text.matches("/cases/").count(),
        3,
        "the three cases in one email:\n{}",
        summary.text
    );
    let history = env
        .count("SELECT count(*) FROM case_history WHERE action = 'escalate'")
        .await;
    assert_eq!(history, 3, "each case records its escalation");
    assert!(
        emails_to(&env, CLAIRE, "Rappel").is_empty(),
        "no stale reminder after the deadline"
    );
    assert_eq!(
        env.smtp.emails().iter().filter(|e| e.to == JULIEN).count(),
        1,
        "one email, not one per case"
    );
}
