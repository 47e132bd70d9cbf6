//! Wiring of the long-running service, and the commands that need the
//! broker or the database.
//!
//! Shutdown order on SIGTERM or Ctrl-C: stop consuming (the batch in flight
//! is stored and committed), stop the HTTP server after its in-flight
//! requests, let the dispatcher finish its in-flight sends; all within
//! `shutdown.grace`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use closeloop_api::{AppState, EventIntake};
use closeloop_kafka::{ClientSettings, IntakeSettings, IntakeStats, Publisher};
use closeloop_notify::{
    AddressPolicy, DispatchSettings, Dispatcher, EmailSender, EmailTemplates, SmtpSecurity,
    SystemClock, WebhookSecret, WebhookSender,
};
use closeloop_store::{Store, StoreOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::intake::{EmbeddedIntake, KafkaIntake};
use crate::pipeline::Pipeline;
use crate::reload::ActivePolicy;
use crate::settings::{IntakeMode, Settings};

fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,rdkafka=warn,sqlx=warn,tower_http=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn client_settings(settings: &Settings) -> ClientSettings {
    ClientSettings {
        brokers: settings.kafka.brokers.clone(),
        properties: settings.kafka.properties.clone(),
    }
}

fn store(settings: &Settings) -> anyhow::Result<Store> {
    Ok(Store::connect_lazy(
        &settings.database.url,
        settings.database.max_connections,
        StoreOptions {
            case_key: settings.cases.coalesce_key.clone(),
            coalesce_window: chrono::Duration::from_std(settings.cases.coalesce_window)
                .unwrap_or(chrono::Duration::days(7)),
            fatigue_cap_per_day: settings.cases.fatigue_cap_per_day,
            recovery_window: chrono::Duration::from_std(settings.cases.recovery_window)
                .unwrap_or(chrono::Duration::days(30)),
            ..StoreOptions::new(settings.http.public_url.clone())
        },
    )?)
}

/// Retry `attempt` for up to `patience` while it fails transiently: at
/// start-up the database or broker may still be booting.
async fn with_patience<T, E: std::fmt::Display>(
    what: &str,
    patience: Duration,
    mut attempt: impl AsyncFnMut() -> Result<T, E>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() < deadline => {
                warn!(%error, "{what} failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => anyhow::bail!("{what} failed: {error}"),
        }
    }
}

/// Create the database if needed and apply migrations, waiting up to 30 s
/// for PostgreSQL to come up.
async fn prepare_database(settings: &Settings, store: &Store) -> anyhow::Result<()> {
    let url = settings.database.url.as_str();
    with_patience("database creation", Duration::from_secs(30), || {
        Store::create_database_if_missing(url)
    })
    .await?;
    with_patience("database migration", Duration::from_secs(30), || {
        store.migrate()
    })
    .await
}

pub async fn migrate(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    init_tracing(&settings);
    let store = store(&settings)?;
    prepare_database(&settings, &store).await?;
    info!("migrations applied");
    Ok(())
}

/// `closeloop publish FILE`: in single-node mode, store the file's events
/// through the intake pipeline (refused lines listed with their reason); in
/// Kafka mode, publish every line to the intake topic.
pub async fn publish(config: &Path, file: &Path, topic: Option<String>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    if settings.intake.mode == IntakeMode::Kafka || topic.is_some() {
        let topic = topic.unwrap_or_else(|| settings.kafka.topic.clone());
        let publisher = Publisher::new(&client_settings(&settings), &topic)?;
        let count = publisher.publish_file(file, 1000).await?;
        println!(
            "published {count} events from {} to {topic}",
            file.display()
        );
        return Ok(());
    }
    let policy = Arc::new(ActivePolicy::load(
        &settings.rules.rules_file,
        &settings.rules.owners_file,
    )?);
    let store = store(&settings)?;
    prepare_database(&settings, &store).await?;
    let pipeline = Pipeline {
        store,
        policy,
        wake_dispatcher: Arc::new(Notify::new()),
        sla: settings.sla.policy(),
        unnotified: Arc::default(),
    };
    let outcome = crate::intake::store_file(
        &pipeline,
        file,
        settings.kafka.max_event_bytes,
        settings.kafka.batch_max,
    )
    .await?;
    println!(
        "stored {} events from {} ({} already stored)",
        outcome.stored,
        file.display(),
        outcome.duplicates
    );
    for (line, reason) in &outcome.refused {
        eprintln!("{}: line {line}: {reason}", file.display());
    }
    if !outcome.refused.is_empty() {
        anyhow::bail!(
            "{} invalid lines refused (listed above); the valid ones are stored",
            outcome.refused.len()
        );
    }
    Ok(())
}

/// `closeloop config check`: validate, then print the effective settings
/// with every secret masked.
pub fn config_check(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    println!("# {}: valid", config.display());
    print!("{}", settings.masked()?);
    Ok(())
}

/// `closeloop deliveries list|replay`, straight against the database.
pub async fn deliveries(config: &Path, command: crate::DeliveriesCommand) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let store = store(&settings)?;
    match command {
        crate::DeliveriesCommand::List { status, limit } => {
            for d in store
                .list_deliveries(status.as_deref(), None, limit)
                .await?
            {
                println!("{}", serde_json::to_string(&d)?);
            }
        }
        crate::DeliveriesCommand::Replay {
            ids,
            case_id,
            from,
            to,
        } => {
            let ids = (!ids.is_empty()).then_some(ids);
            let selector = closeloop_api::replay_selector(ids, case_id, from, to)
                .map_err(anyhow::Error::msg)?;
            let replayed = store.replay_dead(&selector, chrono::Utc::now()).await?;
            println!("replayed {} dead deliveries", replayed.len());
            for id in replayed {
                println!("{id}");
            }
        }
    }
    Ok(())
}

