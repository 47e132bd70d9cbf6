//! SLA clocks: business-hours calendars, the deadlines of a case, and what
//! the scheduler must do about them (remind the owner, escalate up the chain).
//!
//! Everything here is pure: `now` is always a parameter, so the clocks are
//! tested table by table with an injected time.
//!
//! - A [`Calendar`] says when a store is open: a timezone, opening hours per
//!   weekday and closed days. SLA targets are *business* time: a case opened
//!   on Saturday evening in a store closed on Sunday starts its clock Monday.
//! - An [`SlaPolicy`] gives, per severity, the business time allowed to
//!   acknowledge, to first contact the customer, and to resolve.
//! - [`decide`] turns a case's clocks and `now` into [`SlaAction`]s. After
//!   downtime it never replays missed ticks: one reminder per stage at most,
//!   a stale reminder (deadline already passed) is skipped, and escalation
//!   jumps straight to the level due now.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::case::Status;
use crate::Severity;

/// How far ahead a calendar is searched for open time; past it the
/// calendar is treated as always open (it cannot happen with a valid one).
const HORIZON_DAYS: u32 = 3 * 366;

/// When a store is open, in its own timezone.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    id: String,
    timezone: Tz,
    /// Open spans per weekday, Monday first: `[open, close)` in seconds after
    /// local midnight, sorted and disjoint (close may be 86,400: midnight).
    week: [Vec<(u32, u32)>; 7],
    closed: BTreeSet<NaiveDate>,
}

