//! The weekly report: regional managers and directors get last week's
//! figures of their scope once, whatever the number of instances or
//! restarts; store managers get none.

use std::time::Duration;

use closeloop_core::owners::OwnerDirectory;
use closeloop_core::report::last_full_week;
use closeloop_tests::{eventually, post_json, Options, TestEnv};
use serde_json::Value;

const ON: [(&str, &str); 1] = [("CLOSELOOP__REPORTS__WEEKLY", "true")];

/// The weekly reports `to` received.
fn reports_to(env: &TestEnv, to: &str) -> Vec<closeloop_tests::ReceivedEmail> {
    env.smtp
        .emails()
        .into_iter()
        .filter(|e| e.to == to)
        .filter(|e| e.subject.starts_with("Votre semaine") || e.subject.starts_with("Your week"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_weekly_report_per_person_with_their_figures() {
    let env = TestEnv::new(Options {
        single_node: true,
        kafka: Some("127.0.0.1:1".into()),
        ..Options::default()
    })
    .await;
    // Answers over the last 20 days, stored before any report is built.
    let first = env.start_service().await;
    let options = closeloop_gen::Options {
        base: (chrono::Utc::now() - chrono::Duration::hours(1)).fixed_offset(),
        days: 20,
        ..closeloop_gen::Options::new(500, 11)
    };
    let events: Vec<Value> = closeloop_gen::lines(options)
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let client = reqwest::Client::new();
    for chunk in events.chunks(250) {
        let (status, body) =
            post_json(&client, env.api("/v1/events"), &Value::from(chunk.to_vec())).await;
        assert_eq!(status, 202, "{body}");
    }
    drop(first);

    // Two instances at once, reports on: each person's report once.
    let a = env.start_instance_with("reports-a", &ON).await;
    let b = env.start_instance_with("reports-b", &ON).await;
    let wait = |to: &'static str| {
        let env = &env;
        eventually(to, Duration::from_secs(40), move || async move {
            let found = reports_to(env, to);
            (!found.is_empty()).then_some(found)
        })
    };
    let julien = wait("julien.faure@closeloop.local").await;
    let pieter = wait("pieter.janssens@closeloop.local").await;
    wait("nathalie.garnier@closeloop.local").await;

    // His figures: last full week in his calendar, his region, counted here.
    let owners = OwnerDirectory::from_toml(
        "owners.toml",
        &std::fs::read_to_string(&env.owners_file).unwrap(),
    )
    .unwrap();
    let week = last_full_week(owners.calendar_for("rm-fr-ara"), chrono::Utc::now());
    let (mut answers, mut promoters, mut detractors) = (0i64, 0i64, 0i64);
    for event in &events {
        let at =
            chrono::DateTime::parse_from_rfc3339(event["occurred_at"].as_str().unwrap()).unwrap();
        if event["location"]["region"] != "FR-ARA" || at < week.start || at >= week.end {
            continue;
        }
        if let Some(nps) = event["scores"]["nps"].as_i64() {
            answers += 1;
            promoters += i64::from(nps >= 9);
            detractors += i64::from(nps <= 6);
        }
    }
    assert!(answers > 5, "{answers} answers in the week");
    let nps = (1000.0 * (promoters - detractors) as f64 / answers as f64).round() / 10.0;
    let text = &julien[0].text;
    assert!(
        text.contains(&format!("NPS {}", format!("{nps:.1}").replace('.', ","))),
        "NPS {nps} in\n{text}"
    );
    assert!(
        text.contains(&format!(
            "Votre semaine du {}",
            week.monday.format("%d/%m/%Y")
        )),
        "{text}"
    );
    assert!(text.contains("/insights?period=7d"), "{text}");
    assert!(
        pieter[0].subject.starts_with("Your week"),
        "{}",
        pieter[0].subject
    );

    // A restart sends nothing again; store managers get no report.
    drop((a, b));
    let _again = env.start_instance_with("reports-c", &ON).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(reports_to(&env, "julien.faure@closeloop.local").len(), 1);
    assert!(reports_to(&env, "claire.martin@closeloop.local").is_empty());
    let rows = env.count("SELECT count(*) FROM weekly_reports").await;
    let wanted = owners
        .owners()
        .filter(|o| closeloop_core::report::gets_report(&owners, o))
        .count() as i64;
    assert_eq!(rows, wanted);
}
