//! The dispatcher against the real database, SMTP server and HTTP receiver,
//! with time under the test's control: no sleeping for retry delays.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use closeloop_core::{parse_event, Command as CaseCommand};
use closeloop_notify::{
    AddressPolicy, Clock, DispatchSettings, Dispatcher, EmailSender, EmailTemplates, SmtpSecurity,
    SmtpSettings, WebhookSecret, WebhookSender,
};
use closeloop_store::{IntakeRecord, Store, StoreOptions};
use closeloop_tests::*;
use uuid::Uuid;

/// A clock that moves only when told.
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::from_std(by).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Harness {
    env: TestEnv,
    store: Store,
    clock: Arc<ManualClock>,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Harness {
    async fn new() -> Self {
        let env = TestEnv::new(Options {
            digests: true,
            ..Options::default()
        })
        .await;
        let store =
            Store::connect_lazy(&env.db_url, 5, StoreOptions::new(env.base_url.clone())).unwrap();
        store.migrate().await.unwrap();
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        Harness {
            env,
            store,
            clock: Arc::new(ManualClock(Mutex::new(start))),
        }
    }

    fn dispatcher(&self, schedule: &[u64]) -> Dispatcher {
        self.dispatcher_with_breaker(schedule, 100, 30)
    }

    fn dispatcher_with_breaker(
        &self,
        schedule: &[u64],
        breaker_failures: u32,
        cooldown: u64,
    ) -> Dispatcher {
        let email = EmailSender::new(
            &SmtpSettings {
                host: "127.0.0.1".into(),
                port: self.env.smtp.port,
                security: SmtpSecurity::None,
                username: None,
                password: None,
                from: "closeloop <alerts@closeloop.test>".into(),
                timeout: secs(5),
                pool_max_size: 2,
            },
            Arc::new(EmailTemplates::load(&repo_root().join("config/templates")).unwrap()),
        )
        .unwrap();
        let webhook = WebhookSender::with_policy(
            vec![WebhookSecret::parse(WEBHOOK_SECRET).unwrap()],
            secs(5),
            Vec::new(),
            AddressPolicy::new(&["127.0.0.0/8".into()])
                .unwrap()
                .allow_http(true),
        )
        .unwrap();
        Dispatcher::new(
            self.store.clone(),
            email,
            webhook,
            DispatchSettings {
                concurrency: 16,
                batch: 256,
                poll_interval: Duration::from_millis(100),
                lease: secs(60),
                retry_schedule: schedule.iter().map(|s| secs(*s)).collect(),
                breaker_failures,
                breaker_cooldown: secs(cooldown),
            },
            self.clock.clone(),
            Arc::new(tokio::sync::Notify::new()),
        )
    }

    /// Open `n` cases for LYON-02 detractors: each queues an email and a webhook.
    async fn open_cases(&self, n: usize) -> Vec<Uuid> {
        self.open_cases_in("LYON-02", "FR-ARA", "d", n).await
    }

    /// Open `n` cases for detractors of `store`, event ids `{prefix}-{i}`.
    async fn open_cases_in(&self, store: &str, region: &str, prefix: &str, n: usize) -> Vec<Uuid> {
        let policy = self.env.policy();
        let records: Vec<IntakeRecord> = (0..n)
            .map(|i| {
                let json = format!(
                    r#"{{"event_id":"{prefix}-{i}","occurred_at":"2026-11-20T09:00:00Z","source":"s","customer":{{"id":"C-{prefix}-{i}"}},
                        "journey":{{"touchpoint":"delivery"}},"location":{{"store_id":"{store}","region":"{region}"}},"scores":{{"nps":2}}}}"#
                );
                let event = parse_event(json.as_bytes(), 1 << 16).unwrap();
                IntakeRecord { alert: policy.decide(&event), event, position: None, silenced_by: None, deadlines: None, owner_day_start: None, owner_next_day_start: None }
            })
            .collect();
        let outcome = self
            .store
            .persist_batch(&records, self.clock.now())
            .await
            .unwrap();
        assert_eq!(outcome.cases_opened, n);
        sqlx::query_scalar("SELECT id FROM cases WHERE event_id LIKE $1 ORDER BY created_at, id")
            .bind(format!("{prefix}-%"))
            .fetch_all(&self.env.db)
            .await
            .unwrap()
    }

    /// (attempts, status, next attempt) of the webhook deliveries of a case, in order.
    async fn webhooks_of(&self, case: Uuid) -> Vec<(i32, String, DateTime<Utc>)> {
        sqlx::query_as("SELECT attempts, status, next_attempt_at FROM outbox WHERE case_id = $1 AND channel = 'webhook' ORDER BY seq")
            .bind(case)
            .fetch_all(&self.env.db)
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_follow_the_retry_schedule() {
    let h = Harness::new().await;
    let case = h.open_cases(1).await[0];
    let dispatcher = h.dispatcher(&[0, 5, 300, 1800]);
    let t0 = h.clock.now();
    for _ in 0..3 {
        h.env.webhooks.fail_next(503);
    }

    assert_eq!(
        dispatcher.tick().await.unwrap(),
        2,
        "email and webhook are both due at once"
    );
    let (attempts, status, next) = h.webhooks_of(case).await[0].clone();
    assert_eq!((attempts, status.as_str()), (1, "pending"));
    assert!(
        next >= t0 + chrono::Duration::seconds(5) && next <= t0 + chrono::Duration::seconds(6),
        "second attempt 5 s later (+20% jitter at most): {next}"
    );

    h.clock.advance(secs(4));
    assert_eq!(dispatcher.tick().await.unwrap(), 0, "not due yet");
    h.clock.advance(secs(3));
    assert_eq!(dispatcher.tick().await.unwrap(), 1);
    let (attempts, _, next) = h.webhooks_of(case).await[0].clone();
    assert_eq!(attempts, 2);
    let now = h.clock.now();
    assert!(
        next >= now + chrono::Duration::seconds(300)
            && next <= now + chrono::Duration::seconds(360),
        "third attempt 5 min later: {next}"
    );

    h.clock.advance(secs(361));
    assert_eq!(dispatcher.tick().await.unwrap(), 1);
    h.clock.advance(secs(2161));
    assert_eq!(dispatcher.tick().await.unwrap(), 1);
    let (attempts, status, _) = h.webhooks_of(case).await[0].clone();
    assert_eq!((attempts, status.as_str()), (4, "sent"));
    assert_eq!(
        h.env.webhooks.received().len(),
        1,
        "delivered once, after three refusals"
    );
    assert_eq!(h.env.smtp.emails().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classification_retry_after_and_exhaustion() {
    let h = Harness::new().await;
    let cases = h.open_cases(4).await;
    let dispatcher = h.dispatcher(&[0, 1, 2]);
    h.env.webhooks.fail_next(400); // permanent
    h.env.webhooks.fail_next(404); // permanent
    h.env.webhooks.fail_next_with_retry_after(429, 120); // transient, not before 120 s
    h.env.webhooks.fail_next(500); // transient
    assert_eq!(dispatcher.tick().await.unwrap(), 8);
    let rows: Vec<(i32, String, DateTime<Utc>)> =
        futures::future::join_all(cases.iter().map(|c| h.webhooks_of(*c)))
            .await
            .into_iter()
            .map(|mut v| v.remove(0))
            .collect();
    let dead = rows.iter().filter(|r| r.1 == "dead").count();
    let pending: Vec<_> = rows.iter().filter(|r| r.1 == "pending").collect();
    assert_eq!(dead, 2, "400 and 404 are permanent: dead after one attempt");
    assert_eq!(pending.len(), 2, "429 and 500 are retried");
    let now = h.clock.now();
    assert!(
        pending
            .iter()
            .any(|r| r.2 >= now + chrono::Duration::seconds(120)),
        "Retry-After 120 s is honoured"
    );
    assert!(
        pending
            .iter()
            .any(|r| r.2 <= now + chrono::Duration::seconds(2)),
        "a 500 waits the schedule's 1 s"
    );
    let errors: Vec<String> = sqlx::query_scalar(
        "SELECT last_error FROM outbox WHERE status = 'dead' ORDER BY last_error",
    )
    .fetch_all(&h.env.db)
    .await
    .unwrap();
    assert!(
        errors[0].contains("HTTP 400") && errors[1].contains("HTTP 404"),
        "{errors:?}"
    );

    // A receiver that keeps failing exhausts the schedule: dead, never deleted.
    h.env.webhooks.set_down(true);
    for _ in 0..5 {
        h.clock.advance(secs(200));
        dispatcher.tick().await.unwrap();
    }
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'webhook' AND status = 'dead'")
            .await,
        4
    );
    let exhausted: Vec<String> = sqlx::query_scalar(
        "SELECT last_error FROM outbox WHERE last_error LIKE 'retries exhausted%'",
    )
    .fetch_all(&h.env.db)
    .await
    .unwrap();
    assert_eq!(exhausted.len(), 2, "{exhausted:?}");
    assert_eq!(
        h.env.count("SELECT count(*) FROM outbox").await,
        8,
        "nothing is deleted"
    );
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM delivery_attempts WHERE outcome = 'dead'")
            .await,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_case_survives_an_outage() {
    let h = Harness::new().await;
    let case = h.open_cases(1).await[0];
    // Two more webhooks for the same case, queued behind case.created.
    let causes = vec!["delivery_delay".to_owned()];
    let now = h.clock.now();
    h.store
        .apply_command(
            case,
            &CaseCommand::Acknowledge { note: None },
            "claire",
            now,
            &causes,
        )
        .await
        .unwrap();
    h.store
        .apply_command(
            case,
            &CaseCommand::Resolve {
                root_cause: "delivery_delay".into(),
                note: None,
            },
            "claire",
            now,
            &causes,
        )
        .await
        .unwrap();
    let dispatcher = h.dispatcher(&[0, 1, 1, 1, 1, 1]);

    h.env.webhooks.set_down(true);
    dispatcher.tick().await.unwrap();
    let rows = h.webhooks_of(case).await;
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 0, 0],
        "later webhooks wait for the first"
    );
    h.clock.advance(secs(2));
    dispatcher.tick().await.unwrap();
    assert_eq!(
        h.webhooks_of(case)
            .await
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        [2, 0, 0]
    );

    h.env.webhooks.set_down(false);
    for _ in 0..4 {
        h.clock.advance(secs(2));
        dispatcher.tick().await.unwrap();
    }
    let types: Vec<String> = h
        .env
        .webhooks
        .received()
        .iter()
        .map(|w| w.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["case.created", "case.acknowledged", "case.resolved"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_never_send_twice() {
    let h = Harness::new().await;
    h.open_cases(150).await;
    let (a, b) = (h.dispatcher(&[0, 1]), h.dispatcher(&[0, 1]));
    let run = |d: Dispatcher| async move {
        let mut sent = 0;
        loop {
            let n = d.tick().await.unwrap();
            if n == 0 {
                return sent;
            }
            sent += n;
        }
    };
    let (sent_a, sent_b) = tokio::join!(run(a), run(b));
    assert_eq!(sent_a + sent_b, 300, "each delivery claimed once");
    assert!(
        sent_a > 0 && sent_b > 0,
        "both dispatchers worked ({sent_a}, {sent_b})"
    );
    let ids: Vec<String> = h
        .env
        .webhooks
        .received()
        .into_iter()
        .map(|w| w.id)
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (150, 150),
        "no webhook sent twice"
    );
    eventually("150 emails", Duration::from_secs(30), || async {
        (h.env.smtp.emails().len() == 150).then_some(())
    })
    .await;
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 1")
            .await,
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_until_re_enabled() {
    let h = Harness::new().await;
    let cases = h.open_cases(2).await;
    let dispatcher = h.dispatcher(&[0, 1]);
    h.env.webhooks.fail_next(410);
    // One webhook at a time: the first meets the 410.
    let first = h.webhooks_of(cases[0]).await;
    assert_eq!(first.len(), 1);
    sqlx::query("UPDATE outbox SET next_attempt_at = next_attempt_at + interval '1 hour' WHERE case_id = $1 AND channel = 'webhook'")
        .bind(cases[1])
        .execute(&h.env.db)
        .await
        .unwrap();
    dispatcher.tick().await.unwrap();
    assert_eq!(h.webhooks_of(cases[0]).await[0].1, "dead");
    let disabled = h.store.disabled_endpoints().await.unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].url, h.env.webhooks.url);

    // The other case's webhook to the same endpoint is not even attempted.
    h.clock.advance(secs(3601));
    let hits = h.env.webhooks.hits();
    dispatcher.tick().await.unwrap();
    assert_eq!(
        h.env.webhooks.hits(),
        hits,
        "a disabled endpoint gets no request"
    );
    let error: String = sqlx::query_scalar(
        "SELECT last_error FROM outbox WHERE case_id = $1 AND channel = 'webhook'",
    )
    .bind(cases[1])
    .fetch_one(&h.env.db)
    .await
    .unwrap();
    assert!(error.starts_with("endpoint disabled since"), "{error}");

    // Re-enabled and replayed, both arrive.
    assert!(h.store.enable_endpoint(&h.env.webhooks.url).await.unwrap());
    let replayed = h
        .store
        .replay_dead(
            &closeloop_store::ReplaySelector::CreatedBetween(
                h.clock.now() - chrono::Duration::days(1),
                h.clock.now() + chrono::Duration::days(1),
            ),
            h.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(replayed.len(), 2);
    dispatcher.tick().await.unwrap();
    assert_eq!(h.env.webhooks.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_pauses_a_failing_endpoint() {
    let h = Harness::new().await;
    let cases = h.open_cases(4).await;
    let dispatcher = h.dispatcher_with_breaker(&[0, 1, 1, 1, 1], 2, 30);
    h.env.webhooks.set_down(true);

    // Sends of one tick run concurrently: those that start after the second
    // failure already find the breaker open.
    dispatcher.tick().await.unwrap();
    let hits = h.env.webhooks.hits();
    assert!(
        (2..=4).contains(&hits),
        "at least two failures open the breaker ({hits} requests)"
    );

    // While open, due webhooks are deferred: no request, no attempt counted.
    h.clock.advance(secs(2));
    dispatcher.tick().await.unwrap();
    assert_eq!(
        h.env.webhooks.hits(),
        hits,
        "no request while the endpoint is paused"
    );
    for case in &cases {
        let (attempts, status, next) = h.webhooks_of(*case).await[0].clone();
        assert!(attempts <= 1 && status == "pending", "{attempts} {status}");
        assert!(
            next >= h.clock.now() + chrono::Duration::seconds(27),
            "deferred to the end of the pause: {next}"
        );
    }

    // After the cooldown the receiver is back: everything arrives.
    h.env.webhooks.set_down(false);
    h.clock.advance(secs(31));
    dispatcher.tick().await.unwrap();
    assert_eq!(h.env.webhooks.received().len(), 4);
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'webhook' AND status = 'sent'")
            .await,
        4
    );
    assert_eq!(
        h.env.count("SELECT count(*) FROM delivery_attempts a JOIN outbox o ON o.id = a.outbox_id WHERE o.channel = 'webhook'").await,
        hits as i64 + 4,
        "attempts recorded = requests made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusals_are_classified() {
    let h = Harness::new().await;
    let cases = h.open_cases(3).await;
    let set_recipient = |case: Uuid, to: &'static str| {
        let db = h.env.db.clone();
        async move {
            sqlx::query(
                "UPDATE outbox SET recipient = $2 WHERE case_id = $1 AND channel = 'email'",
            )
            .bind(case)
            .bind(to)
            .execute(&db)
            .await
            .unwrap();
        }
    };
    set_recipient(cases[0], "reject.me@closeloop.test").await;
    set_recipient(cases[1], "later.please@closeloop.test").await;
    let dispatcher = h.dispatcher(&[0, 60]);
    dispatcher.tick().await.unwrap();

    let email_of = |case: Uuid| {
        let db = h.env.db.clone();
        async move {
            sqlx::query_as::<_, (String, i32, Option<String>)>("SELECT status, attempts, last_error FROM outbox WHERE case_id = $1 AND channel = 'email'")
                .bind(case)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let (status, attempts, error) = email_of(cases[0]).await;
    assert_eq!(
        (status.as_str(), attempts),
        ("dead", 1),
        "SMTP 550 is permanent"
    );
    assert!(error.unwrap().contains("550"));
    let (status, _, error) = email_of(cases[1]).await;
    assert_eq!(status, "pending", "SMTP 451 is retried");
    assert!(error.unwrap().contains("451"));
    assert_eq!(email_of(cases[2]).await.0, "sent");
    assert_eq!(h.env.smtp.emails().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_gather_alert_emails_per_owner() {
    let h = Harness::new().await;
    h.clock.advance(secs(600)); // 09:10
                                // NICE-01 has no store owner: its region's owner, on an hourly digest.
    let first = h.open_cases_in("NICE-01", "FR-PAC", "n1", 3).await;
    assert_eq!(first.len(), 3);
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'email'")
            .await,
        0,
        "no immediate email"
    );
    assert_eq!(h.env.count("SELECT count(*) FROM digest_items").await, 3);
    let (a, b) = (h.dispatcher(&[0, 60]), h.dispatcher(&[0, 60]));

    a.tick().await.unwrap();
    assert!(h.env.smtp.emails().is_empty(), "the hour is not over");

    h.clock.advance(secs(50 * 60 + 1)); // 10:00:01
    let (x, y) = tokio::join!(a.tick(), b.tick());
    x.unwrap();
    y.unwrap();
    a.tick().await.unwrap();
    let emails = eventually("the digest", Duration::from_secs(10), || async {
        let e = h.env.smtp.emails();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(emails.len(), 1, "one digest, even with two dispatchers");
    let digest = &emails[0];
    assert_eq!(digest.to, "marc.olivier@closeloop.local");
    assert_eq!(digest.subject, "3 clients à rappeler");
    for case in &first {
        assert!(
            digest.text.contains(&case.to_string()),
            "digest lists case {case}:\n{}",
            digest.text
        );
    }

    // Two more cases; the service then misses the 11:00 and 12:00 periods.
    h.clock.advance(secs(5 * 60));
    h.open_cases_in("NICE-01", "FR-PAC", "n2", 2).await;
    h.clock.advance(secs(3 * 3600));
    a.tick().await.unwrap();
    a.tick().await.unwrap();
    let emails = eventually("the second digest", Duration::from_secs(10), || async {
        let e = h.env.smtp.emails();
        (e.len() >= 2).then_some(e)
    })
    .await;
    assert_eq!(
        emails.len(),
        2,
        "one summary after the missed periods, not one per period"
    );
    assert!(emails.iter().any(|e| e.subject == "2 clients à rappeler"));
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM digest_items WHERE outbox_id IS NULL")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_dispatchers_claims_return_after_the_lease() {
    let h = Harness::new().await;
    h.open_cases(2).await;
    // A dispatcher claims everything, then dies before sending anything.
    let now = h.clock.now();
    let claimed = h
        .store
        .claim_due(now, now + chrono::Duration::seconds(60), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);

    let dispatcher = h.dispatcher(&[0, 1]);
    h.clock.advance(secs(30));
    assert_eq!(
        dispatcher.tick().await.unwrap(),
        0,
        "claims are held for the lease"
    );
    h.clock.advance(secs(31));
    assert_eq!(
        dispatcher.tick().await.unwrap(),
        4,
        "expired claims are taken over"
    );
    assert_eq!(h.env.webhooks.received().len(), 2);
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 2")
            .await,
        4,
        "the lost attempt is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fatigue_cap_sends_the_overflow_to_a_digest() {
    let h = Harness::new().await;
    let capped = Store::connect_lazy(
        &h.env.db_url,
        2,
        StoreOptions {
            fatigue_cap_per_day: 2,
            ..StoreOptions::new(h.env.base_url.clone())
        },
    )
    .unwrap();
    let policy = h.env.policy();
    let records: Vec<IntakeRecord> = (0..5)
        .map(|i| {
            let json = format!(
                r#"{{"event_id":"f-{i}","occurred_at":"2026-11-20T09:00:00Z","source":"s","customer":{{"id":"C-f-{i}"}},
                    "journey":{{"touchpoint":"delivery"}},"location":{{"store_id":"LYON-02","region":"FR-ARA"}},"scores":{{"nps":2}}}}"#
            );
            let event = parse_event(json.as_bytes(), 1 << 16).unwrap();
            IntakeRecord { alert: policy.decide(&event), event, position: None, silenced_by: None, deadlines: None, owner_day_start: None, owner_next_day_start: None }
        })
        .collect();
    let outcome = capped.persist_batch(&records, h.clock.now()).await.unwrap();
    assert_eq!(
        (outcome.cases_opened, outcome.fatigue_deferred),
        (5, 3),
        "every alert is a case; 3 over the cap of 2"
    );
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'email'")
            .await,
        2
    );
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'webhook'")
            .await,
        5,
        "webhooks are not capped"
    );
    assert_eq!(
        h.env
            .count("SELECT count(*) FROM digest_items WHERE mode = 'daily'")
            .await,
        3
    );

    let dispatcher = h.dispatcher(&[0, 60]);
    dispatcher.tick().await.unwrap();
    h.clock.advance(secs(24 * 3600));
    dispatcher.tick().await.unwrap();
    dispatcher.tick().await.unwrap();
    let emails = eventually("2 alerts and 1 digest", Duration::from_secs(10), || async {
        let e = h.env.smtp.emails();
        (e.len() >= 3).then_some(e)
    })
    .await;
    assert_eq!(emails.len(), 3);
    assert!(
        emails.iter().any(|e| e.subject == "3 clients à rappeler"),
        "{:?}",
        emails.iter().map(|e| &e.subject).collect::<Vec<_>>()
    );
}

/// Rows that the first release wrote (format version 1, no
/// `payload_version` column then) are read and delivered by this build:
/// a case email, a case webhook, a digest and a follow-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_of_the_first_format_are_delivered() {
    let h = Harness::new().await;
    let case = h.open_cases(1).await[0];
    sqlx::query("UPDATE outbox SET status = 'sent'")
        .execute(&h.env.db)
        .await
        .unwrap();
    let fixtures = std::fs::read_to_string(repo_root().join("tests/data/outbox-v1/rows.json"))
        .unwrap()
        .replace("$WEBHOOK_URL", &h.env.webhooks.url);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&fixtures).unwrap();
    for row in &rows {
        let per_case = row["event_type"].as_str().unwrap().starts_with("case.");
        sqlx::query(
            "INSERT INTO outbox (id, case_id, channel, event_type, recipient, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(per_case.then_some(case))
        .bind(row["channel"].as_str())
        .bind(row["event_type"].as_str())
        .bind(row["recipient"].as_str())
        .bind(&row["payload"])
        .bind(h.clock.now())
        .execute(&h.env.db)
        .await
        .unwrap();
    }
    h.dispatcher(&[0, 60]).tick().await.unwrap();
    let statuses: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT channel, event_type, status FROM outbox WHERE payload->'data'->>'event_id' = 'legacy-1'
            OR event_type IN ('digest', 'followup') ORDER BY seq",
    )
    .fetch_all(&h.env.db)
    .await
    .unwrap();
    let expected: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap().to_owned();
            (field("channel"), field("event_type"), "sent".to_owned())
        })
        .collect();
    assert_eq!(statuses, expected);
    let emails = eventually("three emails", Duration::from_secs(10), || async {
        let e = h.env.smtp.emails();
        (e.len() >= 3).then_some(e)
    })
    .await;
    let subjects: Vec<&str> = emails.iter().map(|e| e.subject.as_str()).collect();
    assert!(
        emails
            .iter()
            .all(|e| e.text.contains("0193a1b2-0000-7000-8000-00000000c0de")),
        "every email shows the stored case: {subjects:?}"
    );
    assert!(subjects.contains(&"1 client à rappeler"), "{subjects:?}");
    let (webhooks, _) = h.env.webhooks.wait_for(1, Duration::from_secs(10)).await;
    let body = webhooks[0].json();
    assert_eq!(body["data"]["event_id"], "legacy-1");
    assert!(webhook_validator().is_valid(&body), "{body}");
}