/// How a calendar is written in the owner directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub id: String,
    /// An IANA timezone, e.g. `Europe/Paris`.
    pub timezone: String,
    /// Per weekday (`mon` … `sun`): `"09:00-19:00"`, several spans
    /// `"09:00-12:00,14:00-19:00"`, or `"closed"`. A missing day is closed.
    #[serde(default)]
    pub hours: BTreeMap<String, String>,
    /// Closed days (public holidays), `YYYY-MM-DD`.
    #[serde(default)]
    pub closed: Vec<String>,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Calendar {
    /// When the calendar day that contains `now` began, in the calendar's
    /// timezone (midnight local time; on a day whose midnight does not
    /// exist, the first instant of the day). Daily counts, such as the
    /// fatigue cap, follow the owner's day, not UTC's.
    pub fn day_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::{TimeZone, Timelike};
        let local = now.with_timezone(&self.timezone);
        let date = local.date_naive();
        let midnight = date
            .and_hms_opt(0, 0, 0)
            .unwrap_or_else(|| local.naive_local());
        match self.timezone.from_local_datetime(&midnight) {
            chrono::LocalResult::Single(at) => at.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            // Midnight skipped by a DST change: the day starts at the first
            // local instant that exists.
            chrono::LocalResult::None => {
                now - chrono::Duration::seconds(i64::from(local.num_seconds_from_midnight()))
            }
        }
    }

    /// When the calendar day after the one containing `now` begins: the due
    /// time of a daily digest, in the owner's day.
    pub fn next_day_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // Local days last 23 to 25 hours: 26 hours after this day's start
        // is always inside the next one.
        self.day_start(self.day_start(now) + chrono::Duration::hours(26))
    }

    /// Open all the time, in UTC: the calendar of owners without one.
    pub fn always_open() -> Self {
        Calendar {
            id: "always".into(),
            timezone: Tz::UTC,
            week: std::array::from_fn(|_| vec![(0, 86_400)]),
            closed: BTreeSet::new(),
        }
    }

    /// Check a calendar as written. An error names the field at fault.
    pub fn from_spec(spec: CalendarSpec) -> Result<Self, (String, String)> {
        let timezone: Tz = spec.timezone.parse().map_err(|_| {
            (
                "timezone".to_owned(),
                format!(
                    "unknown timezone \"{}\" (an IANA name such as Europe/Paris)",
                    spec.timezone
                ),
            )
        })?;
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, text) in &spec.hours {
            let field = format!("hours.{day}");
            let index = WEEKDAYS.iter().position(|d| d == day).ok_or_else(|| {
                (
                    field.clone(),
                    format!("unknown day \"{day}\" (use mon, tue, wed, thu, fri, sat, sun)"),
                )
            })?;
            week[index] = parse_spans(text).map_err(|message| (field, message))?;
        }
        if week.iter().all(Vec::is_empty) {
            return Err((
                "hours".into(),
                "the calendar is never open: give opening hours for at least one day".into(),
            ));
        }
        let mut closed = BTreeSet::new();
        for (index, day) in spec.closed.iter().enumerate() {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| {
                (
                    format!("closed[{index}]"),
                    format!("\"{day}\" is not a date (YYYY-MM-DD)"),
                )
            })?;
            closed.insert(date);
        }
        Ok(Calendar {
            id: spec.id,
            timezone,
            week,
            closed,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The open spans of one local day, as UTC instants.
    fn spans_on(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.closed.contains(&date) {
            return Vec::new();
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        self.week[weekday]
            .iter()
            .map(|&(open, close)| {
                (
                    local_instant(self.timezone, date, open),
                    local_instant(self.timezone, date, close),
                )
            })
            .filter(|(open, close)| close > open)
            .collect()
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.timezone).date_naive()
    }

    /// The instant at which `amount` of open time has passed since `start`.
    pub fn add_business(&self, start: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        if amount <= Duration::zero() {
            return start;
        }
        let mut remaining = amount;
        let mut date = self.local_date(start);
        for _ in 0..HORIZON_DAYS {
            for (open, close) in self.spans_on(date) {
                if close <= start {
                    continue;
                }
                let from = open.max(start);
                let available = close - from;
                if remaining <= available {
                    return from + remaining;
                }
                remaining -= available;
            }
            date = date.succ_opt().unwrap_or(date);
        }
        start + amount
    }

    /// Open time between `from` and `to` (zero when `to` is not after `from`).
    pub fn business_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        let mut date = self.local_date(from);
        let last = self.local_date(to);
        while date <= last {
            for (open, close) in self.spans_on(date) {
                let (a, b) = (open.max(from), close.min(to));
                if b > a {
                    total += b - a;
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        total
    }
}

/// `date` at `seconds` after local midnight in `timezone`, as UTC. A time
/// skipped by a daylight-saving jump maps to the first instant after it.
fn local_instant(timezone: Tz, date: NaiveDate, seconds: u32) -> DateTime<Utc> {
    let naive = date.and_time(NaiveTime::MIN) + Duration::seconds(i64::from(seconds));
    for shift in [0, 1, 2] {
        if let Some(at) = timezone
            .from_local_datetime(&(naive + Duration::hours(shift)))
            .earliest()
        {
            return at.with_timezone(&Utc);
        }
    }
    Utc.from_utc_datetime(&naive)
}

fn parse_spans(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("closed") || text.is_empty() {
        return Ok(Vec::new());
    }
    let mut spans = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (open, close) = part
            .split_once('-')
            .ok_or_else(|| format!("\"{part}\" is not a span like 09:00-19:00"))?;
        let (open, close) = (clock_seconds(open.trim())?, clock_seconds(close.trim())?);
        if close <= open {
            return Err(format!(
                "\"{part}\": closing time must be after opening time"
            ));
        }
        spans.push((open, close));
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(format!("\"{text}\": spans overlap"));
    }
    Ok(spans)
}

fn clock_seconds(text: &str) -> Result<u32, String> {
    if text == "24:00" {
        return Ok(86_400);
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| format!("\"{text}\" is not a time HH:MM"))?;
    Ok(time.num_seconds_from_midnight())
}

/// The three clocks of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Acknowledge,
    FirstContact,
    Resolve,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Acknowledge, Stage::FirstContact, Stage::Resolve];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Acknowledge => "acknowledge",
            Stage::FirstContact => "first_contact",
            Stage::Resolve => "resolve",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Business time allowed for each stage, counted from the case's opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTargets {
    pub acknowledge: Duration,
    pub first_contact: Duration,
    pub resolve: Duration,
}

impl SlaTargets {
    pub fn get(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Acknowledge => self.acknowledge,
            Stage::FirstContact => self.first_contact,
            Stage::Resolve => self.resolve,
        }
    }
}

/// SLA targets per severity, and when to remind and escalate.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    /// Severities without targets have no clocks.
    pub targets: BTreeMap<Severity, SlaTargets>,
    /// Share of a stage's allowed time after which the owner is reminded,
    /// e.g. 0.75: a 4-hour target reminds after 3 business hours.
    pub remind_at: f64,
    /// After a missed deadline, business time before the next level up is
    /// told (store manager, then regional manager, then director).
    pub escalate_every: Duration,
}

