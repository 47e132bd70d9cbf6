//! The intake's decision for a batch of new events: which open a case,
//! which attach to an active case with the same key, which are silenced,
//! which reopen a resolved case or close its recovery loop, and which alert
//! emails the daily fatigue cap sends to the owner's digest.
//!
//! The store reads a [`Snapshot`] inside the batch transaction, asks
//! [`plan_batch`], and writes the [`BatchPlan`] without deciding anything.
//! Reopening goes through [`CaseState::apply`], the same transition as an
//! owner's `reopen`, so both paths record and notify alike.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::case::{CaseState, Command, HistoryEntry, Status, Transition};
use crate::coalesce::{case_key, CaseKeyField};
use crate::event::FeedbackEvent;
use crate::owners::DigestMode;
use crate::policy::{Alert, PlannedNotification};
use crate::{Channel, Severity};

pub use crate::case::SYSTEM_ACTOR;

/// How a batch is planned (the `[cases]` settings).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOptions {
    /// Fields of the case key: alerts with the same key coalesce.
    pub case_key: Vec<CaseKeyField>,
    /// How long a case gathers new alerts with its key; zero: off.
    pub coalesce_window: Duration,
    /// Immediate alert emails per owner and day; zero: no cap.
    pub fatigue_cap_per_day: u32,
    /// How long after resolution a new answer closes the recovery loop or
    /// reopens the case; zero: off.
    pub recovery_window: Duration,
}

impl BatchOptions {
    /// Whether the snapshot needs the active cases of the batch's keys.
    pub fn coalesces(&self) -> bool {
        self.coalesce_window > Duration::zero()
    }

    /// Whether the snapshot needs the recently resolved cases.
    pub fn recovers(&self) -> bool {
        self.recovery_window > Duration::zero()
    }
}

/// One new event of the batch (already stored for the first time) and what
/// the policy said of it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub event: &'a FeedbackEvent,
    pub alert: Option<&'a Alert>,
    /// A silence mutes the alert: recorded, no case.
    pub silenced: bool,
    /// When the owner's next day begins in their calendar (a daily digest
    /// is due then); `None`: the next UTC midnight.
    pub owner_next_day_start: Option<DateTime<Utc>>,
}

/// An active case of a key, as the snapshot read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveCase<Id> {
    pub id: Id,
    pub severity: Severity,
    pub status: Status,
}

/// The latest case of a key resolved within the recovery window, with no
/// active case of that key.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCase<Id> {
    pub id: Id,
    pub state: CaseState,
    pub severity: Severity,
    pub created_at: DateTime<Utc>,
    /// A promoter answer already closed its recovery loop.
    pub recovered: bool,
}

/// What the store read for the batch, inside its transaction.
#[derive(Debug, Clone)]
pub struct Snapshot<Id> {
    /// Per case key, its newest active case younger than the coalescing window.
    pub active: HashMap<String, ActiveCase<Id>>,
    /// Per case key, see [`ResolvedCase`].
    pub resolved: HashMap<String, ResolvedCase<Id>>,
    /// Per owner, the immediate alert emails already queued since the
    /// start of their day.
    pub emails_today: HashMap<String, u32>,
}

impl<Id> Default for Snapshot<Id> {
    fn default() -> Self {
        Snapshot {
            active: HashMap::new(),
            resolved: HashMap::new(),
            emails_today: HashMap::new(),
        }
    }
}

/// A case that the plan opens or one that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseRef<Id> {
    Existing(Id),
    /// Index into [`BatchPlan::new_cases`].
    New(usize),
}

/// A case to open for candidate `input`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase<'a> {
    pub input: usize,
    pub key: String,
    /// Sent now (the alert email is left out past the fatigue cap).
    pub notifications: Vec<&'a PlannedNotification>,
    /// The alert email goes to the owner's digest of this mode, due then.
    pub digest: Option<(DigestMode, DateTime<Utc>)>,
    /// Past the owner's daily cap: its email went to the digest.
    pub over_cap: bool,
}

