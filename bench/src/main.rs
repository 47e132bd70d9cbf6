//! `make bench`: closeloop measured against ceilings and peers in the same
//! run, on the real stack (tansu, PostgreSQL, a loopback receiver), and the
//! figures written into BENCHMARKS.md.
//!
//! 1. End to end: a bare rdkafka consumer (the broker's ceiling) and
//!    `closeloop serve` drain the same topic of generated events; ratio b/a.
//!    Peak RSS of the service, and 1, 2, 3 instances on 6 partitions.
//! 2. Latency: publish at a steady rate, time until the signed webhook.
//! 3. Dispatch: Prometheus Alertmanager and closeloop's dispatcher deliver
//!    the same number of webhooks to the same receiver.
//! 4. Rules: the criterion benchmark of the core.
//!
//! Each figure is the median of `--runs` runs, with min and max. Nothing here
//! asserts a time: it measures and reports. It drops its databases and
//! topics when done.

mod dashboard;
mod inbox;
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use support::{quantile, spread, Receiver, Service, Spread};

#[derive(Debug, Parser)]
#[command(about = "closeloop benchmarks (make bench)")]
struct Args {
    /// Events of the end-to-end benchmark.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Runs per figure (the median is reported, with min and max).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Latency benchmark: events per second, and for how long.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    #[arg(long, default_value_t = 60)]
    latency_seconds: u64,
    /// Deliveries of the dispatch benchmark (each side).
    #[arg(long, default_value_t = 20_000)]
    deliveries: usize,
    /// Which benchmarks: e2e, latency, dispatch, rules (comma-separated);
    /// `inbox` alone (`make bench-web`) writes its own section.
    #[arg(long, default_value = "e2e,latency,dispatch,rules")]
    only: String,
    /// The file whose generated section is replaced with the figures.
    #[arg(long, default_value = "BENCHMARKS.md")]
    write: PathBuf,
    #[arg(long, default_value = "target/release/closeloop")]
    binary: PathBuf,
    /// A Kafka-protocol broker to use (e.g. Apache Kafka) instead of a
    /// private tansu started for the run on empty storage.
    #[arg(long)]
    brokers: Option<String>,
    /// The dashboard benchmark's database, kept after the run: loaded once
    /// (a million answers), reused by the next runs that name it.
    #[arg(long)]
    dashboard_db: Option<String>,
}

struct Bench {
    args: Args,
    brokers: String,
    admin_url: String,
    work: PathBuf,
    topics: Vec<String>,
    databases: Vec<String>,
}

impl Bench {
    fn name(&self, what: &str) -> String {
        format!(
            "bench_{what}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    async fn admin(&self) -> anyhow::Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(2)
            .connect(&format!("{}/postgres", self.admin_url))
            .await?)
    }

    /// Service overrides for one run: its own database, topic and group.
    fn service_env(&mut self, topic: &str, group: &str, partitions: i32) -> Vec<(String, String)> {
        let db = self.name("db");
        self.databases.push(db.clone());
        vec![
            (
                "CLOSELOOP__DATABASE__URL".into(),
                format!("{}/{db}", self.admin_url),
            ),
            ("CLOSELOOP__KAFKA__BROKERS".into(), self.brokers.clone()),
            ("CLOSELOOP__KAFKA__TOPIC".into(), topic.into()),
            (
                "CLOSELOOP__KAFKA__DEAD_LETTER_TOPIC".into(),
                format!("{topic}.dlq"),
            ),
            ("CLOSELOOP__KAFKA__GROUP_ID".into(), group.into()),
            (
                "CLOSELOOP__KAFKA__PARTITIONS".into(),
                partitions.to_string(),
            ),
        ]
    }

    async fn cleanup(&self) {
        support::delete_topics(&self.brokers, &self.topics).await;
        if let Ok(admin) = self.admin().await {
            for db in &self.databases {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&admin)
                    .await;
            }
        }
    }
}

/// Connect to a service's database once it has created it.
async fn service_db(url: &str) -> anyhow::Result<PgPool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match PgPoolOptions::new().max_connections(2).connect(url).await {
            Ok(pool) => return Ok(pool),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or(0)
}

