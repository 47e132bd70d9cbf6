//! The reliability suite's shared pieces (issue 7): a workload of valid and
//! invalid events with its expectations computed by `closeloop rules test`,
//! the accounting every scenario ends with, a PostgreSQL server a test may
//! stop, and the report `make chaos` prints.
//!
//! Knobs (environment): `CLOSELOOP_CHAOS_ROUNDS` (kill rounds, default 3),
//! `CLOSELOOP_CHAOS_OUTAGE_SECS` (length of each outage, default 5),
//! `CLOSELOOP_CHAOS_EVENTS` (valid events per scenario, default 1000),
//! `CLOSELOOP_CHAOS_REPORT` (a file to append one JSON line per scenario to).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use tempfile::TempDir;
use uuid::Uuid;

use crate::{eventually, free_port, sample_lines, test_data, TestEnv};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kill rounds of the kill -9 scenario.
pub fn rounds() -> usize {
    knob("CLOSELOOP_CHAOS_ROUNDS", 3) as usize
}

/// How long each outage lasts.
pub fn outage() -> Duration {
    Duration::from_secs(knob("CLOSELOOP_CHAOS_OUTAGE_SECS", 5))
}

/// Valid events per scenario.
pub fn events() -> usize {
    knob("CLOSELOOP_CHAOS_EVENTS", 1000).min(2000) as usize
}

/// Events to publish, and what must come of them.
pub struct Workload {
    pub lines: Vec<String>,
    pub file: PathBuf,
    /// Event ids that must each open exactly one case.
    pub alerting: HashSet<String>,
    /// Deliveries the cases must produce (email and webhook).
    pub notifications: i64,
    pub valid: usize,
    /// Lines the service must dead-letter.
    pub invalid: usize,
}

impl Workload {
    /// `valid` sample events; with `with_invalid`, every line of the
    /// invalid file spread evenly among them.
    pub fn new(env: &TestEnv, valid: usize, with_invalid: bool) -> Self {
        let mut lines = sample_lines(valid);
        if with_invalid {
            let invalid: Vec<String> = std::fs::read_to_string(test_data("feedback-invalid.jsonl"))
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let step = (lines.len() / (invalid.len() + 1)).max(1);
            for (i, line) in invalid.into_iter().enumerate() {
                lines.insert(((i + 1) * step + i).min(lines.len()), line);
            }
        }
        Self::from_lines(env, lines)
    }

    /// The expectations of `lines`, from `closeloop rules test` on the
    /// rules and owners the service runs.
    pub fn from_lines(env: &TestEnv, lines: Vec<String>) -> Self {
        let file = env.write_events("workload.jsonl", &lines);
        let decisions = env.cli(&[
            "rules",
            "test",
            "--rules",
            &env.rules_file.display().to_string(),
            "--owners",
            &env.owners_file.display().to_string(),
            "--events",
            &file.display().to_string(),
        ]);
        let mut workload = Workload {
            lines,
            file,
            alerting: HashSet::new(),
            notifications: 0,
            valid: 0,
            invalid: 0,
        };
        for decision in decisions.lines() {
            let decision: Value = serde_json::from_str(decision).unwrap();
            if !decision["error"].is_null() {
                workload.invalid += 1;
                continue;
            }
            workload.valid += 1;
            if decision["rules"].as_array().is_some_and(|r| !r.is_empty()) {
                workload
                    .alerting
                    .insert(decision["event_id"].as_str().unwrap().to_owned());
                workload.notifications += decision["channels"].as_array().unwrap().len() as i64;
            }
        }
        assert_eq!(workload.valid + workload.invalid, workload.lines.len());
        workload
    }

    /// The workload cut into `parts` files, in order.
    pub fn parts(&self, env: &TestEnv, parts: usize) -> Vec<PathBuf> {
        let size = self.lines.len().div_ceil(parts.max(1));
        self.lines
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| env.write_events(&format!("part-{i}.jsonl"), chunk))
            .collect()
    }
}

