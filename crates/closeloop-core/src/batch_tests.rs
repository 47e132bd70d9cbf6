use super::*;
use crate::owners::{Owner, RouteVia};
use crate::parse_event;

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-20T{hour:02}:00:00Z").parse().unwrap()
}

fn event(id: &str, customer: &str, nps: u8) -> FeedbackEvent {
    let json = format!(
        r#"{{"event_id":"{id}","occurred_at":"2026-11-20T10:00:00Z","source":"s","customer":{{"id":"{customer}"}},
           "journey":{{"touchpoint":"delivery"}},"location":{{"store_id":"LYON-02"}},"scores":{{"nps":{nps}}}}}"#
    );
    parse_event(json.as_bytes(), 1 << 16).unwrap()
}

fn alert(owner: &str, severity: Severity, digest: Option<DigestMode>) -> Alert {
    let owner = Owner {
        id: owner.into(),
        name: owner.into(),
        email: format!("{owner}@example.com"),
        webhook_url: Some("https://crm.example.com/hook".into()),
        locale: "fr-FR".into(),
        escalates_to: None,
        stores: vec![],
        regions: vec![],
        digest: DigestMode::Immediate,
        calendar: None,
        weekly_report: None,
    };
    Alert {
        rule_ids: vec!["nps-detractor".into()],
        severity,
        notifications: vec![
            PlannedNotification {
                channel: Channel::Email,
                recipient: owner.email.clone(),
            },
            PlannedNotification {
                channel: Channel::Webhook,
                recipient: "https://crm.example.com/hook".into(),
            },
        ],
        owner,
        route: RouteVia::Store,
        owner_from_rule: None,
        channels: vec![Channel::Email, Channel::Webhook],
        email_digest: digest,
    }
}

fn options() -> BatchOptions {
    BatchOptions {
        case_key: crate::coalesce::DEFAULT_CASE_KEY.to_vec(),
        coalesce_window: Duration::days(7),
        fatigue_cap_per_day: 0,
        recovery_window: Duration::days(30),
    }
}

fn key(customer: &str) -> String {
    format!("customer_id={customer}|store=LYON-02")
}

fn resolved(id: u32, recovered: bool) -> ResolvedCase<u32> {
    let mut state = CaseState::opened();
    state.status = Status::Resolved;
    state.version = 4;
    state.resolved_at = Some(at(8));
    state.root_cause = Some("delivery_delay".into());
    ResolvedCase {
        id,
        state,
        severity: Severity::High,
        created_at: at(6),
        recovered,
    }
}

fn candidate<'a>(event: &'a FeedbackEvent, alert: Option<&'a Alert>) -> Candidate<'a> {
    Candidate {
        event,
        alert,
        silenced: false,
        owner_next_day_start: None,
    }
}

/// What a plan did with each candidate, in one word, for table tests.
fn outcome_of(plan: &BatchPlan<'_, u32>, input: usize) -> String {
    let mut words = Vec::new();
    if plan.silenced.contains(&input) {
        words.push("silenced".to_owned());
    }
    if let Some(n) = plan.new_cases.iter().position(|c| c.input == input) {
        words.push(format!("new#{n}"));
    }
    for a in plan.attachments.iter().filter(|a| a.input == input) {
        let raise = a
            .raise_to
            .map(|s| format!("^{}", s.as_str()))
            .unwrap_or_default();
        match a.case {
            CaseRef::Existing(id) => words.push(format!("attach:{id}{raise}")),
            CaseRef::New(n) => words.push(format!("attach:new#{n}{raise}")),
        }
    }
    for r in plan.reopenings.iter().filter(|r| r.input == input) {
        words.push(format!("reopen:{}", r.case));
    }
    for r in plan.recoveries.iter().filter(|r| r.input == input) {
        words.push(format!("recovered:{}", r.case));
    }
    if words.is_empty() {
        "-".into()
    } else {
        words.join("+")
    }
}

