//! Configuration: `config/closeloop.toml` (or `--config FILE`), overridden
//! by `CLOSELOOP__SECTION__KEY` environment variables. Checked whole at
//! start-up; an error names the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

type HumanDuration = humantime_serde::Serde<Duration>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where events come in: single-node (no broker) or Kafka.
    #[serde(default)]
    pub intake: IntakeSettings,
    pub kafka: KafkaSettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub rules: RulesSettings,
    #[serde(default)]
    pub cases: CasesSettings,
    pub smtp: SmtpSettings,
    pub email: EmailSettings,
    /// The manager's web app (inbox, case page, sign-in by email link).
    #[serde(default)]
    pub web: WebSettings,
    /// The weekly report email to regional managers and directors.
    #[serde(default)]
    pub reports: ReportSettings,
    /// One-click action links in emails; absent: no links.
    #[serde(default)]
    pub links: Option<LinksSettings>,
    pub webhook: WebhookSettings,
    pub dispatch: DispatchSettings,
    #[serde(default)]
    pub sla: SlaSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub shutdown: ShutdownSettings,
    #[serde(default)]
    pub log: LogSettings,
    /// The merged configuration as read, for `closeloop config check`.
    #[serde(skip)]
    pub raw: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    #[serde(default)]
    pub mode: IntakeMode,
}

/// A closed set of words read from the configuration: a value outside it is
/// refused with the key's name and the words allowed, never a fallback.
macro_rules! config_words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<Self, String> {
                match value.as_str() {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!(
                        "must be one of {} (got \"{other}\")",
                        [$($word),+].join(", ")
                    )),
                }
            }
        }
    };
}

config_words!(
    /// `intake.mode`.
    IntakeMode {
        /// One machine, no broker: `POST /v1/events` and `closeloop publish`
        /// store events through the intake pipeline directly.
        SingleNode = "single-node",
        /// Events come from the Kafka topic; HTTP and `publish` produce to it.
        Kafka = "kafka",
    }
);

// The macro derives no Default; single-node is the default mode.
#[allow(clippy::derivable_impls)]
impl Default for IntakeMode {
    fn default() -> Self {
        IntakeMode::SingleNode
    }
}

/// Secrets shipped in `config/` and `deploy/` for local development: public,
/// so refused unless the service is only reachable on loopback.
pub const DEVELOPMENT_SECRETS: &[&str] = &[
    "closeloop-local-links-key-change-me",
    "whsec_Y2xvc2Vsb29wLWxvY2FsLWRldmVsb3BtZW50LWtleSE=",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    pub dead_letter_topic: String,
    pub group_id: String,
    /// A stable name of this instance in the consumer group (static
    /// membership): a restart after a crash resumes at once. One per instance.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Create missing topics at start-up (local stacks; off in production).
    #[serde(default)]
    pub create_topics: bool,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    pub batch_max: usize,
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    pub max_event_bytes: usize,
    /// Extra librdkafka properties (security.protocol, sasl.*, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_partitions() -> i32 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: String,
    /// Base URL of case links in emails.
    pub public_url: String,
    /// Largest request body accepted (413 above).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Sustained requests per second per client IP (429 above); 0 = no limit.
    #[serde(default = "default_rate_limit_per_second")]
    pub rate_limit_per_second: u32,
    /// Requests a client may send in a burst above the sustained rate.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// A connection that has not sent a request's headers within this is
    /// closed (slowloris).
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// CIDR ranges of reverse proxies whose `X-Forwarded-For` / `Forwarded`
    /// headers name the client (for the rate limit); others are ignored.
    #[serde(default, deserialize_with = "cidr_ranges")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `/metrics` (with per-owner loop figures) needs this bearer token when
    /// set; unset, it is open to whoever reaches the listener.
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// A whole request (body read and answer) past this is answered 408.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
}

fn default_header_read_timeout() -> Duration {
    closeloop_api::HttpTimeouts::default().header_read
}

fn default_request_timeout() -> Duration {
    closeloop_api::HttpTimeouts::default().request
}

