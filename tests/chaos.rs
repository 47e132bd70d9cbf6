//! The reliability suite (issue 7): the real `closeloop` binary, as separate
//! processes, against the real broker, database, SMTP server and webhook
//! receiver, disturbed on purpose. Every scenario ends with the same
//! accounting ([`account`]): exactly the expected cases (computed by
//! `closeloop rules test` on the same events), no duplicate, every
//! notification delivered (duplicates with the same id), every invalid event
//! dead-lettered with its reason, and no offset committed past an event
//! that is not stored.
//!
//! `make test` runs the short form (3 kill rounds, 5 s outages);
//! `make chaos` the long one (20 rounds, 30 s outages) and prints the report.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use closeloop_tests::chaos::*;
use closeloop_tests::*;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

/// Headroom for a loaded two-core machine; scenarios finish far sooner.
const LONG: Duration = Duration::from_secs(300);

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn readiness(url: &str) -> u16 {
    match http_client().get(format!("{url}/readyz")).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Events stored so far (0 before the service has created its tables).
async fn stored_events(env: &TestEnv) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM feedback_events")
        .fetch_one(&env.db)
        .await
        .unwrap_or(0)
}

/// 1. kill -9 at random moments while events stream in, N rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load() {
    let env = TestEnv::new(Options {
        batch_max: 20,
        static_member: true,
        ..Options::default()
    })
    .await;
    env.create_topics(3).await;
    let workload = Workload::new(&env, events(), true);
    let rounds = rounds();
    let parts = workload.parts(&env, rounds + 1);
    let seed = std::env::var("CLOSELOOP_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("chaos: kill -9 seed {seed} (CLOSELOOP_CHAOS_SEED replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut stored_at_kills = Vec::new();
    for part in &parts[..rounds.min(parts.len() - 1)] {
        let before = stored_events(&env).await;
        let publisher = publish_in_background(&env, part);
        let mut service = env.start_service().await;
        // Kill once this instance is consuming (it has joined the group), at
        // a random moment of its stream.
        eventually("the restarted instance to consume", LONG, || async {
            (stored_events(&env).await > before).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
        service.kill_9();
        publisher.join().unwrap();
        stored_at_kills.push(env.count("SELECT count(*) FROM feedback_events").await);
        assert_no_offset_past_unstored(&env).await;
    }
    let last = publish_in_background(&env, parts.last().unwrap());
    let since = Instant::now();
    let _service = env.start_service().await;
    last.join().unwrap();
    assert!(
        stored_at_kills.iter().any(|&n| n < workload.valid as i64),
        "the kills land mid-stream ({stored_at_kills:?} of {} stored)",
        workload.valid
    );
    let mut accounting = account(&env, &workload, "kill -9 under load", since, LONG).await;
    accounting.rounds = rounds;
    accounting.report();
}

/// 2. The broker goes away and comes back on its durable storage: the
/// service keeps running, reconnects by itself and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage() {
    let mut broker = Broker::start();
    let env = TestEnv::new(Options {
        kafka: Some(broker.address()),
        ..Options::default()
    })
    .await;
    let mut service = env.start_service().await;
    let workload = Workload::new(&env, events() / 2, true);
    let parts = workload.parts(&env, 2);
    env.publish(&parts[0]);
    env.wait_caught_up(LONG).await;

    broker.stop();
    tokio::time::sleep(outage()).await;
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "the service survives the outage:\n{}",
        service.log_text()
    );
    assert_eq!(
        readiness(&env.base_url).await,
        200,
        "readiness follows the database, which is fine"
    );
    broker.restart();
    let since = Instant::now();
    env.publish(&parts[1]);
    let mut accounting = account(&env, &workload, "broker outage", since, LONG).await;
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "no manual restart was needed"
    );
    assert_eq!(accounting.redelivered, 0, "nothing sent twice");
    accounting.rounds = 1;
    accounting.report();
}

