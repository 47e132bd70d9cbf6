//! Stopping in order. Each part of the service runs in a [`Stage`]; on
//! SIGTERM (or when a part fails) the stages stop one after the other, each
//! waited for before the next is told:
//!
//! 1. the intake: the Kafka consumer stores and commits its batch in flight;
//!    in single-node mode the HTTP server is the intake, so it stops first
//!    (in-flight requests are answered, the writer stores what they queued);
//! 2. the dispatcher, the SLA scheduler and the rules watcher (in-flight
//!    sends finish and are recorded);
//! 3. the HTTP server (Kafka mode: the API answers until the end).
//!
//! All of it within `shutdown.grace`.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

/// Tasks that stop together.
pub struct Stage {
    name: &'static str,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Stage {
    pub fn new(name: &'static str) -> Self {
        Stage {
            name,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// The token that tells this stage's tasks to stop.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Tell the tasks to stop and wait for them until `deadline`.
    async fn stop(&self, deadline: Instant) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            anyhow::bail!(
                "shutdown: the {} did not stop within shutdown.grace",
                self.name
            );
        }
        info!("stopped the {}", self.name);
        Ok(())
    }
}

/// Stop `stages` in order, all within `grace`.
pub async fn stop_in_order(stages: &[&Stage], grace: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + grace;
    for stage in stages {
        stage.stop(deadline).await?;
    }
    Ok(())
}