impl Default for SlaPolicy {
    /// The industry norm: contact within 24 hours, resolve within 4 days.
    fn default() -> Self {
        let hours = Duration::hours;
        let targets = |ack, contact, resolve| SlaTargets {
            acknowledge: hours(ack),
            first_contact: hours(contact),
            resolve: hours(resolve),
        };
        SlaPolicy {
            targets: BTreeMap::from([
                (Severity::Critical, targets(2, 4, 48)),
                (Severity::High, targets(4, 24, 96)),
                (Severity::Medium, targets(8, 24, 96)),
                (Severity::Low, targets(24, 48, 168)),
            ]),
            remind_at: 0.75,
            escalate_every: hours(8),
        }
    }
}

/// When a stage's owner is reminded, and when the stage is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageClock {
    pub remind_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
}

/// The deadlines of a case, one clock per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    pub acknowledge: StageClock,
    pub first_contact: StageClock,
    pub resolve: StageClock,
}

impl Deadlines {
    pub fn get(&self, stage: Stage) -> StageClock {
        match stage {
            Stage::Acknowledge => self.acknowledge,
            Stage::FirstContact => self.first_contact,
            Stage::Resolve => self.resolve,
        }
    }

    fn map(&self, mut f: impl FnMut(DateTime<Utc>) -> DateTime<Utc>) -> Deadlines {
        let clock = |c: StageClock, f: &mut dyn FnMut(DateTime<Utc>) -> DateTime<Utc>| StageClock {
            remind_at: f(c.remind_at),
            due_at: f(c.due_at),
        };
        Deadlines {
            acknowledge: clock(self.acknowledge, &mut f),
            first_contact: clock(self.first_contact, &mut f),
            resolve: clock(self.resolve, &mut f),
        }
    }

    /// The clocks after a pause from `paused_at` to `resumed_at`: every
    /// instant still ahead when the pause began keeps the business time it
    /// had left, counted again from `resumed_at`.
    pub fn resumed(
        &self,
        calendar: &Calendar,
        paused_at: DateTime<Utc>,
        resumed_at: DateTime<Utc>,
    ) -> Deadlines {
        self.map(|at| {
            if at <= paused_at {
                at
            } else {
                calendar.add_business(resumed_at, calendar.business_between(paused_at, at))
            }
        })
    }
}

impl SlaPolicy {
    /// The clocks of a case of `severity` opened at `opened_at`, or `None`
    /// when that severity has no targets.
    pub fn deadlines(
        &self,
        severity: Severity,
        calendar: &Calendar,
        opened_at: DateTime<Utc>,
    ) -> Option<Deadlines> {
        let targets = self.targets.get(&severity)?;
        let clock = |stage: Stage| {
            let allowed = targets.get(stage);
            let before = allowed.num_seconds() as f64 * self.remind_at.clamp(0.0, 1.0);
            StageClock {
                remind_at: calendar.add_business(opened_at, Duration::seconds(before as i64)),
                due_at: calendar.add_business(opened_at, allowed),
            }
        };
        Some(Deadlines {
            acknowledge: clock(Stage::Acknowledge),
            first_contact: clock(Stage::FirstContact),
            resolve: clock(Stage::Resolve),
        })
    }
}

/// What the scheduler knows of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaCase {
    pub status: Status,
    pub deadlines: Deadlines,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Stages whose reminder was sent (or skipped as stale).
    pub reminded: BTreeSet<Stage>,
    /// How far up the chain the case went: 0 not yet, 1 the owner's manager…
    pub escalation_level: u8,
    /// Since when a deadline is missed (the case is flagged).
    pub overdue_since: Option<DateTime<Utc>>,
}

impl SlaCase {
    fn met(&self, stage: Stage) -> bool {
        match stage {
            Stage::Acknowledge => self.acknowledged_at.is_some(),
            Stage::FirstContact => self.first_contact_at.is_some(),
            Stage::Resolve => self.resolved_at.is_some() || !self.status.is_active(),
        }
    }
}

/// A notification the scheduler must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlaAction {
    /// Tell the owner a deadline is near.
    Remind { stage: Stage, due_at: DateTime<Utc> },
    /// A deadline passed: tell the `level`-th owner up the chain (1: the
    /// owner's manager). Level 0: nobody is above; the owner is told.
    Escalate {
        stage: Stage,
        due_at: DateTime<Utc>,
        level: u8,
    },
}