/// Publish `file` from a separate thread (the stream goes on while the
/// test disturbs the service).
pub fn publish_in_background(env: &TestEnv, file: &Path) -> std::thread::JoinHandle<()> {
    let config = env.config.clone();
    let file = file.to_owned();
    std::thread::spawn(move || {
        let output = crate::closeloop_command()
            .arg("--config")
            .arg(&config)
            .arg("publish")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "publish failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
}

/// What a scenario ends with.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    pub scenario: String,
    pub rounds: usize,
    pub events: usize,
    pub invalid: usize,
    pub cases: usize,
    pub lost: usize,
    pub duplicated_cases: usize,
    pub deliveries: usize,
    /// Deliveries received more than once (each time with the same id).
    pub redelivered: usize,
    pub dead_lettered: usize,
    /// From the end of the disturbance to every case stored, every offset
    /// committed and every notification delivered.
    pub recovery: Duration,
}

impl Accounting {
    /// Append this scenario's line to `CLOSELOOP_CHAOS_REPORT`, if set.
    pub fn report(&self) {
        let line = json!({
            "scenario": self.scenario,
            "rounds": self.rounds,
            "events": self.events,
            "invalid": self.invalid,
            "cases": self.cases,
            "lost": self.lost,
            "duplicated_cases": self.duplicated_cases,
            "deliveries": self.deliveries,
            "redelivered": self.redelivered,
            "dead_lettered": self.dead_lettered,
            "recovery_ms": self.recovery.as_millis() as u64,
        });
        eprintln!("chaos: {line}");
        if let Ok(path) = std::env::var("CLOSELOOP_CHAOS_REPORT") {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(file, "{line}").unwrap();
        }
    }
}

/// The accounting every scenario ends with, waiting at most `timeout` for
/// the service to finish: exactly the expected cases, no duplicate, every
/// notification delivered at least once (duplicates with the same id), every
/// invalid event dead-lettered with its reason, every offset committed.
/// `since` is when the disturbance ended.
pub async fn account(
    env: &TestEnv,
    workload: &Workload,
    scenario: &str,
    since: Instant,
    timeout: Duration,
) -> Accounting {
    env.wait_caught_up(timeout).await;
    eventually("every expected case stored", timeout, || async {
        (env.count("SELECT count(DISTINCT event_id) FROM cases")
            .await
            >= workload.alerting.len() as i64)
            .then_some(())
    })
    .await;
    eventually("every notification sent", timeout, || async {
        let sent = env
            .count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await;
        (sent >= workload.notifications).then_some(())
    })
    .await;
    let emails_expected: HashSet<String> =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM outbox WHERE channel = 'email'")
            .fetch_all(&env.db)
            .await
            .unwrap()
            .into_iter()
            .map(|id| format!("{id}@closeloop"))
            .collect();
    let hooks_expected: HashSet<String> =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM outbox WHERE channel = 'webhook'")
            .fetch_all(&env.db)
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
    let (emails, hooks) = eventually(
        "every delivery received",
        Duration::from_secs(60),
        || async {
            let emails: Vec<String> = env
                .smtp
                .emails()
                .into_iter()
                .map(|e| e.message_id)
                .collect();
            let hooks: Vec<String> = env.webhooks.received().into_iter().map(|h| h.id).collect();
            let got_emails: HashSet<&String> = emails.iter().collect();
            let got_hooks: HashSet<&String> = hooks.iter().collect();
            (emails_expected.iter().all(|id| got_emails.contains(id))
                && hooks_expected.iter().all(|id| got_hooks.contains(id)))
            .then_some((emails.clone(), hooks.clone()))
        },
    )
    .await;
    let recovery = since.elapsed();

    let stored: Vec<String> = sqlx::query_scalar("SELECT event_id FROM cases")
        .fetch_all(&env.db)
        .await
        .unwrap();
    let distinct: HashSet<String> = stored.iter().cloned().collect();
    let lost = workload.alerting.difference(&distinct).count();
    let unexpected: Vec<&String> = distinct.difference(&workload.alerting).collect();
    let duplicated_cases = stored.len() - distinct.len();
    assert_eq!(lost, 0, "{scenario}: alerting events without a case");
    assert!(
        unexpected.is_empty(),
        "{scenario}: cases nobody expected: {unexpected:?}"
    );
    assert_eq!(duplicated_cases, 0, "{scenario}: duplicate cases");
    assert_eq!(
        env.count("SELECT count(*) FROM feedback_events").await,
        workload.valid as i64,
        "{scenario}: every valid event stored once"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox").await,
        workload.notifications,
        "{scenario}: exactly the planned deliveries"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE status <> 'sent'")
            .await,
        0,
        "{scenario}: every delivery sent"
    );
    let outbox_ids: HashSet<&String> = emails_expected.iter().chain(&hooks_expected).collect();
    for id in emails.iter().chain(&hooks) {
        assert!(
            outbox_ids.contains(id),
            "{scenario}: a delivery ({id}) without an outbox row"
        );
    }
    let received = emails.len() + hooks.len();
    let redelivered = received - emails_expected.len() - hooks_expected.len();

    let letters = all_dead_letters(env);
    let positions: HashSet<(String, String)> = letters
        .iter()
        .map(|l| {
            assert!(
                !l.headers["closeloop.dlq.reason"].is_empty(),
                "{scenario}: a dead letter without its reason"
            );
            (
                l.headers["closeloop.dlq.partition"].clone(),
                l.headers["closeloop.dlq.offset"].clone(),
            )
        })
        .collect();
    assert_eq!(
        positions.len(),
        workload.invalid,
        "{scenario}: every invalid event dead-lettered"
    );
    assert_no_offset_past_unstored(env).await;

    Accounting {
        scenario: scenario.to_owned(),
        rounds: 0,
        events: workload.lines.len(),
        invalid: workload.invalid,
        cases: distinct.len(),
        lost,
        duplicated_cases,
        deliveries: emails_expected.len() + hooks_expected.len(),
        redelivered,
        dead_lettered: positions.len(),
        recovery,
    }
}

/// Every message of the dead-letter topic now (read to the high watermark).
pub fn all_dead_letters(env: &TestEnv) -> Vec<crate::DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("group.id", format!("{}-audit", env.group))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(&env.dead_letter_topic), Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for partition in metadata.topics()[0].partitions() {
        let (low, high) = consumer
            .fetch_watermarks(
                &env.dead_letter_topic,
                partition.id(),
                Duration::from_secs(10),
            )
            .unwrap();
        if high > low {
            assignment
                .add_partition_offset(&env.dead_letter_topic, partition.id(), Offset::Beginning)
                .unwrap();
            remaining.insert(partition.id(), high);
        }
    }
    let mut letters = Vec::new();
    if remaining.is_empty() {
        return letters;
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !remaining.is_empty() {
        assert!(Instant::now() < deadline, "reading the dead-letter topic");
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        if remaining
            .get(&message.partition())
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            remaining.remove(&message.partition());
        }
        letters.push(crate::DeadLetter::from_message(&message));
    }
    letters
}

