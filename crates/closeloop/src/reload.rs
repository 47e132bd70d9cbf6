//! The active rules and owners, and their hot reload.
//!
//! The intake reads the current [`Policy`] once per batch, so a new set
//! replaces the old one atomically between batches. A reload (file change,
//! SIGHUP or `POST /v1/rules/reload`) that fails leaves the last good set
//! active and is visible in the logs, in `GET /v1/rules/status` and in the
//! `closeloop_rules_reload_failures_total` metric.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use closeloop_core::clock::Clock as _;
use closeloop_core::{OwnerDirectory, Policy, RuleSet};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::clock::SystemClock;

/// What `GET /v1/rules/status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct RulesStatus {
    /// SHA-256 of the active rules and owners files.
    pub version: String,
    pub rules: usize,
    pub owners: usize,
    pub loaded_at: DateTime<Utc>,
    /// The last refused reload, if it came after the active set.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub reloads: u64,
    pub reload_failures: u64,
}

/// The active policy, shared by the intake, the API and the reloader.
pub struct ActivePolicy {
    rules_file: PathBuf,
    owners_file: PathBuf,
    policy: RwLock<Arc<Policy>>,
    /// The counters are part of it: one lock for everything shown.
    status: Mutex<RulesStatus>,
}

/// Load and check both files. A panic while compiling (a compiler bug no
/// input should reach; the fuzz targets look for them) is a refusal like
/// any other, so a bad file can never end the reload task or the service.
fn load(rules_file: &Path, owners_file: &Path) -> anyhow::Result<(Policy, String)> {
    std::panic::catch_unwind(|| load_unguarded(rules_file, owners_file)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(anyhow::anyhow!(
            "{}: the rules could not be compiled (internal error: {what}); please report it",
            rules_file.display()
        ))
    })
}

fn load_unguarded(rules_file: &Path, owners_file: &Path) -> anyhow::Result<(Policy, String)> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("could not read {}: {e}", p.display()))
    };
    let (rules_text, owners_text) = (read(rules_file)?, read(owners_file)?);
    let rules = RuleSet::from_toml(&rules_file.display().to_string(), &rules_text)?;
    let owners = OwnerDirectory::from_toml(&owners_file.display().to_string(), &owners_text)?;
    let policy = Policy::new(rules, owners)?;
    let mut hash = Sha256::new();
    hash.update(rules_text.as_bytes());
    hash.update([0]);
    hash.update(owners_text.as_bytes());
    let version = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((policy, version))
}

impl ActivePolicy {
    /// Load the files; at start-up an invalid set is fatal.
    pub fn load(rules_file: &Path, owners_file: &Path) -> anyhow::Result<Self> {
        let (policy, version) = load(rules_file, owners_file)?;
        for warning in policy.silent_pairs() {
            tracing::warn!(file = %rules_file.display(), %warning, "a rule can notify nobody");
        }
        let status = RulesStatus {
            version,
            rules: policy.rules().rules().len(),
            owners: policy.owners().owners().count(),
            loaded_at: SystemClock.now(),
            last_error: None,
            last_error_at: None,
            reloads: 0,
            reload_failures: 0,
        };
        Ok(ActivePolicy {
            rules_file: rules_file.to_path_buf(),
            owners_file: owners_file.to_path_buf(),
            policy: RwLock::new(Arc::new(policy)),
            status: Mutex::new(status),
        })
    }

    /// The policy to use for the next batch.
    pub fn current(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn status(&self) -> RulesStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reload the files. On success the new set is active; on failure the
    /// last good set stays and the error is recorded and returned.
    pub fn reload(&self, trigger: &str) -> Result<RulesStatus, String> {
        match load(&self.rules_file, &self.owners_file) {
            Ok((policy, version)) => {
                let rules = policy.rules().rules().len();
                let owners = policy.owners().owners().count();
                *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
                let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
                let changed = status.version != version;
                *status = RulesStatus {
                    version: version.clone(),
                    rules,
                    owners,
                    loaded_at: SystemClock.now(),
                    last_error: None,
                    last_error_at: None,
                    reloads: status.reloads + 1,
                    reload_failures: status.reload_failures,
                };
                drop(status);
                info!(trigger, version = %version, rules, owners, changed, "rules reloaded");
                Ok(self.status())
            }
            Err(e) => {
                let message = format!("{e:#}");
                let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
                status.reload_failures += 1;
                status.last_error = Some(message.clone());
                status.last_error_at = Some(SystemClock.now());
                drop(status);
                error!(trigger, error = %message, "rules reload refused; the last good rules stay active");
                Err(message)
            }
        }
    }

    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((at(&self.rules_file)?, at(&self.owners_file)?))
    }

    /// Watch the files (by modification time, every `interval`) and listen
    /// for SIGHUP; reload on either, until `cancel`.
    pub async fn watch(self: Arc<Self>, interval: Duration, cancel: CancellationToken) {
        let mut seen = self.modified();
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = hup => {
                    let _ = self.reload("sighup");
                    seen = self.modified();
                }
                _ = tokio::time::sleep(interval) => {
                    let now = self.modified();
                    if now.is_some() && now != seen {
                        seen = now;
                        let _ = self.reload("file change");
                    }
                }
            }
        }
    }
}
