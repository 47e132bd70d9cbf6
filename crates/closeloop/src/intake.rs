//! The two intakes behind `POST /v1/events` and `closeloop publish`
//! (`intake.mode`):
//!
//! - **single-node** ([`EmbeddedIntake`]): events go straight through the
//!   [`Pipeline`], the same path as a Kafka batch (validation, idempotency by
//!   `event_id`, rules, coalescing, cases and outbox in one transaction). One
//!   writer task stores the requests in arrival order, several waiting
//!   requests in one transaction (group commit), which keeps the invariant
//!   the Kafka intake gets from partitioning: one customer's events are
//!   stored by one writer at a time, so coalescing needs no lock.
//! - **Kafka** ([`KafkaIntake`]): the request's events are published
//!   concurrently and the answer waits for the broker's acknowledgement of
//!   every one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use closeloop_api::{EventIntake, ValidEvent};
use closeloop_core::FeedbackEvent;
use closeloop_kafka::Publisher;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::pipeline::Pipeline;

/// Requests waiting for the writer; past this, HTTP callers wait too
/// (backpressure instead of memory growth).
const QUEUE: usize = 64;
/// Transient store failures retried before the request is answered 503.
const ATTEMPTS: u32 = 3;
/// The answer to a request that arrives while the service stops.
const STOPPING: &str = "the service is stopping; retry the same request";

struct Request {
    events: Vec<FeedbackEvent>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Single-node intake: stores events itself, no broker.
pub struct EmbeddedIntake {
    queue: mpsc::Sender<Request>,
}

impl EmbeddedIntake {
    /// Start the writer on `tracker`. It stops once every handle is dropped
    /// (the HTTP server ended), after storing what was queued: a request
    /// answered 202 is committed.
    pub fn start(pipeline: Arc<Pipeline>, batch_max: usize, tracker: &TaskTracker) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        tracker.spawn(writer(pipeline, requests, batch_max.max(1)));
        EmbeddedIntake { queue }
    }
}

#[async_trait]
impl EventIntake for EmbeddedIntake {
    async fn accept(&self, events: Vec<ValidEvent>) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        let events = events.into_iter().map(|valid| valid.event).collect();
        self.queue
            .send(Request { events, reply })
            .await
            .map_err(|_| STOPPING.to_owned())?;
        answer.await.map_err(|_| STOPPING.to_owned())?
    }
}

async fn writer(pipeline: Arc<Pipeline>, mut requests: mpsc::Receiver<Request>, batch_max: usize) {
    while let Some(first) = requests.recv().await {
        let mut count = first.events.len();
        let mut batch = vec![first];
        while count < batch_max {
            match requests.try_recv() {
                Ok(next) => {
                    count += next.events.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let events: Vec<_> = batch
            .iter()
            .flat_map(|r| r.events.iter().cloned().map(|e| (e, None)))
            .collect();
        let result = store_with_retries(&pipeline, events).await;
        for request in batch {
            let _ = request.reply.send(result.clone());
        }
    }
    info!("single-node intake stopped");
}

async fn store_with_retries(
    pipeline: &Pipeline,
    events: Vec<(FeedbackEvent, Option<closeloop_store::SourcePosition>)>,
) -> Result<(), String> {
    let mut attempt = 1;
    loop {
        match pipeline.store(events.clone()).await {
            Ok(_) => return Ok(()),
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                warn!(%error, attempt, "storing events failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => {
                warn!(%error, events = events.len(), "events not stored; the client is told to retry");
                return Err(
                    "the events could not be stored now (database unavailable); retry the same request"
                        .into(),
                );
            }
        }
    }
}

/// Kafka intake: publish, and answer once the broker acknowledged all.
pub struct KafkaIntake(pub Publisher);

#[async_trait]
impl EventIntake for KafkaIntake {
    async fn accept(&self, events: Vec<ValidEvent>) -> Result<(), String> {
        let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
        self.0
            .publish_all(&payloads, 1000)
            .await
            .map(|_| ())
            .map_err(|error| {
                warn!(%error, "events not acknowledged by the broker");
                "the broker did not acknowledge every event; retry the same request".to_owned()
            })
    }
}

/// What `closeloop publish` did in single-node mode.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub stored: usize,
    pub duplicates: usize,
    /// Refused lines: (line number, reason naming the field).
    pub refused: Vec<(usize, String)>,
}

/// `closeloop publish FILE` in single-node mode: every valid line stored
/// through the pipeline, `batch_max` per transaction; every invalid line
/// refused with its line number and reason, nothing else skipped.
pub async fn store_file(
    pipeline: &Pipeline,
    file: &Path,
    max_event_bytes: usize,
    batch_max: usize,
) -> anyhow::Result<FileOutcome> {
    let text = tokio::fs::read(file)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut outcome = FileOutcome::default();
    let mut batch = Vec::new();
    for (index, line) in closeloop_core::json::json_lines(&text)
        .into_iter()
        .enumerate()
    {
        match closeloop_core::parse_event(line, max_event_bytes) {
            Ok(event) => batch.push((event, None)),
            Err(error) => outcome.refused.push((index + 1, error.to_string())),
        }
        if batch.len() >= batch_max.max(1) {
            let stored = pipeline.store(std::mem::take(&mut batch)).await?;
            outcome.stored += stored.accepted;
            outcome.duplicates += stored.duplicates;
        }
    }
    if !batch.is_empty() {
        let stored = pipeline.store(batch).await?;
        outcome.stored += stored.accepted;
        outcome.duplicates += stored.duplicates;
    }
    Ok(outcome)
}
