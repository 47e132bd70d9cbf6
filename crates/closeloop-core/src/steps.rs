//! The steps a page offers for a case: the state machine's own answer, so
//! the web app never shows a button that would be refused.

use chrono::{DateTime, Utc};

use crate::case::{CaseState, Command, ContactOutcome, SYSTEM_ACTOR};

/// A step of the case page, by the form that takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Acknowledge,
    Contact,
    Wait,
    Resume,
    Resolve,
    Reopen,
    Close,
    Note,
}

impl Step {
    /// In the order a page shows them: the next useful step first.
    pub const ALL: [Step; 8] = [
        Step::Acknowledge,
        Step::Contact,
        Step::Resolve,
        Step::Wait,
        Step::Resume,
        Step::Reopen,
        Step::Close,
        Step::Note,
    ];

    /// The form's name (`/cases/{id}/do/{name}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Acknowledge => "acknowledge",
            Step::Contact => "contact",
            Step::Wait => "wait",
            Step::Resume => "resume",
            Step::Resolve => "resolve",
            Step::Reopen => "reopen",
            Step::Close => "close",
            Step::Note => "note",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A command of this step with placeholder fields, to ask the state
    /// machine whether the step is possible.
    fn probe(self, root_causes: &[String]) -> Command {
        let text = || "-".to_owned();
        match self {
            Step::Acknowledge => Command::Acknowledge { note: None },
            Step::Contact => Command::RecordContact {
                outcome: ContactOutcome::Reached,
                note: None,
            },
            Step::Wait => Command::WaitOnCustomer { note: None },
            Step::Resume => Command::Resume { note: None },
            Step::Resolve => Command::Resolve {
                root_cause: root_causes.first().cloned().unwrap_or_else(text),
                note: None,
            },
            Step::Reopen => Command::Reopen { reason: text() },
            Step::Close => Command::Close { note: None },
            Step::Note => Command::AddNote { note: text() },
        }
    }

    /// The steps possible on a case in `state` at `now`, in page order.
    pub fn offered(state: &CaseState, root_causes: &[String], now: DateTime<Utc>) -> Vec<Step> {
        Step::ALL
            .into_iter()
            .filter(|step| {
                state
                    .apply(&step.probe(root_causes), SYSTEM_ACTOR, now, root_causes)
                    .is_ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    fn state(status: Status) -> CaseState {
        CaseState {
            status,
            version: 1,
            acknowledged_at: None,
            first_contact_at: None,
            resolved_at: None,
            closed_at: None,
            root_cause: None,
            contact_attempts: 0,
        }
    }

    #[test]
    fn pages_offer_what_the_state_allows() {
        let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let causes = vec!["delivery_delay".to_owned()];
        let table: [(Status, &[Step]); 5] = [
            (
                Status::Open,
                &[Step::Acknowledge, Step::Contact, Step::Note],
            ),
            (
                Status::Acknowledged,
                &[Step::Contact, Step::Resolve, Step::Wait, Step::Note],
            ),
            (
                Status::WaitingOnCustomer,
                &[Step::Contact, Step::Resolve, Step::Resume, Step::Note],
            ),
            (Status::Resolved, &[Step::Reopen, Step::Close, Step::Note]),
            (Status::Closed, &[Step::Reopen, Step::Note]),
        ];
        for (status, expected) in table {
            let offered = Step::offered(&state(status), &causes, now);
            assert_eq!(offered, expected, "{status:?}");
        }
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("delete"), None);
    }
}