/// `closeloop silences create|list|expire`, straight against the database.
pub async fn silences(config: &Path, command: crate::SilencesCommand) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let store = store(&settings)?;
    let now = chrono::Utc::now();
    match command {
        crate::SilencesCommand::Create {
            matcher,
            duration,
            from,
            created_by,
            reason,
        } => {
            let starts_at = from.unwrap_or(now);
            let ends_at =
                starts_at + closeloop_api::parse_duration(&duration).map_err(anyhow::Error::msg)?;
            closeloop_api::validate_silence(&matcher, starts_at, ends_at, &created_by, &reason)
                .map_err(anyhow::Error::msg)?;
            let silence = store
                .create_silence(&matcher, starts_at, ends_at, &created_by, &reason, now)
                .await?;
            println!(
                "silence {} active until {}",
                silence.id,
                silence.ends_at.to_rfc3339()
            );
        }
        crate::SilencesCommand::List => {
            for s in store.silences().await? {
                println!(
                    "{} {:<8} {} .. {} by {}: {} ({} silenced) [{}]",
                    s.id,
                    s.state(now),
                    s.starts_at.to_rfc3339(),
                    s.ends_at.to_rfc3339(),
                    s.created_by,
                    s.reason,
                    s.silenced,
                    s.matcher
                );
            }
        }
        crate::SilencesCommand::Expire { id } => match store.expire_silence(id, now).await? {
            Some(s) => println!("silence {} expired", s.id),
            None => anyhow::bail!("silence {id} not found"),
        },
    }
    Ok(())
}

