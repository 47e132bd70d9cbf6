//! Persisting a batch of accepted events: one transaction per batch, bulk
//! inserts through `UNNEST`, duplicates skipped by the `event_id` key.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use closeloop_core::batch::{candidate_keys, plan_batch, BatchOptions, Candidate};
use closeloop_core::sla::Deadlines;
use closeloop_core::{Alert, FeedbackEvent};
use uuid::Uuid;

use crate::{Result, Store};

/// Where an event was read from, kept for audit and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One accepted event and what the policy decided for it.
#[derive(Debug, Clone)]
pub struct IntakeRecord {
    pub event: FeedbackEvent,
    pub position: Option<SourcePosition>,
    /// `Some` when a rule fired: a case is opened...
    pub alert: Option<Alert>,
    /// ...unless a silence mutes it: then it is recorded as silenced.
    pub silenced_by: Option<Uuid>,
    /// The SLA clocks of the case it opens (none without targets).
    pub deadlines: Option<Deadlines>,
    /// When the owner's day began, in their calendar's timezone: the daily
    /// fatigue cap counts from there.
    pub owner_day_start: Option<DateTime<Utc>>,
    /// When the owner's next day begins: a daily digest is due then.
    pub owner_next_day_start: Option<DateTime<Utc>>,
}

/// What a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events seen for the first time.
    pub accepted: usize,
    /// Events already stored (replays), skipped.
    pub duplicates: usize,
    pub cases_opened: usize,
    /// New cases no channel reaches (nobody notified; recorded in history).
    pub cases_unnotified: usize,
    pub notifications_queued: usize,
    /// Alert emails held for an owner's digest.
    pub digest_items: usize,
    /// Alerts attached to an active case with the same key (no new case).
    pub cases_coalesced: usize,
    /// Alerts muted by a silence: recorded, no case.
    pub silenced: usize,
    /// Alert emails sent to the owner's digest by the daily cap.
    pub fatigue_deferred: usize,
    /// Resolved cases whose customer came back as a promoter.
    pub cases_recovered: usize,
    /// Resolved cases reopened by a new alerting answer of their customer.
    pub cases_reopened: usize,
}

impl IntakeRecord {
    /// What the core's batch plan needs of this record.
    pub(crate) fn candidate(&self) -> Candidate<'_> {
        Candidate {
            event: &self.event,
            alert: self.alert.as_ref(),
            silenced: self.silenced_by.is_some(),
            owner_next_day_start: self.owner_next_day_start,
        }
    }
}

