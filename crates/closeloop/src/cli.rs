//! The one-shot commands of the CLI (migrate, publish, config check,
//! deliveries, silences, tokens); `serve.rs` is the long-running service.

use std::path::Path;
use std::sync::Arc;

use closeloop_core::clock::Clock as _;
use closeloop_kafka::Publisher;
use tokio::sync::Notify;
use tracing::info;

use crate::clock::SystemClock;
use crate::pipeline::Pipeline;
use crate::reload::ActivePolicy;
use crate::serve::{client_settings, init_tracing, prepare_database, store};
use crate::settings::{IntakeMode, Settings};

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
        clock: Arc::new(crate::clock::SystemClock),
        // A one-shot command: its figures are not scraped.
        telemetry: Arc::new(closeloop_telemetry::Telemetry::new(
            env!("CARGO_PKG_VERSION"),
            Vec::new(),
        )),
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
            let replayed = store.replay_dead(&selector, SystemClock.now()).await?;
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
    let now = SystemClock.now();
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

/// `closeloop sessions revoke --owner ID`: every web session of a person
/// ends at once (their next page asks them to sign in).
pub async fn sessions(config: &Path, command: crate::SessionsCommand) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let store = store(&settings)?;
    prepare_database(&settings, &store).await?;
    match command {
        crate::SessionsCommand::Revoke { owner } => {
            let ended = store.revoke_sessions_of(&owner, SystemClock.now()).await?;
            println!("{ended} session(s) of {owner} ended");
        }
    }
    Ok(())
}

/// `closeloop tokens create|list|revoke`, straight against the database.
pub async fn tokens(config: &Path, command: crate::TokensCommand) -> anyhow::Result<()> {
    use closeloop_core::access::{token_hash, Role};
    let settings = Settings::load(config)?;
    let store = store(&settings)?;
    prepare_database(&settings, &store).await?;
    let now = SystemClock.now();
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
