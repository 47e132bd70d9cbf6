//! The outbox worker: claim due deliveries, send them, record the outcome.
//!
//! Claims commit (with a lease) before any network I/O, so a crash leaves
//! rows that come back when the lease expires; a send that succeeded just
//! before a crash may be repeated, with the same id (at-least-once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use closeloop_store::{Delivery, DeliveryResult, Store};
use closeloop_wire::OutboxMessage;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::breaker::CircuitBreaker;
use crate::email::EmailSender;
use crate::error::NotifyError;
use crate::webhook::WebhookSender;

pub use closeloop_core::clock::Clock;

/// How the dispatcher behaves.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Deliveries sent concurrently by one dispatcher.
    pub concurrency: usize,
    /// Deliveries claimed per round; their outcomes are recorded in one
    /// transaction. A crash mid-round resends at most this many (same ids).
    pub batch: usize,
    /// How often to look for due deliveries when nothing wakes the worker.
    pub poll_interval: Duration,
    /// How long a claim lasts; longer than any send can take.
    pub lease: Duration,
    /// Delay before each attempt: the first entry is the first attempt
    /// (usually 0), the last entry the last retry. Then the delivery is dead.
    pub retry_schedule: Vec<Duration>,
    /// Consecutive transient failures that pause a webhook endpoint.
    pub breaker_failures: u32,
    /// How long a paused endpoint is left alone.
    pub breaker_cooldown: Duration,
}

/// An attempt to record: delivery id, attempt number, outcome.
type Attempt = (uuid::Uuid, i32, DeliveryResult);

/// Delay before attempt `next_attempt` (1-based), or `None` when the
/// schedule is exhausted. `jitter` in [0, 1) spreads retries by up to +20%
/// so that failed deliveries do not all return at once; a receiver's
/// `Retry-After` is honoured as a minimum.
pub fn retry_delay(
    schedule: &[Duration],
    next_attempt: usize,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let base = *schedule.get(next_attempt.checked_sub(1)?)?;
    let spread = base.mul_f64(0.2 * jitter.clamp(0.0, 1.0));
    Some((base + spread).max(retry_after.unwrap_or_default()))
}

