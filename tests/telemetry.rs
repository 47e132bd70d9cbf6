//! The service's own metrics, on a running service through Kafka: what an
//! on-call engineer reads is exported, under the names the Grafana
//! dashboard and the alerting rules query, and nothing per owner.

use std::collections::BTreeSet;
use std::time::Duration;

use closeloop_tests::{eventually, repo_root, story_event, Options, TestEnv};

/// The `closeloop_*` metric names an expression text queries.
fn queried(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while let Some(start) = text[i..].find("closeloop_").map(|p| p + i) {
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |p| p + start);
        // `closeloop_` inside a word (a file name, a job label) is not a metric.
        let before = start.checked_sub(1).map(|b| bytes[b]);
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-') {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// The families an exposition declares (`# TYPE name kind`), with the
/// sample names each kind writes.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["#", "TYPE", name, kind] = parts[..] {
            let samples: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            for suffix in samples {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alerts_query_only_exported_metrics() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env.start_service().await;
    let lines: Vec<String> = (0..20)
        .map(|i| {
            story_event(&format!("telemetry-{i}-{}", env.name), &format!("C-T{i}")).to_string()
        })
        .collect();
    env.publish(&env.write_events("events.jsonl", &lines));
    let metrics = || async {
        reqwest::get(env.api("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Stored, delivered, and the consumer's lag reported (every 5 s).
    let exposition = eventually(
        "the figures of the traffic",
        Duration::from_secs(40),
        || async {
            let text = metrics().await;
            (text.contains("closeloop_intake_events_stored_total 20")
                && text.contains("closeloop_deliveries_total{channel=\"email\",outcome=\"sent\"}")
                && text.contains("closeloop_intake_consumer_lag{"))
            .then_some(text)
        },
    )
    .await;
    for sample in [
        "closeloop_build_info{version=",
        "closeloop_intake_batch_duration_seconds_count",
        "closeloop_intake_messages_total 20",
        "closeloop_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}",
        "closeloop_outbox_oldest_pending_age_seconds",
        "# EOF",
    ] {
        assert!(exposition.contains(sample), "{sample} in\n{exposition}");
    }
    // No owner, no case, no customer in any label.
    for private in ["owner=", "mgr-lyon-02", "Julie", "case_id"] {
        assert!(!exposition.contains(private), "{private} in\n{exposition}");
    }
    // Every metric the dashboard and the alerts query is exported.
    let have = exported(&exposition);
    for file in [
        "deploy/grafana/closeloop.json",
        "deploy/prometheus/alerts.yaml",
    ] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        let wanted = queried(&text);
        assert!(wanted.len() >= 5, "{file}: {wanted:?}");
        let missing: Vec<&String> = wanted.iter().filter(|n| !have.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{file} queries metrics that are not exported: {missing:?}\n{have:?}"
        );
    }
}