/// Candidate `input` joins an active case.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment<Id> {
    pub input: usize,
    pub case: CaseRef<Id>,
    /// The case's severity rises to this (never lowers).
    pub raise_to: Option<Severity>,
    pub entry: HistoryEntry,
}

/// Candidate `input` reopens a resolved case: the owner's `reopen`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reopening<Id> {
    pub input: usize,
    pub case: Id,
    /// The command applied, as an owner's `reopen` would send it.
    pub command: Command,
    pub transition: Transition,
}

/// Candidate `input` (a promoter) closes a case's recovery loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery<Id> {
    pub input: usize,
    pub case: Id,
    pub entry: HistoryEntry,
}

/// Everything the batch changes, for the store to write.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan<'a, Id> {
    /// Candidates whose alert a silence muted.
    pub silenced: Vec<usize>,
    pub new_cases: Vec<NewCase<'a>>,
    pub attachments: Vec<Attachment<Id>>,
    pub reopenings: Vec<Reopening<Id>>,
    pub recoveries: Vec<Recovery<Id>>,
}

impl<Id> BatchPlan<'_, Id> {
    /// New cases whose alert email the cap sent to a digest.
    pub fn fatigue_deferred(&self) -> usize {
        self.new_cases.iter().filter(|c| c.over_cap).count()
    }
}

/// The case keys of `candidates`, in order: what the snapshot reads.
pub fn candidate_keys(candidates: &[Candidate<'_>], options: &BatchOptions) -> Vec<String> {
    candidates
        .iter()
        .map(|c| case_key(c.event, &options.case_key))
        .collect()
}

/// Each alerting owner's day start, for counting their emails of the day:
/// the one their calendar gives, else UTC midnight of `now`.
pub fn owner_day_starts<'a>(
    alerts: impl IntoIterator<Item = (&'a Alert, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    let utc_midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |d| d.and_utc());
    let mut starts: HashMap<String, DateTime<Utc>> = HashMap::new();
    for (alert, start) in alerts {
        let slot = starts.entry(alert.owner.id.clone()).or_insert(utc_midnight);
        if let Some(start) = start {
            *slot = start;
        }
    }
    let mut starts: Vec<_> = starts.into_iter().collect();
    starts.sort();
    starts
}

/// Plan a batch of new events. `snapshot` is what the store read for
/// their keys; nothing here reads anything else.
pub fn plan_batch<'a, Id: Copy>(
    candidates: &[Candidate<'a>],
    snapshot: Snapshot<Id>,
    options: &BatchOptions,
    now: DateTime<Utc>,
) -> BatchPlan<'a, Id> {
    let Snapshot {
        mut active,
        mut resolved,
        mut emails_today,
    } = snapshot;
    if !options.coalesces() {
        active.clear();
    }
    if !options.recovers() {
        resolved.clear();
    }
    let keys = candidate_keys(candidates, options);
    let mut plan = BatchPlan {
        silenced: Vec::new(),
        new_cases: Vec::new(),
        attachments: Vec::new(),
        reopenings: Vec::new(),
        recoveries: Vec::new(),
    };
    // Active cases by key as the batch goes, new ones included.
    let mut open: HashMap<String, OpenEntry<Id>> = active
        .drain()
        .map(|(key, case)| {
            (
                key,
                (CaseRef::Existing(case.id), case.severity, case.status),
            )
        })
        .collect();
    for (input, (candidate, key)) in candidates.iter().zip(&keys).enumerate() {
        if candidate.alert.is_some() && candidate.silenced {
            plan.silenced.push(input);
        }
        // One answer per resolved case and batch: the first decides.
        if let Some(case) = resolved.remove(key) {
            if let Some(reopened) = recover_or_reopen(&mut plan, input, candidate, case, now) {
                if reopened.1 >= now - options.coalesce_window {
                    open.insert(key.clone(), reopened.0);
                }
                continue;
            }
        }
        let Some(alert) = candidate.alert.filter(|_| !candidate.silenced) else {
            continue;
        };
        match open.get_mut(key).filter(|_| options.coalesces()) {
            Some((case, severity, status)) => {
                let raise_to = (alert.severity > *severity).then_some(alert.severity);
                *severity = (*severity).max(alert.severity);
                plan.attachments.push(Attachment {
                    input,
                    case: *case,
                    raise_to,
                    entry: attach_entry(candidate.event, alert, *status, now),
                });
            }
            None => {
                let reference = CaseRef::New(plan.new_cases.len());
                open.insert(key.clone(), (reference, alert.severity, Status::Open));
                let case = new_case(input, key, candidate, options, &mut emails_today, now);
                plan.new_cases.push(case);
            }
        }
    }
    plan
}

