//! Helpers for closeloop's end-to-end tests. Every test gets its own world on
//! the real stack: a fresh PostgreSQL database, its own Kafka topics and
//! consumer group on the local broker, its own SMTP server (aiosmtpd writing
//! a Maildir) and its own webhook receiver (a real HTTP server), and runs the
//! real `closeloop` binary as a separate process.
//!
//! The stack comes from `make test` (`deploy/local/stack.sh`), which exports
//! `CLOSELOOP_TEST_DATABASE_URL` and `CLOSELOOP_TEST_KAFKA`.

pub mod browser;
pub mod chaos;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use axum::http::{HeaderMap, StatusCode};
use closeloop_core::{OwnerDirectory, Policy, RuleSet};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tempfile::TempDir;

/// The webhook secret every test service signs with.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The story's answer: Julie Moreau, NPS 3, a late delivery at LYON-02
/// (whose manager's CRM receives webhooks).
pub fn story_event(event_id: &str, customer_id: &str) -> serde_json::Value {
    serde_json::json!({
        "event_id": event_id,
        "occurred_at": "2026-11-20T10:15:00+01:00",
        "source": "survey.post-delivery",
        "customer": {"id": customer_id, "name": "Julie Moreau", "email": "julie.moreau@example.org",
                     "phone": "+33 6 12 34 56 78", "locale": "fr-FR", "segment": "gold"},
        "journey": {"touchpoint": "delivery", "channel": "web"},
        "location": {"store_id": "LYON-02", "region": "FR-ARA", "country": "FR"},
        "product_line": "electromenager",
        "scores": {"nps": 3},
        "comment": "Livraison avec trois jours de retard",
        "attributes": {"order_id": "CMD-55120", "carrier": "XPO"}
    })
}

/// POST `body` as JSON; the status and the JSON answer (null if none).
pub async fn post_json(
    client: &reqwest::Client,
    url: String,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    answer(client.post(url).json(body)).await
}

