//! Loop health's times are business time: each stage's time is recorded
//! by the transition that reaches it, in the owner's calendar, less the
//! time waiting on the customer; cases stored before get theirs computed.
//! Against the real database, with the instants under the test's control.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use closeloop_core::sla::{Calendar, CalendarSpec};
use closeloop_core::{parse_event, Command, ContactOutcome};
use closeloop_store::{IntakeRecord, LoopFilter, Store, StoreOptions};
use closeloop_tests::*;
use uuid::Uuid;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Paris, open 09:00–18:00 Monday to Saturday, closed on Sunday.
fn paris() -> Calendar {
    let hours: BTreeMap<String, String> = ["mon", "tue", "wed", "thu", "fri", "sat"]
        .into_iter()
        .map(|d| (d.to_owned(), "09:00-18:00".to_owned()))
        .collect();
    Calendar::from_spec(CalendarSpec {
        id: "paris".into(),
        timezone: "Europe/Paris".into(),
        hours,
        closed: vec![],
    })
    .unwrap()
}

const CAUSES: [&str; 1] = ["delivery_delay"];

async fn step(store: &Store, case: Uuid, command: Command, at: &str) {
    let causes: Vec<String> = CAUSES.iter().map(|c| c.to_string()).collect();
    store
        .apply_command(case, &command, "claire", utc(at), &causes)
        .await
        .unwrap_or_else(|e| panic!("{command:?} at {at}: {e}"));
}

async fn times(env: &TestEnv, case: Uuid) -> (Option<i64>, Option<i64>, Option<i64>) {
    sqlx::query_as(
        "SELECT ack_business_seconds, contact_business_seconds, resolve_business_seconds
         FROM cases WHERE id = $1",
    )
    .bind(case)
    .fetch_one(&env.db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_times_are_business_time_in_the_owners_calendar() {
    let env = TestEnv::new(Options::default()).await;
    let store = Store::connect_lazy(&env.db_url, 5, StoreOptions::new(env.base_url.clone()))
        .unwrap()
        .with_calendars(Arc::new(|_owner: &str| paris()));
    store.migrate().await.unwrap();
    // Two detractors on Saturday 17:00 in Paris, an hour before closing.
    let opened = utc("2026-11-28T16:00:00Z");
    let policy = env.policy();
    let records: Vec<IntakeRecord> = ["a", "b"]
        .iter()
        .map(|id| {
            let json = format!(
                r#"{{"event_id":"times-{id}","occurred_at":"2026-11-28T16:00:00Z","source":"s","customer":{{"id":"C-{id}"}},
                    "journey":{{"touchpoint":"delivery"}},"location":{{"store_id":"LYON-02","region":"FR-ARA"}},"scores":{{"nps":2}}}}"#
            );
            let event = parse_event(json.as_bytes(), 1 << 16).unwrap();
            IntakeRecord { alert: policy.decide(&event), event, position: None, silenced_by: None, deadlines: None, owner_day_start: None, owner_next_day_start: None }
        })
        .collect();
    store.persist_batch(&records, opened).await.unwrap();
    let id = |event: &'static str| {
        let db = env.db.clone();
        async move {
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM cases WHERE event_id = $1")
                .bind(event)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let (a, b) = (id("times-a").await, id("times-b").await);

    // A: acknowledged Monday 10:00, called 11:00, resolved 13:00 (Paris):
    // 2, 3 and 5 open hours (Saturday's last hour, then Monday's), where
    // the wall clock says 41, 42 and 44 hours.
    step(
        &store,
        a,
        Command::Acknowledge { note: None },
        "2026-11-30T09:00:00Z",
    )
    .await;
    let call = || Command::RecordContact {
        outcome: ContactOutcome::Reached,
        note: None,
    };
    step(&store, a, call(), "2026-11-30T10:00:00Z").await;
    let resolve = || Command::Resolve {
        root_cause: CAUSES[0].into(),
        note: None,
    };
    step(&store, a, resolve(), "2026-11-30T12:00:00Z").await;
    assert_eq!(times(&env, a).await, (Some(7200), Some(10800), Some(18000)));

    // B: acknowledged after 30 minutes, called after 35, waits on the
    // customer from Saturday 17:40 to Monday 10:00 (20 open minutes on
    // Saturday, one hour on Monday), resolved Monday 11:00: 3 open hours
    // less 80 minutes waited.
    step(
        &store,
        b,
        Command::Acknowledge { note: None },
        "2026-11-28T16:30:00Z",
    )
    .await;
    step(&store, b, call(), "2026-11-28T16:35:00Z").await;
    step(
        &store,
        b,
        Command::WaitOnCustomer { note: None },
        "2026-11-28T16:40:00Z",
    )
    .await;
    step(
        &store,
        b,
        Command::Resume { note: None },
        "2026-11-30T09:00:00Z",
    )
    .await;
    step(&store, b, resolve(), "2026-11-30T10:00:00Z").await;
    assert_eq!(times(&env, b).await, (Some(1800), Some(2100), Some(6000)));

    // Loop health's percentiles are those of the business times.
    let figures = store
        .loop_figures(
            None,
            &LoopFilter::period(opened, utc("2026-11-29T00:00:00Z")),
            utc("2026-11-30T13:00:00Z"),
        )
        .await
        .unwrap();
    let all = &figures[0];
    assert_eq!(all.opened, 2);
    assert_eq!(all.p50_ack_seconds, Some(4500.0));
    assert_eq!(all.p50_contact_seconds, Some(6450.0));
    assert_eq!(all.p50_resolve_seconds, Some(12000.0));
    assert_eq!(all.p90_resolve_seconds, Some(6000.0 + 0.9 * 12000.0));

    // A case stored before times were recorded gets them from its instants.
    sqlx::query(
        "UPDATE cases SET ack_business_seconds = NULL, contact_business_seconds = NULL,
                resolve_business_seconds = NULL, times_recorded = false WHERE id = $1",
    )
    .bind(a)
    .execute(&env.db)
    .await
    .unwrap();
    assert_eq!(times(&env, a).await, (None, None, None));
    assert_eq!(store.record_missing_times(100).await.unwrap(), 1);
    assert_eq!(store.record_missing_times(100).await.unwrap(), 0);
    assert_eq!(times(&env, a).await, (Some(7200), Some(10800), Some(18000)));

    // Without calendars, every hour counts.
    let plain =
        Store::connect_lazy(&env.db_url, 2, StoreOptions::new(env.base_url.clone())).unwrap();
    sqlx::query("UPDATE cases SET times_recorded = false WHERE id = $1")
        .bind(a)
        .execute(&env.db)
        .await
        .unwrap();
    assert_eq!(plain.record_missing_times(100).await.unwrap(), 1);
    assert_eq!(
        times(&env, a).await,
        (Some(41 * 3600), Some(42 * 3600), Some(44 * 3600))
    );
}
