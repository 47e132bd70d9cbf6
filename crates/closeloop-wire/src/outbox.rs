//! The messages of the outbox: one closed enum, stored as (version,
//! channel, event type, payload) so that a row says what it is without
//! being parsed, and every build reads the versions it knows.

use closeloop_core::Channel;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::case::{DigestV1, WebhookBody};
use crate::error::WireError;
use crate::followup::FollowupV1;
use crate::report::WeeklyReportV1;
use crate::sign_in::SignInV1;

/// The version this build writes. Version 1: the payload is the message
/// body as JSON, its kind given by channel and event type (the format of
/// the first release, kept as is).
pub const OUTBOX_VERSION: i16 = 1;

/// A notification waiting in the outbox. New channels (Teams, Slack) are
/// new variants.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxMessage {
    /// An email about one case: a new case, a case given to a new owner, a
    /// reopened case. Carries the case as the webhook would.
    CaseEmail(WebhookBody),
    /// A signed webhook about one case.
    CaseWebhook(WebhookBody),
    /// An owner's digest of alert emails.
    Digest(DigestV1),
    /// Reminders, escalations and watchers' notices to one person.
    Followup(FollowupV1),
    /// A sign-in link to the web app.
    SignIn(SignInV1),
    /// A regional manager's or director's weekly report.
    WeeklyReport(WeeklyReportV1),
}

const DIGEST: &str = "digest";
const FOLLOWUP: &str = "followup";
const SIGN_IN: &str = "sign_in";
const WEEKLY_REPORT: &str = "weekly_report";

impl OutboxMessage {
    pub fn channel(&self) -> Channel {
        match self {
            OutboxMessage::CaseWebhook(_) => Channel::Webhook,
            _ => Channel::Email,
        }
    }

    /// The stored event type: the case event, or `digest` / `followup` / `sign_in`.
    pub fn event_type(&self) -> &'static str {
        match self {
            OutboxMessage::CaseEmail(body) | OutboxMessage::CaseWebhook(body) => {
                body.event_type.as_str()
            }
            OutboxMessage::Digest(_) => DIGEST,
            OutboxMessage::Followup(_) => FOLLOWUP,
            OutboxMessage::SignIn(_) => SIGN_IN,
            OutboxMessage::WeeklyReport(_) => WEEKLY_REPORT,
        }
    }

    /// The payload as stored (version [`OUTBOX_VERSION`]).
    pub fn payload(&self) -> serde_json::Value {
        let value = match self {
            OutboxMessage::CaseEmail(body) | OutboxMessage::CaseWebhook(body) => {
                serde_json::to_value(body)
            }
            OutboxMessage::Digest(digest) => serde_json::to_value(digest),
            OutboxMessage::Followup(followup) => serde_json::to_value(followup),
            OutboxMessage::SignIn(sign_in) => serde_json::to_value(sign_in),
            OutboxMessage::WeeklyReport(report) => serde_json::to_value(report),
        };
        // Plain data with string keys: serializing cannot fail.
        value.unwrap_or_default()
    }

    /// Read a stored message back.
    pub fn decode(
        version: i16,
        channel: &str,
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<Self, WireError> {
        if version != 1 {
            return Err(WireError::UnknownVersion(version));
        }
        match (Channel::parse(channel), event_type) {
            (Some(Channel::Email), DIGEST) => read("digest", payload).map(OutboxMessage::Digest),
            (Some(Channel::Email), FOLLOWUP) => {
                read("follow-up", payload).map(OutboxMessage::Followup)
            }
            (Some(Channel::Email), SIGN_IN) => read("sign-in", payload).map(OutboxMessage::SignIn),
            (Some(Channel::Email), WEEKLY_REPORT) => {
                read("weekly report", payload).map(OutboxMessage::WeeklyReport)
            }
            (Some(Channel::Email), kind) if kind.starts_with("case.") => {
                read("case email", payload).map(OutboxMessage::CaseEmail)
            }
            (Some(Channel::Webhook), kind) if kind.starts_with("case.") => {
                read("case webhook", payload).map(OutboxMessage::CaseWebhook)
            }
            _ => Err(WireError::UnknownKind {
                channel: channel.to_owned(),
                event_type: event_type.to_owned(),
            }),
        }
    }
}

fn read<T: DeserializeOwned + Serialize>(
    kind: &'static str,
    payload: serde_json::Value,
) -> Result<T, WireError> {
    serde_json::from_value(payload).map_err(|e| WireError::Unreadable {
        kind,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_versions_and_kinds_are_refused_by_name() {
        let payload = serde_json::json!({});
        assert_eq!(
            OutboxMessage::decode(2, "email", "digest", payload.clone()),
            Err(WireError::UnknownVersion(2))
        );
        let err = OutboxMessage::decode(1, "sms", "case.created", payload.clone()).unwrap_err();
        assert!(err.to_string().contains("\"sms\""), "{err}");
        let err = OutboxMessage::decode(1, "email", "digest", payload).unwrap_err();
        assert!(
            err.to_string().starts_with("unreadable digest message"),
            "{err}"
        );
    }
}