fn default_max_body_bytes() -> usize {
    closeloop_api::HttpLimits::default().max_body_bytes
}

fn default_rate_limit_per_second() -> u32 {
    closeloop_api::HttpLimits::default().requests_per_second
}

fn default_rate_limit_burst() -> u32 {
    closeloop_api::HttpLimits::default().burst
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSettings {
    pub rules_file: PathBuf,
    pub owners_file: PathBuf,
    pub root_causes: Vec<String>,
    /// How often the files are checked for changes (hot reload).
    #[serde(default = "default_watch_interval", with = "humantime_serde")]
    pub watch_interval: Duration,
}

fn default_watch_interval() -> Duration {
    Duration::from_secs(2)
}

/// Case coalescing: alerts with the same key attach to the active case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesSettings {
    /// Any of customer_id, store, region, touchpoint.
    #[serde(default = "default_case_key")]
    pub coalesce_key: Vec<closeloop_core::coalesce::CaseKeyField>,
    /// "0s" turns coalescing off.
    #[serde(default = "default_coalesce_window", with = "humantime_serde")]
    pub coalesce_window: Duration,
    /// Immediate alert emails per owner per day before the rest go to the
    /// owner's digest; 0: no cap.
    #[serde(default)]
    pub fatigue_cap_per_day: u32,
    /// After resolution, how long a new answer of the same customer (same
    /// case key) counts: a promoter marks the case recovered, an alert
    /// reopens it. "0s" turns the recovery loop off.
    #[serde(default = "default_recovery_window", with = "humantime_serde")]
    pub recovery_window: Duration,
    /// Besides the owner directory's people, addresses on these domains may
    /// be added as watchers of a case; nobody else.
    #[serde(default)]
    pub watcher_domains: Vec<String>,
}

fn default_recovery_window() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl Default for CasesSettings {
    fn default() -> Self {
        CasesSettings {
            coalesce_key: default_case_key(),
            coalesce_window: default_coalesce_window(),
            fatigue_cap_per_day: 0,
            recovery_window: default_recovery_window(),
            watcher_domains: Vec::new(),
        }
    }
}

fn default_case_key() -> Vec<closeloop_core::coalesce::CaseKeyField> {
    closeloop_core::coalesce::DEFAULT_CASE_KEY.to_vec()
}

fn default_coalesce_window() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub security: SmtpSecurityName,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub from: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Connections kept open to the SMTP server.
    #[serde(default = "default_pool")]
    pub pool_max_size: u32,
}

fn default_pool() -> u32 {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksSettings {
    /// Signs the links (HMAC-SHA256); at least 16 characters. Absent: a
    /// random key is generated at first start and kept in the database
    /// (shared by every instance).
    #[serde(default)]
    pub secret: Option<String>,
    /// How long a link stays valid.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// One folder per language with alert.subject.txt, alert.txt, alert.html.
    pub templates_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Send it (each owner may still turn theirs off: `weekly_report`).
    #[serde(default = "default_true")]
    pub weekly: bool,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings { weekly: true }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// The page templates and their texts per language (`i18n/`).
    #[serde(default = "default_web_templates")]
    pub templates_dir: PathBuf,
    /// How long a signed-in browser stays signed in.
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long a sign-in link sent by email works (once).
    #[serde(default = "default_sign_in_ttl", with = "humantime_serde")]
    pub sign_in_ttl: Duration,
    /// How often an open inbox asks for its list again (new cases appear).
    #[serde(default = "default_inbox_refresh", with = "humantime_serde")]
    pub inbox_refresh: Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            templates_dir: default_web_templates(),
            session_ttl: default_session_ttl(),
            sign_in_ttl: default_sign_in_ttl(),
            inbox_refresh: default_inbox_refresh(),
        }
    }
}

fn default_web_templates() -> PathBuf {
    PathBuf::from("config/templates/web")
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(14 * 24 * 3600)
}

fn default_inbox_refresh() -> Duration {
    Duration::from_secs(20)
}

