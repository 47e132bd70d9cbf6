//! The bulk statements that write a batch plan, one per table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use closeloop_core::batch::{owner_day_starts, BatchPlan};
use closeloop_core::Severity;
use uuid::Uuid;

use crate::intake::IntakeRecord;
use crate::views::CaseView;
use crate::Result;

/// Per owner of an alert in `fresh`, the immediate alert emails queued
/// since the start of their day.
pub(crate) async fn emails_today(
    tx: &mut sqlx::PgConnection,
    fresh: &[&IntakeRecord],
    now: DateTime<Utc>,
) -> Result<HashMap<String, u32>> {
    let alerts = fresh
        .iter()
        .filter_map(|r| Some((r.alert.as_ref()?, r.owner_day_start)));
    let (owners, starts): (Vec<String>, Vec<DateTime<Utc>>) =
        owner_day_starts(alerts, now).into_iter().unzip();
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.owner_id, count(*) FROM outbox o JOIN cases c ON c.id = o.case_id
         JOIN UNNEST($1::text[], $2::timestamptz[]) AS d(owner_id, day_start) ON d.owner_id = c.owner_id
         WHERE o.channel = 'email' AND o.event_type = 'case.created' AND o.created_at >= d.day_start
         GROUP BY c.owner_id",
    )
    .bind(&owners)
    .bind(&starts)
    .fetch_all(&mut *tx)
    .await?;
    Ok(counts
        .into_iter()
        .map(|(owner, n)| (owner, u32::try_from(n).unwrap_or(u32::MAX)))
        .collect())
}

