//! What the page templates are given: plain serializable values, every
//! code already a label in the page's language and every time already
//! read in the store's time zone. Pure: `now` and the calendar are passed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use closeloop_core::event::Scores;
use closeloop_core::sla::{Calendar, Stage, StageClock};
use closeloop_core::TransitionError;
use closeloop_store::{CaseView, DeliveryView, HistoryView, StoreError};
use serde::Serialize;

use super::format;
use super::pages::{Catalog, Kind, Pages};

/// The layout's variables (`base.html`).
#[derive(Debug, Serialize)]
pub(crate) struct Layout<'a> {
    pub lang: &'a str,
    pub t: &'a BTreeMap<String, String>,
    pub title: String,
    pub others: Vec<LangLink>,
    /// The signed-in person's name; `None` without a session.
    pub who: Option<String>,
    /// The form token of this page's forms.
    pub csrf: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct LangLink {
    pub code: String,
    pub name: String,
    pub href: String,
}

/// The layout of a page at `path` (with its query, without `lang`).
pub(crate) fn layout<'a>(
    pages: &'a Pages,
    lang: &'a str,
    title: String,
    path: &str,
    who: Option<String>,
    csrf: String,
) -> Layout<'a> {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    let others = pages
        .others(lang)
        .into_iter()
        .map(|(code, name)| {
            let mut params = kept.clone();
            let switch = format!("lang={code}");
            params.push(&switch);
            LangLink {
                href: format!("{base}?{}", params.join("&")),
                code,
                name,
            }
        })
        .collect();
    Layout {
        lang,
        t: &pages.catalog(lang).text,
        title,
        others,
        who,
        csrf,
    }
}

/// One clock as a sentence, and its state for the page's colours.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Clock {
    pub text: String,
    /// `done`, `due`, `soon` (under an hour), `overdue` or `paused`.
    pub state: &'static str,
}

/// What the page needs to read times: the language, the store's
/// calendar and now.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub catalog: &'a Catalog,
    pub lang: &'a str,
    pub calendar: &'a Calendar,
    pub now: DateTime<Utc>,
}

impl Reader<'_> {
    pub fn moment(&self, at: DateTime<Utc>) -> String {
        format::moment(at, self.now, self.calendar.timezone(), self.lang)
    }

    pub fn full(&self, at: DateTime<Utc>) -> String {
        format::full(at, self.calendar.timezone(), self.lang)
    }

    fn stage_label(&self, stage: Stage) -> String {
        self.catalog.text(&format!("stage_{}", stage.as_str()))
    }

    /// The clock of one stage: done, paused, overdue, or the business
    /// time left.
    pub fn clock(&self, case: &CaseView, stage: Stage) -> Option<Clock> {
        let sla = case.sla.as_ref()?;
        let due: StageClock = sla.deadlines.get(stage);
        let label = self.stage_label(stage);
        let done_at = match stage {
            Stage::Acknowledge => case.acknowledged_at,
            Stage::FirstContact => case.first_contact_at,
            Stage::Resolve => case.resolved_at,
        };
        if let Some(at) = done_at {
            let at = self.moment(at);
            let text = self
                .catalog
                .fill("clock_done", &[("stage", &label), ("at", &at)]);
            return Some(Clock {
                text,
                state: "done",
            });
        }
        if let Some(paused) = sla.paused_at {
            let at = self.moment(paused);
            let text = self.catalog.fill("clock_paused", &[("at", &at)]);
            return Some(Clock {
                text,
                state: "paused",
            });
        }
        if due.due_at <= self.now {
            let at = self.moment(due.due_at);
            let text = self
                .catalog
                .fill("clock_overdue", &[("stage", &label), ("at", &at)]);
            return Some(Clock {
                text,
                state: "overdue",
            });
        }
        let left = self.calendar.business_between(self.now, due.due_at);
        let text = self.catalog.fill(
            "clock_due",
            &[("stage", &label), ("left", &format::duration(left))],
        );
        let state = if left < chrono::Duration::hours(1) {
            "soon"
        } else {
            "due"
        };
        Some(Clock { text, state })
    }

    /// The clock of the first stage not done: what an inbox row shows.
    pub fn next_clock(&self, case: &CaseView) -> Option<Clock> {
        Stage::ALL
            .into_iter()
            .filter_map(|stage| self.clock(case, stage))
            .find(|clock| clock.state != "done")
    }
}

/// A score with its meaning: "NPS 3 · detractor".
#[derive(Debug, Serialize)]
pub(crate) struct ScoreChip {
    pub text: String,
    /// `bad`, `mid` or `good`, for the colour.
    pub class: &'static str,
}

