//! Score tables read whole days from the roll-up the intake keeps and the
//! partial days from the answers: for periods that cut days, by places,
//! dimensions, periods and pairs (one pair outside the roll-up), the
//! figures equal an independent count of the generated answers, and a
//! replayed batch counts nothing twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use closeloop_core::parse_event;
use closeloop_store::{IntakeRecord, ScoreFilter, ScoreGrouping, Store, StoreOptions};
use closeloop_tests::*;
use serde_json::Value;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// (responses, promoters, detractors, nps answers, satisfied, csat answers, ces sum, ces answers)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Count {
    responses: i64,
    promoters: i64,
    detractors: i64,
    nps: i64,
    satisfied: i64,
    csat: i64,
    ces_sum: i64,
    ces: i64,
}

fn text(event: &Value, path: &[&str]) -> Option<String> {
    let mut at = event;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().map(str::to_owned)
}

/// The value a grouping gives an answer, as the store spells it.
fn value_of(event: &Value, grouping: ScoreGrouping) -> Option<String> {
    let at = utc(event["occurred_at"].as_str().unwrap());
    let day = at.date_naive();
    match grouping {
        ScoreGrouping::Store => text(event, &["location", "store_id"]),
        ScoreGrouping::Region => text(event, &["location", "region"]),
        ScoreGrouping::Country => text(event, &["location", "country"]),
        ScoreGrouping::Segment => text(event, &["customer", "segment"]),
        ScoreGrouping::ProductLine => text(event, &["product_line"]),
        ScoreGrouping::Touchpoint => text(event, &["journey", "touchpoint"]),
        ScoreGrouping::Channel => text(event, &["journey", "channel"]),
        ScoreGrouping::Source => text(event, &["source"]),
        ScoreGrouping::Day => Some(day.to_string()),
        ScoreGrouping::Week => {
            use chrono::Datelike;
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            Some(monday.to_string())
        }
        ScoreGrouping::Month => Some(format!("{}-01", &day.to_string()[..7])),
    }
}

fn expected(
    events: &[Value],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    first: ScoreGrouping,
    second: Option<ScoreGrouping>,
) -> BTreeMap<(Option<String>, Option<String>), Count> {
    let mut groups: BTreeMap<_, Count> = BTreeMap::new();
    for event in events {
        let at = utc(event["occurred_at"].as_str().unwrap());
        if at < from || at >= to {
            continue;
        }
        let key = (
            value_of(event, first),
            second.and_then(|s| value_of(event, s)),
        );
        let c = groups.entry(key).or_default();
        c.responses += 1;
        let score = |name: &str| event["scores"].get(name).and_then(Value::as_i64);
        if let Some(nps) = score("nps") {
            c.nps += 1;
            c.promoters += i64::from(nps >= 9);
            c.detractors += i64::from(nps <= 6);
        }
        if let Some(csat) = score("csat") {
            c.csat += 1;
            c.satisfied += i64::from(csat >= 4);
        }
        if let Some(ces) = score("ces") {
            c.ces += 1;
            c.ces_sum += ces;
        }
    }
    groups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_tables_from_the_roll_up_equal_an_independent_count() {
    let env = TestEnv::new(Options::default()).await;
    let store =
        Store::connect_lazy(&env.db_url, 5, StoreOptions::new(env.base_url.clone())).unwrap();
    store.migrate().await.unwrap();
    let options = closeloop_gen::Options {
        days: 40,
        repeat_rate: 0.0,
        tag: Some("roll".into()),
        ..closeloop_gen::Options::new(3000, 17)
    };
    let lines: Vec<String> = closeloop_gen::lines(options).collect();
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let policy = env.policy();
    let records: Vec<IntakeRecord> = lines
        .iter()
        .map(|line| {
            let event = parse_event(line.as_bytes(), 1 << 16).unwrap();
            IntakeRecord {
                alert: policy.decide(&event),
                event,
                position: None,
                silenced_by: None,
                deadlines: None,
                owner_day_start: None,
                owner_next_day_start: None,
            }
        })
        .collect();
    let now = utc("2026-11-20T12:00:00Z");
    for batch in records.chunks(250) {
        store.persist_batch(batch, now).await.unwrap();
    }
    // A replayed batch stores nothing and counts nothing twice.
    let replay = store.persist_batch(&records[..250], now).await.unwrap();
    assert_eq!(replay.accepted, 0);
    let rolled: i64 = sqlx::query_scalar(
        "SELECT sum(responses)::bigint FROM score_days WHERE dimension = 'touchpoint'",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(rolled, 3000);

    // Periods that cut days at both ends (Paris midnight to the afternoon),
    // whole UTC days, and less than a day.
    let periods = [
        (utc("2026-10-20T23:00:00Z"), utc("2026-11-20T15:30:00Z")),
        (utc("2026-11-01T00:00:00Z"), utc("2026-11-15T00:00:00Z")),
        (utc("2026-11-10T02:00:00Z"), utc("2026-11-10T20:00:00Z")),
    ];
    use ScoreGrouping as G;
    let groupings = [
        (G::Region, None),
        (G::Store, None),
        (G::Touchpoint, None),
        (G::Week, None),
        (G::Day, Some(G::Channel)),
        (G::Region, Some(G::Touchpoint)),
        (G::Segment, Some(G::Region)),
        // Two dimensions besides place and time: read from the answers.
        (G::Touchpoint, Some(G::Channel)),
    ];
    for (from, to) in periods {
        for (first, second) in groupings {
            let rows = store
                .score_table(first, second, &ScoreFilter::period(from, to))
                .await
                .unwrap();
            let want = expected(&events, from, to, first, second);
            let got: BTreeMap<_, Count> = rows
                .iter()
                .map(|r| {
                    let ces_sum = r
                        .ces
                        .map_or(0, |m| (m * r.ces_responses as f64).round() as i64);
                    (
                        (r.group.clone(), r.subgroup.clone()),
                        Count {
                            responses: r.responses,
                            promoters: r.promoters,
                            detractors: r.detractors,
                            nps: r.nps_responses,
                            satisfied: r.satisfied,
                            csat: r.csat_responses,
                            ces_sum,
                            ces: r.ces_responses,
                        },
                    )
                })
                .collect();
            let label = format!("{first:?} × {second:?} over {from} .. {to}");
            assert_eq!(got.len(), want.len(), "{label}: groups");
            for (key, count) in &want {
                let mut count = *count;
                // The mean CES is rounded to 2 decimals: compare the sum it gives.
                let row = got
                    .get(key)
                    .unwrap_or_else(|| panic!("{label}: no row {key:?}"));
                if count.ces > 0 {
                    let mean = (count.ces_sum as f64 / count.ces as f64 * 100.0).round() / 100.0;
                    count.ces_sum = (mean * count.ces as f64).round() as i64;
                }
                assert_eq!(row, &count, "{label}: {key:?}");
            }
        }
    }

    // A scope (two stores) and a region filter read the roll-up alike.
    let scope = closeloop_core::access::Scope {
        stores: ["LYON-01".to_owned(), "PARIS-02".to_owned()].into(),
        ..Default::default()
    };
    let (from, to) = periods[0];
    let rows = store
        .score_table(
            G::Store,
            None,
            &ScoreFilter {
                scope: Some(scope),
                ..ScoreFilter::period(from, to)
            },
        )
        .await
        .unwrap();
    let want = expected(&events, from, to, G::Store, None);
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row.responses, want[&(row.group.clone(), None)].responses);
    }
}