/// Sends what the outbox holds.
pub struct Dispatcher {
    store: Store,
    email: EmailSender,
    webhook: WebhookSender,
    settings: DispatchSettings,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    breaker: CircuitBreaker,
    telemetry: Option<Arc<closeloop_telemetry::Telemetry>>,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        email: EmailSender,
        webhook: WebhookSender,
        settings: DispatchSettings,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        let breaker = CircuitBreaker::new(settings.breaker_failures, settings.breaker_cooldown);
        Dispatcher {
            telemetry: None,
            store,
            email,
            webhook,
            settings,
            clock,
            wake,
            breaker,
        }
    }

    /// Count deliveries, their failures and times, and breaker states.
    pub fn with_telemetry(mut self, telemetry: Arc<closeloop_telemetry::Telemetry>) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    fn breaker_state(&self, recipient: &str, open: bool) {
        if let Some(telemetry) = &self.telemetry {
            let endpoint = crate::breaker::endpoint_key(recipient);
            telemetry
                .delivery
                .breaker_open
                .get_or_create(&closeloop_telemetry::Endpoint { endpoint })
                .set(i64::from(open));
        }
    }

    /// Run until `cancel` fires; the sends in flight then finish first.
    pub async fn run(&self, cancel: CancellationToken) {
        info!(
            concurrency = self.settings.concurrency,
            "dispatcher started"
        );
        loop {
            let worked = match self.round(&cancel).await {
                Ok(count) => count > 0,
                Err(error) => {
                    warn!(%error, "dispatcher could not reach the outbox");
                    false
                }
            };
            if cancel.is_cancelled() {
                break;
            }
            if !worked {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            }
        }
        info!("dispatcher stopped");
    }

    /// Claim one round of due deliveries, send them `concurrency` at a
    /// time, and record their outcomes together. Returns how many.
    pub async fn tick(&self) -> Result<usize, closeloop_store::StoreError> {
        self.round(&CancellationToken::new()).await
    }

    /// [`Dispatcher::tick`], giving up on recording the round's outcomes
    /// when `cancel` fires.
    #[tracing::instrument(name = "delivery_round", skip_all)]
    async fn round(
        &self,
        cancel: &CancellationToken,
    ) -> Result<usize, closeloop_store::StoreError> {
        use futures::StreamExt;
        let claimed_at = Instant::now();
        let now = self.clock.now();
        let digests = self.store.build_due_digests(now).await?;
        if digests > 0 {
            info!(digests, "digest emails queued");
        }
        let lease =
            chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(5));
        let claimed = self
            .store
            .claim_due(
                now,
                now + lease,
                self.settings.batch.max(self.settings.concurrency) as i64,
            )
            .await?;
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        // One look at the disabled endpoints per round, not one per delivery.
        let disabled: HashMap<String, closeloop_store::DisabledEndpoint> =
            if claimed.iter().any(|d| d.channel == "webhook") {
                self.store
                    .disabled_endpoints()
                    .await?
                    .into_iter()
                    .map(|e| (e.url.clone(), e))
                    .collect()
            } else {
                HashMap::new()
            };
        let outcomes: Vec<Result<Option<Attempt>, _>> =
            futures::stream::iter(claimed.into_iter().map(|d| self.deliver(d, &disabled)))
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        // A store error on one delivery must not throw away what the others
        // did: what was sent is recorded, then the error is reported.
        let mut results = Vec::with_capacity(count);
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(Some(result)) => results.push(result),
                Ok(None) => {}
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        self.record_round(&results, claimed_at + self.settings.lease / 4 * 3, cancel)
            .await?;
        match first_error {
            Some(error) => Err(error),
            None => Ok(count),
        }
    }

    /// Record a round's outcomes, retrying while the database is away. The
    /// messages have left: an outcome not recorded means the delivery is
    /// sent again once its lease expires. So the round waits for the
    /// database, but only while the lease still keeps other dispatchers off
    /// these deliveries (until `give_up_at`), and not past shutdown.
    async fn record_round(
        &self,
        results: &[Attempt],
        give_up_at: Instant,
        cancel: &CancellationToken,
    ) -> Result<(), closeloop_store::StoreError> {
        loop {
            let error = match self.store.record_attempts(results, self.clock.now()).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let pause = Duration::from_secs(1);
            if !error.is_transient() || Instant::now() + pause >= give_up_at {
                return Err(error);
            }
            warn!(%error, deliveries = results.len(), "could not record a round of sent deliveries; retrying");
            tokio::select! {
                _ = cancel.cancelled() => return Err(error),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Send one delivery. Returns its outcome to record, or `None` when it
    /// was deferred (its endpoint's circuit breaker is open).
    async fn deliver(
        &self,
        delivery: Delivery,
        disabled: &HashMap<String, closeloop_store::DisabledEndpoint>,
    ) -> Result<Option<Attempt>, closeloop_store::StoreError> {
        let is_webhook = delivery.channel == "webhook";
        if is_webhook {
            if let Some(disabled) = disabled.get(&delivery.recipient) {
                let error = format!(
                    "endpoint disabled since {}: {}",
                    disabled.disabled_at.to_rfc3339(),
                    disabled.reason
                );
                return Ok(Some((
                    delivery.id,
                    delivery.attempts,
                    DeliveryResult::Dead { error },
                )));
            }
            if let Some(until) = self
                .breaker
                .open_until(&delivery.recipient, self.clock.now())
            {
                debug!(delivery = %delivery.id, until = %until, "endpoint paused by its circuit breaker");
                self.store.defer(delivery.id, until).await?;
                return Ok(None);
            }
        }
        let started = std::time::Instant::now();
        let outcome = self.send(&delivery).await;
        let took = started.elapsed().as_secs_f64();
        let now = self.clock.now();
        let reason = match &outcome {
            Ok(_) => None,
            Err(NotifyError::Transient { .. }) => Some("transient"),
            Err(NotifyError::Gone(_)) => Some("gone"),
            Err(_) => Some("permanent"),
        };
        if is_webhook {
            match &outcome {
                Ok(_) => {
                    self.breaker.record_success(&delivery.recipient);
                    self.breaker_state(&delivery.recipient, false);
                }
                Err(NotifyError::Transient { .. }) => {
                    if let Some(until) = self.breaker.record_failure(&delivery.recipient, now) {
                        self.breaker_state(&delivery.recipient, true);
                        warn!(endpoint = %crate::breaker::endpoint_key(&delivery.recipient), until = %until, "webhook endpoint paused after repeated failures");
                    }
                }
                Err(NotifyError::Gone(reason)) => {
                    warn!(endpoint = %closeloop_core::redact::mask_url(&delivery.recipient), "webhook endpoint answered 410 Gone: disabled");
                    self.store
                        .disable_endpoint(&delivery.recipient, reason, now)
                        .await?;
                }
                Err(_) => {}
            }
        }
        let result = match outcome {
            Ok(detail) => DeliveryResult::Sent { detail },
            Err(NotifyError::Transient {
                message,
                retry_after,
            }) => {
                let next = retry_delay(
                    &self.settings.retry_schedule,
                    delivery.attempts as usize + 1,
                    retry_after,
                    rand::random(),
                );
                match next {
                    Some(delay) => DeliveryResult::Retry {
                        at: now
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::hours(10)),
                        error: message,
                    },
                    None => DeliveryResult::Dead {
                        error: format!(
                            "retries exhausted after {} attempts: {message}",
                            delivery.attempts
                        ),
                    },
                }
            }
            Err(error) => DeliveryResult::Dead {
                error: error.to_string(),
            },
        };
        if let Some(telemetry) = &self.telemetry {
            let outcome = match &result {
                DeliveryResult::Sent { .. } => "sent",
                DeliveryResult::Retry { .. } => "retry",
                DeliveryResult::Dead { .. } => "dead",
            };
            telemetry.delivery_attempt(&delivery.channel, outcome, reason, took);
        }
        match &result {
            DeliveryResult::Sent { .. } => {
                debug!(delivery = %delivery.id, case = ?delivery.case_id, channel = %delivery.channel, "delivered")
            }
            DeliveryResult::Retry { at, error } => {
                warn!(delivery = %delivery.id, case = ?delivery.case_id, channel = %delivery.channel, attempt = delivery.attempts, %error, retry_at = %at, "delivery failed, will retry")
            }
            DeliveryResult::Dead { error } => {
                warn!(delivery = %delivery.id, case = ?delivery.case_id, channel = %delivery.channel, attempt = delivery.attempts, %error, "delivery is dead")
            }
        }
        Ok(Some((delivery.id, delivery.attempts, result)))
    }

    async fn send(&self, delivery: &Delivery) -> Result<String, NotifyError> {
        let id = delivery.id.to_string();
        let message = delivery
            .message()
            .map_err(|e| NotifyError::Permanent(e.to_string()))?;
        match message {
            OutboxMessage::Digest(digest) => {
                self.email
                    .send_digest(
                        &id,
                        &delivery.recipient,
                        &digest.locale,
                        &digest.cases,
                        self.clock.now(),
                    )
                    .await
            }
            OutboxMessage::Followup(followup) => {
                self.email
                    .send_followup(&id, &delivery.recipient, &followup, self.clock.now())
                    .await
            }
            OutboxMessage::WeeklyReport(report) => {
                self.email
                    .send_report(&id, &delivery.recipient, &report)
                    .await
            }
            OutboxMessage::SignIn(sign_in) => {
                self.email
                    .send_sign_in(&id, &delivery.recipient, &sign_in)
                    .await
            }
            OutboxMessage::CaseEmail(body) => {
                self.email
                    .send(&id, &delivery.recipient, &body.data, self.clock.now())
                    .await
            }
            OutboxMessage::CaseWebhook(body) => {
                let body = serde_json::to_vec(&body)
                    .map_err(|e| NotifyError::Permanent(format!("unwritable webhook body: {e}")))?;
                self.webhook
                    .send(&delivery.recipient, &id, self.clock.now().timestamp(), body)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn retry_delay_table() {
        let schedule = [secs(0), secs(5), secs(300)];
        // (next attempt, retry-after, jitter, expected)
        let cases = [
            (1, None, 0.0, Some(secs(0))),
            (2, None, 0.0, Some(secs(5))),
            (2, None, 0.5, Some(secs(5) + Duration::from_millis(500))),
            (2, None, 1.0, Some(secs(6))),
            (3, None, 0.0, Some(secs(300))),
            (3, Some(secs(600)), 0.0, Some(secs(600))),
            (2, Some(secs(1)), 0.0, Some(secs(5))),
            (4, None, 0.0, None),
            (0, None, 0.0, None),
        ];
        for (attempt, retry_after, jitter, expected) in cases {
            assert_eq!(
                retry_delay(&schedule, attempt, retry_after, jitter),
                expected,
                "attempt {attempt}"
            );
        }
    }
}
