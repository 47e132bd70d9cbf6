//! How long a case took to reach each stage, in business time: the open
//! hours of the owner's calendar between the case's opening and the stage,
//! less the open hours it spent waiting on the customer. Loop health's
//! median and p90 times are percentiles of these figures, recorded on the
//! case when a transition reaches the stage (the calendar then in force),
//! so a report never recomputes calendars over a period's cases.
//!
//! Pure: the calendar, the instants and the case's states before and after
//! a transition are parameters.

use chrono::{DateTime, Duration, Utc};

use crate::case::{CaseState, Status};
use crate::sla::Calendar;

/// What a case records of its business times. `waited` is the open time
/// of its pauses that have ended (since its clocks last started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimes {
    pub waited: Duration,
    pub acknowledge: Option<Duration>,
    pub first_contact: Option<Duration>,
    pub resolve: Option<Duration>,
}

/// The instants of a case that its business times count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseClocks {
    pub opened_at: DateTime<Utc>,
    /// A reopening restarts the clocks: the next resolution counts from it.
    pub restarted_at: Option<DateTime<Utc>>,
    /// The running pause's start, when the case waits on the customer.
    pub paused_at: Option<DateTime<Utc>>,
}

/// Business time from `start` to `at` less `waited` (never negative).
fn taken(
    calendar: &Calendar,
    start: DateTime<Utc>,
    at: DateTime<Utc>,
    waited: Duration,
) -> Duration {
    (calendar.business_between(start, at) - waited).max(Duration::zero())
}

/// The times after a transition from `before` to `after` at `now`: a stage
/// reached now gets its time; a pause that ends now adds its open time to
/// `waited`; a reopening clears the resolution and starts `waited` afresh.
pub fn after_transition(
    calendar: &Calendar,
    clocks: CaseClocks,
    times: StageTimes,
    before: &CaseState,
    after: &CaseState,
    now: DateTime<Utc>,
) -> StageTimes {
    if after.status == Status::Reopened && before.status != Status::Reopened {
        return StageTimes {
            waited: Duration::zero(),
            resolve: None,
            ..times
        };
    }
    // The pause running until now, if the case was waiting.
    let running = match (before.status, clocks.paused_at) {
        (Status::WaitingOnCustomer, Some(since)) => calendar.business_between(since, now),
        _ => Duration::zero(),
    };
    let waited_now = times.waited + running;
    let reached =
        |was: Option<DateTime<Utc>>, is: Option<DateTime<Utc>>, start, old| match (was, is) {
            (None, Some(at)) => Some(taken(calendar, start, at, waited_now)),
            (_, None) => None,
            (Some(_), Some(_)) => old,
        };
    let opened = clocks.opened_at;
    let restart = clocks.restarted_at.unwrap_or(opened);
    StageTimes {
        waited: if after.status == Status::WaitingOnCustomer {
            times.waited
        } else {
            waited_now
        },
        acknowledge: reached(
            before.acknowledged_at,
            after.acknowledged_at,
            opened,
            times.acknowledge,
        ),
        first_contact: reached(
            before.first_contact_at,
            after.first_contact_at,
            opened,
            times.first_contact,
        ),
        resolve: reached(
            before.resolved_at,
            after.resolved_at,
            restart,
            times.resolve,
        ),
    }
}

/// The times of a case stored before they were recorded, from its
/// instants alone (its pauses are not known any more: none is deducted).
pub fn from_instants(calendar: &Calendar, clocks: CaseClocks, state: &CaseState) -> StageTimes {
    let opened = clocks.opened_at;
    let restart = clocks.restarted_at.unwrap_or(opened);
    let since = |start, at: Option<DateTime<Utc>>| {
        at.map(|at| taken(calendar, start, at, Duration::zero()))
    };
    StageTimes {
        waited: Duration::zero(),
        acknowledge: since(opened, state.acknowledged_at),
        first_contact: since(opened, state.first_contact_at),
        resolve: since(restart, state.resolved_at),
    }
}