/// [`post_json`] with `Authorization: Bearer <token>`.
pub async fn post_json_as(
    client: &reqwest::Client,
    token: &str,
    url: String,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    answer(client.post(url).bearer_auth(token).json(body)).await
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// A JSON Schema of `docs/schemas/`.
pub fn contract_schema(name: &str) -> serde_json::Value {
    let path = repo_root().join("docs/schemas").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The published webhook schema, with the event schema it refers to (by
/// its `$id`) embedded.
pub fn webhook_validator() -> jsonschema::Validator {
    let mut webhook = contract_schema("case-webhook-v1.schema.json");
    webhook["$defs"]["feedbackEvent"] = contract_schema("feedback-event-v1.schema.json");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&webhook)
        .expect("the webhook schema compiles")
}

pub fn test_data(name: &str) -> PathBuf {
    repo_root().join("tests/data").join(name)
}

/// A `closeloop` command that ignores any `CLOSELOOP__*` override of the
/// caller's environment (`make run` exports some): the test config rules.
pub fn closeloop_command() -> Command {
    let mut command = Command::new(closeloop_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CLOSELOOP__") {
            command.env_remove(key);
        }
    }
    command.current_dir(repo_root());
    command
}

fn closeloop_bin() -> PathBuf {
    let path = std::env::var_os("CLOSELOOP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/closeloop"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bin closeloop` first (make test does)",
        path.display()
    );
    path
}

pub(crate) use closeloop_testkit::free_port;

/// Poll `check` every 100 ms until it returns `Some`, or fail after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An SMTP server that keeps every email in a Maildir, and refuses
/// `reject…@` recipients with 550 and `later…@` ones with 451.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: TempDir,
}

/// One received email, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
}

impl SmtpServer {
    pub fn start() -> Self {
        let maildir = TempDir::new().unwrap();
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let child = Self::spawn(port, maildir.path());
        SmtpServer {
            child,
            port,
            maildir,
        }
    }

    fn spawn(port: u16, maildir: &Path) -> Child {
        let child = Command::new("/usr/bin/python3")
            .arg(repo_root().join("tests/fixtures/smtp_server.py"))
            .args(["--port", &port.to_string(), "--maildir"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (make test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Take the server down (connections are refused until [`Self::restart`]).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Bring it back on the same port and Maildir.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.port, self.maildir.path());
    }

    pub fn emails(&self) -> Vec<ReceivedEmail> {
        let mut emails = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.maildir.path().join("new")) else {
            return emails;
        };
        for entry in entries.flatten() {
            let Ok(raw) = std::fs::read(entry.path()) else {
                continue;
            };
            let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
                continue;
            };
            let to = message
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_owned();
            emails.push(ReceivedEmail {
                to,
                subject: message.subject().unwrap_or_default().to_owned(),
                message_id: message.message_id().unwrap_or_default().to_owned(),
                text: message
                    .body_text(0)
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
                html: message
                    .body_html(0)
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
            });
        }
        emails
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request received by the webhook receiver.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl ReceivedWebhook {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Verify the Standard Webhooks signature with `secret`, independently
    /// of closeloop's own signing code.
    pub fn signature_is_valid(&self, secret: &str) -> bool {
        use base64::Engine;
        use hmac::Mac;
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        self.signature
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
    }
}

/// A refusal the receiver will answer instead of accepting.
#[derive(Debug, Clone, Copy)]
struct Failure {
    status: u16,
    retry_after: Option<u64>,
}

/// A real HTTP server that records webhooks. It answers 204, or the next
/// failure queued with [`WebhookReceiver::fail_next`], or 503 to everything
/// while [`WebhookReceiver::set_down`] holds.
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Mutex<Vec<ReceivedWebhook>>>,
    failures: Arc<Mutex<std::collections::VecDeque<Failure>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<ReceivedWebhook>>> = Arc::default();
        let failures: Arc<Mutex<std::collections::VecDeque<Failure>>> = Arc::default();
        let down: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let hits: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/crm", listener.local_addr().unwrap());
        let (r, f, d, n) = (
            received.clone(),
            failures.clone(),
            down.clone(),
            hits.clone(),
        );
        let app = axum::Router::new().route(
            "/hooks/crm",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (r, f, d, n) = (r.clone(), f.clone(), d.clone(), n.clone());
                async move {
                    use axum::response::IntoResponse;
                    n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if d.load(std::sync::atomic::Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    if let Some(failure) = f.lock().unwrap().pop_front() {
                        let status = StatusCode::from_u16(failure.status).unwrap();
                        return match failure.retry_after {
                            Some(seconds) => {
                                (status, [("retry-after", seconds.to_string())]).into_response()
                            }
                            None => status.into_response(),
                        };
                    }
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    r.lock().unwrap().push(ReceivedWebhook {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: body.to_vec(),
                    });
                    StatusCode::NO_CONTENT.into_response()
                }
            }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        WebhookReceiver {
            url,
            received,
            failures,
            down,
            hits,
            shutdown: Some(tx),
        }
    }

    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.received.lock().unwrap().clone()
    }

    /// Answer the next request with `status` instead of accepting it.
    pub fn fail_next(&self, status: u16) {
        self.failures.lock().unwrap().push_back(Failure {
            status,
            retry_after: None,
        });
    }

    /// Answer the next request with `status` and a `Retry-After` in seconds.
    pub fn fail_next_with_retry_after(&self, status: u16, seconds: u64) {
        self.failures.lock().unwrap().push_back(Failure {
            status,
            retry_after: Some(seconds),
        });
    }

    /// Every request received, accepted or not.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The first `count` webhooks received, once they all arrived, and the
    /// type of each (`case.created`...).
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> (Vec<ReceivedWebhook>, Vec<String>) {
        let received = eventually(&format!("{count} webhooks"), timeout, || async {
            let got = self.received();
            (got.len() >= count).then_some(got)
        })
        .await;
        let types = received
            .iter()
            .map(|w| w.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        (received, types)
    }

    /// While down, answer 503 to everything.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Knobs a test may turn.
#[derive(Debug, Clone)]
pub struct Options {
    pub batch_max: usize,
    pub partitions: i32,
    /// Keep the owners' `digest` settings. Off by default: with the real
    /// clock, a run crossing an hour would build a digest at random.
    pub digests: bool,
    /// Use this broker instead of the shared one (a [`Broker`] of the test's own).
    pub kafka: Option<String>,
    /// Use this PostgreSQL server (admin URL) instead of the shared one (a
    /// [`PrivateDatabase`] of the test's own).
    pub database: Option<String>,
    /// Join the consumer group as a static member (`kafka.instance_id`),
    /// so a restarted instance takes over its partitions at once.
    pub static_member: bool,
    /// Require API tokens (`auth.required`). Off by default: the other
    /// tests exercise the API itself; access control has its own test.
    pub auth: bool,
    /// Single-node mode (`intake.mode`): no broker, events stored by the
    /// service itself. Off by default: most suites test the Kafka path.
    pub single_node: bool,
    /// Leave `links.secret` out: the service generates the key.
    pub generated_link_key: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_max: 200,
            partitions: 3,
            digests: false,
            kafka: None,
            database: None,
            static_member: false,
            auth: false,
            single_node: false,
            generated_link_key: false,
        }
    }
}

/// One test's private world.
pub struct TestEnv {
    pub name: String,
    pub dir: TempDir,
    pub config: PathBuf,
    pub rules_file: PathBuf,
    pub owners_file: PathBuf,
    pub db_url: String,
    pub kafka: String,
    pub topic: String,
    pub dead_letter_topic: String,
    pub group: String,
    pub base_url: String,
    pub smtp: SmtpServer,
    pub webhooks: WebhookReceiver,
    pub db: PgPool,
}

impl TestEnv {
    pub async fn new(options: Options) -> Self {
        let admin_url = options.database.clone().unwrap_or_else(|| {
            std::env::var("CLOSELOOP_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        });
        let kafka = options.kafka.clone().unwrap_or_else(|| {
            std::env::var("CLOSELOOP_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
        });
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let db_url = format!("{}/closeloop_{name}", admin_url.trim_end_matches('/'));
        let dir = TempDir::new().unwrap();
        let smtp = SmtpServer::start();
        let webhooks = WebhookReceiver::start().await;
        let http_port = free_port();
        // A copy, so a test may change it (hot reload).
        let rules_file = dir.path().join("rules.toml");
        std::fs::copy(repo_root().join("config/rules.toml"), &rules_file).unwrap();
        let owners_file = dir.path().join("owners.toml");
        // The default directory, with the LYON-02 manager's CRM pointed at
        // this test's receiver.
        let owners = std::fs::read_to_string(repo_root().join("config/owners.toml"))
            .unwrap()
            .replace("http://127.0.0.1:8090/hooks/crm", &webhooks.url);
        let owners = if options.digests {
            owners
        } else {
            owners.replace("digest = \"hourly\"", "")
        };
        // Business hours would make SLA clocks depend on when the test
        // runs: tests count every hour unless they bring their calendar.
        let owners = owners
            .replace("default_calendar = \"fr-stores\"", "")
            .replace("calendar = \"be-stores\"", "");
        std::fs::write(&owners_file, owners).unwrap();
        let topic = format!("closeloop.{name}.feedback");
        let dead_letter_topic = format!("closeloop.{name}.dlq");
        let group = format!("closeloop-{name}");
        let config = dir.path().join("closeloop.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[intake]
mode = "{mode}"

[kafka]
brokers = "{kafka}"
topic = "{topic}"
dead_letter_topic = "{dead_letter_topic}"
group_id = "{group}"
{instance_id}create_topics = true
partitions = {partitions}
batch_max = {batch_max}
batch_linger = "20ms"
max_event_bytes = 262144

[database]
url = "{db_url}"
max_connections = 5

[http]
listen = "127.0.0.1:{http_port}"
public_url = "http://127.0.0.1:{http_port}"
max_body_bytes = 1048576
# Tests poll the API from one address; the rate-limit test sets its own.
rate_limit_per_second = 2000
rate_limit_burst = 4000

[cases]
watcher_domains = ["closeloop.local"]

[rules]
rules_file = "{rules}"
owners_file = "{owners}"
root_causes = ["delivery_delay", "product_defect", "staff_behaviour", "billing", "other"]
watch_interval = "200ms"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "closeloop <alerts@closeloop.test>"
timeout = "5s"

[email]
templates_dir = "{templates}"

[reports]
# Off: the suites count emails. tests/reports.rs turns it on.
weekly = false

[links]
{link_secret}ttl = "1d"

[webhook]
signing_secrets = ["{WEBHOOK_SECRET}"]
timeout = "5s"
allow_private_ranges = ["127.0.0.0/8"]
allow_http = true
breaker_failures = 3
breaker_cooldown = "2s"

[dispatch]
concurrency = 8
poll_interval = "200ms"
lease = "30s"
retry_schedule = ["0s", "1s", "2s", "5s"]

[shutdown]
grace = "20s"

[auth]
required = {auth}

[kafka.properties]
# tansu evicts a dead group member only when another request reaches the
# group, so a join after a kill -9 waits out the whole rebalance timeout
# (max.poll.interval.ms, 300 s by default) before it is retried. Apache Kafka
# evicts on the session timeout by itself; with tansu, keep this short.
"max.poll.interval.ms" = "20000"
"#,
                instance_id = if options.static_member {
                    format!("instance_id = \"{name}-1\"\n")
                } else {
                    String::new()
                },
                mode = if options.single_node {
                    "single-node"
                } else {
                    "kafka"
                },
                link_secret = if options.generated_link_key {
                    ""
                } else {
                    "secret = \"closeloop-test-links-key\"\n"
                },
                partitions = options.partitions,
                batch_max = options.batch_max,
                auth = options.auth,
                rules = rules_file.display(),
                owners = owners_file.display(),
                templates = repo_root().join("config/templates").display(),
                smtp_port = smtp.port,
            ),
        )
        .unwrap();
        // Create the database up front so the test can read it at once.
        {
            use sqlx::migrate::MigrateDatabase;
            sqlx::Postgres::create_database(&db_url)
                .await
                .expect("create test database");
        }
        let db = PgPoolOptions::new()
            .max_connections(3)
            .connect(&db_url)
            .await
            .unwrap();
        TestEnv {
            name,
            dir,
            config,
            rules_file,
            owners_file,
            db_url,
            kafka,
            topic,
            dead_letter_topic,
            group,
            base_url: format!("http://127.0.0.1:{http_port}"),
            smtp,
            webhooks,
            db,
        }
    }

    /// Start `closeloop serve` and wait until it answers `/readyz`.
    pub async fn start_service(&self) -> Service {
        self.start_service_with(&[]).await
    }

    /// Start `closeloop serve` with configuration overrides
    /// (`CLOSELOOP__SECTION__KEY` variables) and wait until it is ready.
    pub async fn start_service_with(&self, overrides: &[(&str, &str)]) -> Service {
        self.spawn_service(overrides, &self.base_url).await
    }

    /// Start one more instance of the service in the same consumer group,
    /// on its own HTTP port.
    pub async fn start_instance(&self, instance_id: &str) -> Service {
        self.start_instance_with(instance_id, &[]).await
    }

    /// [`Self::start_instance`] with configuration overrides.
    pub async fn start_instance_with(
        &self,
        instance_id: &str,
        overrides: &[(&str, &str)],
    ) -> Service {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut vars = vec![
            ("CLOSELOOP__HTTP__LISTEN", listen.as_str()),
            ("CLOSELOOP__KAFKA__INSTANCE_ID", instance_id),
        ];
        vars.extend_from_slice(overrides);
        self.spawn_service(&vars, &format!("http://{listen}")).await
    }

    async fn spawn_service(&self, overrides: &[(&str, &str)], base_url: &str) -> Service {
        let log = self
            .dir
            .path()
            .join(format!("service-{}.log", uuid::Uuid::new_v4().simple()));
        let child = closeloop_command()
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env(
                "RUST_LOG",
                "info,closeloop=debug,closeloop_notify=debug,closeloop_kafka=debug",
            )
            .envs(overrides.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut service = Service {
            child,
            log,
            base_url: base_url.to_owned(),
        };
        let client = reqwest::Client::new();
        let url = format!("{base_url}/readyz");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("service exited with {status}:\n{}", service.log_text());
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "service not ready:\n{}",
                service.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        service
    }

    /// Run `closeloop publish FILE` against this test's topic.
    pub fn publish(&self, file: &Path) {
        let output = closeloop_command()
            .arg("--config")
            .arg(&self.config)
            .arg("publish")
            .arg(file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "publish failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Create this test's topics (the service also does at start-up), so
    /// events can be published before the service runs.
    pub async fn create_topics(&self, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .create()
            .unwrap();
        let topics = [
            NewTopic::new(&self.topic, partitions, TopicReplication::Fixed(1)),
            NewTopic::new(
                &self.dead_letter_topic,
                partitions,
                TopicReplication::Fixed(1),
            ),
        ];
        for result in admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .unwrap()
        {
            result.unwrap();
        }
    }

    /// Run `closeloop ARGS...` with this test's configuration; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = closeloop_command()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "closeloop {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Write `lines` to a file in this test's folder.
    pub fn write_events(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// The policy the service runs, for computing expectations.
    pub fn policy(&self) -> Policy {
        let rules =
            RuleSet::from_toml("rules", &std::fs::read_to_string(&self.rules_file).unwrap())
                .unwrap();
        let owners = OwnerDirectory::from_toml(
            "owners",
            &std::fs::read_to_string(&self.owners_file).unwrap(),
        )
        .unwrap();
        Policy::new(rules, owners).unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db).await.unwrap()
    }

    /// Whether the consumer group has committed every message of the topic.
    /// The group's committed offset of every partition of the topic (0 where
    /// nothing is committed yet).
    pub fn committed_offsets(&self) -> Result<HashMap<i32, i64>> {
        let consumer = self.group_reader()?;
        let metadata = consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(10))?;
        let Some(topic) = metadata.topics().first() else {
            bail!("no topic metadata")
        };
        let mut list = TopicPartitionList::new();
        for partition in topic.partitions() {
            list.add_partition(&self.topic, partition.id());
        }
        let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                (e.partition(), offset)
            })
            .collect())
    }

    /// Whether the group committed every message of the topic.
    pub fn caught_up(&self) -> Result<bool> {
        let consumer = self.group_reader()?;
        for (partition, done) in self.committed_offsets()? {
            let (_, high) =
                consumer.fetch_watermarks(&self.topic, partition, Duration::from_secs(5))?;
            if done < high {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A client in the test's group that reads offsets, never joins.
    fn group_reader(&self) -> Result<BaseConsumer> {
        Ok(ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .create()?)
    }

    pub async fn wait_caught_up(&self, timeout: Duration) {
        eventually(
            "the consumer group to commit every message",
            timeout,
            || async { self.caught_up().ok().filter(|done| *done) },
        )
        .await;
    }

    /// Read every message of the dead-letter topic, expecting `count`.
    pub fn dead_letters(&self, count: usize, timeout: Duration) -> Vec<DeadLetter> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka)
            .set("group.id", format!("{}-dlq-reader", self.group))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[&self.dead_letter_topic]).unwrap();
        let deadline = Instant::now() + timeout;
        let mut letters = Vec::new();
        while letters.len() < count && Instant::now() < deadline {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            letters.push(DeadLetter::from_message(&message));
        }
        letters
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The signed page link of `case` as an email carries it (the first
    /// email received that has one), once it arrived.
    pub async fn case_link(&self, case: uuid::Uuid) -> String {
        let prefix = format!("{}/cases/{case}?link=", self.base_url);
        eventually(
            "an email with the case link",
            Duration::from_secs(30),
            || async {
                self.smtp.emails().iter().find_map(|e| {
                    let start = e.text.find(&prefix)?;
                    let rest = &e.text[start..];
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    Some(rest[..end].to_owned())
                })
            },
        )
        .await
    }

    /// GET an API path (no token) and decode its JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.api(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The id of the case `event_id` opened, once it exists.
    pub async fn case_id_of(&self, event_id: &str) -> uuid::Uuid {
        eventually(
            &format!("the case of {event_id}"),
            Duration::from_secs(120),
            || async {
                sqlx::query_scalar("SELECT id FROM cases WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_optional(&self.db)
                    .await
                    .unwrap()
            },
        )
        .await
    }
}

/// The row of `group` in a `/v1/metrics/*` answer.
pub fn metrics_group(metrics: &serde_json::Value, group: &str) -> serde_json::Value {
    metrics["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["group"] == group))
        .cloned()
        .unwrap_or_else(|| panic!("no group {group} in {metrics}"))
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Keep the database and the files (service logs) when a test fails,
        // for inspection; drop them otherwise.
        if std::thread::panicking() {
            let dir = std::mem::replace(&mut self.dir, TempDir::new().unwrap());
            eprintln!(
                "{}: database {} and files in {} kept",
                self.name,
                self.db_url,
                dir.keep().display()
            );
        } else {
            let url = self.db_url.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::migrate::MigrateDatabase;
                    let _ = sqlx::Postgres::force_drop_database(&url).await;
                });
            })
            .join();
        }
    }
}

/// A dead-lettered message.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl DeadLetter {
    /// The payload and headers (as text) of a message read from the
    /// dead-letter topic.
    pub fn from_message(message: &impl Message) -> Self {
        let mut headers = HashMap::new();
        if let Some(h) = message.headers() {
            for header in h.iter() {
                let value = header
                    .value
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                headers.insert(header.key.to_owned(), value);
            }
        }
        DeadLetter {
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }
}

/// A running `closeloop serve` process.
pub struct Service {
    pub child: Child,
    log: PathBuf,
    /// Where this instance's HTTP API answers.
    pub base_url: String,
}

impl Service {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit status (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!(
                    "service did not stop within {timeout:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` generated events (`closeloop generate --count n --seed 1
/// --repeat-rate 0`): realistic, but every one from a new customer, so each
/// alert opens its own case and the suites can count cases per alert
/// exactly (coalescing and the recovery loop have their own tests).
pub fn sample_lines(n: usize) -> Vec<String> {
    closeloop_gen::lines(closeloop_gen::Options {
        repeat_rate: 0.0,
        ..closeloop_gen::Options::new(n, 1)
    })
    .collect()
}

/// A Kafka broker of the test's own (tansu on durable sqlite storage), so a
/// test can stop and restart it without disturbing the others.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl Broker {
    pub fn start() -> Self {
        let mut broker = Broker {
            child: None,
            port: free_port(),
            dir: TempDir::new().unwrap(),
        };
        broker.spawn();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = closeloop_testkit::start_tansu(self.dir.path(), self.port)
            .expect("tansu starts (make test installs it)");
        self.child = Some(child);
    }

    /// Kill the broker, as a crash or an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