/// 3. The database goes away: consumption pauses, no offset advances,
/// readiness turns red; everything resumes when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage() {
    let database = PrivateDatabase::start();
    let env = TestEnv::new(Options {
        database: Some(database.admin_url()),
        ..Options::default()
    })
    .await;
    env.create_topics(3).await;
    // The production lease (2m): a round sent as the database goes away
    // is recorded when it returns, as long as the lease outlasts the outage.
    let mut service = env
        .start_service_with(&[("CLOSELOOP__DISPATCH__LEASE", "2m")])
        .await;
    let workload = Workload::new(&env, events() / 2, true);
    let parts = workload.parts(&env, 2);
    env.publish(&parts[0]);
    env.wait_caught_up(LONG).await;

    database.stop();
    eventually("readiness to turn red", LONG, || async {
        (readiness(&env.base_url).await == 503).then_some(())
    })
    .await;
    let before = env.committed_offsets().unwrap();
    env.publish(&parts[1]);
    tokio::time::sleep(outage()).await;
    assert_eq!(
        env.committed_offsets().unwrap(),
        before,
        "no offset advances while the database is down"
    );
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "the service survives the outage:\n{}",
        service.log_text()
    );
    assert_eq!(readiness(&env.base_url).await, 503, "still red");
    // What a prober reads: the state, not the driver's error text.
    assert_eq!(
        env.get_json("/readyz").await,
        serde_json::json!({"status": "unavailable", "error": "the database does not answer"}),
        "no internal error text on /readyz"
    );

    database.start_again();
    let since = Instant::now();
    eventually("readiness to turn green", LONG, || async {
        (readiness(&env.base_url).await == 200).then_some(())
    })
    .await;
    let mut accounting = account(&env, &workload, "postgresql outage", since, LONG).await;
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "no manual restart was needed"
    );
    // A round sent while the database went away is recorded when it is
    // back (within the delivery lease), not sent again.
    assert_eq!(accounting.redelivered, 0, "nothing sent twice");
    accounting.rounds = 1;
    accounting.report();
}

/// 4. The SMTP server and the webhook receiver are down for a while: the
/// deliveries wait and retry, then all arrive, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_and_webhook_receiver_outage() {
    let mut env = TestEnv::new(Options::default()).await;
    // A schedule that outlasts the outage (production's spans hours).
    let steps = outage().as_secs() / 5 + 4;
    let schedule = std::iter::once("0s,1s,2s".to_owned())
        .chain((0..steps).map(|_| "5s".to_owned()))
        .collect::<Vec<_>>()
        .join(",");
    let _service = env
        .start_service_with(&[("CLOSELOOP__DISPATCH__RETRY_SCHEDULE", &schedule)])
        .await;
    env.smtp.stop();
    env.webhooks.set_down(true);
    let workload = Workload::new(&env, events(), false);
    assert!(
        workload.notifications > workload.alerting.len() as i64,
        "the workload has webhooks as well as emails"
    );
    env.publish(&workload.file);
    tokio::time::sleep(outage()).await;
    eventually(
        "the cases, stored while the receivers are down",
        LONG,
        || async {
            (env.count("SELECT count(*) FROM cases").await == workload.alerting.len() as i64)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await,
        0,
        "nothing can be sent yet"
    );
    assert!(
        env.count("SELECT count(*) FROM delivery_attempts").await > 0,
        "the dispatcher tried"
    );
    assert!(env.webhooks.hits() > 0, "the webhook receiver was called");
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE status = 'dead'")
            .await,
        0,
        "nothing given up"
    );

    env.smtp.restart();
    env.webhooks.set_down(false);
    let since = Instant::now();
    let mut accounting = account(
        &env,
        &workload,
        "smtp and webhook receiver outage",
        since,
        LONG,
    )
    .await;
    assert_eq!(accounting.redelivered, 0, "each delivered once");
    assert!(
        env.count("SELECT count(*) FROM outbox WHERE attempts > 1")
            .await
            > 0,
        "deliveries were retried"
    );
    accounting.rounds = 1;
    accounting.report();
}

/// 5. SIGTERM in the middle of the stream: the batch in flight completes
/// (or is read again whole), and the exit comes within the grace time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_batch() {
    let env = TestEnv::new(Options {
        batch_max: 200,
        ..Options::default()
    })
    .await;
    env.create_topics(3).await;
    let workload = Workload::new(&env, events(), true);
    env.publish(&workload.file);
    let mut service = env.start_service().await;
    eventually("the first cases", LONG, || async {
        (env.count("SELECT count(*) FROM cases").await > 0).then_some(())
    })
    .await;
    let grace = Duration::from_secs(20); // [shutdown] grace of the test config
    let asked = Instant::now();
    let status = service.terminate(grace + Duration::from_secs(10)).unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "clean exit: {status}");
    assert!(took < grace, "exit within the grace time ({took:?})");
    assert_no_offset_past_unstored(&env).await;

    let since = Instant::now();
    let _service = env.start_service().await;
    let mut accounting = account(&env, &workload, "sigterm during a batch", since, LONG).await;
    accounting.rounds = 1;
    accounting.report();
}

