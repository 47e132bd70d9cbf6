//! The score roll-up (`score_days`, migration 16): answers counted per UTC
//! day, place and value of one dimension, per score value. The intake adds
//! each batch's new answers to it in the batch's statement ([`roll_up`]);
//! score tables read its whole days and the raw answers of the partial days
//! at the ends of a period ([`Split`]).

use chrono::{DateTime, Duration, NaiveTime, Utc};

/// The score columns of a roll-up row: the number of answers per value.
pub(crate) fn value_columns() -> Vec<String> {
    let nps = (0..=10).map(|v| format!("nps_{v}"));
    let csat = (1..=5).map(|v| format!("csat_{v}"));
    let ces = (1..=7).map(|v| format!("ces_{v}"));
    nps.chain(csat).chain(ces).collect()
}

/// The score and value of a column of [`value_columns`]: `("nps", 9)`.
fn column_value(column: &str) -> (&str, u8) {
    let (score, value) = column.split_once('_').unwrap_or((column, "0"));
    (score, value.parse().unwrap_or(0))
}

/// The aggregates counting answers per score value, in the order of
/// [`value_columns`].
pub(crate) fn value_counts() -> String {
    value_columns()
        .iter()
        .map(|c| {
            let (score, value) = column_value(c);
            format!("count(*) FILTER (WHERE {score} = {value})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement adding the answers of the CTE `stored` (rows of
/// `feedback_events` just inserted) to the roll-up, as a CTE body.
pub(crate) fn roll_up() -> String {
    let columns = value_columns();
    let counts = value_counts();
    let added = columns
        .iter()
        .map(|c| format!("{c} = score_days.{c} + EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO score_days (day, dimension, value, store_id, region, country, responses, {columns})
         SELECT day, dimension, value, store_id, region, country, count(*), {counts}
         FROM (SELECT (f.occurred_at AT TIME ZONE 'UTC')::date AS day, f.store_id, f.region, f.country,
                      f.nps, f.csat, f.ces, d.dimension, d.value
               FROM stored f
               CROSS JOIN LATERAL (VALUES ('', NULL), ('segment', f.segment), ('product_line', f.product_line),
                                          ('touchpoint', f.touchpoint), ('channel', f.channel), ('source', f.source))
                          AS d (dimension, value)) AS answers
         GROUP BY 1, 2, 3, 4, 5, 6
         ORDER BY 1, 2, 3, 4, 5, 6
         ON CONFLICT ON CONSTRAINT score_days_key DO UPDATE SET responses = score_days.responses + EXCLUDED.responses, {added}",
        columns = columns.join(", "),
    )
}

/// How a period `[from, to)` is read: the whole UTC days `[days_from,
/// days_to)` from the roll-up, the rest (`[from, days_from)` and
/// `[days_to, to)`) from the answers. Without a whole day, or when the
/// roll-up cannot answer, both bounds are `to`: everything is read raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    pub days_from: DateTime<Utc>,
    pub days_to: DateTime<Utc>,
}

impl Split {
    pub(crate) fn of(from: DateTime<Utc>, to: DateTime<Utc>, rolled_up: bool) -> Split {
        let midnight = |at: DateTime<Utc>| at.date_naive().and_time(NaiveTime::MIN).and_utc();
        let first = if midnight(from) == from {
            from
        } else {
            midnight(from) + Duration::days(1)
        };
        let last = midnight(to);
        if rolled_up && first < last {
            Split {
                days_from: first,
                days_to: last,
            }
        } else {
            Split {
                days_from: to,
                days_to: to,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_period_reads_its_whole_days_from_the_roll_up() {
        // (from, to, rolled up, days from, days to)
        let table = [
            // 90 days from Paris midnight to now: the first hour and today raw.
            (
                "2026-09-01T22:00:00Z",
                "2026-11-30T10:30:00Z",
                true,
                "2026-09-02T00:00:00Z",
                "2026-11-30T00:00:00Z",
            ),
            // Whole UTC days: all from the roll-up.
            (
                "2026-11-01T00:00:00Z",
                "2026-11-08T00:00:00Z",
                true,
                "2026-11-01T00:00:00Z",
                "2026-11-08T00:00:00Z",
            ),
            // Less than a whole day: raw.
            (
                "2026-11-29T23:00:00Z",
                "2026-11-30T10:00:00Z",
                true,
                "2026-11-30T10:00:00Z",
                "2026-11-30T10:00:00Z",
            ),
            // A grouping the roll-up does not hold: raw.
            (
                "2026-11-01T00:00:00Z",
                "2026-11-08T00:00:00Z",
                false,
                "2026-11-08T00:00:00Z",
                "2026-11-08T00:00:00Z",
            ),
        ];
        for (from, to, rolled, days_from, days_to) in table {
            assert_eq!(
                Split::of(utc(from), utc(to), rolled),
                Split {
                    days_from: utc(days_from),
                    days_to: utc(days_to)
                },
                "{from} .. {to}"
            );
        }
    }

    #[test]
    fn value_columns_name_every_score_value() {
        let columns = value_columns();
        assert_eq!(columns.len(), 11 + 5 + 7);
        assert_eq!(column_value("nps_10"), ("nps", 10));
        assert_eq!(column_value("ces_1"), ("ces", 1));
        assert!(roll_up().contains("nps_10 = score_days.nps_10 + EXCLUDED.nps_10"));
    }
}