fn default_sign_in_ttl() -> Duration {
    Duration::from_secs(15 * 60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// `whsec_...` secrets; every one signs (rotation).
    pub signing_secrets: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// CIDR ranges of loopback/private addresses webhooks may reach
    /// (SSRF guard); public addresses are always allowed.
    #[serde(default)]
    pub allow_private_ranges: Vec<String>,
    /// Plain `http://` webhook URLs (local development only); https otherwise.
    #[serde(default)]
    pub allow_http: bool,
    /// Consecutive transient failures that pause an endpoint.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    #[serde(default = "default_breaker_cooldown", with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// Per-endpoint settings, matched by URL prefix.
    #[serde(default)]
    pub endpoints: Vec<EndpointSettings>,
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_cooldown() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    pub url_prefix: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchSettings {
    pub concurrency: usize,
    /// Deliveries claimed per round, recorded in one transaction.
    #[serde(default = "default_dispatch_batch")]
    pub batch: usize,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    pub retry_schedule: Vec<HumanDuration>,
}

fn default_dispatch_batch() -> usize {
    256
}

/// API access control.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `/v1` needs a bearer token (`closeloop tokens create`). Only turn off
    /// on a private network (a local demo, tests).
    #[serde(default = "default_auth_required")]
    pub required: bool,
}

fn default_auth_required() -> bool {
    true
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            required: default_auth_required(),
        }
    }
}

/// SLA clocks, reminders and escalation (business time, in each owner's
/// calendar from the owner directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// How often the scheduler looks for due reminders and escalations.
    #[serde(default = "default_sla_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Share of a stage's allowed time after which the owner is reminded.
    #[serde(default = "default_remind_at")]
    pub remind_at: f64,
    /// Business time between escalation levels after a missed deadline.
    #[serde(default = "default_escalate_every", with = "humantime_serde")]
    pub escalate_every: Duration,
    /// Targets per severity (low, medium, high, critical); a severity left
    /// out has no clocks. Absent: the defaults of the README.
    #[serde(default)]
    pub targets: Option<BTreeMap<closeloop_core::Severity, SlaTargetSettings>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaTargetSettings {
    #[serde(with = "humantime_serde")]
    pub acknowledge: Duration,
    #[serde(with = "humantime_serde")]
    pub first_contact: Duration,
    #[serde(with = "humantime_serde")]
    pub resolve: Duration,
}

fn default_sla_poll() -> Duration {
    Duration::from_secs(30)
}

fn default_remind_at() -> f64 {
    closeloop_core::sla::SlaPolicy::default().remind_at
}

fn default_escalate_every() -> Duration {
    closeloop_core::sla::SlaPolicy::default()
        .escalate_every
        .to_std()
        .unwrap_or(Duration::from_secs(8 * 3600))
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings {
            poll_interval: default_sla_poll(),
            remind_at: default_remind_at(),
            escalate_every: default_escalate_every(),
            targets: None,
        }
    }
}

