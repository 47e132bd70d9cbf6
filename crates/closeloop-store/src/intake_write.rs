//! The two halves of a batch around the core's plan: what the store reads
//! for it (the [`Snapshot`]) and how it writes the [`BatchPlan`]. Nothing
//! here chooses: every branch follows the plan.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use closeloop_core::batch::{
    ActiveCase, BatchOptions, BatchPlan, CaseRef, ResolvedCase, Snapshot, SYSTEM_ACTOR,
};
use closeloop_core::{CaseEventType, CaseState, HistoryEntry, Severity, Status};
use uuid::Uuid;

use crate::history;
use crate::intake::IntakeRecord;
use crate::intake_rows::{
    emails_today, insert_cases, insert_digests, insert_silenced, link_events, mark_recovered,
    raise_severities,
};
use crate::outbox_write::OutboxRows;
use crate::transition::Applied;
use crate::views::{webhook_body, CaseRow, CaseView, CASE_COLUMNS};
use crate::{Result, Store, StoreError};

/// What writing a plan queued.
pub(crate) struct Written {
    pub notifications: usize,
    pub digest_items: usize,
}

impl Store {
    /// Read what the plan needs for `fresh` (keys in `keys`): active and
    /// recently resolved cases of the keys (the latter locked, with their
    /// rows for writing a reopening), and the owners' emails of the day.
    pub(crate) async fn read_snapshot(
        &self,
        tx: &mut sqlx::PgConnection,
        fresh: &[&IntakeRecord],
        keys: &[String],
        options: &BatchOptions,
        now: DateTime<Utc>,
    ) -> Result<(Snapshot<Uuid>, HashMap<Uuid, CaseRow>)> {
        let mut snapshot = Snapshot::default();
        let mut rows = HashMap::new();
        if options.coalesces() {
            // One probe per key of the partial index on active cases' keys
            // (the statuses as literals, so that it applies): a plan that
            // cannot drift to scanning every recent case when the table's
            // statistics lag behind its growth.
            let sql = format!(
                "SELECT k.key, c.id, c.severity, c.status FROM (SELECT DISTINCT unnest($1::text[]) AS key) AS k
                 CROSS JOIN LATERAL (
                     SELECT id, severity, status FROM cases
                     WHERE case_key = k.key AND created_at >= $2 AND status IN {}
                     ORDER BY created_at DESC LIMIT 1) AS c",
                crate::status_list(&Status::active_names())
            );
            let rows: Vec<(String, Uuid, String, String)> = sqlx::query_as(&sql)
                .bind(keys)
                .bind(now - options.coalesce_window)
                .fetch_all(&mut *tx)
                .await?;
            for (key, id, severity, status) in rows {
                let corrupt =
                    |what: &str| StoreError::Corrupt(format!("case {id}: unknown {what}"));
                let severity = Severity::parse(&severity).ok_or_else(|| corrupt("severity"))?;
                let status = Status::parse(&status).ok_or_else(|| corrupt("status"))?;
                let case = ActiveCase {
                    id,
                    severity,
                    status,
                };
                snapshot.active.insert(key, case);
            }
        }
        if options.recovers() {
            let sql = format!(
                "SELECT k.key, c.id FROM (SELECT DISTINCT unnest($1::text[]) AS key) AS k
                 CROSS JOIN LATERAL (
                     SELECT id FROM cases
                     WHERE case_key = k.key AND status IN {done} AND resolved_at >= $2
                     ORDER BY resolved_at DESC LIMIT 1) AS c
                 WHERE NOT EXISTS (SELECT 1 FROM cases a WHERE a.case_key = k.key AND a.status IN {active})",
                done = crate::status_list(&Status::done_names()),
                active = crate::status_list(&Status::active_names()),
            );
            let ids: Vec<(String, Uuid)> = sqlx::query_as(&sql)
                .bind(keys)
                .bind(now - options.recovery_window)
                .fetch_all(&mut *tx)
                .await?;
            let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ANY($1) FOR UPDATE");
            let locked: Vec<CaseRow> = sqlx::query_as(&sql)
                .bind(ids.iter().map(|(_, id)| *id).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
            rows = locked.into_iter().map(|r| (r.id, r)).collect();
            for (key, id) in ids {
                let Some(row) = rows.get(&id) else { continue };
                let view = row.clone().into_view(self)?;
                let case = ResolvedCase {
                    id,
                    state: view.state(),
                    severity: view.severity,
                    created_at: view.created_at,
                    recovered: view.recovered_at.is_some(),
                };
                snapshot.resolved.insert(key, case);
            }
        }
        if options.fatigue_cap_per_day > 0 {
            snapshot.emails_today = emails_today(tx, fresh, now).await?;
        }
        Ok((snapshot, rows))
    }

    /// Write `plan`: reopenings (as transitions), silenced records, new
    /// cases, attachments, recoveries, their history, outbox rows and
    /// digest items.
    pub(crate) async fn write_plan(
        &self,
        tx: &mut sqlx::PgConnection,
        fresh: &[&IntakeRecord],
        plan: &BatchPlan<'_, Uuid>,
        mut resolved_rows: HashMap<Uuid, CaseRow>,
        now: DateTime<Utc>,
    ) -> Result<Written> {
        let mut outbox = OutboxRows::default();
        for reopening in &plan.reopenings {
            let row = resolved_rows.remove(&reopening.case).ok_or_else(|| {
                StoreError::Corrupt(format!("case {} reopened unread", reopening.case))
            })?;
            let applied = Applied {
                command: &reopening.command,
                transition: &reopening.transition,
                actor: SYSTEM_ACTOR,
                new_owner: None,
                shown_event: Some(&fresh[reopening.input].event),
            };
            self.write_transition(tx, row, &applied, now, &mut outbox)
                .await?;
        }
        insert_silenced(tx, fresh, &plan.silenced, now).await?;
        let views: Vec<CaseView> = plan
            .new_cases
            .iter()
            .map(|c| self.new_case_view(fresh[c.input], now))
            .collect();
        insert_cases(tx, fresh, plan, &views, now).await?;
        let case_of = |case: CaseRef<Uuid>| match case {
            CaseRef::Existing(id) => id,
            CaseRef::New(n) => views[n].id,
        };
        let event_of = |input: usize| fresh[input].event.event_id.clone();
        let mut links: Vec<(String, Uuid)> =
            views.iter().map(|v| (v.event_id.clone(), v.id)).collect();
        links.extend(
            plan.attachments
                .iter()
                .map(|a| (event_of(a.input), case_of(a.case))),
        );
        links.extend(plan.reopenings.iter().map(|r| (event_of(r.input), r.case)));
        links.extend(plan.recoveries.iter().map(|r| (event_of(r.input), r.case)));
        link_events(tx, &links, now).await?;

        let created: Vec<HistoryEntry> = views
            .iter()
            .map(|v| {
                CaseState::creation_entry(now, &v.rule_ids, &v.owner_id, &v.route, &v.channels)
            })
            .collect();
        let mut entries: Vec<(Uuid, &HistoryEntry)> =
            views.iter().map(|v| v.id).zip(&created).collect();
        entries.extend(plan.attachments.iter().map(|a| (case_of(a.case), &a.entry)));
        entries.extend(plan.recoveries.iter().map(|r| (r.case, &r.entry)));
        history::append(tx, &entries).await?;

        let raises: HashMap<Uuid, Severity> = plan
            .attachments
            .iter()
            .filter_map(|a| Some((case_of(a.case), a.raise_to?)))
            .collect();
        raise_severities(tx, &raises, now).await?;
        mark_recovered(tx, fresh, plan, now).await?;

        for (case, view) in plan.new_cases.iter().zip(&views) {
            let body = webhook_body(CaseEventType::Created, view, now);
            for n in &case.notifications {
                outbox.push_case(n.channel, &n.recipient, body.clone());
            }
        }
        let notifications = outbox.insert(&mut *tx, now).await?;
        let digest_items = insert_digests(tx, fresh, plan, &views, now).await?;
        Ok(Written {
            notifications,
            digest_items,
        })
    }

    fn new_case_view(&self, record: &IntakeRecord, now: DateTime<Utc>) -> CaseView {
        let (event, alert) = (&record.event, record.alert.as_ref().expect("alerting"));
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
            sla: record.deadlines.map(|deadlines| crate::views::CaseSla {
                deadlines,
                escalation_level: 0,
                overdue_since: None,
                paused_at: None,
            }),
            recovered_at: None,
        }
    }
}