/// Record the alerts that a silence muted.
pub(crate) async fn insert_silenced(
    tx: &mut sqlx::PgConnection,
    fresh: &[&IntakeRecord],
    silenced: &[usize],
    now: DateTime<Utc>,
) -> Result<()> {
    let (records, alerts): (Vec<&IntakeRecord>, Vec<_>) = silenced
        .iter()
        .filter_map(|&i| Some((fresh[i], fresh[i].alert.as_ref()?)))
        .unzip();
    if records.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO silenced_alerts (event_id, silence_id, rule_ids, owner_id, severity, at)
         SELECT u.event_id, u.silence_id, ARRAY(SELECT jsonb_array_elements_text(u.rules)), u.owner_id, u.severity, $6
         FROM UNNEST($1::text[], $2::uuid[], $3::jsonb[], $4::text[], $5::text[])
              AS u(event_id, silence_id, rules, owner_id, severity)",
    )
    .bind(records.iter().map(|r| r.event.event_id.clone()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.silenced_by).collect::<Vec<_>>())
    .bind(alerts.iter().map(|a| serde_json::json!(a.rule_ids)).collect::<Vec<_>>())
    .bind(alerts.iter().map(|a| a.owner.id.clone()).collect::<Vec<_>>())
    .bind(alerts.iter().map(|a| a.severity.as_str()).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Insert the plan's new cases (`views`, in plan order).
pub(crate) async fn insert_cases(
    tx: &mut sqlx::PgConnection,
    fresh: &[&IntakeRecord],
    plan: &BatchPlan<'_, Uuid>,
    views: &[CaseView],
    now: DateTime<Utc>,
) -> Result<()> {
    if views.is_empty() {
        return Ok(());
    }
    let owners: Vec<_> = plan
        .new_cases
        .iter()
        .filter_map(|c| fresh[c.input].alert.as_ref().map(|a| &a.owner))
        .collect();
    let text = |f: fn(&CaseView) -> Option<String>| -> Vec<Option<String>> {
        views.iter().map(f).collect()
    };
    let score = |f: fn(&CaseView) -> Option<u8>| -> Vec<Option<i16>> {
        views.iter().map(|v| f(v).map(i16::from)).collect()
    };
    let deadlines = |v: &CaseView| v.sla.as_ref().map(|s| s.deadlines);
    sqlx::query(
        "INSERT INTO cases (id, event_id, status, severity, owner_id, owner_name, owner_email, owner_webhook_url,
                            route, rule_ids, channels, customer_id, store_id, region, touchpoint, nps, csat, ces,
                            event, version, created_at, updated_at, owner_locale, case_key, deadlines, next_sla_at)
         SELECT u.id, u.event_id, 'open', u.severity, u.owner_id, u.owner_name, u.owner_email, u.owner_webhook_url,
                u.route, ARRAY(SELECT jsonb_array_elements_text(u.rule_ids)),
                ARRAY(SELECT jsonb_array_elements_text(u.channels)),
                u.customer_id, u.store_id, u.region, u.touchpoint, u.nps, u.csat, u.ces, u.event, 1, $19, $19,
                u.owner_locale, u.case_key, u.deadlines, u.next_sla_at
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::jsonb[], $10::jsonb[], $11::text[], $12::text[], $13::text[], $14::text[],
                     $15::int2[], $16::int2[], $17::int2[], $18::jsonb[], $20::text[], $21::text[],
                     $22::jsonb[], $23::timestamptz[])
              AS u(id, event_id, severity, owner_id, owner_name, owner_email, owner_webhook_url, route, rule_ids,
                   channels, customer_id, store_id, region, touchpoint, nps, csat, ces, event, owner_locale, case_key,
                   deadlines, next_sla_at)",
    )
    .bind(views.iter().map(|v| v.id).collect::<Vec<_>>())
    .bind(text(|v| Some(v.event_id.clone())))
    .bind(text(|v| Some(v.severity.as_str().to_owned())))
    .bind(text(|v| Some(v.owner_id.clone())))
    .bind(text(|v| Some(v.owner_name.clone())))
    .bind(owners.iter().map(|o| o.email.clone()).collect::<Vec<_>>())
    .bind(owners.iter().map(|o| o.webhook_url.clone()).collect::<Vec<_>>())
    .bind(text(|v| Some(v.route.clone())))
    .bind(views.iter().map(|v| serde_json::json!(v.rule_ids)).collect::<Vec<_>>())
    .bind(views.iter().map(|v| serde_json::json!(v.channels)).collect::<Vec<_>>())
    .bind(text(|v| Some(v.event.customer.id.clone())))
    .bind(text(|v| v.event.location.store_id.clone()))
    .bind(text(|v| v.event.location.region.clone()))
    .bind(text(|v| Some(v.event.journey.touchpoint.clone())))
    .bind(score(|v| v.event.scores.nps.map(|s| s.value())))
    .bind(score(|v| v.event.scores.csat.map(|s| s.value())))
    .bind(score(|v| v.event.scores.ces.map(|s| s.value())))
    .bind(views.iter().map(|v| serde_json::to_value(&v.event).unwrap_or_default()).collect::<Vec<_>>())
    .bind(now)
    .bind(text(|v| Some(v.owner_locale.clone())))
    .bind(plan.new_cases.iter().map(|c| c.key.clone()).collect::<Vec<_>>())
    .bind(views.iter().map(|v| deadlines(v).map(|d| serde_json::to_value(d).unwrap_or_default())).collect::<Vec<_>>())
    .bind(views.iter().map(|v| deadlines(v).map(|d| crate::sla::first_check(&d))).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Record which case each event belongs to.
pub(crate) async fn link_events(
    tx: &mut sqlx::PgConnection,
    links: &[(String, Uuid)],
    now: DateTime<Utc>,
) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO case_events (event_id, case_id, attached_at)
         SELECT u.event_id, u.case_id, $3 FROM UNNEST($1::text[], $2::uuid[]) AS u(event_id, case_id)",
    )
    .bind(links.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>())
    .bind(links.iter().map(|(_, c)| *c).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Set the severities the plan raised.
pub(crate) async fn raise_severities(
    tx: &mut sqlx::PgConnection,
    raises: &HashMap<Uuid, Severity>,
    now: DateTime<Utc>,
) -> Result<()> {
    if raises.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE cases c SET severity = u.severity, version = c.version + 1, updated_at = $3
         FROM UNNEST($1::uuid[], $2::text[]) AS u(id, severity) WHERE c.id = u.id",
    )
    .bind(raises.keys().copied().collect::<Vec<_>>())
    .bind(raises.values().map(|s| s.as_str()).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Mark the cases whose recovery loop the plan closed.
pub(crate) async fn mark_recovered(
    tx: &mut sqlx::PgConnection,
    fresh: &[&IntakeRecord],
    plan: &BatchPlan<'_, Uuid>,
    now: DateTime<Utc>,
) -> Result<()> {
    if plan.recoveries.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE cases c SET recovered_at = $3, recovery_event_id = u.event_id, updated_at = $3
         FROM UNNEST($1::uuid[], $2::text[]) AS u(id, event_id) WHERE c.id = u.id",
    )
    .bind(plan.recoveries.iter().map(|r| r.case).collect::<Vec<_>>())
    .bind(
        plan.recoveries
            .iter()
            .map(|r| fresh[r.input].event.event_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Hold the alert emails the plan sends to digests.
pub(crate) async fn insert_digests(
    tx: &mut sqlx::PgConnection,
    fresh: &[&IntakeRecord],
    plan: &BatchPlan<'_, Uuid>,
    views: &[CaseView],
    now: DateTime<Utc>,
) -> Result<usize> {
    let items: Vec<_> = plan
        .new_cases
        .iter()
        .zip(views)
        .filter_map(|(c, v)| Some((v.id, fresh[c.input].alert.as_ref()?, c.digest?)))
        .collect();
    if items.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO digest_items (case_id, owner_id, recipient, locale, mode, due_at, created_at)
         SELECT u.case_id, u.owner_id, u.recipient, u.locale, u.mode, u.due_at, $7
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
              AS u(case_id, owner_id, recipient, locale, mode, due_at)",
    )
    .bind(items.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|(_, a, _)| a.owner.id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|(_, a, _)| a.owner.email.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|(_, a, _)| a.owner.locale.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|(_, _, (m, _))| m.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|(_, _, (_, due))| *due)
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(items.len())
}