impl SlaSettings {
    /// The core's policy.
    pub fn policy(&self) -> closeloop_core::sla::SlaPolicy {
        let defaults = closeloop_core::sla::SlaPolicy::default();
        let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        closeloop_core::sla::SlaPolicy {
            targets: match &self.targets {
                None => defaults.targets,
                Some(targets) => targets
                    .iter()
                    .map(|(severity, t)| {
                        (
                            *severity,
                            closeloop_core::sla::SlaTargets {
                                acknowledge: chrono(t.acknowledge),
                                first_contact: chrono(t.first_contact),
                                resolve: chrono(t.resolve),
                            },
                        )
                    })
                    .collect(),
            },
            remind_at: self.remind_at,
            escalate_every: chrono(self.escalate_every),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings {
            grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
        }
    }
}

config_words!(
    /// `smtp.security`.
    SmtpSecurityName {
        /// Plain SMTP (local relays).
        None = "none",
        /// STARTTLS upgrade (port 587).
        StartTls = "starttls",
        /// TLS from the first byte (port 465).
        Tls = "tls",
    }
);

config_words!(
    /// `log.format`.
    LogFormat {
        Text = "text",
        Json = "json",
    }
);

impl Settings {
    /// Load `path` and the environment, then check values that types cannot.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let raw = config::Config::builder()
            .add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            )
            .add_source(
                config::Environment::with_prefix("CLOSELOOP")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("webhook.signing_secrets")
                    .with_list_parse_key("dispatch.retry_schedule")
                    .with_list_parse_key("rules.root_causes")
                    .with_list_parse_key("cases.coalesce_key")
                    .with_list_parse_key("cases.watcher_domains")
                    .with_list_parse_key("http.trusted_proxies")
                    .with_list_parse_key("webhook.allow_private_ranges")
                    .try_parsing(true),
            )
            .build()
            .with_context(|| format!("configuration {}", path.display()))?;
        let mut settings: Settings = raw
            .clone()
            .try_deserialize()
            .with_context(|| format!("configuration {}", path.display()))?;
        // `CLOSELOOP__KAFKA__PROPERTIES__SASL_PASSWORD` sets the librdkafka
        // property `sasl.password`: variable names cannot hold dots, and
        // librdkafka's property names have none of the underscores.
        settings.kafka.properties = std::mem::take(&mut settings.kafka.properties)
            .into_iter()
            .map(|(key, value)| (key.replace('_', "."), value))
            .collect();
        // An empty variable (`CLOSELOOP__WEBHOOK__ALLOW_PRIVATE_RANGES=`)
        // is an empty list, not a list of one empty range.
        settings
            .webhook
            .allow_private_ranges
            .retain(|range| !range.trim().is_empty());
        settings.raw = raw.try_deserialize::<toml::Value>().ok();
        settings
            .check()
            .with_context(|| format!("configuration {}", path.display()))?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.check_secrets()?;
        if self.kafka.batch_max == 0 {
            bail!("kafka.batch_max: must be at least 1");
        }
        if self.kafka.max_event_bytes < 1024 {
            bail!("kafka.max_event_bytes: must be at least 1024");
        }
        if self.kafka.partitions < 1 {
            bail!("kafka.partitions: must be at least 1");
        }
        if self.webhook.signing_secrets.is_empty() {
            bail!("webhook.signing_secrets: at least one whsec_ secret is required");
        }
        if self.dispatch.retry_schedule.is_empty() {
            bail!("dispatch.retry_schedule: at least one entry is required");
        }
        if self
            .links
            .as_ref()
            .and_then(|l| l.secret.as_ref())
            .is_some_and(|s| s.len() < 16)
        {
            bail!("links.secret: must be at least 16 characters");
        }
        if self.dispatch.concurrency == 0 {
            bail!("dispatch.concurrency: must be at least 1");
        }
        if self.dispatch.batch == 0 {
            bail!("dispatch.batch: must be at least 1");
        }
        if self.rules.root_causes.is_empty() {
            bail!("rules.root_causes: at least one root cause is required");
        }
        if !(self.sla.remind_at > 0.0 && self.sla.remind_at <= 1.0) {
            bail!(
                "sla.remind_at: must be a share of the allowed time, above 0 and at most 1 (got {})",
                self.sla.remind_at
            );
        }
        if self.sla.poll_interval.is_zero() {
            bail!("sla.poll_interval: must be above 0");
        }
        self.http
            .listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| {
                format!(
                    "http.listen: \"{}\" is not an address like 127.0.0.1:8080",
                    self.http.listen
                )
            })?;
        Ok(())
    }
}

impl Settings {
    /// The shipped development secrets are public: refuse them unless
    /// `http.public_url` is a loopback address (a laptop, a test).
    fn check_secrets(&self) -> anyhow::Result<()> {
        if is_loopback_url(&self.http.public_url) {
            return Ok(());
        }
        let how = "generate one (e.g. `openssl rand -base64 32`) and set it in the configuration file or the environment";
        if let Some(secret) = self.links.as_ref().and_then(|l| l.secret.as_ref()) {
            if DEVELOPMENT_SECRETS.contains(&secret.as_str()) {
                bail!(
                    "links.secret: the shipped development key is public and http.public_url ({}) is not a loopback address; {how}: CLOSELOOP__LINKS__SECRET=...",
                    self.http.public_url
                );
            }
        }
        if self
            .webhook
            .signing_secrets
            .iter()
            .any(|s| DEVELOPMENT_SECRETS.contains(&s.as_str()))
        {
            bail!(
                "webhook.signing_secrets: the shipped development secret is public and http.public_url ({}) is not a loopback address; {how}, prefixed whsec_: CLOSELOOP__WEBHOOK__SIGNING_SECRETS=whsec_...",
                self.http.public_url
            );
        }
        Ok(())
    }