/// 6. Three instances in one consumer group on six partitions, one killed
/// mid-stream and restarted under its instance id: it takes its partitions
/// back, nothing is lost or duplicated, and the dispatchers of all three
/// share one outbox without sending twice.
///
/// (With tansu 0.6 a dead member's partitions stay with it until it returns:
/// the broker does not hand them to the survivors, so the instance comes
/// back here; Apache Kafka moves them after the session timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed() {
    let env = TestEnv::new(Options {
        batch_max: 50,
        partitions: 6,
        static_member: true,
        ..Options::default()
    })
    .await;
    env.create_topics(6).await;
    let third_id = format!("{}-3", env.name);
    let first = env.start_service().await;
    let second = env.start_instance(&format!("{}-2", env.name)).await;
    let mut third = env.start_instance(&third_id).await;
    let workload = Workload::new(&env, events(), true);
    let parts = workload.parts(&env, 2);
    env.publish(&parts[0]);
    eventually("the first events stored", LONG, || async {
        (stored_events(&env).await > 0).then_some(())
    })
    .await;
    third.kill_9();
    env.publish(&parts[1]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = Instant::now();
    let third_again = env.start_instance(&third_id).await;
    let mut accounting = account(&env, &workload, "3 instances, one killed", since, LONG).await;
    let working = [&first, &second, &third, &third_again]
        .iter()
        .filter(|s| s.log_text().contains("batch stored"))
        .count();
    assert!(
        working >= 2,
        "the partitions were shared among the instances ({working} stored batches)"
    );
    accounting.rounds = 1;
    accounting.report();
}

/// 6b. Three instances, one killed and not restarted: its partitions move to
/// the two survivors, and nothing is lost or duplicated. tansu 0.6 does not
/// move a dead member's partitions (see above), so this runs on librdkafka's
/// mock cluster, which implements the group protocol: the closeloop
/// processes reach it over TCP like any broker; everything else is real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_partitions_move() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let env = TestEnv::new(Options {
        batch_max: 50,
        partitions: 6,
        kafka: Some(cluster.bootstrap_servers()),
        ..Options::default()
    })
    .await;
    // The mock cluster takes topics through its own API, not CreateTopics.
    cluster.create_topic(&env.topic, 6, 1).unwrap();
    cluster.create_topic(&env.dead_letter_topic, 6, 1).unwrap();
    let no_create = [("CLOSELOOP__KAFKA__CREATE_TOPICS", "false")];
    let first = env.start_service_with(&no_create).await;
    let second = env
        .start_instance_with(&format!("{}-2", env.name), &no_create)
        .await;
    let mut third = env
        .start_instance_with(&format!("{}-3", env.name), &no_create)
        .await;
    let workload = Workload::new(&env, events(), true);
    let parts = workload.parts(&env, 2);
    env.publish(&parts[0]);
    eventually("the first events stored", LONG, || async {
        (stored_events(&env).await > 0).then_some(())
    })
    .await;
    third.kill_9();
    let since = Instant::now();
    env.publish(&parts[1]);
    let mut accounting = account(
        &env,
        &workload,
        "3 instances, one killed, partitions moved",
        since,
        LONG,
    )
    .await;
    // The survivors took over: both stored batches after the kill.
    let survivors = [&first, &second]
        .iter()
        .filter(|s| s.log_text().contains("batch stored"))
        .count();
    assert_eq!(survivors, 2, "both survivors consumed");
    accounting.rounds = 1;
    accounting.report();
}

