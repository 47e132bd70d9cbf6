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
    WebhookSecret, WebhookSender,
};
use closeloop_store::{Store, StoreOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::intake::{EmbeddedIntake, KafkaIntake};
use crate::pipeline::Pipeline;
use crate::reload::ActivePolicy;
use crate::settings::{IntakeMode, LogFormat, Settings, SmtpSecurityName};
use crate::shutdown::{stop_in_order, Stage};

pub(crate) fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,rdkafka=warn,sqlx=warn,tower_http=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub(crate) fn client_settings(settings: &Settings) -> ClientSettings {
    ClientSettings {
        brokers: settings.kafka.brokers.clone(),
        properties: settings.kafka.properties.clone(),
    }
}

pub(crate) fn store(settings: &Settings) -> anyhow::Result<Store> {
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
pub(crate) async fn with_patience<T, E: std::fmt::Display>(
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
pub(crate) async fn prepare_database(settings: &Settings, store: &Store) -> anyhow::Result<()> {
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

    fn owner_by_email(&self, email: &str) -> Option<closeloop_core::Owner> {
        self.0
            .current()
            .owners()
            .owners()
            .find(|o| o.email.eq_ignore_ascii_case(email.trim()))
            .cloned()
    }

    fn calendar(&self, owner_id: &str) -> closeloop_core::sla::Calendar {
        self.0.current().owners().calendar_for(owner_id).clone()
    }

    fn owners(&self) -> Vec<closeloop_core::Owner> {
        let mut owners: Vec<_> = self.0.current().owners().owners().cloned().collect();
        owners.sort_by(|a, b| a.name.cmp(&b.name));
        owners
    }

    fn reload(&self) -> Result<serde_json::Value, String> {
        self.0
            .reload("api")
            .map(|s| serde_json::to_value(s).unwrap_or_default())
    }
}

pub async fn serve(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    init_tracing(&settings);
    let clock: Arc<dyn closeloop_core::clock::Clock> = Arc::new(crate::clock::SystemClock);
    let policy = Arc::new(ActivePolicy::load(
        &settings.rules.rules_file,
        &settings.rules.owners_file,
    )?);
    let loaded = policy.status();
    info!(rules = loaded.rules, owners = loaded.owners, version = %loaded.version, "rules loaded");

    let calendars: closeloop_store::CalendarSource = {
        let policy = policy.clone();
        Arc::new(move |owner_id: &str| policy.current().owners().calendar_for(owner_id).clone())
    };
    let store = store(&settings)?.with_calendars(calendars);
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
        security: match settings.smtp.security {
            SmtpSecurityName::None => SmtpSecurity::None,
            SmtpSecurityName::StartTls => SmtpSecurity::StartTls,
            SmtpSecurityName::Tls => SmtpSecurity::Tls,
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
    let stats = Arc::new(IntakeStats::default());
    let unnotified = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let telemetry = Arc::new(closeloop_telemetry::Telemetry::new(
        env!("CARGO_PKG_VERSION"),
        vec![Box::new(crate::telemetry::ServiceCounters {
            policy: policy.clone(),
            intake: stats.clone(),
            unnotified: unnotified.clone(),
        })],
    ));
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
        clock.clone(),
        wake.clone(),
    )
    .with_telemetry(telemetry.clone());

    let listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("http.listen: could not bind {}", settings.http.listen))?;
    info!(address = %listener.local_addr()?, "http api listening");
    // Set when a part fails: the service then stops as on SIGTERM.
    let failed = CancellationToken::new();
    let (intake_stage, workers, http) = (
        Stage::new("intake"),
        Stage::new("dispatcher and scheduler"),
        Stage::new("http server"),
    );
    let pipeline = Arc::new(Pipeline {
        telemetry: telemetry.clone(),
        store: store.clone(),
        policy: policy.clone(),
        wake_dispatcher: wake.clone(),
        sla: settings.sla.policy(),
        unnotified: unnotified.clone(),
        clock: clock.clone(),
    });
    let intake: Arc<dyn EventIntake> = if kafka_mode {
        Arc::new(KafkaIntake(Publisher::new(&client, &settings.kafka.topic)?))
    } else {
        Arc::new(EmbeddedIntake::start(
            pipeline.clone(),
            settings.kafka.batch_max,
            http.tracker(),
        ))
    };
    let pages = closeloop_api::web::Pages::load(&settings.web.templates_dir)
        .map_err(|e| anyhow::anyhow!("web.templates_dir: {e}"))?;
    info!(languages = ?pages.languages(), "web pages loaded");
    let mut web = closeloop_api::web::WebApp::new(
        pages,
        &settings.http.public_url,
        chrono::Duration::from_std(settings.web.session_ttl).unwrap_or(chrono::Duration::days(14)),
        chrono::Duration::from_std(settings.web.sign_in_ttl)
            .unwrap_or(chrono::Duration::minutes(15)),
    );
    web.inbox_refresh = settings.web.inbox_refresh;
    let state = AppState {
        web: Some(Arc::new(web)),
        store: store.clone(),
        root_causes: Arc::new(settings.rules.root_causes.clone()),
        intake: Some(intake),
        max_event_bytes: settings.kafka.max_event_bytes,
        clock: clock.clone(),
        rules: Some(Arc::new(RulesApi(policy.clone()))),
        link_secret: link_key.map(Arc::new),
        telemetry: Some(telemetry.clone()),
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
        let (policy, cancel) = (policy.clone(), workers.token());
        let interval = settings.rules.watch_interval;
        workers.spawn(async move { policy.watch(interval, cancel).await });
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
        telemetry: telemetry.clone(),
        store: store.clone(),
        policy: policy.clone(),
        sla: settings.sla.policy(),
        poll_interval: settings.sla.poll_interval,
        wake_dispatcher: wake.clone(),
        clock: clock.clone(),
    };
    if kafka_mode {
        let (cancel, failed) = (intake_stage.token(), failed.clone());
        intake_stage.spawn(async move {
            let run = closeloop_kafka::run_intake(&intake_settings, &*pipeline, stats, cancel);
            if let Err(error) = run.await {
                error!(%error, "intake failed; shutting down");
                failed.cancel();
            }
        });
    }
    {
        let cancel = workers.token();
        workers.spawn(async move { dispatcher.run(cancel).await });
    }
    {
        let cancel = workers.token();
        workers.spawn(async move { scheduler.run(cancel).await });
    }
    {
        let (store, cancel) = (store.clone(), workers.token());
        workers.spawn(async move { record_missing_times(&store, cancel).await });
    }
    if settings.reports.weekly {
        let reports = crate::reports::ReportScheduler {
            store: store.clone(),
            policy: policy.clone(),
            public_url: settings.http.public_url.clone(),
            wake_dispatcher: wake.clone(),
            clock: clock.clone(),
        };
        let cancel = workers.token();
        workers.spawn(async move { reports.run(cancel).await });
    }
    {
        let (cancel, failed) = (http.token(), failed.clone());
        http.spawn(async move {
            if let Err(error) = closeloop_api::serve(listener, state, cancel).await {
                error!(%error, "http server failed; shutting down");
                failed.cancel();
            }
        });
    }

    tokio::select! {
        _ = shutdown_signal() => info!("shutdown requested"),
        _ = failed.cancelled() => {}
    }
    // Single-node: the HTTP server is the intake, so it stops first.
    let order: [&Stage; 3] = if kafka_mode {
        [&intake_stage, &workers, &http]
    } else {
        [&http, &intake_stage, &workers]
    };
    stop_in_order(&order, settings.shutdown.grace).await?;
    info!("stopped cleanly");
    Ok(())
}

/// The business times of cases stored before they were recorded, computed
/// once in the background, a few hundred cases a transaction.
async fn record_missing_times(store: &Store, cancel: CancellationToken) {
    let mut done = 0;
    while !cancel.is_cancelled() {
        match store.record_missing_times(500).await {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(error) => {
                warn!(%error, "recording the business times of older cases failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    _ = cancel.cancelled() => break,
                }
            }
        }
    }
    if done > 0 {
        info!(cases = done, "business times of older cases recorded");
    }
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