pub(crate) fn score_chips(catalog: &Catalog, scores: &Scores) -> Vec<ScoreChip> {
    let mut chips = Vec::new();
    let mut chip = |name: &str, value: u8, class: &str, tone: &'static str| {
        chips.push(ScoreChip {
            text: format!("{name} {value} · {}", catalog.label(Kind::Class, class)),
            class: tone,
        });
    };
    if let Some(nps) = scores.nps {
        let class = nps.class();
        let tone = match class.as_str() {
            "detractor" => "bad",
            "passive" => "mid",
            _ => "good",
        };
        chip("NPS", nps.value(), class.as_str(), tone);
    }
    if let Some(csat) = scores.csat {
        let class = csat.class();
        let tone = match class.as_str() {
            "dissatisfied" => "bad",
            "neutral" => "mid",
            _ => "good",
        };
        chip("CSAT", csat.value(), class.as_str(), tone);
    }
    if let Some(ces) = scores.ces {
        let class = ces.class();
        let tone = match class.as_str() {
            "high_effort" => "bad",
            "neutral" => "mid",
            _ => "good",
        };
        chip("CES", ces.value(), class.as_str(), tone);
    }
    chips
}

/// A row of the inbox.
#[derive(Debug, Serialize)]
pub(crate) struct Card {
    pub id: String,
    pub href: String,
    pub customer: String,
    pub select_label: String,
    pub scores: String,
    pub comment: String,
    pub store: String,
    pub touchpoint: String,
    pub status: String,
    pub severity: String,
    pub severity_code: &'static str,
    pub clock: String,
    pub clock_state: &'static str,
}

pub(crate) fn card(reader: &Reader<'_>, case: &CaseView) -> Card {
    let catalog = reader.catalog;
    let event = &case.event;
    let customer = event.customer.display_name().to_owned();
    let clock = reader.next_clock(case);
    Card {
        id: case.id.to_string(),
        href: format!("/cases/{}", case.id),
        select_label: catalog.fill("select_case", &[("customer", &customer)]),
        customer,
        scores: score_chips(catalog, &event.scores)
            .into_iter()
            .map(|c| c.text)
            .collect::<Vec<_>>()
            .join(" · "),
        comment: event
            .comment
            .as_deref()
            .map(|c| format::first_words(c, 14))
            .unwrap_or_default(),
        store: event
            .location
            .store_id
            .clone()
            .unwrap_or_else(|| "-".into()),
        touchpoint: catalog.label(Kind::Touchpoint, &event.journey.touchpoint),
        status: catalog.label(Kind::Status, case.status.as_str()),
        severity: catalog.label(Kind::Severity, case.severity.as_str()),
        severity_code: case.severity.as_str(),
        clock_state: clock.as_ref().map_or("none", |c| c.state),
        clock: clock.map_or_else(|| catalog.text("no_sla"), |c| c.text),
    }
}

/// A line of the case's timeline: a history entry or a notification.
#[derive(Debug, Serialize)]
pub(crate) struct Line {
    pub at: String,
    pub what: String,
    pub who: Option<String>,
    pub change: Option<String>,
    pub note: Option<String>,
    /// `step` or `notification`.
    pub kind: &'static str,
    #[serde(skip)]
    pub instant: DateTime<Utc>,
}

/// History and notifications, oldest first. `name_of` turns an actor (an
/// owner id, a token name) into a person's name where it can.
pub(crate) fn timeline(
    reader: &Reader<'_>,
    history: &[HistoryView],
    deliveries: &[DeliveryView],
    name_of: &dyn Fn(&str) -> String,
) -> Vec<Line> {
    let catalog = reader.catalog;
    let status = |code: &str| catalog.label(Kind::Status, code);
    let mut lines: Vec<Line> = history
        .iter()
        .map(|entry| Line {
            at: reader.full(entry.at),
            what: catalog.label(Kind::Action, &entry.action),
            who: Some(catalog.fill("by", &[("who", &name_of(&entry.actor))])),
            change: entry
                .from_status
                .as_deref()
                .filter(|from| *from != entry.to_status)
                .map(|from| {
                    catalog.fill(
                        "status_change",
                        &[("from", &status(from)), ("to", &status(&entry.to_status))],
                    )
                }),
            note: entry.note.clone().filter(|n| !n.trim().is_empty()),
            kind: "step",
            instant: entry.at,
        })
        .collect();
    lines.extend(deliveries.iter().map(|d| {
        let at = d.sent_at.unwrap_or(d.created_at);
        Line {
            at: reader.full(at),
            what: catalog.fill(
                "notification",
                &[
                    ("kind", &catalog.label(Kind::Notification, &d.event_type)),
                    ("channel", &catalog.label(Kind::Delivery, &d.channel)),
                    ("status", &catalog.label(Kind::Delivery, &d.status)),
                ],
            ),
            who: None,
            change: None,
            note: d.last_error.clone(),
            kind: "notification",
            instant: at,
        }
    }));
    lines.sort_by_key(|l| l.instant);
    lines
}

/// A refusal in words, in the page's language where the core's reason is known.
pub(crate) fn refusal_text(catalog: &Catalog, error: &StoreError) -> String {
    match error {
        StoreError::Transition(TransitionError::NotAllowed { action, status }) => catalog.fill(
            "not_allowed",
            &[
                ("action", &catalog.label(Kind::Action, action)),
                ("status", &catalog.label(Kind::Status, status.as_str())),
            ],
        ),
        StoreError::Transition(TransitionError::NotAcknowledged { .. }) => {
            catalog.text("not_acknowledged")
        }
        StoreError::Transition(TransitionError::MissingText { field }) => {
            catalog.fill("missing_text", &[("field", field)])
        }
        StoreError::Transition(other) => other.to_string(),
        other => other.to_string(),
    }
}
