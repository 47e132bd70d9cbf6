//! The one-click action links of alert emails (tokens: `closeloop_core::links`).

use chrono::{DateTime, Utc};
use closeloop_core::links::{sign, sign_view, LinkAction, LinkClaims, ViewClaims};
use closeloop_wire::CaseV1;
use serde::Serialize;

/// One action link, as templates see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionLink {
    /// acknowledge, reached, voicemail, no_answer, resolve, not_mine.
    pub kind: &'static str,
    /// The root cause, for `resolve`.
    pub cause: Option<String>,
    /// English button text.
    pub label: String,
    pub url: String,
}

/// Signs action links for cases.
#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
    public_url: String,
    ttl: chrono::Duration,
    root_causes: Vec<String>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl LinkSigner {
    pub fn new(
        secret: &[u8],
        public_url: &str,
        ttl: chrono::Duration,
        root_causes: Vec<String>,
    ) -> Self {
        LinkSigner {
            secret: secret.to_vec(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            ttl,
            root_causes,
        }
    }

    /// The case's page, signed: it opens that case (read-only) without a
    /// sign-in until the TTL runs out.
    pub fn view_url(&self, case: &CaseV1, now: DateTime<Utc>) -> String {
        let claims = ViewClaims {
            view_case: case.id.to_string(),
            expires_at: now + self.ttl,
        };
        format!(
            "{}/cases/{}?link={}",
            self.public_url,
            case.id,
            sign_view(&self.secret, &claims)
        )
    }

    /// `case` as an email shows it: its page link signed.
    pub fn signed(&self, case: &CaseV1, now: DateTime<Utc>) -> CaseV1 {
        CaseV1 {
            url: self.view_url(case, now),
            ..case.clone()
        }
    }

    /// The action links for `case`: only the steps its state allows now
    /// (the core decides), each single use and valid for the TTL. Taking
    /// one leaves the others usable as long as the case allows them.
    pub fn links(&self, case: &CaseV1, now: DateTime<Utc>) -> Vec<ActionLink> {
        LinkAction::offered(&case.state(), &self.root_causes, now)
            .into_iter()
            .map(|action| {
                let claims = LinkClaims {
                    case_id: case.id.to_string(),
                    action: action.clone(),
                    version: case.version,
                    expires_at: now + self.ttl,
                    nonce: uuid::Uuid::new_v4().simple().to_string(),
                };
                let cause = match &action {
                    LinkAction::Resolve(cause) => Some(cause.clone()),
                    _ => None,
                };
                ActionLink {
                    kind: action.kind(),
                    cause,
                    label: action.label(),
                    url: format!("{}/a/{}", self.public_url, sign(&self.secret, &claims)),
                }
            })
            .collect()
    }
}