/// `closeloop tokens create|list|revoke`, straight against the database.
pub async fn tokens(config: &Path, command: crate::TokensCommand) -> anyhow::Result<()> {
    use closeloop_core::access::{token_hash, Role};
    let settings = Settings::load(config)?;
    let store = store(&settings)?;
    prepare_database(&settings, &store).await?;
    let now = chrono::Utc::now();
    match command {
        crate::TokensCommand::Create { name, role, owner } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("--role: must be admin, ops or manager (got \"{role}\")")
            })?;
            if name.trim().is_empty() {
                anyhow::bail!("--name: must not be empty");
            }
            match (role, &owner) {
                (Role::Manager, None) => {
                    anyhow::bail!("--owner: a manager token needs the owner id whose cases it sees")
                }
                (Role::Manager, Some(id)) => {
                    let policy = ActivePolicy::load(
                        &settings.rules.rules_file,
                        &settings.rules.owners_file,
                    )?;
                    if policy.current().owners().get(id).is_none() {
                        anyhow::bail!(
                            "--owner: unknown owner \"{id}\" (not in {})",
                            settings.rules.owners_file.display()
                        );
                    }
                }
                (_, Some(_)) => anyhow::bail!("--owner: only manager tokens have an owner"),
                (_, None) => {}
            }
            let token = new_token();
            let view = store
                .create_token(
                    name.trim(),
                    role,
                    owner.as_deref(),
                    &token_hash(&token),
                    now,
                )
                .await?;
            eprintln!(
                "token {} for {} ({}); keep it now, it is not shown again:",
                view.id,
                view.name,
                role.as_str()
            );
            println!("{token}");
        }
        crate::TokensCommand::List => {
            for t in store.tokens().await? {
                println!(
                    "{} {:<8} {:<24} owner={} created={} last_used={} {}",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.owner_id.as_deref().unwrap_or("-"),
                    t.created_at.to_rfc3339(),
                    t.last_used_at.map_or("never".into(), |d| d.to_rfc3339()),
                    t.revoked_at
                        .map_or("active".into(), |d| format!("revoked {}", d.to_rfc3339()))
                );
            }
        }
        crate::TokensCommand::Revoke { id } => match store.revoke_token(id, now).await? {
            Some(t) => println!("token {} ({}) revoked", t.id, t.name),
            None => anyhow::bail!("token {id} not found"),
        },
    }
    Ok(())
}

/// 32 random bytes from the OS, URL-safe: `clt_…`.
fn new_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "clt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

struct RulesApi(Arc<ActivePolicy>);

impl closeloop_api::RulesControl for RulesApi {
    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.0.status()).unwrap_or_default()
    }

    fn owner(&self, id: &str) -> Option<closeloop_core::Owner> {
        self.0.current().owners().get(id).cloned()
    }

    fn scope(&self, owner_id: &str) -> closeloop_core::access::Scope {
        closeloop_core::access::Scope::of(self.0.current().owners(), owner_id)
    }

    fn is_directory_email(&self, email: &str) -> bool {
        self.0
            .current()
            .owners()
            .owners()
            .any(|o| o.email.eq_ignore_ascii_case(email))
    }

    fn reload(&self) -> Result<serde_json::Value, String> {
        self.0
            .reload("api")
            .map(|s| serde_json::to_value(s).unwrap_or_default())
    }
}

struct Metrics {
    policy: Arc<ActivePolicy>,
    intake: Arc<IntakeStats>,
    unnotified: Arc<std::sync::atomic::AtomicU64>,
}

