//! What the benchmarks run on: statistics, a webhook receiver that counts
//! and checks signatures, Kafka helpers, and `closeloop serve` as a process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

/// The shipped development secret of `config/closeloop.toml`.
pub const WEBHOOK_SECRET: &str = "whsec_Y2xvc2Vsb29wLWxvY2FsLWRldmVsb3BtZW50LWtleSE=";

/// Median, min and max of a set of runs.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Spread {
        median,
        min: sorted.first().copied().unwrap_or(f64::NAN),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// The `q` quantile (0–1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What the receiver saw.
#[derive(Default)]
pub struct Received {
    /// closeloop webhooks: (case.created's opening event id, when).
    pub closeloop: Vec<(Option<String>, Instant)>,
    pub bad_signatures: usize,
    /// Alertmanager notifications: alerts received.
    pub alertmanager_alerts: usize,
    pub alertmanager_last: Option<Instant>,
}

/// A webhook receiver on loopback: `/cl` for closeloop (signature checked),
/// `/am` for Alertmanager.
pub struct Receiver {
    pub address: SocketAddr,
    pub state: Arc<Mutex<Received>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(Received::default()));
        let key = STANDARD.decode(WEBHOOK_SECRET.trim_start_matches("whsec_"))?;
        let app = Router::new()
            .route("/cl", post(closeloop_hook))
            .route("/am", post(alertmanager_hook))
            .with_state((state.clone(), Arc::new(key)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { address, state })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn reset(&self) {
        *self.state.lock().unwrap() = Received::default();
    }
}

type HookState = (Arc<Mutex<Received>>, Arc<Vec<u8>>);

async fn closeloop_hook(
    State((state, key)): State<HookState>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let at = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(&body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    let signed = header("webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()));
    let event_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(|v| v["type"] == "case.created")
        .and_then(|v| v["data"]["event_id"].as_str().map(str::to_owned));
    let mut received = state.lock().unwrap();
    if !signed {
        received.bad_signatures += 1;
    }
    received.closeloop.push((event_id, at));
    "ok"
}

async fn alertmanager_hook(State((state, _)): State<HookState>, body: Bytes) -> &'static str {
    let alerts = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["alerts"].as_array().map(Vec::len))
        .unwrap_or(0);
    let mut received = state.lock().unwrap();
    received.alertmanager_alerts += alerts;
    received.alertmanager_last = Some(Instant::now());
    "ok"
}

fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config
}

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("creating topic {name}: {code}");
        }
    }
    Ok(())
}

pub async fn delete_topics(brokers: &str, topics: &[String]) {
    let Ok(admin) = client_config(brokers).create::<AdminClient<DefaultClientContext>>() else {
        return;
    };
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
}