/// An active case of the batch, as coalescing sees it.
type OpenEntry<Id> = (CaseRef<Id>, Severity, Status);

/// A reopening (returns the case's active entry and creation time) or a
/// recovery, recorded in `plan`; `None` when the answer does neither.
fn recover_or_reopen<Id: Copy>(
    plan: &mut BatchPlan<'_, Id>,
    input: usize,
    candidate: &Candidate<'_>,
    case: ResolvedCase<Id>,
    now: DateTime<Utc>,
) -> Option<(OpenEntry<Id>, DateTime<Utc>)> {
    let event = candidate.event;
    let details = serde_json::json!({
        "event_id": event.event_id,
        "rules": candidate.alert.map(|a| a.rule_ids.clone()),
    });
    if candidate.alert.is_some() && !candidate.silenced {
        let reason = format!("the customer answered again: {}", event.scores.summary());
        let command = Command::Reopen { reason };
        let mut transition = case.state.apply(&command, SYSTEM_ACTOR, now, &[]).ok()?;
        transition.entry.details = details;
        let status = transition.state.status;
        plan.reopenings.push(Reopening {
            input,
            case: case.id,
            command,
            transition,
        });
        return Some((
            (CaseRef::Existing(case.id), case.severity, status),
            case.created_at,
        ));
    }
    if event.scores.is_recovery() && !case.recovered {
        plan.recoveries.push(Recovery {
            input,
            case: case.id,
            entry: HistoryEntry {
                at: now,
                actor: SYSTEM_ACTOR.into(),
                action: "recovered".into(),
                from_status: Some(case.state.status),
                to_status: case.state.status,
                note: Some(format!(
                    "the customer came back happy: {}",
                    event.scores.summary()
                )),
                details,
            },
        });
    }
    None
}

fn attach_entry(
    event: &FeedbackEvent,
    alert: &Alert,
    status: Status,
    now: DateTime<Utc>,
) -> HistoryEntry {
    HistoryEntry {
        at: now,
        actor: SYSTEM_ACTOR.into(),
        action: "attach".into(),
        from_status: Some(status),
        to_status: status,
        note: None,
        details: serde_json::json!({
            "event_id": event.event_id, "rules": alert.rule_ids, "severity": alert.severity,
        }),
    }
}

/// A new case; its alert email counts against the owner's daily cap.
fn new_case<'a>(
    input: usize,
    key: &str,
    candidate: &Candidate<'a>,
    options: &BatchOptions,
    emails_today: &mut HashMap<String, u32>,
    now: DateTime<Utc>,
) -> NewCase<'a> {
    let alert = candidate
        .alert
        .expect("only alerting candidates open cases");
    let is_email = |n: &&PlannedNotification| n.channel == Channel::Email;
    let mut over_cap = false;
    if options.fatigue_cap_per_day > 0 && alert.notifications.iter().any(|n| is_email(&n)) {
        let count = emails_today.entry(alert.owner.id.clone()).or_default();
        if *count >= options.fatigue_cap_per_day {
            over_cap = true;
        } else {
            *count += 1;
        }
    }
    let notifications = alert
        .notifications
        .iter()
        .filter(|n| !(over_cap && is_email(n)))
        .collect();
    let mode = alert.email_digest.or(over_cap.then_some(DigestMode::Daily));
    let digest = mode.map(|mode| {
        let due = match (mode, candidate.owner_next_day_start) {
            (DigestMode::Daily, Some(next_day)) => next_day,
            _ => mode.period_end(now),
        };
        (mode, due)
    });
    NewCase {
        input,
        key: key.to_owned(),
        notifications,
        digest,
        over_cap,
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