    /// The effective settings as TOML, every secret masked.
    pub fn masked(&self) -> anyhow::Result<String> {
        let mut value = self
            .raw
            .clone()
            .unwrap_or_else(|| toml::Value::Table(Default::default()));
        mask(&mut value, "");
        Ok(toml::to_string_pretty(&value)?)
    }
}

/// Keys whose values are secrets (masked by `closeloop config check`).
fn is_secret_key(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    matches!(
        last,
        "secret" | "password" | "signing_secrets" | "url" | "sasl.password" | "ssl.key.password"
    ) && path != "http.public_url"
}

fn mask(value: &mut toml::Value, path: &str) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if is_secret_key(&child) {
                    *inner = match inner {
                        toml::Value::Array(items) => toml::Value::Array(
                            items
                                .iter()
                                .map(|_| toml::Value::String("********".into()))
                                .collect(),
                        ),
                        toml::Value::String(s) if path == "database" => {
                            toml::Value::String(mask_url_password(s))
                        }
                        _ => toml::Value::String("********".into()),
                    };
                } else {
                    mask(inner, &child);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(|item| mask(item, path)),
        _ => {}
    }
}

/// `postgres://user:pw@host/db` -> `postgres://user:********@host/db`.
fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "********".into();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            if user_info.contains(':') {
                format!("{scheme}://{user}:********@{host}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// A list of CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`), refused with the
/// range that is not one.
fn cidr_ranges<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|range| {
            range.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "\"{range}\" is not a CIDR range like 10.0.0.0/8 (one proxy: 10.0.0.5/32)"
                ))
            })
        })
        .collect()
}