/// 7. Poison input through Kafka: the whole invalid file, an event over the
/// size limit, invalid UTF-8 and deeply nested JSON all go to the
/// dead-letter topic with their reason; nothing crashes, and the valid
/// events around them are processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_input_through_kafka() {
    let env = TestEnv::new(Options {
        partitions: 1,
        ..Options::default()
    })
    .await;
    env.create_topics(1).await;
    let mut service = env.start_service().await;
    let mut workload = Workload::new(&env, 200, true);
    env.publish(&workload.file);

    let oversize = format!(
        r#"{{"event_id":"big-1","occurred_at":"2026-11-20T09:00:00Z","customer":{{"id":"C-1"}},"journey":{{"touchpoint":"delivery"}},"scores":{{"nps":0}},"comment":"{}"}}"#,
        "x".repeat(300 * 1024)
    )
    .into_bytes();
    let mut invalid_utf8 = br#"{"event_id":"utf-1","occurred_at":"2026-11-20T09:00:00Z","customer":{"id":"C-1"},"journey":{"touchpoint":"delivery"},"scores":{"nps":0},"comment":"bad "#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(b"\"}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let deep_object = format!(
        r#"{{"event_id":"deep-1","attributes":{}1{}}}"#,
        r#"{"a":"#.repeat(5_000),
        "}".repeat(5_000)
    )
    .into_bytes();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    for payload in [&oversize, &invalid_utf8, &deep, &deep_object] {
        producer
            .send(BaseRecord::<(), [u8]>::to(&env.topic).payload(payload.as_slice()))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    workload.invalid += 4;
    // The next valid event still goes through.
    let after = Workload::from_lines(&env, sample_lines(210)[200..].to_vec());
    env.publish(&after.file);
    workload.valid += after.valid;
    workload.alerting.extend(after.alerting.iter().cloned());
    workload.notifications += after.notifications;
    workload.lines.extend(after.lines.iter().cloned());

    let since = Instant::now();
    let mut accounting = account(&env, &workload, "poison input", since, LONG).await;
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "no crash:\n{}",
        service.log_text()
    );
    let letters = all_dead_letters(&env);
    let reasons: HashSet<String> = letters
        .iter()
        .map(|l| l.headers["closeloop.dlq.reason"].clone())
        .collect();
    for (what, fragment) in [
        ("the oversize event", "over the 262144-byte limit"),
        ("nested JSON", "recursion limit exceeded"),
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(fragment)),
            "{what} is dead-lettered with its reason: {reasons:#?}"
        );
    }
    let utf8 = letters
        .iter()
        .find(|l| l.payload.starts_with(br#"{"event_id":"utf-1""#))
        .expect("the invalid UTF-8 event is dead-lettered");
    assert!(
        utf8.headers["closeloop.dlq.reason"].starts_with("invalid JSON"),
        "{:?}",
        utf8.headers
    );
    let big = letters
        .iter()
        .find(|l| l.headers["closeloop.dlq.reason"].contains("byte limit"))
        .unwrap();
    assert_eq!(big.payload, oversize, "the oversize payload is kept whole");
    accounting.rounds = 1;
    accounting.report();
}

/// 7 (HTTP). Bodies over the limit get 413, clients over their rate get 429
/// with Retry-After, and health probes are never limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_body_and_rate_limits() {
    let env = TestEnv::new(Options::default()).await;
    let _service = env
        .start_service_with(&[
            ("CLOSELOOP__HTTP__RATE_LIMIT_PER_SECOND", "5"),
            ("CLOSELOOP__HTTP__RATE_LIMIT_BURST", "10"),
            ("CLOSELOOP__HTTP__MAX_BODY_BYTES", "65536"),
        ])
        .await;
    let client = http_client();
    let big = serde_json::json!([{ "comment": "x".repeat(70_000) }]);
    let response = client
        .post(env.api("/v1/events"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("http.max_body_bytes"),
        "{body}"
    );

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..40 {
        let response = client.get(env.api("/v1/cases")).send().await.unwrap();
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(response.status().as_u16());
    }
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        limited >= 20,
        "a burst of 40 over a 10-request allowance is limited: {statuses:?}"
    );
    // The 413 above used one request of the allowance.
    assert!(statuses.iter().take(9).all(|&s| s == 200), "{statuses:?}");
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    for _ in 0..20 {
        assert_eq!(
            readiness(&env.base_url).await,
            200,
            "probes are not limited"
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = client.get(env.api("/v1/cases")).send().await.unwrap();
    assert_eq!(response.status(), 200, "the allowance refills");
}