#[test]
fn outcomes_table() {
    let high = alert("mgr", Severity::High, None);
    let low = alert("mgr", Severity::Low, None);
    let critical = alert("mgr", Severity::Critical, None);
    let (d1, d2, d3) = (
        event("a", "C1", 2),
        event("b", "C1", 1),
        event("c", "C2", 3),
    );
    let promoter = event("p", "C1", 10);
    let passive = event("q", "C1", 8);
    type Row<'a> = (
        &'a str,
        Vec<Candidate<'a>>,
        Snapshot<u32>,
        BatchOptions,
        Vec<&'a str>,
    );
    let active = |id: u32, severity: Severity| {
        let mut s = Snapshot::default();
        let case = ActiveCase {
            id,
            severity,
            status: Status::Acknowledged,
        };
        s.active.insert(key("C1"), case);
        s
    };
    let with_resolved = |id: u32, recovered: bool| {
        let mut s = Snapshot::default();
        s.resolved.insert(key("C1"), resolved(id, recovered));
        s
    };
    let no_coalescing = BatchOptions {
        coalesce_window: Duration::zero(),
        ..options()
    };
    let no_recovery = BatchOptions {
        recovery_window: Duration::zero(),
        ..options()
    };
    let silenced = Candidate {
        silenced: true,
        ..candidate(&d1, Some(&high))
    };
    let rows: Vec<Row> = vec![
        (
            "two customers, two cases",
            vec![candidate(&d1, Some(&high)), candidate(&d3, Some(&high))],
            Snapshot::default(),
            options(),
            vec!["new#0", "new#1"],
        ),
        (
            "same key in one batch: the second attaches to the first",
            vec![candidate(&d1, Some(&low)), candidate(&d2, Some(&high))],
            Snapshot::default(),
            options(),
            vec!["new#0", "attach:new#0^high"],
        ),
        (
            "coalescing off: one case each",
            vec![candidate(&d1, Some(&high)), candidate(&d2, Some(&high))],
            active(7, Severity::High),
            no_coalescing,
            vec!["new#0", "new#1"],
        ),
        (
            "an active case: attach, severity raised only upwards",
            vec![candidate(&d1, Some(&low)), candidate(&d2, Some(&critical))],
            active(7, Severity::High),
            options(),
            vec!["attach:7", "attach:7^critical"],
        ),
        (
            "no alert, no case",
            vec![candidate(&passive, None)],
            Snapshot::default(),
            options(),
            vec!["-"],
        ),
        (
            "silenced: recorded, no case",
            vec![silenced],
            Snapshot::default(),
            options(),
            vec!["silenced"],
        ),
        (
            "an alert after resolution reopens, the next one attaches to it",
            vec![candidate(&d1, Some(&high)), candidate(&d2, Some(&critical))],
            with_resolved(5, false),
            options(),
            vec!["reopen:5", "attach:5^critical"],
        ),
        (
            "a promoter after resolution closes the recovery loop",
            vec![candidate(&promoter, None)],
            with_resolved(5, false),
            options(),
            vec!["recovered:5"],
        ),
        (
            "recovered once only",
            vec![candidate(&promoter, None)],
            with_resolved(5, true),
            options(),
            vec!["-"],
        ),
        (
            "the first answer decides: a passive, then an alert opens a new case",
            vec![candidate(&passive, None), candidate(&d1, Some(&high))],
            with_resolved(5, false),
            options(),
            vec!["-", "new#0"],
        ),
        (
            "recovery off: an alert opens a new case",
            vec![candidate(&d1, Some(&high))],
            with_resolved(5, false),
            no_recovery,
            vec!["new#0"],
        ),
        (
            "a silenced alert neither reopens nor recovers",
            vec![silenced],
            with_resolved(5, false),
            options(),
            vec!["silenced"],
        ),
    ];
    for (name, candidates, snapshot, options, expected) in rows {
        let plan = plan_batch(&candidates, snapshot, &options, at(12));
        let got: Vec<String> = (0..candidates.len())
            .map(|i| outcome_of(&plan, i))
            .collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn reopening_is_the_owners_reopen_transition() {
    let high = alert("mgr", Severity::High, None);
    let d1 = event("a", "C1", 2);
    let mut snapshot = Snapshot::default();
    snapshot.resolved.insert(key("C1"), resolved(5, false));
    let plan = plan_batch(&[candidate(&d1, Some(&high))], snapshot, &options(), at(12));
    let reopening = &plan.reopenings[0];
    let by_owner = resolved(5, false)
        .state
        .apply(
            &Command::Reopen {
                reason: "the customer answered again: NPS 2".into(),
            },
            SYSTEM_ACTOR,
            at(12),
            &[],
        )
        .unwrap();
    assert_eq!(reopening.transition.state, by_owner.state);
    assert_eq!(reopening.transition.effects, by_owner.effects);
    assert_eq!(reopening.transition.entry.note, by_owner.entry.note);
    assert_eq!(reopening.transition.entry.details["event_id"], "a");
    assert_eq!(reopening.transition.state.status, Status::Reopened);
}

#[test]
fn fatigue_cap_sends_emails_past_the_cap_to_the_daily_digest() {
    let high = alert("mgr", Severity::High, None);
    let events: Vec<FeedbackEvent> = (0..4)
        .map(|i| event(&format!("e{i}"), &format!("C{i}"), 1))
        .collect();
    let next_day = at(23);
    let candidates: Vec<Candidate> = events
        .iter()
        .map(|e| Candidate {
            owner_next_day_start: Some(next_day),
            ..candidate(e, Some(&high))
        })
        .collect();
    // (cap, already sent today, expected over-cap flags)
    let rows = [
        (0, 50, [false, false, false, false]),
        (3, 0, [false, false, false, true]),
        (3, 2, [false, true, true, true]),
        (3, 3, [true, true, true, true]),
    ];
    for (cap, sent, expected) in rows {
        let mut snapshot = Snapshot::<u32>::default();
        snapshot.emails_today.insert("mgr".into(), sent);
        let options = BatchOptions {
            fatigue_cap_per_day: cap,
            ..options()
        };
        let plan = plan_batch(&candidates, snapshot, &options, at(12));
        let flags: Vec<bool> = plan.new_cases.iter().map(|c| c.over_cap).collect();
        assert_eq!(flags, expected, "cap {cap}, sent {sent}");
        for case in &plan.new_cases {
            let channels: Vec<Channel> = case.notifications.iter().map(|n| n.channel).collect();
            if case.over_cap {
                assert_eq!(channels, [Channel::Webhook]);
                assert_eq!(case.digest, Some((DigestMode::Daily, next_day)));
            } else {
                assert_eq!(channels, [Channel::Email, Channel::Webhook]);
                assert_eq!(case.digest, None);
            }
        }
        let deferred = expected.iter().filter(|f| **f).count();
        assert_eq!(plan.fatigue_deferred(), deferred);
    }
}

#[test]
fn digest_owners_get_their_mode_due_at_its_period_end() {
    let hourly = alert("mgr", Severity::High, Some(DigestMode::Hourly));
    let d1 = event("a", "C1", 2);
    let now = at(12) + Duration::minutes(20);
    let plan = plan_batch::<u32>(
        &[candidate(&d1, Some(&hourly))],
        Snapshot::default(),
        &options(),
        now,
    );
    assert_eq!(plan.new_cases[0].digest, Some((DigestMode::Hourly, at(13))));
    assert_eq!(plan.new_cases[0].notifications.len(), 2);
}

#[test]
fn day_starts_default_to_utc_midnight() {
    let a = alert("a", Severity::High, None);
    let b = alert("b", Severity::High, None);
    let starts = owner_day_starts([(&a, None), (&b, Some(at(5))), (&a, None)], at(12));
    let midnight: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
    assert_eq!(starts, vec![("a".into(), midnight), ("b".into(), at(5))]);
}