/// True when the URL's host is a loopback address or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped configuration, with `overrides` as environment variables
    /// would set them (written into a copy, since tests share one process
    /// environment).
    fn shipped_with(public_url: &str, mode: &str) -> anyhow::Result<Settings> {
        shipped_edited(public_url, mode, |text| text)
    }

    /// The shipped configuration with the given public URL and mode, then
    /// `edit`ed.
    fn shipped_edited(
        public_url: &str,
        mode: &str,
        edit: impl Fn(String) -> String,
    ) -> anyhow::Result<Settings> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = std::fs::read_to_string(root.join("config/closeloop.toml"))?
            .replace(
                "public_url = \"http://127.0.0.1:8080\"",
                &format!("public_url = \"{public_url}\""),
            )
            .replace(
                "rules_file = \"config/",
                &format!("rules_file = \"{}/config/", root.display()),
            )
            .replace(
                "owners_file = \"config/",
                &format!("owners_file = \"{}/config/", root.display()),
            )
            .replace("mode = \"single-node\"", &format!("mode = \"{mode}\""));
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("closeloop.toml");
        std::fs::write(&path, edit(text))?;
        Settings::load(&path)
    }

    #[test]
    fn trusted_proxies_are_cidr_ranges_named_when_wrong() {
        let with = |ranges: &'static str| {
            shipped_edited("http://127.0.0.1:8080", "single-node", move |text| {
                text.replace(
                    "rate_limit_burst = 200",
                    &format!("rate_limit_burst = 200\ntrusted_proxies = {ranges}"),
                )
            })
        };
        let settings = with(r#"["10.0.0.0/8", "2001:db8::/32"]"#).unwrap();
        assert_eq!(settings.http.trusted_proxies.len(), 2);
        for bad in [r#"["10.0.0.1"]"#, r#"["10.0.0.0/33"]"#, r#"["proxy"]"#] {
            let error = format!("{:#}", with(bad).unwrap_err());
            assert!(
                error.contains("trusted_proxies") && error.contains("is not a CIDR range"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn loopback_urls() {
        for (url, loopback) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.9.9.9", true),
            ("http://localhost:8080/x", true),
            ("http://[::1]:8080", true),
            ("https://closeloop.example.com", false),
            ("https://10.0.0.1", false),
            ("http://127.0.0.1.example.com", false),
            ("http://user@127.0.0.1:80", true),
        ] {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
    }

    #[test]
    fn development_secrets_are_refused_off_loopback_naming_the_key() {
        assert!(shipped_with("http://127.0.0.1:8080", "single-node").is_ok());
        // The shipped webhook secret is a development one: refused off loopback.
        let error = format!(
            "{:#}",
            shipped_with("https://closeloop.example.com", "single-node").unwrap_err()
        );
        assert!(error.contains("webhook.signing_secrets"), "{error}");
        assert!(
            error.contains("CLOSELOOP__WEBHOOK__SIGNING_SECRETS"),
            "{error}"
        );
        // The shipped configuration sets no link key (generated at start),
        // and the old public one is refused if someone sets it.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/closeloop.toml"),
        )
        .unwrap();
        assert!(!text.contains(DEVELOPMENT_SECRETS[0]) && text.contains(DEVELOPMENT_SECRETS[1]));
        let settings = shipped_with("https://closeloop.example.com", "single-node");
        assert!(settings.is_err());
        let mut links = LinksSettings {
            secret: Some(DEVELOPMENT_SECRETS[0].into()),
            ttl: Duration::from_secs(60),
        };
        let mut own = shipped_with("http://127.0.0.1:8080", "single-node").unwrap();
        own.http.public_url = "https://closeloop.example.com".into();
        own.webhook.signing_secrets =
            vec!["whsec_b3duLXNlY3JldC1vd24tc2VjcmV0LW93bi1zZWNyZXQ=".into()];
        own.links = Some(links.clone());
        let error = format!("{:#}", own.check_secrets().unwrap_err());
        assert!(
            error.contains("links.secret") && error.contains("CLOSELOOP__LINKS__SECRET"),
            "{error}"
        );
        links.secret = None;
        own.links = Some(links);
        own.check_secrets().unwrap();
    }

    #[test]
    fn masked_settings_hide_every_secret() {
        let settings = shipped_with("http://127.0.0.1:8080", "single-node").unwrap();
        let masked = settings.masked().unwrap();
        for secret in DEVELOPMENT_SECRETS {
            assert!(!masked.contains(secret), "{secret} in\n{masked}");
        }
        assert!(masked.contains("********"));
        assert!(masked.contains("public_url = \"http://127.0.0.1:8080\""));
        assert_eq!(
            mask_url_password("postgres://u:pw@db:5432/x"),
            "postgres://u:********@db:5432/x"
        );
    }

    #[test]
    fn config_words_are_closed_sets_named_in_the_error() {
        for (key, from, to, allowed) in [
            (
                "smtp.security",
                "security = \"none\"",
                "security = \"startls\"",
                "starttls",
            ),
            (
                "log.format",
                "format = \"text\"",
                "format = \"josn\"",
                "json",
            ),
        ] {
            let edited = shipped_edited("http://127.0.0.1:8080", "single-node", move |text| {
                assert!(text.contains(from), "{from}");
                text.replacen(from, to, 1)
            });
            let error = format!("{:#}", edited.unwrap_err());
            assert!(
                error.contains(key) && error.contains(allowed),
                "{key}: {error}"
            );
        }
    }

    #[test]
    fn intake_mode_is_a_closed_set_named_in_the_error() {
        let settings = shipped_with("http://127.0.0.1:8080", "single-node").unwrap();
        assert_eq!(settings.intake.mode, IntakeMode::SingleNode);
        let error = format!(
            "{:#}",
            shipped_with("http://127.0.0.1:8080", "kafak").unwrap_err()
        );
        assert!(
            error.contains("intake.mode")
                && error.contains("kafak")
                && error.contains("single-node"),
            "{error}"
        );
    }
}