impl closeloop_api::MetricsSource for Metrics {
    fn render(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let rules = self.policy.status();
        let counters = [
            (
                "closeloop_intake_messages_total",
                "Messages read from the intake topic.",
                self.intake.messages.load(Relaxed),
            ),
            (
                "closeloop_intake_events_accepted_total",
                "Valid events stored.",
                self.intake.accepted.load(Relaxed),
            ),
            (
                "closeloop_intake_dead_lettered_total",
                "Invalid events sent to the dead-letter topic.",
                self.intake.dead_lettered.load(Relaxed),
            ),
            (
                "closeloop_intake_batches_total",
                "Batches stored and committed.",
                self.intake.batches.load(Relaxed),
            ),
            (
                "closeloop_intake_store_failures_total",
                "Failed attempts to store a batch (retried).",
                self.intake.handler_failures.load(Relaxed),
            ),
            (
                "closeloop_rules_reloads_total",
                "Successful rules reloads.",
                rules.reloads,
            ),
            (
                "closeloop_alerts_unnotified_total",
                "Cases opened that no channel reaches (nobody notified).",
                self.unnotified.load(Relaxed),
            ),
            (
                "closeloop_rules_reload_failures_total",
                "Refused rules reloads (the last good rules stay active).",
                rules.reload_failures,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        out.push_str(
            "# HELP closeloop_intake_seconds_total Time of the intake loop per phase: fetch (waiting for and gathering messages), store (parse, decide, persist), commit (offsets).\n# TYPE closeloop_intake_seconds_total counter\n",
        );
        for (phase, micros) in [
            ("fetch", &self.intake.fetch_micros),
            ("store", &self.intake.store_micros),
            ("commit", &self.intake.commit_micros),
        ] {
            out.push_str(&format!(
                "closeloop_intake_seconds_total{{phase=\"{phase}\"}} {}\n",
                micros.load(Relaxed) as f64 / 1e6
            ));
        }
        out.push_str(&format!(
            "# HELP closeloop_rules_info The active rules set.\n# TYPE closeloop_rules_info gauge\ncloseloop_rules_info{{version=\"{}\",rules=\"{}\"}} 1\n",
            rules.version, rules.rules
        ));
        out.push_str(&format!(
            "# HELP closeloop_rules_last_reload_failed Whether the last reload was refused.\n# TYPE closeloop_rules_last_reload_failed gauge\ncloseloop_rules_last_reload_failed {}\n",
            u8::from(rules.last_error.is_some())
        ));
        out
    }
}

pub async fn serve(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    init_tracing(&settings);
    let policy = Arc::new(ActivePolicy::load(
        &settings.rules.rules_file,
        &settings.rules.owners_file,
    )?);
    let loaded = policy.status();
    info!(rules = loaded.rules, owners = loaded.owners, version = %loaded.version, "rules loaded");

    let store = store(&settings)?;
    prepare_database(&settings, &store).await?;

    let kafka_mode = settings.intake.mode == IntakeMode::Kafka;
    info!(mode = ?settings.intake.mode, "intake mode");
    let client = client_settings(&settings);
    if kafka_mode && settings.kafka.create_topics {
        let topics = [
            (settings.kafka.topic.as_str(), settings.kafka.partitions),
            (
                settings.kafka.dead_letter_topic.as_str(),
                settings.kafka.partitions,
            ),
        ];
        with_patience("topic creation", Duration::from_secs(30), || {
            closeloop_kafka::admin::ensure_topics(&client, &topics)
        })
        .await?;
    }

    let smtp = closeloop_notify::SmtpSettings {
        host: settings.smtp.host.clone(),
        port: settings.smtp.port,
        security: match settings.smtp.security.as_str() {
            "starttls" => SmtpSecurity::StartTls,
            "tls" => SmtpSecurity::Tls,
            _ => SmtpSecurity::None,
        },
        username: settings.smtp.username.clone(),
        password: settings.smtp.password.clone(),
        from: settings.smtp.from.clone(),
        timeout: settings.smtp.timeout,
        pool_max_size: settings.smtp.pool_max_size,
    };
    let templates = Arc::new(EmailTemplates::load(&settings.email.templates_dir)?);
    info!(languages = ?templates.languages(), "email templates loaded");
    let mut email = EmailSender::new(&smtp, templates).context("smtp")?;
    // The link key: configured, or generated once and kept in the database.
    let link_key: Option<Vec<u8>> = match &settings.links {
        None => None,
        Some(links) => Some(match &links.secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let fresh: [u8; 32] = rand::random();
                store
                    .service_key("links", &fresh)
                    .await
                    .context("links.secret is not set: generating the link key")?
            }
        }),
    };
    if let (Some(links), Some(key)) = (&settings.links, &link_key) {
        email = email.with_links(closeloop_notify::LinkSigner::new(
            key,
            &settings.http.public_url,
            chrono::Duration::from_std(links.ttl).unwrap_or(chrono::Duration::days(7)),
            settings.rules.root_causes.clone(),
        ));
    }
    let secrets = settings
        .webhook
        .signing_secrets
        .iter()
        .map(|s| WebhookSecret::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .context("webhook.signing_secrets")?;
    let address_policy = AddressPolicy::new(&settings.webhook.allow_private_ranges)
        .context("webhook.allow_private_ranges")?
        .allow_http(settings.webhook.allow_http);
    let endpoint_timeouts = settings
        .webhook
        .endpoints
        .iter()
        .map(|e| (e.url_prefix.clone(), e.timeout))
        .collect();
    let webhook = WebhookSender::with_policy(
        secrets,
        settings.webhook.timeout,
        endpoint_timeouts,
        address_policy,
    )?;
    let wake = Arc::new(Notify::new());
    let dispatcher = Dispatcher::new(
        store.clone(),
        email,
        webhook,
        DispatchSettings {
            concurrency: settings.dispatch.concurrency,
            batch: settings.dispatch.batch,
            poll_interval: settings.dispatch.poll_interval,
            lease: settings.dispatch.lease,
            breaker_failures: settings.webhook.breaker_failures,
            breaker_cooldown: settings.webhook.breaker_cooldown,
            retry_schedule: settings
                .dispatch
                .retry_schedule
                .iter()
                .map(|d| **d)
                .collect(),
        },
        Arc::new(SystemClock),
        wake.clone(),
    );

    let stats = Arc::new(IntakeStats::default());
    let listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("http.listen: could not bind {}", settings.http.listen))?;
    info!(address = %listener.local_addr()?, "http api listening");
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let unnotified = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pipeline = Arc::new(Pipeline {
        store: store.clone(),
        policy: policy.clone(),
        wake_dispatcher: wake.clone(),
        sla: settings.sla.policy(),
        unnotified: unnotified.clone(),
    });
    let intake: Arc<dyn EventIntake> = if kafka_mode {
        Arc::new(KafkaIntake(Publisher::new(&client, &settings.kafka.topic)?))
    } else {
        Arc::new(EmbeddedIntake::start(
            pipeline.clone(),
            settings.kafka.batch_max,
            &tracker,
        ))
    };
    let state = AppState {
        store: store.clone(),
        root_causes: Arc::new(settings.rules.root_causes.clone()),
        intake: Some(intake),
        max_event_bytes: settings.kafka.max_event_bytes,
        now: Arc::new(chrono::Utc::now),
        rules: Some(Arc::new(RulesApi(policy.clone()))),
        link_secret: link_key.map(Arc::new),
        metrics: Some(Arc::new(Metrics {
            policy: policy.clone(),
            intake: stats.clone(),
            unnotified,
        })),
        auth_required: settings.auth.required,
        metrics_token: settings.http.metrics_token.clone(),
        watcher_domains: Arc::new(settings.cases.watcher_domains.clone()),
        trusted_proxies: Arc::new(settings.http.trusted_proxies.clone()),
        timeouts: closeloop_api::HttpTimeouts {
            header_read: settings.http.header_read_timeout,
            request: settings.http.request_timeout,
        },
        limits: closeloop_api::HttpLimits {
            max_body_bytes: settings.http.max_body_bytes,
            requests_per_second: settings.http.rate_limit_per_second,
            burst: settings.http.rate_limit_burst,
        },
    };