impl Store {
    /// Store a batch atomically: events, cases, creation history and outbox
    /// rows commit together. Events already stored are skipped, so a batch
    /// replayed after a crash creates nothing twice. The core's
    /// [`plan_batch`] decides what the new events change; this writes it.
    pub async fn persist_batch(
        &self,
        records: &[IntakeRecord],
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome> {
        // The same event_id twice inside one batch: the first one wins.
        let mut seen = HashSet::new();
        let unique: Vec<&IntakeRecord> = records
            .iter()
            .filter(|r| seen.insert(r.event.event_id.as_str()))
            .collect();
        let mut outcome = BatchOutcome {
            duplicates: records.len() - unique.len(),
            ..BatchOutcome::default()
        };
        if unique.is_empty() {
            return Ok(outcome);
        }
        let mut tx = self.pool.begin().await?;
        let inserted = insert_events(&mut tx, &unique, now).await?;
        outcome.accepted = inserted.len();
        outcome.duplicates += unique.len() - inserted.len();
        let fresh: Vec<&IntakeRecord> = unique
            .into_iter()
            .filter(|r| inserted.contains(&r.event.event_id))
            .collect();
        let candidates: Vec<Candidate<'_>> = fresh.iter().map(|r| r.candidate()).collect();
        let options = self.batch_options();
        let keys = candidate_keys(&candidates, &options);
        let (snapshot, resolved_rows) = self
            .read_snapshot(&mut tx, &fresh, &keys, &options, now)
            .await?;
        let plan = plan_batch(&candidates, snapshot, &options, now);
        let written = self
            .write_plan(&mut tx, &fresh, &plan, resolved_rows, now)
            .await?;
        tx.commit().await?;
        outcome.silenced = plan.silenced.len();
        outcome.cases_opened = plan.new_cases.len();
        outcome.cases_unnotified = plan
            .new_cases
            .iter()
            .filter(|c| {
                fresh[c.input]
                    .alert
                    .as_ref()
                    .is_some_and(|a| a.channels.is_empty())
            })
            .count();
        outcome.cases_coalesced = plan.attachments.len();
        outcome.fatigue_deferred = plan.fatigue_deferred();
        outcome.cases_recovered = plan.recoveries.len();
        outcome.cases_reopened = plan.reopenings.len();
        outcome.notifications_queued = written.notifications;
        outcome.digest_items = written.digest_items;
        Ok(outcome)
    }

    pub(crate) fn batch_options(&self) -> BatchOptions {
        BatchOptions {
            case_key: self.options.case_key.clone(),
            coalesce_window: self.options.coalesce_window,
            fatigue_cap_per_day: self.options.fatigue_cap_per_day,
            recovery_window: self.options.recovery_window,
        }
    }
}

/// Insert a batch's answers; the new ones are added to the score roll-up in
/// the same statement.
static INSERT_EVENTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH stored AS (
           INSERT INTO feedback_events (event_id, occurred_at, received_at, alerted, nps, csat, ces,
                                      store_id, region, touchpoint, source_topic, source_partition, source_offset,
                                      country, segment, product_line, channel, source)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bool[], $5::int2[], $6::int2[],
                              $7::int2[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[], $13::int8[],
                              $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id, occurred_at, nps, csat, ces, store_id, region, country, segment,
                   product_line, touchpoint, channel, source),
         rolled AS ({})
         SELECT event_id FROM stored",
        crate::score_days::roll_up()
    )
});

/// Insert the events, returning the ids stored for the first time.
async fn insert_events(
    tx: &mut sqlx::PgConnection,
    unique: &[&IntakeRecord],
    now: DateTime<Utc>,
) -> Result<HashSet<String>> {
    let column = |f: fn(&IntakeRecord) -> Option<String>| -> Vec<Option<String>> {
        unique.iter().map(|r| f(r)).collect()
    };
    let score = |f: fn(&FeedbackEvent) -> Option<u8>| -> Vec<Option<i16>> {
        unique.iter().map(|r| f(&r.event).map(i16::from)).collect()
    };
    let position = unique.iter().map(|r| r.position.as_ref());
    Ok(sqlx::query_scalar(INSERT_EVENTS.as_str())
        .bind(column(|r| Some(r.event.event_id.clone())))
        .bind(
            unique
                .iter()
                .map(|r| r.event.occurred_at.with_timezone(&Utc))
                .collect::<Vec<_>>(),
        )
        .bind(vec![now; unique.len()])
        .bind(unique.iter().map(|r| r.alert.is_some()).collect::<Vec<_>>())
        .bind(score(|e| e.scores.nps.map(|s| s.value())))
        .bind(score(|e| e.scores.csat.map(|s| s.value())))
        .bind(score(|e| e.scores.ces.map(|s| s.value())))
        .bind(column(|r| r.event.location.store_id.clone()))
        .bind(column(|r| r.event.location.region.clone()))
        .bind(column(|r| Some(r.event.journey.touchpoint.clone())))
        .bind(column(|r| r.position.as_ref().map(|p| p.topic.clone())))
        .bind(
            position
                .clone()
                .map(|p| p.map(|p| p.partition))
                .collect::<Vec<_>>(),
        )
        .bind(position.map(|p| p.map(|p| p.offset)).collect::<Vec<_>>())
        .bind(column(|r| r.event.location.country.clone()))
        .bind(column(|r| r.event.customer.segment.clone()))
        .bind(column(|r| r.event.product_line.clone()))
        .bind(column(|r| r.event.journey.channel.clone()))
        .bind(column(|r| Some(r.event.source.clone())))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect())
}