/// The consumer group's committed offset of each partition of the topic.
/// No offset is committed past an event that is neither stored nor
/// dead-lettered: below each partition's committed offset, every message is
/// accounted for.
pub async fn assert_no_offset_past_unstored(env: &TestEnv) {
    let committed = env.committed_offsets().unwrap();
    let stored: HashSet<(i32, i64)> = sqlx::query_as::<_, (i32, i64)>(
        "SELECT source_partition, source_offset FROM feedback_events WHERE source_topic = $1",
    )
    .bind(&env.topic)
    .fetch_all(&env.db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let dead: HashSet<(i32, i64)> = all_dead_letters(env)
        .iter()
        .map(|l| {
            (
                l.headers["closeloop.dlq.partition"].parse().unwrap(),
                l.headers["closeloop.dlq.offset"].parse().unwrap(),
            )
        })
        .collect();
    for (partition, offset) in committed {
        for position in 0..offset {
            assert!(
                stored.contains(&(partition, position)) || dead.contains(&(partition, position)),
                "offset {offset} committed on partition {partition}, but the message at \
                 {position} is neither stored nor dead-lettered"
            );
        }
    }
}

/// A PostgreSQL server of the test's own (a cluster made with the Debian
/// binaries in a temporary folder), so a test can stop it and start it again.
pub struct PrivateDatabase {
    dir: TempDir,
    pub port: u16,
    bin: PathBuf,
}

impl PrivateDatabase {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (make test installs them)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql");
        let dir = TempDir::new().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let database = PrivateDatabase {
            port: free_port(),
            bin,
            dir,
        };
        if is_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(database.dir.path(), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            run(Command::new("chown").arg("postgres").arg(&data));
        }
        run(database.as_postgres("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]));
        database.start_again();
        database
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn as_postgres(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// An outage: the server stops at once, as on a crash.
    pub fn stop(&self) {
        run(self.as_postgres("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }

    /// Start (again) on the same data.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.data().display()
        );
        run(self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.data().join("server.log"))
            .args(["-w", "start"]));
    }
}

impl Drop for PrivateDatabase {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
