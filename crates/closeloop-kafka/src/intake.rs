//! The intake loop: batch, validate, dead-letter, persist, then commit.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use closeloop_core::{parse_event, FeedbackEvent};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::dead_letter::DeadLetters;
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

/// Where a message was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
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
}

/// An owned copy of a consumed message, so the batch outlives the borrow.
#[derive(Debug, Clone)]
pub(crate) struct RawMessage {
    pub(crate) position: MessagePosition,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
}

impl RawMessage {
    fn from_message(message: &impl Message) -> Self {
        RawMessage {
            position: MessagePosition {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
            },
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
        }
    }
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
    let consumer: StreamConsumer = config
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create()?;
    consumer.subscribe(&[settings.topic.as_str()])?;
    let dead_letters = DeadLetters::new(&settings.client, &settings.dead_letter_topic)?;
    info!(topic = %settings.topic, group = %settings.group_id, "intake started");

    let micros = |since: Instant| since.elapsed().as_micros() as u64;
    let mut last_offsets: Option<TopicPartitionList> = None;
    loop {
        let fetching = Instant::now();
        let Some(batch) = next_batch(&consumer, settings, &cancel).await else {
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
            last_offsets = Some(offsets);
        }
        stats
            .commit_micros
            .fetch_add(micros(committing), Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(offsets) = &last_offsets {
        commit(&consumer, offsets, CommitMode::Sync);
    }
    consumer.unsubscribe();
    info!("intake stopped");
    Ok(())
}

/// Wait for a first message, then fill the batch for at most `batch_linger`.
/// `None` once cancelled with nothing in hand.
async fn next_batch(
    consumer: &StreamConsumer,
    settings: &IntakeSettings,
    cancel: &CancellationToken,
) -> Option<Vec<RawMessage>> {
    let mut batch = Vec::with_capacity(settings.batch_max);
    loop {
        let received = tokio::select! {
            biased;
            _ = cancel.cancelled() => return None,
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => {
                batch.push(RawMessage::from_message(&message));
                break;
            }
            Err(error) => {
                warn!(%error, "kafka consume error");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
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

/// Commit `offsets`. In the loop the commit is asynchronous: waiting for the
/// broker took 30% of the intake's time (measured by `make bench`), and a
/// lost commit only means a replay, which the store makes harmless. The
/// last batch is committed synchronously when the intake stops.
fn commit(consumer: &StreamConsumer, offsets: &TopicPartitionList, mode: CommitMode) {
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
