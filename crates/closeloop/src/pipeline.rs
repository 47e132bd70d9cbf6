//! The intake pipeline: decide each accepted event with the core policy,
//! persist the batch, wake the dispatcher.

use std::sync::Arc;

use closeloop_kafka::{AcceptedEvent, BatchHandler};
use closeloop_store::{IntakeRecord, SourcePosition, Store, StoreError};
use tokio::sync::Notify;

pub struct Pipeline {
    pub store: Store,
    /// Read once per batch: a reload lands between batches.
    pub policy: Arc<crate::reload::ActivePolicy>,
    pub wake_dispatcher: Arc<Notify>,
}

impl BatchHandler for Pipeline {
    type Error = StoreError;

    async fn handle(&self, batch: Vec<AcceptedEvent>) -> Result<(), StoreError> {
        let policy = self.policy.current();
        let records: Vec<IntakeRecord> = batch
            .into_iter()
            .map(|accepted| IntakeRecord {
                alert: policy.decide(&accepted.event),
                event: accepted.event,
                position: Some(SourcePosition {
                    topic: accepted.position.topic,
                    partition: accepted.position.partition,
                    offset: accepted.position.offset,
                }),
            })
            .collect();
        let outcome = self
            .store
            .persist_batch(&records, chrono::Utc::now())
            .await?;
        tracing::info!(
            events = records.len(),
            accepted = outcome.accepted,
            duplicates = outcome.duplicates,
            cases_opened = outcome.cases_opened,
            notifications = outcome.notifications_queued,
            "batch stored"
        );
        if outcome.notifications_queued > 0 {
            self.wake_dispatcher.notify_one();
        }
        Ok(())
    }
}