fn producer(brokers: &str) -> anyhow::Result<FutureProducer> {
    Ok(client_config(brokers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

fn customer_key(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["customer"]["id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Publish every line, keyed by customer id (as `closeloop publish` does).
pub async fn load(brokers: &str, topic: &str, lines: &[String]) -> anyhow::Result<Duration> {
    let producer = producer(brokers)?;
    let started = Instant::now();
    let mut in_flight = Vec::with_capacity(10_000);
    for line in lines {
        let key = customer_key(line);
        let record = FutureRecord::to(topic).key(&key).payload(line);
        in_flight.push(producer.send_result(record).map_err(|(e, _)| e)?);
        if in_flight.len() >= 10_000 {
            for delivery in in_flight.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in in_flight {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(started.elapsed())
}

/// Publish `lines` at `rate` per second; returns each event id's send instant.
pub async fn publish_at_rate(
    brokers: &str,
    topic: &str,
    lines: &[String],
    rate: u32,
) -> anyhow::Result<HashMap<String, (Instant, chrono::DateTime<chrono::Utc>)>> {
    let producer = producer(brokers)?;
    let started = tokio::time::Instant::now();
    let mut sent = HashMap::with_capacity(lines.len());
    let mut pending = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let due = started + Duration::from_secs_f64(index as f64 / f64::from(rate));
        tokio::time::sleep_until(due).await;
        let value: serde_json::Value = serde_json::from_str(line)?;
        let event_id = value["event_id"].as_str().unwrap_or_default().to_owned();
        let key = value["customer"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        sent.insert(event_id, (Instant::now(), chrono::Utc::now()));
        let record = FutureRecord::to(topic).key(&key).payload(line);
        pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(sent)
}

/// Drain `topic` with a bare consumer in the intake's group configuration,
/// parsing nothing, until `expected` messages; returns the time taken.
pub fn bare_drain(
    brokers: &str,
    topic: &str,
    group: &str,
    expected: usize,
) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = client_config(brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "25")
        .create()?;
    let started = Instant::now();
    consumer.subscribe(&[topic])?;
    let mut seen = 0usize;
    let mut bytes = 0usize;
    let deadline = started + Duration::from_secs(600);
    while seen < expected {
        if Instant::now() > deadline {
            bail!("bare consumer: {seen} of {expected} messages after 600 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            bytes += message.payload_len();
            seen += 1;
        }
    }
    let elapsed = started.elapsed();
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    // Keep the optimiser from dropping the payload reads.
    std::hint::black_box(bytes);
    Ok(elapsed)
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the file: 12 and 13 after ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time used so far by every process named `name` (e.g. the
/// PostgreSQL server and its backends), in seconds.
pub fn cpu_seconds_of(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .map(cpu_seconds)
        .sum()
}

/// CPU time the whole machine has been busy (all cores), in seconds.
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    (total - idle) / 100.0
}

/// A private tansu broker on its own sqlite file, so each `make bench`
/// starts from empty storage (tansu slows as its file grows) and leaves
/// nothing behind.
pub struct PrivateBroker {
    child: Child,
    pub address: String,
    dir: PathBuf,
}

impl PrivateBroker {
    pub fn start(parent: &Path) -> anyhow::Result<Self> {
        let port = free_port();
        let dir = parent.join(format!("broker-{port}"));
        std::fs::create_dir_all(&dir)?;
        let child = closeloop_testkit::start_tansu(&dir, port)
            .context("tansu (make bench starts the stack, which installs it)")?;
        Ok(PrivateBroker {
            child,
            address: format!("127.0.0.1:{port}"),
            dir,
        })
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `closeloop serve` as a child process.
pub struct Service {
    child: Child,
    pub http: SocketAddr,
    log: PathBuf,
}

pub use closeloop_testkit::free_port;

impl Service {
    /// Start the release binary with the shipped configuration and `env`
    /// overrides; wait until `/readyz` answers.
    pub async fn start(
        binary: &Path,
        log_dir: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port();
        let http: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = log_dir.join(format!("service-{}.log", uuid::Uuid::new_v4().simple()));
        let child = Command::new(binary)
            .args([
                "--config",
                &std::env::var("CLOSELOOP_BENCH_CONFIG")
                    .unwrap_or_else(|_| "config/closeloop.toml".into()),
                "serve",
            ])
            .env("CLOSELOOP__HTTP__LISTEN", http.to_string())
            .env("CLOSELOOP__HTTP__PUBLIC_URL", format!("http://{http}"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut service = Service { child, http, log };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = service.child.try_wait()? {
                bail!(
                    "closeloop exited with {status}: {}",
                    std::fs::read_to_string(&service.log).unwrap_or_default()
                );
            }
            if let Ok(response) = client.get(format!("http://{http}/readyz")).send().await {
                if response.status().is_success() {
                    return Ok(service);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "closeloop not ready after 60 s; log in {}",
                    service.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The intake's time per phase (fetch, store, commit), in seconds, from
    /// the service's Prometheus counters.
    pub async fn intake_phases(&self) -> [f64; 3] {
        let text = match reqwest::get(format!("http://{}/metrics", self.http)).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let phase = |name: &str| {
            let prefix = format!("closeloop_intake_phase_seconds_total{{phase=\"{name}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        [phase("fetch"), phase("store"), phase("commit")]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// SIGTERM, then wait (kill after 30 s).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