fn env_value(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

struct Drain {
    seconds: f64,
    cases: i64,
    peak_rss_mib: f64,
    /// Share of the machine's cores busy during the drain (0–1).
    machine_busy: f64,
    /// Share of that busy time spent in the closeloop processes.
    closeloop_share: f64,
    /// The first instance's intake time per phase: fetch, store, commit.
    phases: [f64; 3],
}

/// Start `instances` services on `topic` (one group, one database) and time
/// until every event is stored.
async fn closeloop_drain(
    ctx: &mut Bench,
    topic: &str,
    expected: i64,
    instances: usize,
) -> anyhow::Result<Drain> {
    let group = ctx.name("group");
    let env = ctx.service_env(topic, &group, 6);
    let db_url = env_value(&env, "CLOSELOOP__DATABASE__URL");
    let busy_before = support::machine_busy_seconds();
    let started = Instant::now();
    let mut services = Vec::new();
    for _ in 0..instances {
        services.push(Service::start(&ctx.args.binary, &ctx.work, &env).await?);
    }
    let db = service_db(&db_url).await?;
    let deadline = started + Duration::from_secs(900);
    let mut peak = 0f64;
    loop {
        let stored = count(&db, "SELECT count(*) FROM feedback_events").await;
        for s in &services {
            peak = peak.max(s.peak_rss_mib());
        }
        if stored >= expected {
            break;
        }
        if Instant::now() > deadline {
            bail!("closeloop stored {stored} of {expected} events in 900 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let busy = support::machine_busy_seconds() - busy_before;
    let closeloop_cpu: f64 = services.iter().map(|s| support::cpu_seconds(s.pid())).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cases = count(&db, "SELECT count(*) FROM cases").await;
    for s in &services {
        peak = peak.max(s.peak_rss_mib());
    }
    let phases = services[0].intake_phases().await;
    for s in services {
        s.stop();
    }
    db.close().await;
    Ok(Drain {
        seconds,
        cases,
        peak_rss_mib: peak,
        machine_busy: busy / (seconds * cores),
        closeloop_share: closeloop_cpu / busy.max(f64::EPSILON),
        phases,
    })
}

struct E2e {
    load_rate: Vec<f64>,
    bare: Vec<f64>,
    closeloop: Vec<f64>,
    ratio: Vec<f64>,
    rss: Vec<f64>,
    cases: i64,
    scale: [Vec<f64>; 3],
    /// Per instance count: machine busy share, closeloop's share of it.
    busy: [Vec<f64>; 3],
    closeloop_share: [Vec<f64>; 3],
    /// One instance: share of its intake loop's time per phase (%).
    phases: [Vec<f64>; 3],
}

async fn bench_e2e(ctx: &mut Bench, lines: &[String], expected: i64) -> anyhow::Result<E2e> {
    let n = lines.len() as f64;
    let mut out = E2e {
        load_rate: vec![],
        bare: vec![],
        closeloop: vec![],
        ratio: vec![],
        rss: vec![],
        cases: 0,
        scale: [vec![], vec![], vec![]],
        busy: [vec![], vec![], vec![]],
        closeloop_share: [vec![], vec![], vec![]],
        phases: [vec![], vec![], vec![]],
    };
    for run in 1..=ctx.args.runs {
        let topic = ctx.name("topic").replace('_', ".");
        support::create_topic(&ctx.brokers, &topic, 6).await?;
        ctx.topics.push(topic.clone());
        let load = support::load(&ctx.brokers, &topic, lines).await?;
        out.load_rate.push(n / load.as_secs_f64());
        let group = ctx.name("bare");
        let (brokers, t, count) = (ctx.brokers.clone(), topic.clone(), lines.len());
        let bare =
            tokio::task::spawn_blocking(move || support::bare_drain(&brokers, &t, &group, count))
                .await??;
        let bare_rate = n / bare.as_secs_f64();
        out.bare.push(bare_rate);
        for instances in 1..=3 {
            let drain = closeloop_drain(ctx, &topic, expected, instances).await?;
            let rate = n / drain.seconds;
            out.scale[instances - 1].push(rate);
            out.busy[instances - 1].push(drain.machine_busy * 100.0);
            out.closeloop_share[instances - 1].push(drain.closeloop_share * 100.0);
            if instances == 1 {
                out.closeloop.push(rate);
                out.ratio.push(rate / bare_rate);
                out.rss.push(drain.peak_rss_mib);
                out.cases = drain.cases;
                let total: f64 = drain.phases.iter().sum();
                for (i, phase) in drain.phases.iter().enumerate() {
                    out.phases[i].push(100.0 * phase / total);
                }
            }
            eprintln!(
                "e2e run {run}: {instances} instance(s) {rate:.0} events/s, peak RSS {:.0} MiB, {} cases, machine {:.0}% busy, closeloop {:.0}% of it",
                drain.peak_rss_mib, drain.cases, drain.machine_busy * 100.0, drain.closeloop_share * 100.0
            );
        }
        eprintln!("e2e run {run}: bare consumer {bare_rate:.0} events/s");
    }
    Ok(out)
}

struct Latency {
    p50: Vec<f64>,
    p99: Vec<f64>,
    max: Vec<f64>,
    samples: usize,
    /// p50 of publish → case committed, and of case committed → webhook sent.
    intake_p50: Vec<f64>,
    dispatch_p50: Vec<f64>,
    intake_p99: Vec<f64>,
    dispatch_p99: Vec<f64>,
}

/// The owner directory with every owner's webhook pointed at the receiver,
/// so every case is measured.
fn owners_with_webhooks(work: &Path, url: &str) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string("config/owners.toml")?;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("webhook_url") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("email = ") {
            let _ = writeln!(out, "webhook_url = \"{url}\"");
        }
    }
    let path = work.join("owners-webhooks.toml");
    std::fs::write(&path, out)?;
    Ok(path)
}

async fn bench_latency(
    ctx: &mut Bench,
    lines: &[String],
    receiver: &Receiver,
) -> anyhow::Result<Latency> {
    let owners = owners_with_webhooks(&ctx.work, &receiver.url("/cl"))?;
    let count = (ctx.args.rate as u64 * ctx.args.latency_seconds) as usize;
    let mut out = Latency {
        p50: vec![],
        p99: vec![],
        max: vec![],
        samples: 0,
        intake_p50: vec![],
        dispatch_p50: vec![],
        intake_p99: vec![],
        dispatch_p99: vec![],
    };
    for run in 1..=ctx.args.runs {
        let topic = ctx.name("latency").replace('_', ".");
        support::create_topic(&ctx.brokers, &topic, 3).await?;
        ctx.topics.push(topic.clone());
        let group = ctx.name("group");
        let mut env = ctx.service_env(&topic, &group, 3);
        env.push((
            "CLOSELOOP__RULES__OWNERS_FILE".into(),
            owners.display().to_string(),
        ));
        let db_url = env_value(&env, "CLOSELOOP__DATABASE__URL");
        let service = Service::start(&ctx.args.binary, &ctx.work, &env).await?;
        // Let the consumer join the group before the clock starts.
        tokio::time::sleep(Duration::from_secs(3)).await;
        receiver.reset();
        let offset = (run - 1) * count % lines.len().max(1);
        let batch: Vec<String> = lines
            .iter()
            .cycle()
            .skip(offset)
            .take(count)
            .cloned()
            .collect();
        let sent = support::publish_at_rate(&ctx.brokers, &topic, &batch, ctx.args.rate).await?;
        // Stragglers: wait until no webhook arrived for 3 s.
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let now = receiver.state.lock().unwrap().closeloop.len();
            if now == last {
                break;
            }
            last = now;
        }
        // Where the time goes: publish → case committed (intake), and case
        // committed → webhook sent (dispatch), from the database's clocks.
        let db = service_db(&db_url).await?;
        let stages: Vec<(String, chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)> =
            sqlx::query_as(
                "SELECT c.event_id, c.created_at, o.sent_at FROM cases c
                 JOIN outbox o ON o.case_id = c.id AND o.channel = 'webhook' AND o.event_type = 'case.created'",
            )
            .fetch_all(&db)
            .await?;
        db.close().await;
        service.stop();
        let mut intake = Vec::new();
        let mut dispatch = Vec::new();
        for (event_id, created, sent_at) in stages {
            if let Some((_, published)) = sent.get(&event_id) {
                intake.push((created - *published).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                if let Some(sent_at) = sent_at {
                    dispatch
                        .push((sent_at - created).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                }
            }
        }
        out.intake_p50.push(quantile(&intake, 0.5));
        out.intake_p99.push(quantile(&intake, 0.99));
        out.dispatch_p50.push(quantile(&dispatch, 0.5));
        out.dispatch_p99.push(quantile(&dispatch, 0.99));
        let received = receiver.state.lock().unwrap();
        let millis: Vec<f64> = received
            .closeloop
            .iter()
            .filter_map(|(id, at)| {
                let (sent_at, _) = sent.get(id.as_deref()?)?;
                Some(at.duration_since(*sent_at).as_secs_f64() * 1000.0)
            })
            .collect();
        if millis.is_empty() {
            bail!("latency run {run}: no case.created webhook received");
        }
        let (p50, p99, max) = (
            quantile(&millis, 0.5),
            quantile(&millis, 0.99),
            quantile(&millis, 1.0),
        );
        eprintln!(
            "latency run {run}: {} cases, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({} bad signatures)",
            millis.len(),
            received.bad_signatures
        );
        out.samples = millis.len();
        out.p50.push(p50);
        out.p99.push(p99);
        out.max.push(max);
    }
    Ok(out)
}

struct Dispatch {
    alertmanager: Vec<f64>,
    closeloop: Vec<f64>,
    ratio: Vec<f64>,
    /// CPU milliseconds per 1,000 deliveries of the sending process.
    alertmanager_cpu: Vec<f64>,
    closeloop_cpu: Vec<f64>,
    /// The same with PostgreSQL's CPU (its outbox work) added.
    closeloop_pg_cpu: Vec<f64>,
    version: String,
    verified: String,
}

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

async fn bench_dispatch(ctx: &mut Bench, receiver: &Receiver) -> anyhow::Result<Dispatch> {
    let n = ctx.args.deliveries;
    let version = Command::new(ALERTMANAGER)
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().to_owned()
        })
        .context("prometheus-alertmanager (make bench installs it)")?;
    let mut out = Dispatch {
        alertmanager: vec![],
        closeloop: vec![],
        ratio: vec![],
        alertmanager_cpu: vec![],
        closeloop_cpu: vec![],
        closeloop_pg_cpu: vec![],
        version,
        verified: String::new(),
    };
    let config = ctx.work.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: bench\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 5m\n  repeat_interval: 24h\n\
             receivers:\n- name: bench\n  webhook_configs:\n  - url: {}\n    send_resolved: false\n",
            receiver.url("/am")
        ),
    )?;
    let client = reqwest::Client::new();
    for run in 1..=ctx.args.runs {
        // Alertmanager: a fresh process and storage per run.
        let port = support::free_port();
        let storage = ctx.work.join(format!("am-{run}"));
        let mut am = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(
                ctx.work.join(format!("am-{run}.log")),
            )?)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let ready = Instant::now() + Duration::from_secs(30);
        while client
            .get(format!("{base}/-/ready"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .ok()
            != Some(true)
        {
            if Instant::now() > ready {
                let _ = am.kill();
                bail!("alertmanager not ready");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        receiver.reset();
        let am_cpu_before = support::cpu_seconds(am.id());
        let starts = chrono::Utc::now();
        let started = Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let alerts: Vec<serde_json::Value> = chunk
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "labels": {"alertname": "CustomerDetractor", "case": format!("case-{run}-{i}"),
                                   "store": "LYON-02", "severity": "high"},
                        "annotations": {"summary": "NPS 3 | LYON-02 | delivery", "comment": "Livraison avec trois jours de retard"},
                        "startsAt": starts,
                    })
                })
                .collect();
            let response = client
                .post(format!("{base}/api/v2/alerts"))
                .json(&alerts)
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("alertmanager refused alerts: {}", response.status());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let got = receiver.state.lock().unwrap().alertmanager_alerts;
            if got >= n {
                break;
            }
            if Instant::now() > deadline {
                let _ = am.kill();
                bail!("alertmanager delivered {got} of {n} in 600 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let am_seconds = receiver
            .state
            .lock()
            .unwrap()
            .alertmanager_last
            .map_or(started.elapsed(), |last| last.duration_since(started))
            .as_secs_f64();
        let am_cpu = support::cpu_seconds(am.id()) - am_cpu_before;
        let _ = am.kill();
        let _ = am.wait();
        let _ = std::fs::remove_dir_all(&storage);

        // closeloop: an idle service; the deliveries land in its outbox at once.
        let topic = ctx.name("dispatch").replace('_', ".");
        support::create_topic(&ctx.brokers, &topic, 1).await?;
        ctx.topics.push(topic.clone());
        let group = ctx.name("group");
        let mut env = ctx.service_env(&topic, &group, 1);
        env.push(("CLOSELOOP__DISPATCH__POLL_INTERVAL".into(), "50ms".into()));
        let db_url = env_value(&env, "CLOSELOOP__DATABASE__URL");
        let service = Service::start(&ctx.args.binary, &ctx.work, &env).await?;
        let db = service_db(&db_url).await?;
        receiver.reset();
        let cl_cpu_before = support::cpu_seconds(service.pid());
        let pg_cpu_before = support::cpu_seconds_of("postgres");
        let payload = serde_json::json!({
            "type": "case.created", "timestamp": chrono::Utc::now(),
            "data": {"id": "0190c0de-0000-7000-8000-000000000000", "status": "open", "severity": "high",
                     "owner_id": "mgr-lyon-02", "owner_name": "Claire Martin", "rule_ids": ["nps-detractor"],
                     "event": {"event_id": "bench", "scores": {"nps": 3}, "comment": "Livraison avec trois jours de retard",
                               "location": {"store_id": "LYON-02", "region": "FR-ARA"}}}
        });
        let started = Instant::now();
        sqlx::query(
            "INSERT INTO outbox (id, case_id, channel, event_type, recipient, payload, next_attempt_at, created_at)
             SELECT gen_random_uuid(), NULL, 'webhook', 'case.created', $1, $2, now(), now()
             FROM generate_series(1, $3)",
        )
        .bind(receiver.url("/cl"))
        .bind(&payload)
        .bind(n as i64)
        .execute(&db)
        .await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let got = receiver.state.lock().unwrap().closeloop.len();
            if got >= n {
                break;
            }
            if Instant::now() > deadline {
                bail!("closeloop delivered {got} of {n} in 600 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cl_seconds = receiver
            .state
            .lock()
            .unwrap()
            .closeloop
            .iter()
            .map(|(_, at)| *at)
            .max()
            .map_or(started.elapsed(), |last| last.duration_since(started))
            .as_secs_f64();
        let cl_cpu = support::cpu_seconds(service.pid()) - cl_cpu_before;
        let pg_cpu = support::cpu_seconds_of("postgres") - pg_cpu_before;
        // Every delivery signed and recorded.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let bad = receiver.state.lock().unwrap().bad_signatures;
        let sent = count(&db, "SELECT count(*) FROM outbox WHERE status = 'sent'").await;
        let attempts = count(
            &db,
            "SELECT count(*) FROM delivery_attempts WHERE outcome = 'sent'",
        )
        .await;
        service.stop();
        db.close().await;
        if bad > 0 || sent != n as i64 {
            bail!("closeloop: {bad} bad signatures, {sent} of {n} recorded as sent");
        }
        out.verified = format!(
            "{n} received with a valid signature, {sent} outbox rows `sent`, {attempts} attempts recorded"
        );
        let (am_rate, cl_rate) = (n as f64 / am_seconds, n as f64 / cl_seconds);
        eprintln!(
            "dispatch run {run}: alertmanager {am_rate:.0}/s, closeloop {cl_rate:.0}/s, ratio {:.1}",
            cl_rate / am_rate
        );
        out.alertmanager.push(am_rate);
        out.closeloop.push(cl_rate);
        out.alertmanager_cpu.push(am_cpu * 1e6 / n as f64);
        out.closeloop_cpu.push(cl_cpu * 1e6 / n as f64);
        out.closeloop_pg_cpu
            .push((cl_cpu + pg_cpu) * 1e6 / n as f64);
        out.ratio.push(cl_rate / am_rate);
    }
    Ok(out)
}

/// Run the core's criterion benchmark and read its two medians.
fn bench_rules() -> anyhow::Result<(f64, f64)> {
    let output = Command::new("cargo")
        .args(["bench", "-p", "closeloop-core", "--bench", "rules"])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!(
            "cargo bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // "<id> ... time:   [1.9410 ms 1.9490 ms 1.9570 ms]"
    let mut medians = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.split("time:").nth(1) {
            let parts: Vec<&str> = rest
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .split_whitespace()
                .collect();
            // Criterion also prints "change: time: [-1.2% +0.3% +2.1%]"
            // against the last run: only lines with a time unit count.
            let scale = match parts.get(3).copied() {
                Some("ns") => 1e-6,
                Some("µs") | Some("us") => 1e-3,
                Some("ms") => 1.0,
                Some("s") => 1e3,
                _ => continue,
            };
            if let Some(value) = parts.get(2).and_then(|v| v.parse::<f64>().ok()) {
                medians.push(value * scale);
            }
        }
    }
    match medians.as_slice() {
        [compiled, interpreted, ..] => Ok((*compiled, *interpreted)),
        _ => bail!("no criterion figures in:\n{text}"),
    }
}

fn row(label: &str, s: Spread, unit: &str, digits: usize) -> String {
    format!(
        "| {label} | **{:.digits$}** {unit} | {:.digits$} | {:.digits$} |\n",
        s.median, s.min, s.max
    )
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {memory}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let only: Vec<String> = args.only.split(',').map(|s| s.trim().to_owned()).collect();
    let work = PathBuf::from(".run/bench");
    std::fs::create_dir_all(&work)?;
    // The broker and the generated events serve the Kafka benchmarks only.
    let kafka = only
        .iter()
        .any(|o| ["e2e", "latency", "dispatch"].contains(&o.as_str()));
    let events_file = work.join(format!("events-{}-gen.jsonl", args.events));
    if kafka && !events_file.exists() {
        let mut text = String::new();
        // Distinct customers: every alert opens its own case, so the
        // expected number of cases is exact.
        let options = closeloop_gen::Options {
            repeat_rate: 0.0,
            ..closeloop_gen::Options::new(args.events, 9)
        };
        for line in closeloop_gen::lines(options) {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&events_file, text)?;
    }
    let lines: Vec<String> = std::fs::read_to_string(&events_file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let distinct = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
        .collect::<std::collections::HashSet<_>>()
        .len() as i64;

    // A fresh broker: tansu's throughput drops as its storage file grows
    // (measured: a bare consumer at 43k events/s on a new file, 20k after
    // 0.9 GB of earlier runs), and topics deleted there keep their space.
    let private_broker = match &args.brokers {
        Some(_) => None,
        None if !kafka => None,
        None => Some(support::PrivateBroker::start(&work)?),
    };
    let brokers = args
        .brokers
        .clone()
        .or_else(|| private_broker.as_ref().map(|b| b.address.clone()))
        .unwrap_or_default();
    let mut ctx = Bench {
        brokers,
        admin_url: std::env::var("CLOSELOOP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
            .trim_end_matches('/')
            .to_owned(),
        work: work.clone(),
        topics: vec![],
        databases: vec![],
        args,
    };
    let receiver = Receiver::start().await?;
    let started = Instant::now();
    let result = run(&mut ctx, &only, &lines, distinct, &receiver).await;
    ctx.cleanup().await;
    drop(private_broker);
    let report = result?;
    // The web app's figures have a section of their own (`make bench-web`).
    let (marker, command) = if only
        .iter()
        .all(|o| ["inbox", "dashboard"].contains(&o.as_str()))
    {
        ("make bench-web", "make bench-web")
    } else {
        ("make bench", "make bench")
    };
    let section = format!(
        "<!-- {marker}: begin (generated; edit outside these markers) -->\n\
         ## `{command}`\n\n\
         Command: `{command}` ({} runs per figure; median **bold**, then min and max).\n\
         Date: {}. Machine: {}. Total time: {:.0} s.\n\n{report}\
         <!-- {marker}: end -->\n",
        ctx.args.runs,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        started.elapsed().as_secs_f64()
    );
    let current = std::fs::read_to_string(&ctx.args.write).unwrap_or_default();
    let (begin, end) = (
        format!("<!-- {marker}: begin"),
        format!("<!-- {marker}: end -->\n"),
    );
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(a), Some(b)) => {
            let end = b + end.len();
            format!(
                "{}{section}{}",
                &current[..a],
                current.get(end..).unwrap_or("")
            )
        }
        _ => format!("{current}\n{section}"),
    };
    std::fs::write(&ctx.args.write, updated)?;
    println!("{section}");
    Ok(())
}

async fn run(
    ctx: &mut Bench,
    only: &[String],
    lines: &[String],
    expected: i64,
    receiver: &Receiver,
) -> anyhow::Result<String> {
    let mut report = String::new();
    let wants = |name: &str| only.iter().any(|o| o == name);
    if wants("e2e") {
        let e2e = bench_e2e(ctx, lines, expected).await?;
        let ratio = spread(&e2e.ratio);
        let _ = write!(
            report,
            "### 1. End to end against the bare consumer\n\n\
             {} generated events (`closeloop generate --count {} --seed 9 --repeat-rate 0`, {} cases: {:.0}% alert), loaded at {:.0} events/s \
             onto a 6-partition topic of a tansu broker started for the run on empty sqlite storage; each run drains the same topic with (a) a bare rdkafka \
             consumer in the intake's group configuration, parsing nothing, and (b) `closeloop serve` (release, shipped \
             configuration) from start until every event is stored in PostgreSQL (cases, history and outbox committed with it).\n\n\
             | figure | median | min | max |\n|---|---|---|---|\n{}{}{}{}\n",
            lines.len(),
            lines.len(),
            e2e.cases,
            100.0 * e2e.cases as f64 / lines.len() as f64,
            spread(&e2e.load_rate).median,
            row("(a) bare consumer, events/s", spread(&e2e.bare), "", 0),
            row("(b) closeloop serve, events/s", spread(&e2e.closeloop), "", 0),
            row("ratio b/a (target ≥ 0.8)", ratio, "", 2),
            row("peak RSS of closeloop serve, MiB (target ≤ 150)", spread(&e2e.rss), "", 0),
        );
        let _ = write!(
            report,
            "Where one instance's intake loop spends its time (its `closeloop_intake_phase_seconds_total` counters; the loop \
             is sequential: gather a batch, store it in one transaction, commit its offsets):\n\n\
             | phase | share of the loop, median | min | max |\n|---|---|---|---|\n{}{}{}\n",
            row("fetch: waiting for and gathering messages (%)", spread(&e2e.phases[0]), "", 0),
            row("store: parse, decide, persist in PostgreSQL (%)", spread(&e2e.phases[1]), "", 0),
            row("commit: offsets to the broker, asynchronous; the last one at stop synchronous (%)", spread(&e2e.phases[2]), "", 0),
        );
        let _ = write!(
            report,
            "Instances in one consumer group on 6 partitions (each run: a fresh database and group), events/s, \
             and how busy the machine's cores were (closeloop's processes' share of that busy time; the rest is \
             PostgreSQL, the broker and the system):\n\n\
             | instances | events/s median | min | max | cores busy (median) | closeloop's share |\n|---|---|---|---|---|---|\n",
        );
        for i in 0..3 {
            let (rate, busy, share) = (
                spread(&e2e.scale[i]),
                spread(&e2e.busy[i]),
                spread(&e2e.closeloop_share[i]),
            );
            let _ = writeln!(
                report,
                "| {} | **{:.0}** | {:.0} | {:.0} | {:.0}% | {:.0}% |",
                i + 1,
                rate.median,
                rate.min,
                rate.max,
                busy.median,
                share.median
            );
        }
        report.push('\n');
    }
    if wants("latency") {
        let latency = bench_latency(ctx, lines, receiver).await?;
        let _ = write!(
            report,
            "### 2. Latency, publish to signed webhook\n\n\
             {} events/s for {} s (generated events, one producer), every owner's webhook pointed at a loopback \
             receiver; latency of each `case.created` webhook from the publish of its event ({} cases in the last run).\n\n\
             | figure | median | min | max |\n|---|---|---|---|\n{}{}{}\n",
            ctx.args.rate,
            ctx.args.latency_seconds,
            latency.samples,
            row("p50, ms", spread(&latency.p50), "", 1),
            row("p99, ms (target ≤ 250)", spread(&latency.p99), "", 1),
            row("max, ms", spread(&latency.max), "", 1),
        );
        let _ = write!(
            report,
            "Where the time goes (database clocks: publish → case committed, case committed → webhook sent):\n\n\
             | stage | p50 ms (median of runs) | p99 ms (median of runs) |\n|---|---|---|\n\
             | intake: publish → case committed | {:.1} | {:.1} |\n\
             | dispatch: committed → webhook sent | {:.1} | {:.1} |\n\n",
            spread(&latency.intake_p50).median,
            spread(&latency.intake_p99).median,
            spread(&latency.dispatch_p50).median,
            spread(&latency.dispatch_p99).median,
        );
    }
    if wants("dispatch") {
        let dispatch = bench_dispatch(ctx, receiver).await?;
        let _ = write!(
            report,
            "### 3. Dispatch against Prometheus Alertmanager\n\n\
             {} (Debian `prometheus-alertmanager`), `group_by: ['...']`, `group_wait: 0s`: {} alerts pushed to \
             `/api/v2/alerts` in batches of 500; closeloop: {} webhook deliveries inserted into the outbox of an idle \
             `closeloop serve` (shipped dispatch settings, `poll_interval` 50 ms). Same loopback receiver; time from the \
             first push (insert) to the last delivery received. closeloop, last run: {}.\n\n\
             | figure | median | min | max |\n|---|---|---|---|\n{}{}{}{}{}{}\n",
            dispatch.version,
            ctx.args.deliveries,
            ctx.args.deliveries,
            dispatch.verified,
            row("Alertmanager, deliveries/s", spread(&dispatch.alertmanager), "", 0),
            row("closeloop, deliveries/s", spread(&dispatch.closeloop), "", 0),
            row("ratio (target ≥ 5)", spread(&dispatch.ratio), "", 1),
            row("Alertmanager CPU ms per 1,000 deliveries", spread(&dispatch.alertmanager_cpu), "", 0),
            row("closeloop CPU ms per 1,000 deliveries (service process)", spread(&dispatch.closeloop_cpu), "", 0),
            row("closeloop + PostgreSQL CPU ms per 1,000 deliveries", spread(&dispatch.closeloop_pg_cpu), "", 0),
        );
    }
    if wants("inbox") {
        let inbox = inbox::bench_inbox(ctx).await?;
        let _ = write!(
            report,
            "### 4. The manager's inbox\n\n\
             A regional manager (Julien Faure, region FR-ARA) with {} open cases in his scope ({} generated detractors \
             at LYON-01 and LYON-02, stored through `POST /v1/events` into a fresh database); `closeloop serve` \
             (release, single-node mode). Time of `GET /inbox` with his session, from a client on loopback: the scope's \
             query ordered by urgency, the per-filter counts, and the page of {} cases rendered. Each run: 5 warm-up \
             requests, then {} timed one after another.\n\n\
             | figure | median | min | max |\n|---|---|---|---|\n{}{}\n",
            inbox.cases,
            inbox::CASES,
            inbox.cards,
            50,
            row("median of a run, ms (target < 50)", spread(&inbox.median_ms), "", 1),
            row("p90 of a run, ms", spread(&inbox.p90_ms), "", 1),
        );
    }
    if wants("dashboard") {
        let d = dashboard::bench_dashboard(ctx).await?;
        let _ = write!(
            report,
            "### 6. The dashboard over a million answers\n\n\
             {} answers stored (`closeloop generate`, {} days, {}; {} cases, {:.0} % of them then acknowledged, \
             called and resolved in part by SQL, as managers at work would leave them, nothing due for the SLA \
             scheduler, and `VACUUM ANALYZE` as autovacuum would), then `closeloop serve` (release) with an ops session; time of each page from a \
             client on loopback, 3 warm-up requests then {} timed: loop health for 90 days by region (`/insights`), \
             the scores by region × touchpoint for 90 days (`/insights/scores?by=region&then=touchpoint`: whole days \
             from the roll-up), and by touchpoint × channel (two dimensions the roll-up does not pair: every \
             answer read).\n\n\
             | figure | median | min | max |\n|---|---|---|---|\n{}{}{}{}{}\n",
            d.events,
            80,
            match d.load_seconds {
                Some(s) => format!("through `closeloop publish` in single-node mode: {s:.0} s, {:.0} answers/s", d.events as f64 / s),
                None => "loaded by an earlier run (`--dashboard-db`)".to_owned(),
            },
            d.cases,
            100.0 * d.worked_share,
            20,
            row("loop health, median ms (target < 300)", spread(&d.loop_ms), "", 1),
            row("loop health, p90 ms", spread(&d.loop_p90_ms), "", 1),
            row("scores region × touchpoint, median ms (target < 300)", spread(&d.scores_ms), "", 1),
            row("scores region × touchpoint, p90 ms", spread(&d.scores_p90_ms), "", 1),
            row("scores touchpoint × channel (raw), median ms", spread(&d.pairs_ms), "", 1),
        );
    }
    if wants("rules") {
        let (compiled, interpreted) = bench_rules()?;
        let _ = write!(
            report,
            "### 5. Rules\n\n`cargo bench -p closeloop-core --bench rules` (criterion medians, 50 rules × 2,000 events): \
             compiled {compiled:.3} ms, interpreted CEL {interpreted:.3} ms: **{:.1}×** (target ≥ 10×); details in the section above.\n\n",
            interpreted / compiled
        );
    }
    Ok(report)
}
