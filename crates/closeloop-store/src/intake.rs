//! Persisting a batch of accepted events: one transaction per batch, bulk
//! inserts through `UNNEST`, duplicates skipped by the `event_id` key.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use closeloop_core::coalesce::case_key;
use closeloop_core::sla::Deadlines;
use closeloop_core::Channel;
use closeloop_core::{
    Alert, CaseEventType, CaseState, DigestMode, FeedbackEvent, Severity, Status,
};
use uuid::Uuid;

use crate::cases::{webhook_body, CaseView};
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

impl Store {
    /// Store a batch atomically: events, cases, creation history and outbox
    /// rows commit together. Events already stored are skipped, so a batch
    /// replayed after a crash creates nothing twice.
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
        let inserted: HashSet<String> = sqlx::query_scalar(
            "INSERT INTO feedback_events (event_id, occurred_at, received_at, alerted, nps, csat, ces,
                                          store_id, region, touchpoint, source_topic, source_partition, source_offset)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bool[], $5::int2[], $6::int2[],
                                  $7::int2[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[], $13::int8[])
             ON CONFLICT (event_id) DO NOTHING
             RETURNING event_id",
        )
        .bind(unique.iter().map(|r| r.event.event_id.clone()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.occurred_at.with_timezone(&Utc)).collect::<Vec<_>>())
        .bind(vec![now; unique.len()])
        .bind(unique.iter().map(|r| r.alert.is_some()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.scores.nps.map(|s| i16::from(s.value()))).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.scores.csat.map(|s| i16::from(s.value()))).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.scores.ces.map(|s| i16::from(s.value()))).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.location.store_id.clone()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.location.region.clone()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event.journey.touchpoint.clone()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.position.as_ref().map(|p| p.topic.clone())).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.position.as_ref().map(|p| p.partition)).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.position.as_ref().map(|p| p.offset)).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        outcome.accepted = inserted.len();
        outcome.duplicates += unique.len() - inserted.len();

        let silenced: Vec<(&IntakeRecord, &Alert, Uuid)> = unique
            .iter()
            .filter(|r| inserted.contains(&r.event.event_id))
            .filter_map(|r| Some((*r, r.alert.as_ref()?, r.silenced_by?)))
            .collect();
        if !silenced.is_empty() {
            sqlx::query(
                "INSERT INTO silenced_alerts (event_id, silence_id, rule_ids, owner_id, severity, at)
                 SELECT u.event_id, u.silence_id, ARRAY(SELECT jsonb_array_elements_text(u.rules)), u.owner_id, u.severity, $6
                 FROM UNNEST($1::text[], $2::uuid[], $3::jsonb[], $4::text[], $5::text[])
                      AS u(event_id, silence_id, rules, owner_id, severity)",
            )
            .bind(silenced.iter().map(|(r, _, _)| r.event.event_id.clone()).collect::<Vec<_>>())
            .bind(silenced.iter().map(|(_, _, s)| *s).collect::<Vec<_>>())
            .bind(silenced.iter().map(|(_, a, _)| serde_json::json!(a.rule_ids)).collect::<Vec<_>>())
            .bind(silenced.iter().map(|(_, a, _)| a.owner.id.clone()).collect::<Vec<_>>())
            .bind(silenced.iter().map(|(_, a, _)| a.severity.as_str()).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            outcome.silenced = silenced.len();
        }
        let fresh: Vec<&IntakeRecord> = unique
            .iter()
            .filter(|r| inserted.contains(&r.event.event_id))
            .copied()
            .collect();
        let recovery = self.recovery_loop(&mut tx, &fresh, now).await?;
        outcome.cases_recovered = recovery.recovered;
        outcome.cases_reopened = recovery.reopened;
        outcome.notifications_queued += recovery.notifications;
        let alerting: Vec<(&IntakeRecord, &Alert)> = fresh
            .iter()
            .filter(|r| r.silenced_by.is_none())
            .filter(|r| !recovery.reopening_events.contains(&r.event.event_id))
            .filter_map(|r| Some((*r, r.alert.as_ref()?)))
            .collect();
        if alerting.is_empty() {
            tx.commit().await?;
            return Ok(outcome);
        }

        // Coalescing: an alert whose case key has an active case younger than
        // the window attaches to it. Keys follow the Kafka key (customer), so
        // one consumer sees all events of a key: no lock is needed here.
        let keys: Vec<String> = alerting
            .iter()
            .map(|(r, _)| case_key(&r.event, &self.options.case_key))
            .collect();
        let mut active: HashMap<String, (Uuid, Severity, Status)> = HashMap::new();
        if self.options.coalesce_window > chrono::Duration::zero() {
            let rows: Vec<(String, Uuid, String, String)> = sqlx::query_as(
                "SELECT DISTINCT ON (case_key) case_key, id, severity, status FROM cases
                 WHERE case_key = ANY($1) AND created_at >= $2
                   AND status IN ('open', 'acknowledged', 'contacted', 'reopened', 'waiting_on_customer')
                 ORDER BY case_key, created_at DESC",
            )
            .bind(&keys)
            .bind(now - self.options.coalesce_window)
            .fetch_all(&mut *tx)
            .await?;
            for (key, id, severity, status) in rows {
                let severity = Severity::parse(&severity).unwrap_or(Severity::Low);
                let status = Status::parse(&status).unwrap_or(Status::Open);
                active.insert(key, (id, severity, status));
            }
        }
        let mut new_cases: Vec<(CaseView, &Alert, String)> = Vec::new();
        let mut attached: Vec<(Uuid, Status, &IntakeRecord, &Alert)> = Vec::new();
        for ((record, alert), key) in alerting.iter().zip(keys) {
            match active.get_mut(&key) {
                Some((case_id, severity, status))
                    if self.options.coalesce_window > chrono::Duration::zero() =>
                {
                    attached.push((*case_id, *status, record, alert));
                    *severity = (*severity).max(alert.severity);
                }
                _ => {
                    let mut view = self.new_case_view(&record.event, alert, now);
                    view.sla = record.deadlines.map(|deadlines| crate::cases::CaseSla {
                        deadlines,
                        escalation_level: 0,
                        overdue_since: None,
                        paused_at: None,
                    });
                    active.insert(key.clone(), (view.id, view.severity, Status::Open));
                    new_cases.push((view, alert, key));
                }
            }
        }

        let views: Vec<&CaseView> = new_cases.iter().map(|(v, _, _)| v).collect();
        if !views.is_empty() {
            sqlx::query(
            "INSERT INTO cases (id, event_id, status, severity, owner_id, owner_name, owner_email, owner_webhook_url,
                                route, rule_ids, channels, customer_id, store_id, region, touchpoint, nps, csat, ces,
                                event, version, created_at, updated_at, owner_locale, case_key, deadlines, next_sla_at)
             SELECT u.id, u.event_id, 'open', u.severity, u.owner_id, u.owner_name, u.owner_email, u.owner_webhook_url,
                    u.route, ARRAY(SELECT jsonb_array_elements_text(u.rule_ids)),
                    ARRAY(SELECT jsonb_array_elements_text(u.channels)),
                    u.customer_id, u.store_id, u.region, u.touchpoint, u.nps, u.csat, u.ces, u.event, 1, $19, $19, u.owner_locale, u.case_key,
                    u.deadlines, u.next_sla_at
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::jsonb[], $10::jsonb[], $11::text[], $12::text[], $13::text[], $14::text[],
                         $15::int2[], $16::int2[], $17::int2[], $18::jsonb[], $20::text[], $21::text[],
                         $22::jsonb[], $23::timestamptz[])
                  AS u(id, event_id, severity, owner_id, owner_name, owner_email, owner_webhook_url, route, rule_ids,
                       channels, customer_id, store_id, region, touchpoint, nps, csat, ces, event, owner_locale, case_key,
                       deadlines, next_sla_at)",
        )
        .bind(views.iter().map(|v| v.id).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event_id.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.severity.as_str()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.owner_id.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.owner_name.clone()).collect::<Vec<_>>())
        .bind(new_cases.iter().map(|(_, a, _)| a.owner.email.clone()).collect::<Vec<_>>())
        .bind(new_cases.iter().map(|(_, a, _)| a.owner.webhook_url.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.route.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| serde_json::json!(v.rule_ids)).collect::<Vec<_>>())
        .bind(views.iter().map(|v| serde_json::json!(v.channels)).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.customer.id.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.location.store_id.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.location.region.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.journey.touchpoint.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.scores.nps.map(|s| i16::from(s.value()))).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.scores.csat.map(|s| i16::from(s.value()))).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.event.scores.ces.map(|s| i16::from(s.value()))).collect::<Vec<_>>())
        .bind(views.iter().map(|v| serde_json::to_value(&v.event).unwrap_or_default()).collect::<Vec<_>>())
        .bind(now)
        .bind(views.iter().map(|v| v.owner_locale.clone()).collect::<Vec<_>>())
        .bind(new_cases.iter().map(|(_, _, k)| k.clone()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.sla.as_ref().map(|s| serde_json::to_value(s.deadlines).unwrap_or_default())).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.sla.as_ref().map(|s| crate::sla::first_check(&s.deadlines))).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        }

        // Every event of every case, the opening one and those attached.
        let links: Vec<(String, Uuid)> = new_cases
            .iter()
            .map(|(v, _, _)| (v.event_id.clone(), v.id))
            .chain(
                attached
                    .iter()
                    .map(|(case_id, _, r, _)| (r.event.event_id.clone(), *case_id)),
            )
            .collect();
        sqlx::query(
            "INSERT INTO case_events (event_id, case_id, attached_at)
             SELECT u.event_id, u.case_id, $3 FROM UNNEST($1::text[], $2::uuid[]) AS u(event_id, case_id)",
        )
        .bind(links.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>())
        .bind(links.iter().map(|(_, c)| *c).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *tx)
        .await?;

        let entries: Vec<_> = views
            .iter()
            .map(|v| {
                (
                    v.id,
                    CaseState::creation_entry(now, &v.rule_ids, &v.owner_id, &v.route, &v.channels),
                )
            })
            .collect();
        sqlx::query(
            "INSERT INTO case_history (case_id, at, actor, action, from_status, to_status, note, details)
             SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::jsonb[])",
        )
        .bind(entries.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.at).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.actor.clone()).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.action.clone()).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.from_status.map(|s| s.as_str())).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.to_status.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.note.clone()).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.details.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;

        for (case_id, status, record, alert) in &attached {
            sqlx::query(
                "INSERT INTO case_history (case_id, at, actor, action, from_status, to_status, note, details)
                 VALUES ($1, $2, 'closeloop', 'attach', $3, $3, NULL, $4)",
            )
            .bind(case_id)
            .bind(now)
            .bind(status.as_str())
            .bind(serde_json::json!({"event_id": record.event.event_id, "rules": alert.rule_ids, "severity": alert.severity}))
            .execute(&mut *tx)
            .await?;
            // Raise the severity if the new alert is more severe; never lower it.
            sqlx::query(
                "UPDATE cases SET severity = $2, version = version + 1, updated_at = $3
                 WHERE id = $1 AND array_position(ARRAY['low','medium','high','critical'], severity)
                                 < array_position(ARRAY['low','medium','high','critical'], $2::text)",
            )
            .bind(case_id)
            .bind(alert.severity.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        outcome.cases_coalesced = attached.len();

        // Fatigue guard: past an owner's daily cap of immediate alert emails,
        // a case still opens but its email goes to the owner's digest.
        let mut over_cap: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
        let cap = i64::from(self.options.fatigue_cap_per_day);
        let emails_now = |a: &Alert| a.notifications.iter().any(|n| n.channel == Channel::Email);
        if cap > 0 {
            // Each owner's day, in their calendar's timezone (UTC without one).
            let utc_day_start = now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map_or(now, |d| d.and_utc());
            let day_starts: HashMap<String, DateTime<Utc>> = unique
                .iter()
                .filter_map(|r| Some((r.alert.as_ref()?.owner.id.clone(), r.owner_day_start?)))
                .collect();
            let owners: Vec<String> = new_cases
                .iter()
                .filter(|(_, a, _)| emails_now(a))
                .map(|(_, a, _)| a.owner.id.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let starts: Vec<DateTime<Utc>> = owners
                .iter()
                .map(|o| day_starts.get(o).copied().unwrap_or(utc_day_start))
                .collect();
            let mut sent: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
                "SELECT c.owner_id, count(*) FROM outbox o JOIN cases c ON c.id = o.case_id
                 JOIN UNNEST($1::text[], $2::timestamptz[]) AS d(owner_id, day_start) ON d.owner_id = c.owner_id
                 WHERE o.channel = 'email' AND o.event_type = 'case.created' AND o.created_at >= d.day_start
                 GROUP BY c.owner_id",
            )
            .bind(&owners)
            .bind(&starts)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            for (view, alert, _) in &new_cases {
                if emails_now(alert) {
                    let count = sent.entry(alert.owner.id.clone()).or_default();
                    if *count >= cap {
                        over_cap.insert(view.id);
                    } else {
                        *count += 1;
                    }
                }
            }
            outcome.fatigue_deferred = over_cap.len();
        }

        let mut outbox = OutboxRows::default();
        for (view, alert, _) in &new_cases {
            let body = webhook_body(CaseEventType::Created, view, now);
            for notification in &alert.notifications {
                if notification.channel == Channel::Email && over_cap.contains(&view.id) {
                    continue;
                }
                outbox.push(
                    view.id,
                    notification.channel.as_str(),
                    CaseEventType::Created,
                    &notification.recipient,
                    body.clone(),
                );
            }
        }
        outcome.notifications_queued += outbox.insert(&mut tx, now).await?;

        let digests: Vec<(&CaseView, &Alert, DigestMode)> = new_cases
            .iter()
            .filter_map(|(view, alert, _)| {
                let over = over_cap.contains(&view.id).then_some(DigestMode::Daily);
                Some((view, *alert, alert.email_digest.or(over)?))
            })
            .collect();
        // A daily digest is due at the owner's local midnight.
        let next_days: HashMap<&str, DateTime<Utc>> = unique
            .iter()
            .filter_map(|r| Some((r.alert.as_ref()?.owner.id.as_str(), r.owner_next_day_start?)))
            .collect();
        let due = |alert: &Alert, mode: DigestMode| match (
            mode,
            next_days.get(alert.owner.id.as_str()),
        ) {
            (DigestMode::Daily, Some(next_day)) => *next_day,
            _ => mode.period_end(now),
        };
        if !digests.is_empty() {
            sqlx::query(
                "INSERT INTO digest_items (case_id, owner_id, recipient, locale, mode, due_at, created_at)
                 SELECT u.case_id, u.owner_id, u.recipient, u.locale, u.mode, u.due_at, $7
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
                      AS u(case_id, owner_id, recipient, locale, mode, due_at)",
            )
            .bind(digests.iter().map(|(v, _, _)| v.id).collect::<Vec<_>>())
            .bind(digests.iter().map(|(_, a, _)| a.owner.id.clone()).collect::<Vec<_>>())
            .bind(digests.iter().map(|(_, a, _)| a.owner.email.clone()).collect::<Vec<_>>())
            .bind(digests.iter().map(|(_, a, _)| a.owner.locale.clone()).collect::<Vec<_>>())
            .bind(digests.iter().map(|(_, _, m)| m.as_str()).collect::<Vec<_>>())
            .bind(digests.iter().map(|(_, a, m)| due(a, *m)).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            outcome.digest_items = digests.len();
        }
        outcome.cases_opened = new_cases.len();
        outcome.cases_unnotified = new_cases
            .iter()
            .filter(|(v, _, _)| v.channels.is_empty())
            .count();
        tx.commit().await?;
        Ok(outcome)
    }

    fn new_case_view(&self, event: &FeedbackEvent, alert: &Alert, now: DateTime<Utc>) -> CaseView {
        let id = Uuid::now_v7();
        CaseView {
            id,
            url: self.case_url(id),
            version: 1,
            status: Status::Open,
            severity: alert.severity,
            owner_id: alert.owner.id.clone(),
            owner_name: alert.owner.name.clone(),
            owner_locale: alert.owner.locale.clone(),
            route: alert.route.as_str().to_owned(),
            rule_ids: alert.rule_ids.clone(),
            channels: alert
                .channels
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            event_id: event.event_id.clone(),
            created_at: now,
            updated_at: now,
            acknowledged_at: None,
            first_contact_at: None,
            resolved_at: None,
            closed_at: None,
            resolved_by: None,
            root_cause: None,
            contact_attempts: 0,
            event: event.clone(),
            sla: None,
            recovered_at: None,
        }
    }
}

/// Outbox rows gathered for one bulk insert.
#[derive(Default)]
pub(crate) struct OutboxRows {
    ids: Vec<Uuid>,
    case_ids: Vec<Option<Uuid>>,
    channels: Vec<String>,
    event_types: Vec<String>,
    recipients: Vec<String>,
    payloads: Vec<serde_json::Value>,
}

impl OutboxRows {
    pub(crate) fn push(
        &mut self,
        case_id: Uuid,
        channel: &str,
        event_type: CaseEventType,
        recipient: &str,
        payload: serde_json::Value,
    ) {
        self.push_raw(
            Some(case_id),
            channel,
            event_type.as_str(),
            recipient,
            payload,
        );
    }

    /// A row of any event type, with or without a case (summaries).
    pub(crate) fn push_raw(
        &mut self,
        case_id: Option<Uuid>,
        channel: &str,
        event_type: &str,
        recipient: &str,
        payload: serde_json::Value,
    ) {
        // v7: time-ordered, so ids sort roughly by creation, and unique
        // across instances without coordination.
        self.ids.push(Uuid::now_v7());
        self.case_ids.push(case_id);
        self.channels.push(channel.to_owned());
        self.event_types.push(event_type.to_owned());
        self.recipients.push(recipient.to_owned());
        self.payloads.push(payload);
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) async fn insert(
        self,
        tx: &mut sqlx::PgConnection,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        if self.ids.is_empty() {
            return Ok(0);
        }
        let count = self.ids.len();
        // ORDER BY ordinality keeps seq in push order, which is the
        // per-case delivery order.
        sqlx::query(
            "INSERT INTO outbox (id, case_id, channel, event_type, recipient, payload, next_attempt_at, created_at)
             SELECT u.id, u.case_id, u.channel, u.event_type, u.recipient, u.payload, $7, $7
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
                  WITH ORDINALITY AS u(id, case_id, channel, event_type, recipient, payload, n)
             ORDER BY u.n",
        )
        .bind(self.ids)
        .bind(self.case_ids)
        .bind(self.channels)
        .bind(self.event_types)
        .bind(self.recipients)
        .bind(self.payloads)
        .bind(now)
        .execute(tx)
        .await?;
        Ok(count)
    }
}

/// What the recovery loop did in a batch.
#[derive(Debug, Default)]
struct RecoveryOutcome {
    /// Events that reopened a case (they open no case of their own).
    reopening_events: HashSet<String>,
    recovered: usize,
    reopened: usize,
    notifications: usize,
}

#[derive(sqlx::FromRow)]
struct ResolvedCase {
    case_key: String,
    id: Uuid,
    status: String,
    recovered_at: Option<DateTime<Utc>>,
    owner_email: String,
    owner_webhook_url: Option<String>,
}

impl Store {
    /// The recovery loop: a new answer from a customer whose case (same
    /// case key) was resolved within `cases.recovery_window`, with no active
    /// case of that key. A promoter marks the case recovered; an answer that
    /// alerts reopens it, with the new event attached and the owner told.
    async fn recovery_loop(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[&IntakeRecord],
        now: DateTime<Utc>,
    ) -> Result<RecoveryOutcome> {
        let mut outcome = RecoveryOutcome::default();
        if self.options.recovery_window <= chrono::Duration::zero() || records.is_empty() {
            return Ok(outcome);
        }
        let keys: Vec<String> = records
            .iter()
            .map(|r| case_key(&r.event, &self.options.case_key))
            .collect();
        let resolved: Vec<ResolvedCase> = sqlx::query_as(
            "SELECT DISTINCT ON (c.case_key) c.case_key, c.id, c.status, c.recovered_at, c.owner_email, c.owner_webhook_url
             FROM cases c
             WHERE c.case_key = ANY($1) AND c.status IN ('resolved', 'closed') AND c.resolved_at >= $2
               AND NOT EXISTS (SELECT 1 FROM cases a WHERE a.case_key = c.case_key
                               AND a.status IN ('open', 'acknowledged', 'contacted', 'reopened', 'waiting_on_customer'))
             ORDER BY c.case_key, c.resolved_at DESC",
        )
        .bind(&keys)
        .bind(now - self.options.recovery_window)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_key: HashMap<String, ResolvedCase> = resolved
            .into_iter()
            .map(|c| (c.case_key.clone(), c))
            .collect();
        let mut outbox = OutboxRows::default();
        for (record, key) in records.iter().zip(keys) {
            // One answer per case and batch: the first decides.
            let Some(case) = by_key.remove(&key) else {
                continue;
            };
            let event = &record.event;
            let alerts = record.alert.is_some() && record.silenced_by.is_none();
            let (action, to_status, note) = if alerts {
                (
                    "reopen",
                    Status::Reopened.as_str(),
                    format!("the customer answered again: {}", event.scores.summary()),
                )
            } else if event.scores.is_recovery() && case.recovered_at.is_none() {
                (
                    "recovered",
                    case.status.as_str(),
                    format!("the customer came back happy: {}", event.scores.summary()),
                )
            } else {
                continue;
            };
            if alerts {
                sqlx::query(
                    "UPDATE cases SET status = 'reopened', version = version + 1, updated_at = $2,
                            resolved_at = NULL, closed_at = NULL, root_cause = NULL, resolved_by = NULL,
                            overdue_since = NULL,
                            clocks_restart_at = CASE WHEN deadlines IS NULL THEN NULL ELSE $2 END,
                            next_sla_at = CASE WHEN deadlines IS NULL THEN NULL ELSE $2 END
                     WHERE id = $1",
                )
                .bind(case.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                outcome.reopened += 1;
                outcome.reopening_events.insert(event.event_id.clone());
            } else {
                sqlx::query(
                    "UPDATE cases SET recovered_at = $2, recovery_event_id = $3, updated_at = $2 WHERE id = $1",
                )
                .bind(case.id)
                .bind(now)
                .bind(&event.event_id)
                .execute(&mut *tx)
                .await?;
                outcome.recovered += 1;
            }
            sqlx::query(
                "INSERT INTO case_events (event_id, case_id, attached_at) VALUES ($1, $2, $3)",
            )
            .bind(&event.event_id)
            .bind(case.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO case_history (case_id, at, actor, action, from_status, to_status, note, details)
                 VALUES ($1, $2, 'closeloop', $3, $4, $5, $6, $7)",
            )
            .bind(case.id)
            .bind(now)
            .bind(action)
            .bind(&case.status)
            .bind(to_status)
            .bind(&note)
            .bind(serde_json::json!({
                "event_id": event.event_id,
                "rules": record.alert.as_ref().map(|a| a.rule_ids.clone()),
            }))
            .execute(&mut *tx)
            .await?;
            if alerts {
                let Some(mut view) = self
                    .case_views_in(&mut *tx, &[case.id])
                    .await?
                    .into_iter()
                    .next()
                else {
                    continue;
                };
                // The owner reads the new answer, not the one of last time.
                view.event = event.clone();
                let body = webhook_body(CaseEventType::Reopened, &view, now);
                outbox.push(
                    case.id,
                    "email",
                    CaseEventType::Reopened,
                    &case.owner_email,
                    body.clone(),
                );
                if let Some(url) = &case.owner_webhook_url {
                    outbox.push(case.id, "webhook", CaseEventType::Reopened, url, body);
                }
            }
        }
        outcome.notifications = outbox.insert(&mut *tx, now).await?;
        Ok(outcome)
    }
}