/// The `p` quantile (0 to 1) of `sorted` (ascending), interpolated between
/// the two nearest values as SQL's `percentile_cont` does; `None` when empty.
pub fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = p.clamp(0.0, 1.0) * last as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (sorted[low] as f64, sorted[high.min(last)] as f64);
    Some(a + (rank - low as f64) * (b - a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::CalendarSpec;
    use std::collections::BTreeMap;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Paris, open 09:00–18:00 Monday to Saturday, closed on Sunday.
    fn paris() -> Calendar {
        let hours = ["mon", "tue", "wed", "thu", "fri", "sat"]
            .into_iter()
            .map(|d| (d.to_owned(), "09:00-18:00".to_owned()))
            .collect::<BTreeMap<_, _>>();
        Calendar::from_spec(CalendarSpec {
            id: "paris".into(),
            timezone: "Europe/Paris".into(),
            hours,
            closed: vec![],
        })
        .unwrap()
    }

    fn state(
        status: Status,
        ack: Option<&str>,
        contact: Option<&str>,
        resolved: Option<&str>,
    ) -> CaseState {
        CaseState {
            status,
            acknowledged_at: ack.map(utc),
            first_contact_at: contact.map(utc),
            resolved_at: resolved.map(utc),
            ..CaseState::opened()
        }
    }

    fn hours(h: i64) -> Duration {
        Duration::hours(h)
    }

    #[test]
    fn stages_take_business_time_between_opening_and_the_step() {
        // Opened Saturday 17:00 Paris (16:00 UTC); the store is closed on Sunday.
        let clocks = CaseClocks {
            opened_at: utc("2026-11-28T16:00:00Z"),
            restarted_at: None,
            paused_at: None,
        };
        let open = CaseState::opened();
        // (before, after, now, expected acknowledge, contact, resolve)
        let table = [
            // Acknowledged Monday 10:00 Paris: 1 h Saturday + 1 h Monday.
            (
                &open,
                state(
                    Status::Acknowledged,
                    Some("2026-11-30T09:00:00Z"),
                    None,
                    None,
                ),
                "2026-11-30T09:00:00Z",
                Some(hours(2)),
                None,
                None,
            ),
            // Acknowledged on Sunday, when closed: 1 h (Saturday's).
            (
                &open,
                state(
                    Status::Acknowledged,
                    Some("2026-11-29T12:00:00Z"),
                    None,
                    None,
                ),
                "2026-11-29T12:00:00Z",
                Some(hours(1)),
                None,
                None,
            ),
            // Called (acknowledged and contacted at once) Tuesday 09:00 Paris: 1 + 9 h.
            (
                &open,
                state(
                    Status::Contacted,
                    Some("2026-12-01T08:00:00Z"),
                    Some("2026-12-01T08:00:00Z"),
                    None,
                ),
                "2026-12-01T08:00:00Z",
                Some(hours(10)),
                Some(hours(10)),
                None,
            ),
        ];
        for (before, after, now, ack, contact, resolve) in table {
            let times = after_transition(
                &paris(),
                clocks,
                StageTimes::default(),
                before,
                &after,
                utc(now),
            );
            assert_eq!(
                (times.acknowledge, times.first_contact, times.resolve),
                (ack, contact, resolve),
                "{after:?}"
            );
        }
    }

    #[test]
    fn a_stage_already_reached_keeps_its_time() {
        let clocks = CaseClocks {
            opened_at: utc("2026-11-30T08:00:00Z"),
            restarted_at: None,
            paused_at: None,
        };
        let before = state(
            Status::Acknowledged,
            Some("2026-11-30T09:00:00Z"),
            None,
            None,
        );
        let after = state(
            Status::Contacted,
            Some("2026-11-30T09:00:00Z"),
            Some("2026-11-30T11:00:00Z"),
            None,
        );
        let times = StageTimes {
            acknowledge: Some(hours(1)),
            ..StageTimes::default()
        };
        let next = after_transition(
            &paris(),
            clocks,
            times,
            &before,
            &after,
            utc("2026-11-30T11:00:00Z"),
        );
        assert_eq!(next.acknowledge, Some(hours(1)));
        assert_eq!(next.first_contact, Some(hours(3)));
    }

    #[test]
    fn waiting_on_the_customer_does_not_count() {
        let clocks = CaseClocks {
            opened_at: utc("2026-11-30T08:00:00Z"), // Monday 09:00 Paris
            restarted_at: None,
            paused_at: Some(utc("2026-11-30T10:00:00Z")),
        };
        let contacted = state(
            Status::Contacted,
            Some("2026-11-30T09:00:00Z"),
            Some("2026-11-30T09:00:00Z"),
            None,
        );
        let waiting = CaseState {
            status: Status::WaitingOnCustomer,
            ..contacted.clone()
        };
        // Going to wait records nothing yet: the pause is running.
        let paused = after_transition(
            &paris(),
            clocks,
            StageTimes::default(),
            &contacted,
            &waiting,
            utc("2026-11-30T10:00:00Z"),
        );
        assert_eq!(paused.waited, Duration::zero());
        // Resolved straight from waiting, Tuesday 10:00 Paris: 10 open hours
        // since the opening (9 on Monday, 1 on Tuesday), 8 of them waited
        // (Monday 11:00 to 18:00, Tuesday 09:00 to 10:00): 2 h.
        let resolved = CaseState {
            status: Status::Resolved,
            resolved_at: Some(utc("2026-12-01T09:00:00Z")),
            ..contacted.clone()
        };
        let done = after_transition(
            &paris(),
            clocks,
            paused,
            &waiting,
            &resolved,
            utc("2026-12-01T09:00:00Z"),
        );
        assert_eq!(done.waited, hours(8));
        assert_eq!(done.resolve, Some(hours(2)));
    }

    #[test]
    fn a_reopening_clears_the_resolution_and_restarts_from_it() {
        let opened = utc("2026-11-30T08:00:00Z");
        let resolved = state(
            Status::Resolved,
            Some("2026-11-30T09:00:00Z"),
            Some("2026-11-30T09:00:00Z"),
            Some("2026-11-30T10:00:00Z"),
        );
        let reopened = CaseState {
            status: Status::Reopened,
            resolved_at: None,
            ..resolved.clone()
        };
        let clocks = CaseClocks {
            opened_at: opened,
            restarted_at: None,
            paused_at: None,
        };
        let times = StageTimes {
            waited: hours(3),
            acknowledge: Some(hours(1)),
            first_contact: Some(hours(1)),
            resolve: Some(hours(2)),
        };
        let after = after_transition(
            &paris(),
            clocks,
            times,
            &resolved,
            &reopened,
            utc("2026-12-01T08:00:00Z"),
        );
        assert_eq!(
            after,
            StageTimes {
                waited: Duration::zero(),
                acknowledge: Some(hours(1)),
                first_contact: Some(hours(1)),
                resolve: None,
            }
        );
        // Resolved again Tuesday 12:00 Paris: 3 h after the reopening at 09:00.
        let again = CaseState {
            status: Status::Resolved,
            resolved_at: Some(utc("2026-12-01T11:00:00Z")),
            ..reopened.clone()
        };
        let restarted = CaseClocks {
            restarted_at: Some(utc("2026-12-01T08:00:00Z")),
            ..clocks
        };
        let last = after_transition(
            &paris(),
            restarted,
            after,
            &reopened,
            &again,
            utc("2026-12-01T11:00:00Z"),
        );
        assert_eq!(last.resolve, Some(hours(3)));
        assert_eq!(last.acknowledge, Some(hours(1)));
    }

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        // (values, p, expected)
        let table: [(&[i64], f64, Option<f64>); 7] = [
            (&[], 0.5, None),
            (&[7], 0.9, Some(7.0)),
            (&[1800, 7200], 0.5, Some(4500.0)),
            (&[6000, 18000], 0.9, Some(16800.0)),
            (&[1, 2, 3, 4], 0.5, Some(2.5)),
            (&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9, Some(91.0)),
            (&[5, 5, 5], 0.0, Some(5.0)),
        ];
        for (values, p, expected) in table {
            assert_eq!(percentile(values, p), expected, "{values:?} at {p}");
        }
    }

    #[test]
    fn older_cases_get_their_times_from_their_instants() {
        let clocks = CaseClocks {
            opened_at: utc("2026-11-28T16:00:00Z"),
            restarted_at: None,
            paused_at: None,
        };
        let done = state(
            Status::Resolved,
            Some("2026-11-30T09:00:00Z"),
            None,
            Some("2026-11-30T12:00:00Z"),
        );
        let times = from_instants(&paris(), clocks, &done);
        assert_eq!(times.acknowledge, Some(hours(2)));
        assert_eq!(times.first_contact, None);
        assert_eq!(times.resolve, Some(hours(5)));
        // Without business hours, business time is wall-clock time.
        let always = from_instants(&Calendar::always_open(), clocks, &done);
        assert_eq!(always.resolve, Some(hours(44)));
    }
}