/// The scheduler's decision for one case at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaDecision {
    pub actions: Vec<SlaAction>,
    pub reminded: BTreeSet<Stage>,
    pub escalation_level: u8,
    pub overdue_since: Option<DateTime<Utc>>,
    /// When to look at the case again; `None`: never (done or paused).
    pub next_check: Option<DateTime<Utc>>,
}

/// What to do about `case` at `now`. `chain_len` is the number of owners
/// above the case's owner.
pub fn decide(
    case: &SlaCase,
    calendar: &Calendar,
    escalate_every: Duration,
    chain_len: usize,
    now: DateTime<Utc>,
) -> SlaDecision {
    let mut decision = SlaDecision {
        actions: Vec::new(),
        reminded: case.reminded.clone(),
        escalation_level: case.escalation_level,
        overdue_since: case.overdue_since,
        next_check: None,
    };
    if !case.status.is_active() || case.status == Status::WaitingOnCustomer {
        return decision;
    }
    let pending: Vec<Stage> = Stage::ALL.into_iter().filter(|&s| !case.met(s)).collect();
    let mut candidates: Vec<DateTime<Utc>> = Vec::new();

    // Escalation follows the earliest missed deadline; one level-jump per
    // check, so catching up after downtime sends one notice, not a burst.
    let missed = pending
        .iter()
        .map(|&s| (s, case.deadlines.get(s).due_at))
        .filter(|&(_, due)| due <= now)
        .min_by_key(|&(_, due)| due);
    if let Some((stage, due_at)) = missed {
        let max_level = u8::try_from(chain_len).unwrap_or(u8::MAX);
        let steps = if escalate_every > Duration::zero() {
            let late = calendar.business_between(due_at, now);
            u8::try_from(late.num_seconds() / escalate_every.num_seconds().max(1))
                .unwrap_or(u8::MAX)
        } else {
            0
        };
        let level = steps.saturating_add(1).min(max_level);
        if case.overdue_since.is_none() || level > case.escalation_level {
            decision.actions.push(SlaAction::Escalate {
                stage,
                due_at,
                level,
            });
            decision.escalation_level = level.max(case.escalation_level);
            decision.overdue_since.get_or_insert(now);
        }
        if decision.escalation_level < max_level && escalate_every > Duration::zero() {
            let next_step = i32::from(decision.escalation_level.max(1));
            candidates.push(calendar.add_business(due_at, escalate_every * next_step));
        }
    }

    let mut to_remind: Vec<(Stage, DateTime<Utc>)> = Vec::new();
    for &stage in &pending {
        let clock = case.deadlines.get(stage);
        if clock.due_at > now {
            candidates.push(clock.due_at);
        }
        if decision.reminded.contains(&stage) {
            continue;
        }
        if clock.due_at <= now {
            // Stale: the deadline passed while nobody looked; escalation
            // speaks for it, a reminder now would only be noise.
            decision.reminded.insert(stage);
        } else if clock.remind_at <= now {
            to_remind.push((stage, clock.due_at));
            decision.reminded.insert(stage);
        } else {
            candidates.push(clock.remind_at);
        }
    }
    if let Some(&(stage, due_at)) = to_remind.iter().min_by_key(|(_, due)| *due) {
        decision.actions.push(SlaAction::Remind { stage, due_at });
    }
    decision.next_check = candidates.into_iter().filter(|&at| at > now).min();
    decision
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_day_starts_at_local_midnight() {
        let paris = Calendar::from_spec(CalendarSpec {
            id: "fr".into(),
            timezone: "Europe/Paris".into(),
            hours: BTreeMap::from([("mon".to_owned(), "09:00-19:00".to_owned())]),
            closed: Vec::new(),
        })
        .unwrap();
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        // 00:30 in Paris is still the previous day in UTC.
        assert_eq!(
            paris.day_start(at("2026-11-20T23:30:00Z")),
            at("2026-11-20T23:00:00Z")
        );
        assert_eq!(
            paris.day_start(at("2026-11-20T22:30:00Z")),
            at("2026-11-19T23:00:00Z")
        );
        // Summer time: UTC+2.
        assert_eq!(
            paris.day_start(at("2026-07-01T12:00:00Z")),
            at("2026-06-30T22:00:00Z")
        );
        assert_eq!(
            Calendar::always_open().day_start(at("2026-11-20T23:30:00Z")),
            at("2026-11-20T00:00:00Z")
        );
        // The next local day: a daily digest is due at local midnight.
        assert_eq!(
            paris.next_day_start(at("2026-11-20T22:30:00Z")),
            at("2026-11-20T23:00:00Z")
        );
        // Across the end of summer time (25 October 2026: a 25-hour day).
        assert_eq!(
            paris.next_day_start(at("2026-10-25T12:00:00Z")),
            at("2026-10-25T23:00:00Z")
        );
        assert_eq!(
            paris.next_day_start(at("2026-10-24T12:00:00Z")),
            at("2026-10-24T22:00:00Z")
        );
    }
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Paris store: Mon–Fri 09:00–12:00 and 14:00–19:00, Sat 10:00–18:00,
    /// closed Sunday and on Christmas.
    fn paris() -> Calendar {
        let hours = [
            ("mon", "09:00-12:00,14:00-19:00"),
            ("tue", "09:00-12:00,14:00-19:00"),
            ("wed", "09:00-12:00,14:00-19:00"),
            ("thu", "09:00-12:00,14:00-19:00"),
            ("fri", "09:00-12:00,14:00-19:00"),
            ("sat", "10:00-18:00"),
            ("sun", "closed"),
        ];
        Calendar::from_spec(CalendarSpec {
            id: "paris".into(),
            timezone: "Europe/Paris".into(),
            hours: hours
                .iter()
                .map(|(d, h)| (d.to_string(), h.to_string()))
                .collect(),
            closed: vec!["2026-12-25".into()],
        })
        .unwrap()
    }

    #[test]
    fn add_business_table() {
        let cal = paris();
        // (start, business hours to add, expected end); Paris is UTC+1 in
        // winter, UTC+2 in summer.
        let cases = [
            // Monday 10:00 local + 1 h, inside the morning span.
            ("2026-11-23T09:00:00Z", 60, "2026-11-23T10:00:00Z"),
            // Monday 11:30 local + 1 h: 30 min before lunch, 30 after.
            ("2026-11-23T10:30:00Z", 60, "2026-11-23T13:30:00Z"),
            // Friday 18:30 local + 2 h: 30 min Friday, 1.5 h Saturday from 10:00.
            ("2026-11-27T17:30:00Z", 120, "2026-11-28T10:30:00Z"),
            // Saturday 17:00 local + 4 h: 1 h Saturday, Sunday closed, 3 h Monday.
            ("2026-11-28T16:00:00Z", 240, "2026-11-30T11:00:00Z"),
            // Sunday (closed) + 30 min: Monday 09:30 local.
            ("2026-11-29T12:00:00Z", 30, "2026-11-30T08:30:00Z"),
            // Thursday 24 Dec 18:00 local + 2 h: Christmas closed, Saturday 10:00 + 1 h.
            ("2026-12-24T17:00:00Z", 120, "2026-12-26T10:00:00Z"),
            // Summer time: Monday 29 June 09:00 local is 07:00 UTC.
            ("2026-06-29T06:00:00Z", 60, "2026-06-29T08:00:00Z"),
            // Across the switch to winter time (Sunday 25 Oct 2026): Saturday
            // 17:30 local (UTC+2) + 1 h: 30 min, then Monday 09:00 local (UTC+1).
            ("2026-10-24T15:30:00Z", 60, "2026-10-26T08:30:00Z"),
            // Zero adds nothing, even outside hours.
            ("2026-11-29T12:00:00Z", 0, "2026-11-29T12:00:00Z"),
        ];
        for (start, minutes, expected) in cases {
            let got = cal.add_business(utc(start), Duration::minutes(minutes));
            assert_eq!(got, utc(expected), "{start} + {minutes} min");
            assert_eq!(
                cal.business_between(utc(start), got),
                Duration::minutes(minutes),
                "business_between inverts add_business from {start}"
            );
        }
    }

    #[test]
    fn always_open_is_wall_clock_time() {
        let cal = Calendar::always_open();
        let start = utc("2026-11-29T23:30:00Z");
        assert_eq!(
            cal.add_business(start, Duration::hours(25)),
            utc("2026-12-01T00:30:00Z")
        );
        assert_eq!(
            cal.business_between(start, utc("2026-12-01T00:30:00Z")),
            Duration::hours(25)
        );
    }

    #[test]
    fn calendar_errors_name_the_field() {
        let spec = |timezone: &str, day: &str, hours: &str, closed: &str| CalendarSpec {
            id: "x".into(),
            timezone: timezone.into(),
            hours: BTreeMap::from([(day.to_owned(), hours.to_owned())]),
            closed: vec![closed.to_owned()],
        };
        let cases = [
            (
                spec("Mars/Olympus", "mon", "09:00-17:00", "2026-12-25"),
                "timezone",
            ),
            (
                spec("Europe/Paris", "monday", "09:00-17:00", "2026-12-25"),
                "hours.monday",
            ),
            (
                spec("Europe/Paris", "mon", "17:00-09:00", "2026-12-25"),
                "hours.mon",
            ),
            (
                spec(
                    "Europe/Paris",
                    "mon",
                    "09:00-13:00,12:00-17:00",
                    "2026-12-25",
                ),
                "hours.mon",
            ),
            (
                spec("Europe/Paris", "mon", "9h-17h", "2026-12-25"),
                "hours.mon",
            ),
            (spec("Europe/Paris", "mon", "closed", "2026-12-25"), "hours"),
            (
                spec("Europe/Paris", "mon", "09:00-17:00", "25/12/2026"),
                "closed[0]",
            ),
        ];
        for (spec, field) in cases {
            let (got, message) = Calendar::from_spec(spec).unwrap_err();
            assert_eq!(got, field, "{message}");
        }
    }

    fn policy() -> SlaPolicy {
        SlaPolicy {
            targets: BTreeMap::from([(
                Severity::High,
                SlaTargets {
                    acknowledge: Duration::hours(2),
                    first_contact: Duration::hours(8),
                    resolve: Duration::hours(24),
                },
            )]),
            remind_at: 0.5,
            escalate_every: Duration::hours(4),
        }
    }

    #[test]
    fn deadlines_run_in_business_hours() {
        let cal = paris();
        // Opened Saturday 17:00 local: 1 h left Saturday, then Monday.
        let d = policy()
            .deadlines(Severity::High, &cal, utc("2026-11-28T16:00:00Z"))
            .unwrap();
        assert_eq!(d.acknowledge.remind_at, utc("2026-11-28T17:00:00Z"));
        assert_eq!(d.acknowledge.due_at, utc("2026-11-30T09:00:00Z"));
        // 8 h: 1 Saturday + 3 Monday morning + 4 Monday afternoon.
        assert_eq!(d.first_contact.due_at, utc("2026-11-30T17:00:00Z"));
        assert!(policy()
            .deadlines(Severity::Low, &cal, utc("2026-11-28T16:00:00Z"))
            .is_none());
    }

    #[test]
    fn a_pause_moves_the_clocks_by_the_business_time_it_took() {
        let cal = paris();
        let opened = utc("2026-11-23T08:00:00Z"); // Monday 09:00 local
        let d = policy().deadlines(Severity::High, &cal, opened).unwrap();
        assert_eq!(d.acknowledge.due_at, utc("2026-11-23T10:00:00Z"));
        // Paused Monday 10:30 local, resumed Tuesday 10:30 local: the pause
        // covered 1.5 + 5 + 1.5 = 8 business hours.
        let paused = utc("2026-11-23T09:30:00Z");
        let resumed = utc("2026-11-24T09:30:00Z");
        let after = d.resumed(&cal, paused, resumed);
        // Acknowledge had 30 min left at the pause.
        assert_eq!(after.acknowledge.due_at, utc("2026-11-24T10:00:00Z"));
        // The acknowledge reminder (1 h in) was already behind: unchanged.
        assert_eq!(after.acknowledge.remind_at, d.acknowledge.remind_at);
        for stage in Stage::ALL {
            let (before, now) = (d.get(stage).due_at, after.get(stage).due_at);
            assert_eq!(
                cal.business_between(before, now),
                Duration::hours(8),
                "{stage:?} moved by the paused business time"
            );
        }
    }

    fn case_at(deadlines: Deadlines) -> SlaCase {
        SlaCase {
            status: Status::Open,
            deadlines,
            acknowledged_at: None,
            first_contact_at: None,
            resolved_at: None,
            reminded: BTreeSet::new(),
            escalation_level: 0,
            overdue_since: None,
        }
    }

    /// Always-open clocks from 00:00: ack remind 01:00 due 02:00, contact
    /// remind 04:00 due 08:00, resolve remind 12:00 due 24:00.
    fn day_clocks() -> Deadlines {
        policy()
            .deadlines(
                Severity::High,
                &Calendar::always_open(),
                utc("2026-11-23T00:00:00Z"),
            )
            .unwrap()
    }

    #[test]
    fn decide_table() {
        let cal = Calendar::always_open();
        let every = Duration::hours(4);
        let t = |hhmm: &str| utc(&format!("2026-11-23T{hhmm}:00Z"));
        let remind = |stage, due| SlaAction::Remind {
            stage,
            due_at: t(due),
        };
        let escalate = |stage, due, level| SlaAction::Escalate {
            stage,
            due_at: t(due),
            level,
        };
        let base = case_at(day_clocks());
        let acked = SlaCase {
            status: Status::Acknowledged,
            acknowledged_at: Some(t("00:30")),
            reminded: BTreeSet::from([Stage::Acknowledge]),
            ..base.clone()
        };
        // (name, case, chain length, now, expected actions, expected next check)
        type Row<'a> = (
            &'a str,
            SlaCase,
            usize,
            &'a str,
            Vec<SlaAction>,
            Option<&'a str>,
        );
        let table: Vec<Row> = vec![
            (
                "nothing due yet",
                base.clone(),
                2,
                "00:30",
                vec![],
                Some("01:00"),
            ),
            (
                "ack reminder at half time",
                base.clone(),
                2,
                "01:00",
                vec![remind(Stage::Acknowledge, "02:00")],
                Some("02:00"),
            ),
            (
                "missed ack escalates to level 1",
                SlaCase {
                    reminded: BTreeSet::from([Stage::Acknowledge]),
                    ..base.clone()
                },
                2,
                "02:00",
                vec![escalate(Stage::Acknowledge, "02:00", 1)],
                Some("04:00"),
            ),
            (
                "catch-up after 7 h down: stale reminder skipped, level 2 at once",
                base.clone(),
                2,
                "09:00",
                vec![escalate(Stage::Acknowledge, "02:00", 2)],
                Some("12:00"),
            ),
            (
                "already escalated to level 1: nothing new before 06:00",
                SlaCase {
                    reminded: BTreeSet::from([Stage::Acknowledge]),
                    escalation_level: 1,
                    overdue_since: Some(t("02:00")),
                    ..base.clone()
                },
                2,
                "05:00",
                vec![remind(Stage::FirstContact, "08:00")],
                Some("06:00"),
            ),
            (
                "no chain: flagged once, owner told (level 0)",
                SlaCase {
                    reminded: BTreeSet::from([Stage::Acknowledge]),
                    ..base.clone()
                },
                0,
                "03:00",
                vec![escalate(Stage::Acknowledge, "02:00", 0)],
                Some("04:00"),
            ),
            (
                "no chain, already flagged: quiet",
                SlaCase {
                    reminded: BTreeSet::from([Stage::Acknowledge, Stage::FirstContact]),
                    overdue_since: Some(t("02:00")),
                    ..base.clone()
                },
                0,
                "07:00",
                vec![],
                Some("08:00"),
            ),
            (
                "acknowledged in time: contact reminder",
                acked.clone(),
                2,
                "04:00",
                vec![remind(Stage::FirstContact, "08:00")],
                Some("08:00"),
            ),
            (
                "paused: nothing at all",
                SlaCase {
                    status: Status::WaitingOnCustomer,
                    ..acked.clone()
                },
                2,
                "23:00",
                vec![],
                None,
            ),
            (
                "resolved: nothing at all",
                SlaCase {
                    status: Status::Resolved,
                    resolved_at: Some(t("03:00")),
                    ..acked.clone()
                },
                2,
                "23:00",
                vec![],
                None,
            ),
        ];
        for (name, case, chain, now, actions, next) in table {
            let decision = decide(&case, &cal, every, chain, t(now));
            assert_eq!(decision.actions, actions, "{name}: actions");
            assert_eq!(decision.next_check, next.map(t), "{name}: next check");
        }
    }

    #[test]
    fn deciding_twice_at_the_same_instant_sends_nothing_twice() {
        let cal = Calendar::always_open();
        let mut case = case_at(day_clocks());
        let now = utc("2026-11-23T03:00:00Z");
        let first = decide(&case, &cal, Duration::hours(4), 2, now);
        assert_eq!(first.actions.len(), 1);
        case.reminded = first.reminded;
        case.escalation_level = first.escalation_level;
        case.overdue_since = first.overdue_since;
        let second = decide(&case, &cal, Duration::hours(4), 2, now);
        assert!(second.actions.is_empty(), "{:?}", second.actions);
        assert_eq!(second.next_check, first.next_check);
    }
}
