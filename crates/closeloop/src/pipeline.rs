//! The intake pipeline: decide each accepted event with the core policy,
//! persist the batch, wake the dispatcher. Both intakes (Kafka, and the
//! single-node intake of `intake.rs`) end here.

use std::sync::Arc;

use closeloop_core::FeedbackEvent;
use closeloop_kafka::{AcceptedEvent, BatchHandler};
use closeloop_store::{BatchOutcome, IntakeRecord, SourcePosition, Store, StoreError};
use tokio::sync::Notify;

pub struct Pipeline {
    pub store: Store,
    /// Read once per batch: a reload lands between batches.
    pub policy: Arc<crate::reload::ActivePolicy>,
    pub wake_dispatcher: Arc<Notify>,
    /// SLA targets: a new case's clocks start in its owner's calendar.
    pub sla: closeloop_core::sla::SlaPolicy,
    /// Cases opened that no channel reaches (`closeloop_alerts_unnotified_total`).
    pub unnotified: Arc<std::sync::atomic::AtomicU64>,
    pub clock: Arc<dyn closeloop_core::clock::Clock>,
    /// Batch durations, events stored, the last event's time.
    pub telemetry: Arc<closeloop_telemetry::Telemetry>,
}

impl Pipeline {
    /// Decide and store events in one transaction: the one path of both
    /// intakes (Kafka batches, and single-node HTTP and file intake).
    /// Logged in a `batch` span; each event's decision is a debug line with
    /// its `event_id`, so one event can be followed to its case.
    #[tracing::instrument(name = "batch", skip_all, fields(
        events = events.len(),
        first_event = events.first().map(|(e, _)| e.event_id.as_str()).unwrap_or_default(),
    ))]
    pub async fn store(
        &self,
        events: Vec<(FeedbackEvent, Option<SourcePosition>)>,
    ) -> Result<BatchOutcome, StoreError> {
        let started = std::time::Instant::now();
        let policy = self.policy.current();
        let now = self.clock.now();
        // Silences are few; compile the active ones for this batch.
        let silences: Vec<(uuid::Uuid, closeloop_core::cel::Matcher)> = self
            .store
            .active_silences(now)
            .await?
            .into_iter()
            .filter_map(|s| match closeloop_core::cel::Matcher::compile(&s.matcher) {
                Ok(matcher) => Some((s.id, matcher)),
                Err(error) => {
                    tracing::warn!(silence = %s.id, %error, "silence matcher no longer compiles; ignored");
                    None
                }
            })
            .collect();
        let records: Vec<IntakeRecord> = events
            .into_iter()
            .map(|(event, position)| {
                let alert = policy.decide(&event);
                tracing::debug!(
                    event_id = %event.event_id,
                    rules = ?alert.as_ref().map(|a| &a.rule_ids),
                    owner = alert.as_ref().map(|a| a.owner.id.as_str()),
                    "decided"
                );
                let silenced_by = alert.as_ref().and_then(|_| {
                    silences
                        .iter()
                        .find(|(_, m)| m.matches(&event))
                        .map(|(id, _)| *id)
                });
                let deadlines = alert.as_ref().and_then(|a| {
                    self.sla
                        .deadlines(a.severity, policy.owners().calendar_for(&a.owner.id), now)
                });
                let calendar = alert
                    .as_ref()
                    .map(|a| policy.owners().calendar_for(&a.owner.id));
                IntakeRecord {
                    deadlines,
                    owner_day_start: calendar.map(|c| c.day_start(now)),
                    owner_next_day_start: calendar.map(|c| c.next_day_start(now)),
                    alert,
                    silenced_by,
                    event,
                    position,
                }
            })
            .collect();
        let outcome = self.store.persist_batch(&records, now).await?;
        let intake = &self.telemetry.intake;
        intake
            .batch_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        if outcome.accepted > 0 {
            intake.events_stored.inc_by(outcome.accepted as u64);
            intake
                .last_event_timestamp_seconds
                .set(self.clock.now().timestamp_millis() as f64 / 1000.0);
        }
        tracing::info!(
            events = records.len(),
            accepted = outcome.accepted,
            duplicates = outcome.duplicates,
            cases_opened = outcome.cases_opened,
            notifications = outcome.notifications_queued,
            coalesced = outcome.cases_coalesced,
            silenced = outcome.silenced,
            recovered = outcome.cases_recovered,
            reopened = outcome.cases_reopened,
            "batch stored"
        );
        if outcome.cases_unnotified > 0 {
            tracing::warn!(
                cases = outcome.cases_unnotified,
                "cases opened that no channel reaches: nobody was notified (see rules check --owners)"
            );
            self.unnotified.fetch_add(
                outcome.cases_unnotified as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        if outcome.notifications_queued > 0 {
            self.wake_dispatcher.notify_one();
        }
        Ok(outcome)
    }
}

impl BatchHandler for Pipeline {
    type Error = StoreError;

    async fn handle(&self, batch: Vec<AcceptedEvent>) -> Result<(), StoreError> {
        let events = batch
            .into_iter()
            .map(|accepted| {
                let position = SourcePosition {
                    topic: accepted.position.topic,
                    partition: accepted.position.partition,
                    offset: accepted.position.offset,
                };
                (accepted.event, Some(position))
            })
            .collect();
        self.store(events).await.map(|_| ())
    }
}
