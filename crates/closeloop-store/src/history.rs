//! Writing history lines (the table is append-only).

use closeloop_core::HistoryEntry;
use uuid::Uuid;

use crate::Result;

/// Append `entries` (case id, line) in one statement, in order.
pub(crate) async fn append(
    tx: &mut sqlx::PgConnection,
    entries: &[(Uuid, &HistoryEntry)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let field = |f: fn(&HistoryEntry) -> Option<String>| -> Vec<Option<String>> {
        entries.iter().map(|(_, e)| f(e)).collect()
    };
    sqlx::query(
        "INSERT INTO case_history (case_id, at, actor, action, from_status, to_status, note, details)
         SELECT u.case_id, u.at, u.actor, u.action, u.from_status, u.to_status, u.note, u.details
         FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::jsonb[]) WITH ORDINALITY
              AS u(case_id, at, actor, action, from_status, to_status, note, details, n)
         ORDER BY u.n",
    )
    .bind(entries.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(entries.iter().map(|(_, e)| e.at).collect::<Vec<_>>())
    .bind(field(|e| Some(e.actor.clone())))
    .bind(field(|e| Some(e.action.clone())))
    .bind(field(|e| e.from_status.map(|s| s.as_str().to_owned())))
    .bind(field(|e| Some(e.to_status.as_str().to_owned())))
    .bind(field(|e| e.note.clone()))
    .bind(entries.iter().map(|(_, e)| e.details.clone()).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(())
}