    {
        let (policy, cancel) = (policy.clone(), cancel.clone());
        let interval = settings.rules.watch_interval;
        tracker.spawn(async move { policy.watch(interval, cancel).await });
    }
    let intake_settings = IntakeSettings {
        client,
        topic: settings.kafka.topic.clone(),
        dead_letter_topic: settings.kafka.dead_letter_topic.clone(),
        group_id: settings.kafka.group_id.clone(),
        instance_id: settings.kafka.instance_id.clone(),
        batch_max: settings.kafka.batch_max,
        batch_linger: settings.kafka.batch_linger,
        max_event_bytes: settings.kafka.max_event_bytes,
    };
    let scheduler = crate::scheduler::SlaScheduler {
        store: store.clone(),
        policy: policy.clone(),
        sla: settings.sla.policy(),
        poll_interval: settings.sla.poll_interval,
        wake_dispatcher: wake.clone(),
    };
    if kafka_mode {
        let cancel = cancel.clone();
        tracker.spawn(async move {
            if let Err(error) =
                closeloop_kafka::run_intake(&intake_settings, &*pipeline, stats, cancel.clone())
                    .await
            {
                error!(%error, "intake failed; shutting down");
                cancel.cancel();
            }
        });
    }
    {
        let cancel = cancel.clone();
        tracker.spawn(async move { dispatcher.run(cancel).await });
    }
    {
        let cancel = cancel.clone();
        tracker.spawn(async move { scheduler.run(cancel).await });
    }
    {
        let cancel = cancel.clone();
        tracker.spawn(async move {
            if let Err(error) = closeloop_api::serve(listener, state, cancel.clone()).await {
                error!(%error, "http server failed; shutting down");
                cancel.cancel();
            }
        });
    }
    tracker.close();

    tokio::select! {
        _ = shutdown_signal() => info!("shutdown requested"),
        _ = cancel.cancelled() => {}
    }
    cancel.cancel();
    if tokio::time::timeout(settings.shutdown.grace, tracker.wait())
        .await
        .is_err()
    {
        anyhow::bail!(
            "shutdown took longer than shutdown.grace ({:?})",
            settings.shutdown.grace
        );
    }
    info!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            warn!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop the service");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
