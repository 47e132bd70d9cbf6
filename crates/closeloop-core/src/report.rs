//! The weekly report to regional managers and directors: which week it
//! covers (the last full week, Monday to Monday in the owner's calendar),
//! who gets one, and which stores need attention, and why. Pure.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::owners::{Owner, OwnerDirectory};
use crate::sla::Calendar;

/// The week a report covers: `[start, end)`, Monday midnight to Monday
/// midnight in the owner's calendar; `monday` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportWeek {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub monday: NaiveDate,
}

/// The last full week before `now`. A report is due as soon as its week
/// ends; after downtime, only the latest week is due (one email, not one
/// per week missed).
pub fn last_full_week(calendar: &Calendar, now: DateTime<Utc>) -> ReportWeek {
    let local = now.with_timezone(&calendar.timezone());
    let since_monday = i64::from(local.weekday().num_days_from_monday());
    // Noon of the day, so a daylight-saving change never moves it to the
    // day before or after.
    let end = calendar
        .day_start(calendar.day_start(now) - Duration::days(since_monday) + Duration::hours(12));
    let start = calendar.day_start(end - Duration::days(7) + Duration::hours(12));
    ReportWeek {
        start,
        end,
        monday: start.with_timezone(&calendar.timezone()).date_naive(),
    }
}

/// Whether `owner` gets the weekly report: as configured
/// (`weekly_report`), else when someone reports to them or they cover
/// regions (regional managers, directors).
pub fn gets_report(directory: &OwnerDirectory, owner: &Owner) -> bool {
    owner
        .weekly_report
        .unwrap_or_else(|| !owner.regions.is_empty() || directory.team_of(&owner.id).len() > 1)
}

/// One store's week, as the report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreWeek {
    pub store: String,
    /// Cases of the week that missed a deadline.
    pub overdue: i64,
    pub nps: Option<f64>,
    pub nps_before: Option<f64>,
    /// The most given root cause of the week and how often.
    pub top_cause: Option<(String, i64)>,
}

/// Why a store needs attention.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Overdue(i64),
    NpsFell { from: f64, to: f64 },
    RootCause { cause: String, cases: i64 },
}

/// A fall of the NPS worth a manager's look, in points.
pub const NPS_FALL: f64 = 10.0;
/// A root cause given this often in a week is a pattern, not bad luck.
pub const FREQUENT_CAUSE: i64 = 3;

/// The stores most in need of attention (at most `limit`), each with its
/// reasons: missed deadlines first, then the largest NPS falls.
pub fn attention(stores: &[StoreWeek], limit: usize) -> Vec<(String, Vec<Reason>)> {
    let mut flagged: Vec<(i64, f64, String, Vec<Reason>)> = stores
        .iter()
        .filter_map(|s| {
            let mut reasons = Vec::new();
            if s.overdue > 0 {
                reasons.push(Reason::Overdue(s.overdue));
            }
            let fall = match (s.nps_before, s.nps) {
                (Some(before), Some(now)) if before - now >= NPS_FALL => {
                    reasons.push(Reason::NpsFell {
                        from: before,
                        to: now,
                    });
                    before - now
                }
                _ => 0.0,
            };
            if let Some((cause, cases)) = &s.top_cause {
                if *cases >= FREQUENT_CAUSE {
                    reasons.push(Reason::RootCause {
                        cause: cause.clone(),
                        cases: *cases,
                    });
                }
            }
            (!reasons.is_empty()).then(|| (s.overdue, fall, s.store.clone(), reasons))
        })
        .collect();
    flagged.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    flagged
        .into_iter()
        .take(limit)
        .map(|(_, _, store, reasons)| (store, reasons))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::CalendarSpec;

    fn paris() -> Calendar {
        Calendar::from_spec(CalendarSpec {
            id: "fr".into(),
            timezone: "Europe/Paris".into(),
            hours: [("mon".to_owned(), "09:00-19:00".to_owned())].into(),
            closed: vec![],
        })
        .unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_last_full_week_in_the_owner_calendar() {
        let table = [
            // A Tuesday: the week of Monday 23 to Monday 30 November.
            (
                "2026-12-01T15:00:00Z",
                "2026-11-22T23:00:00Z",
                "2026-11-29T23:00:00Z",
                "2026-11-23",
            ),
            // Monday 00:30 in Paris: the week that just ended.
            (
                "2026-11-29T23:30:00Z",
                "2026-11-22T23:00:00Z",
                "2026-11-29T23:00:00Z",
                "2026-11-23",
            ),
            // Sunday night in Paris: the week before.
            (
                "2026-11-29T22:30:00Z",
                "2026-11-15T23:00:00Z",
                "2026-11-22T23:00:00Z",
                "2026-11-16",
            ),
            // The week of the change to summer time: 167 hours long.
            (
                "2026-04-01T10:00:00Z",
                "2026-03-22T23:00:00Z",
                "2026-03-29T22:00:00Z",
                "2026-03-23",
            ),
        ];
        for (now, start, end, monday) in table {
            let week = last_full_week(&paris(), at(now));
            assert_eq!(
                (week.start, week.end, week.monday.to_string()),
                (at(start), at(end), monday.to_owned()),
                "{now}"
            );
        }
    }

    #[test]
    fn stores_in_need_of_attention_and_why() {
        let store = |name: &str,
                     overdue,
                     nps: Option<f64>,
                     before: Option<f64>,
                     cause: Option<(&str, i64)>| StoreWeek {
            store: name.into(),
            overdue,
            nps,
            nps_before: before,
            top_cause: cause.map(|(c, n)| (c.to_owned(), n)),
        };
        let stores = [
            store("CALM", 0, Some(40.0), Some(42.0), Some(("stock", 1))),
            store("FALLING", 0, Some(10.0), Some(35.0), None),
            store(
                "LATE",
                2,
                Some(30.0),
                Some(30.0),
                Some(("delivery_delay", 4)),
            ),
            store("SLIGHTLY", 0, Some(20.0), Some(29.0), None),
            store("NEW", 1, None, None, None),
        ];
        let picked = attention(&stores, 3);
        assert_eq!(
            picked,
            vec![
                (
                    "LATE".to_owned(),
                    vec![
                        Reason::Overdue(2),
                        Reason::RootCause {
                            cause: "delivery_delay".into(),
                            cases: 4
                        }
                    ]
                ),
                ("NEW".to_owned(), vec![Reason::Overdue(1)]),
                (
                    "FALLING".to_owned(),
                    vec![Reason::NpsFell {
                        from: 35.0,
                        to: 10.0
                    }]
                ),
            ]
        );
        assert_eq!(attention(&stores, 1).len(), 1);
        assert!(attention(&stores[..1], 3).is_empty());
    }
}
