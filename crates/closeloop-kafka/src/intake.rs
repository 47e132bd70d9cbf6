//! The intake loop: batch, validate, dead-letter, persist, then commit.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use closeloop_core::{parse_event, FeedbackEvent};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::dead_letter::DeadLetters;
pub use crate::message::MessagePosition;
use crate::message::RawMessage;
use crate::{ClientSettings, Result};

/// What the intake loop needs to know.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    pub client: ClientSettings,
    pub topic: String,
    pub dead_letter_topic: String,
    pub group_id: String,
    /// Static group membership (`group.instance.id`): a stable name per
    /// instance, so an instance restarted after a crash takes its partitions
    /// back at once instead of waiting for a rebalance.
    pub instance_id: Option<String>,
    /// Most messages in one batch (one database transaction).
    pub batch_max: usize,
    /// How long to wait for a batch to fill once its first message arrived.
    pub batch_linger: Duration,
    /// Larger messages are dead-lettered unread.
    pub max_event_bytes: usize,
}

/// A valid event and where it came from.
#[derive(Debug, Clone)]
pub struct AcceptedEvent {
    pub event: FeedbackEvent,
    pub position: MessagePosition,
}

/// Persists a batch of valid events. Must be idempotent: after a crash the
/// same events are handed over again. Any error is retried (with backoff)
/// until it succeeds or the service stops; offsets do not move meanwhile.
pub trait BatchHandler: Send + Sync {
    type Error: std::fmt::Display + Send;
    fn handle(
        &self,
        batch: Vec<AcceptedEvent>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Counters for metrics and logs.
#[derive(Debug, Default)]
pub struct IntakeStats {
    pub messages: AtomicU64,
    pub accepted: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub batches: AtomicU64,
    pub handler_failures: AtomicU64,
    /// Where the intake's time goes, in microseconds: waiting for and
    /// gathering messages (fetch, linger), storing batches (parse, decide,
    /// persist, dead-letter), committing offsets.
    pub fetch_micros: AtomicU64,
    pub store_micros: AtomicU64,
    pub commit_micros: AtomicU64,
    /// Messages not consumed yet per (topic, partition), from librdkafka's
    /// statistics (every 5 s).
    pub consumer_lag: Arc<Mutex<BTreeMap<(String, i32), i64>>>,
}

/// Run the intake until `cancel` fires. The batch in flight when it fires
/// is finished (persisted and committed) before returning.
pub async fn run_intake<H: BatchHandler>(
    settings: &IntakeSettings,
    handler: &H,
    stats: Arc<IntakeStats>,
    cancel: CancellationToken,
) -> Result<()> {
    let mut config = settings.client.client_config();
    if let Some(instance_id) = &settings.instance_id {
        config.set("group.instance.id", instance_id);
    }
    // Some brokers (tansu) hold a fetch for the whole fetch.wait.max.ms even
    // when data arrives meanwhile: librdkafka's 500 ms default then adds up
    // to half a second to every alert (measured by `make bench`: p50 463 ms
    // end to end, 82 ms with 20 ms). Apache Kafka answers early anyway, so
    // a short wait only costs an idle fetch every 25 ms. kafka.properties
    // may set another value.
    if !settings.client.properties.contains_key("fetch.wait.max.ms") {
        config.set("fetch.wait.max.ms", "25");
    }
    // librdkafka's statistics carry the consumer lag per partition
    // (`closeloop_intake_consumer_lag`).
    if !settings
        .client
        .properties
        .contains_key("statistics.interval.ms")
    {
        config.set("statistics.interval.ms", "5000");
    }
    let consumer: IntakeConsumer = config
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create_with_context(CommitTracker {
            lag: stats.consumer_lag.clone(),
            ..CommitTracker::default()
        })?;
    consumer.subscribe(&[settings.topic.as_str()])?;
    let dead_letters = DeadLetters::new(&settings.client, &settings.dead_letter_topic)?;
    info!(topic = %settings.topic, group = %settings.group_id, "intake started");

    let micros = |since: Instant| since.elapsed().as_micros() as u64;
    // Offsets of the last stored batch, until the broker confirms them.
    let mut unconfirmed: Option<TopicPartitionList> = None;
    loop {
        let fetching = Instant::now();
        let Some(batch) = next_batch(&consumer, settings, &mut unconfirmed, &cancel).await else {
            break;
        };
        stats
            .fetch_micros
            .fetch_add(micros(fetching), Ordering::Relaxed);
        stats
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let storing = Instant::now();
        if !process_batch(&batch, settings, handler, &dead_letters, &stats, &cancel).await {
            // Cancelled before the batch was stored: leave offsets alone,
            // the batch is read again on restart.
            break;
        }
        stats
            .store_micros
            .fetch_add(micros(storing), Ordering::Relaxed);
        let committing = Instant::now();
        if let Some(offsets) = next_offsets(&batch) {
            commit(&consumer, &offsets, CommitMode::Async);
            unconfirmed = Some(offsets);
        }
        stats
            .commit_micros
            .fetch_add(micros(committing), Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(offsets) = &unconfirmed {
        commit(&consumer, offsets, CommitMode::Sync);
    }
    consumer.unsubscribe();
    info!("intake stopped");
    Ok(())
}

/// How long the topic must stay quiet before an unconfirmed commit is sent
/// again.
const IDLE_RECOMMIT: Duration = Duration::from_secs(1);

/// The consumer, with its commit results tracked.
type IntakeConsumer = StreamConsumer<CommitTracker>;

/// Remembers the offsets the broker confirmed, per partition. Asynchronous
/// commits are fire and forget; one lost in a broker outage would stay lost
/// until the next batch, so a quiet group would look behind (and replay
/// its last batch after a restart).
#[derive(Default)]
struct CommitTracker {
    confirmed: Mutex<HashMap<(String, i32), i64>>,
    /// Shared with [`IntakeStats::consumer_lag`].
    lag: Arc<Mutex<BTreeMap<(String, i32), i64>>>,
}

impl ClientContext for CommitTracker {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lag = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        lag.clear();
        for (topic, detail) in statistics.topics {
            for (partition, figures) in detail.partitions {
                // -1: the internal UA partition, or no committed offset yet.
                if partition >= 0 && figures.consumer_lag >= 0 {
                    lag.insert((topic.clone(), partition), figures.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for CommitTracker {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            debug!(%error, "offset commit not confirmed; sent again when the topic is quiet");
            return;
        }
        let mut confirmed = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        for element in offsets.elements() {
            if let Offset::Offset(offset) = element.offset() {
                let entry = confirmed
                    .entry((element.topic().to_owned(), element.partition()))
                    .or_insert(offset);
                *entry = (*entry).max(offset);
            }
        }
    }
}

impl CommitTracker {
    /// Whether the broker confirmed at least these offsets.
    fn covers(&self, offsets: &TopicPartitionList) -> bool {
        let confirmed = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        offsets
            .elements()
            .iter()
            .all(|element| match element.offset() {
                Offset::Offset(offset) => confirmed
                    .get(&(element.topic().to_owned(), element.partition()))
                    .is_some_and(|&done| done >= offset),
                _ => true,
            })
    }
}

/// Wait for a first message, then fill the batch for at most `batch_linger`.
/// `None` once cancelled with nothing in hand.
///
/// While the topic is quiet, the last batch's offsets are committed again
/// (asynchronously, once a second) until the broker confirms them.
async fn next_batch(
    consumer: &IntakeConsumer,
    settings: &IntakeSettings,
    unconfirmed: &mut Option<TopicPartitionList>,
    cancel: &CancellationToken,
) -> Option<Vec<RawMessage>> {
    let mut batch = Vec::with_capacity(settings.batch_max);
    loop {
        // Dropping `recv` before it yields takes nothing off the queue, so
        // the timeout cannot lose a message (the linger below relies on the
        // same).
        let received = tokio::select! {
            biased;
            _ = cancel.cancelled() => return None,
            received = tokio::time::timeout(IDLE_RECOMMIT, consumer.recv()) => received,
        };
        let received = match received {
            Ok(received) => received,
            Err(_quiet) => {
                let pending = unconfirmed.take();
                if let Some(offsets) = pending.filter(|o| !consumer.context().covers(o)) {
                    if let Some(owned) = still_assigned(consumer, &offsets) {
                        commit(consumer, &owned, CommitMode::Async);
                        *unconfirmed = Some(owned);
                    }
                }
                continue;
            }
        };
        match received {
            Ok(message) => {
                batch.push(RawMessage::from_message(&message));
                break;
            }
            Err(error) => {
                // librdkafka queues one error event per failed attempt: they
                // are read as they come, not slowly (a long pause here once
                // left a backlog that kept the intake idle for a minute after
                // a broker outage). The short pause only guards a hot loop.
                warn!(%error, "kafka consume error");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        }
    }
    let deadline = Instant::now() + settings.batch_linger;
    while batch.len() < settings.batch_max {
        let received = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            received = tokio::time::timeout_at(deadline, consumer.recv()) => received,
        };
        match received {
            Ok(Ok(message)) => batch.push(RawMessage::from_message(&message)),
            Ok(Err(error)) => {
                warn!(%error, "kafka consume error");
                break;
            }
            Err(_elapsed) => break,
        }
    }
    Some(batch)
}

/// Validate, dead-letter and persist one batch. True once everything in it
/// is safely stored (so its offsets may be committed).
async fn process_batch<H: BatchHandler>(
    batch: &[RawMessage],
    settings: &IntakeSettings,
    handler: &H,
    dead_letters: &DeadLetters,
    stats: &IntakeStats,
    cancel: &CancellationToken,
) -> bool {
    let mut accepted = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    for message in batch {
        let payload = message.payload.as_deref().unwrap_or_default();
        match parse_event(payload, settings.max_event_bytes) {
            Ok(event) => accepted.push(AcceptedEvent {
                event,
                position: message.position.clone(),
            }),
            Err(error) => {
                warn!(
                    topic = %message.position.topic,
                    partition = message.position.partition,
                    offset = message.position.offset,
                    reason = %error,
                    "invalid event sent to the dead-letter topic"
                );
                rejected.push((message, error.to_string(), error.field().map(str::to_owned)));
            }
        }
    }
    if !rejected.is_empty() {
        if !dead_letters.send_all(&rejected, cancel).await {
            return false;
        }
        stats
            .dead_lettered
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    }
    if accepted.is_empty() {
        return true;
    }
    let count = accepted.len() as u64;
    let mut backoff = Duration::from_millis(100);
    loop {
        match handler.handle(accepted.clone()).await {
            Ok(()) => {
                stats.accepted.fetch_add(count, Ordering::Relaxed);
                debug!(events = count, "batch stored");
                return true;
            }
            Err(error) => {
                stats.handler_failures.fetch_add(1, Ordering::Relaxed);
                error!(%error, events = count, retry_in_ms = backoff.as_millis() as u64, "storing batch failed, retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The offsets to commit for a stored batch: after the last message of each
/// of its partitions.
fn next_offsets(batch: &[RawMessage]) -> Option<TopicPartitionList> {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for message in batch {
        let entry = next
            .entry((message.position.topic.as_str(), message.position.partition))
            .or_insert(0);
        *entry = (*entry).max(message.position.offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(error) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            warn!(%error, "could not build offset list");
            return None;
        }
    }
    Some(offsets)
}

/// The part of `offsets` on partitions this consumer still owns: after a
/// rebalance, a late commit for a partition that moved would set its new
/// owner's position back. `None` when nothing is left.
fn still_assigned(
    consumer: &IntakeConsumer,
    offsets: &TopicPartitionList,
) -> Option<TopicPartitionList> {
    let assigned = consumer.assignment().ok()?;
    let mut kept = TopicPartitionList::new();
    for element in offsets.elements() {
        if assigned
            .find_partition(element.topic(), element.partition())
            .is_some()
        {
            kept.add_partition_offset(element.topic(), element.partition(), element.offset())
                .ok()?;
        }
    }
    (kept.count() > 0).then_some(kept)
}

/// Commit `offsets`. In the loop the commit is asynchronous: waiting for the
/// broker took 30% of the intake's time (measured by `make bench`), and a
/// lost commit only means a replay, which the store makes harmless. The
/// last batch is committed again while the topic is quiet until the broker
/// confirms it, and synchronously when the intake stops.
fn commit(consumer: &IntakeConsumer, offsets: &TopicPartitionList, mode: CommitMode) {
    let result = match mode {
        // A synchronous commit blocks on a broker round trip; keep it off
        // the async workers' hot path.
        CommitMode::Sync => tokio::task::block_in_place(|| consumer.commit(offsets, mode)),
        CommitMode::Async => consumer.commit(offsets, mode),
    };
    if let Err(error) = result {
        warn!(%error, "offset commit failed; the batch may be replayed (idempotent)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    fn offsets(list: &[(&str, i32, i64)]) -> TopicPartitionList {
        let mut offsets = TopicPartitionList::new();
        for &(topic, partition, offset) in list {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .unwrap();
        }
        offsets
    }

    #[test]
    fn a_commit_counts_as_done_only_once_the_broker_confirms_it() {
        let tracker = CommitTracker::default();
        let wanted = offsets(&[("feedback", 0, 120), ("feedback", 2, 40)]);
        assert!(!tracker.covers(&wanted), "nothing confirmed yet");

        let lost = KafkaError::ConsumerCommit(RDKafkaErrorCode::RequestTimedOut);
        tracker.commit_callback(Err(lost), &wanted);
        assert!(!tracker.covers(&wanted), "a failed commit confirms nothing");

        tracker.commit_callback(Ok(()), &offsets(&[("feedback", 0, 120)]));
        assert!(!tracker.covers(&wanted), "partition 2 is still unconfirmed");

        tracker.commit_callback(Ok(()), &offsets(&[("feedback", 2, 55)]));
        assert!(
            tracker.covers(&wanted),
            "both partitions at or past the target"
        );

        // A late confirmation of an older commit does not move it back.
        tracker.commit_callback(Ok(()), &offsets(&[("feedback", 2, 10)]));
        assert!(tracker.covers(&wanted));
        assert!(!tracker.covers(&offsets(&[("feedback", 2, 56)])));
    }
}
