//! One-click actions from the alert email, without a login.
//!
//! A link carries a token: claims (case, action, case version, expiry, a
//! nonce) and an HMAC-SHA256 over them with a server key. The token proves
//! the server issued it for that case and action; the version makes it stale
//! once the case has moved on; the nonce lets the store make it single use.
//! Pure: time and the nonce are parameters.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::case::{CaseState, Command, ContactOutcome};

/// What a link does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", content = "cause", rename_all = "snake_case")]
pub enum LinkAction {
    /// "I'm on it".
    Acknowledge,
    Reached,
    Voicemail,
    NoAnswer,
    /// "Resolved: ⟨root cause⟩".
    Resolve(String),
    /// "Not my store": a reassignment request for ops.
    NotMine,
}

impl LinkAction {
    /// The button text (English; templates may use their own).
    pub fn label(&self) -> String {
        match self {
            LinkAction::Acknowledge => "I'm on it".into(),
            LinkAction::Reached => "Customer reached".into(),
            LinkAction::Voicemail => "Voicemail".into(),
            LinkAction::NoAnswer => "No answer".into(),
            LinkAction::Resolve(cause) => format!("Resolved: {}", cause.replace('_', " ")),
            LinkAction::NotMine => "Not my store".into(),
        }
    }

    /// The case command this action stands for, with the owner's note.
    pub fn command(&self, note: Option<String>) -> Command {
        match self {
            LinkAction::Acknowledge => Command::Acknowledge { note },
            LinkAction::Reached => Command::RecordContact {
                outcome: ContactOutcome::Reached,
                note,
            },
            LinkAction::Voicemail => Command::RecordContact {
                outcome: ContactOutcome::Voicemail,
                note,
            },
            LinkAction::NoAnswer => Command::RecordContact {
                outcome: ContactOutcome::NoAnswer,
                note,
            },
            LinkAction::Resolve(cause) => Command::Resolve {
                root_cause: cause.clone(),
                note,
            },
            LinkAction::NotMine => Command::AddNote {
                note: format!(
                    "reassignment requested: not my store{}",
                    note.map(|n| format!(" ({n})")).unwrap_or_default()
                ),
            },
        }
    }
}

impl LinkAction {
    /// The action's code: templates name it, and the store records it with
    /// the link's nonce.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkAction::Acknowledge => "acknowledge",
            LinkAction::Reached => "reached",
            LinkAction::Voicemail => "voicemail",
            LinkAction::NoAnswer => "no_answer",
            LinkAction::Resolve(_) => "resolve",
            LinkAction::NotMine => "not_mine",
        }
    }

    /// Every action an email can carry, in the email's order.
    pub fn all(root_causes: &[String]) -> Vec<LinkAction> {
        let mut all = vec![
            LinkAction::Acknowledge,
            LinkAction::Reached,
            LinkAction::Voicemail,
            LinkAction::NoAnswer,
        ];
        all.extend(root_causes.iter().cloned().map(LinkAction::Resolve));
        all.push(LinkAction::NotMine);
        all
    }

    /// Whether this action can be taken on a case in `state` now: the case
    /// state machine's own answer, so an email never offers a step that
    /// would be refused (resolving a case nobody acknowledged).
    pub fn possible(
        &self,
        state: &CaseState,
        root_causes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), crate::TransitionError> {
        let command = self.command(None);
        state
            .apply(&command, crate::case::SYSTEM_ACTOR, now, root_causes)
            .map(|_| ())
    }

    /// The actions an email offers for a case in `state`.
    pub fn offered(state: &CaseState, root_causes: &[String], now: DateTime<Utc>) -> Vec<Self> {
        Self::all(root_causes)
            .into_iter()
            .filter(|a| a.possible(state, root_causes, now).is_ok())
            .collect()
    }
}

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub case_id: String,
    pub action: LinkAction,
    /// The case version the email was about.
    pub version: i32,
    pub expires_at: DateTime<Utc>,
    /// Makes each token unique, for single use.
    pub nonce: String,
}

/// Why a link is refused; shown to the manager on a clear page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not valid (it may have been cut or altered)")]
    Malformed,
    #[error("this link was not issued by closeloop")]
    BadSignature,
    #[error("this link expired on {0}")]
    Expired(DateTime<Utc>),
}

fn mac(secret: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes keys of any length");
    mac.update(payload);
    mac
}

/// Sign `claims` into a URL-safe token.
/// What a case link asserts: "the holder may read this case until then".
/// Read-only and reusable (emails get opened twice, and forwarded: it opens
/// that one case, nothing else). Its fields differ from [`LinkClaims`], so
/// one kind of token never reads as the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewClaims {
    pub view_case: String,
    pub expires_at: DateTime<Utc>,
}

/// A signed case link token.
pub fn sign_view(secret: &[u8], claims: &ViewClaims) -> String {
    sign_payload(
        secret,
        &serde_json::to_vec(claims).expect("claims serialize"),
    )
}

/// The claims of a case link token, if it is genuine and not expired.
pub fn verify_view(
    secret: &[u8],
    token: &str,
    now: DateTime<Utc>,
) -> Result<ViewClaims, LinkError> {
    let payload = verified_payload(secret, token)?;
    let claims: ViewClaims = serde_json::from_slice(&payload).map_err(|_| LinkError::Malformed)?;
    if claims.expires_at <= now {
        return Err(LinkError::Expired(claims.expires_at));
    }
    Ok(claims)
}

/// The form token (CSRF) of a page opened by the case link `token`: forms
/// of that page send it back, so another site cannot post for its holder.
pub fn link_form_token(secret: &[u8], token: &str) -> String {
    let mut bytes = b"form:".to_vec();
    bytes.extend_from_slice(token.as_bytes());
    B64.encode(mac(secret, &bytes).finalize().into_bytes())
}

/// Whether `given` is the form token of the case link `token`, compared in
/// constant time.
pub fn check_link_form_token(secret: &[u8], token: &str, given: &str) -> bool {
    let mut bytes = b"form:".to_vec();
    bytes.extend_from_slice(token.as_bytes());
    match B64.decode(given) {
        Ok(signature) => mac(secret, &bytes).verify_slice(&signature).is_ok(),
        Err(_) => false,
    }
}

fn sign_payload(secret: &[u8], payload: &[u8]) -> String {
    let signature = mac(secret, payload).finalize().into_bytes();
    format!("{}.{}", B64.encode(payload), B64.encode(signature))
}

/// The payload of `token`, once its signature is checked.
fn verified_payload(secret: &[u8], token: &str) -> Result<Vec<u8>, LinkError> {
    let (payload, signature) = token.split_once('.').ok_or(LinkError::Malformed)?;
    let payload = B64.decode(payload).map_err(|_| LinkError::Malformed)?;
    let signature = B64.decode(signature).map_err(|_| LinkError::Malformed)?;
    mac(secret, &payload)
        .verify_slice(&signature)
        .map_err(|_| LinkError::BadSignature)?;
    Ok(payload)
}

pub fn sign(secret: &[u8], claims: &LinkClaims) -> String {
    sign_payload(
        secret,
        &serde_json::to_vec(claims).expect("claims serialize"),
    )
}

/// What the `link_token` fuzz target and its replay check on any input:
/// verifying never panics, and what verifies signs and verifies again to the
/// same claims (at a fixed instant, so expiry is deterministic).
pub fn check_token(secret: &[u8], data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let now = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    if let Ok(claims) = verify(secret, token, now) {
        let again = sign(secret, &claims);
        assert_eq!(verify(secret, &again, now).ok(), Some(claims));
    }
}

/// Check a token's signature and expiry at `now`. Staleness and single use
/// need the case and the store: the caller checks them.
pub fn verify(secret: &[u8], token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
    let payload = verified_payload(secret, token)?;
    let claims: LinkClaims = serde_json::from_slice(&payload).map_err(|_| LinkError::Malformed)?;
    if claims.expires_at <= now {
        return Err(LinkError::Expired(claims.expires_at));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn claims(action: LinkAction) -> LinkClaims {
        LinkClaims {
            case_id: "c-1".into(),
            action,
            version: 3,
            expires_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap(),
            nonce: "n-1".into(),
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let token = sign(
            b"server-key",
            &claims(LinkAction::Resolve("delivery_delay".into())),
        );
        assert!(
            !token.contains('/') && !token.contains('+'),
            "URL-safe: {token}"
        );
        assert_eq!(
            verify(b"server-key", &token, now).unwrap(),
            claims(LinkAction::Resolve("delivery_delay".into()))
        );

        // (token, expected refusal)
        let forged = sign(b"another-key", &claims(LinkAction::Acknowledge));
        let (payload, signature) = token.split_once('.').unwrap();
        let other_payload = B64.encode(serde_json::to_vec(&claims(LinkAction::NotMine)).unwrap());
        let swapped = format!("{other_payload}.{signature}");
        let cases = [
            (forged.as_str(), LinkError::BadSignature),
            (swapped.as_str(), LinkError::BadSignature),
            (payload, LinkError::Malformed),
            ("not a token", LinkError::Malformed),
            ("a.b", LinkError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(
                verify(b"server-key", token, now).unwrap_err(),
                expected,
                "{token}"
            );
        }
        let later = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        assert!(matches!(
            verify(b"server-key", &token, later),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn case_links_open_one_case_and_never_act() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let view = ViewClaims {
            view_case: "c-1".into(),
            expires_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap(),
        };
        let token = sign_view(b"server-key", &view);
        assert_eq!(verify_view(b"server-key", &token, now), Ok(view.clone()));
        // One kind of token never passes for the other.
        assert_eq!(
            verify(b"server-key", &token, now),
            Err(LinkError::Malformed)
        );
        let action = sign(b"server-key", &claims(LinkAction::Acknowledge));
        assert_eq!(
            verify_view(b"server-key", &action, now),
            Err(LinkError::Malformed)
        );
        let forged = sign_view(b"another-key", &view);
        assert_eq!(
            verify_view(b"server-key", &forged, now),
            Err(LinkError::BadSignature)
        );
        let later = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        assert!(matches!(
            verify_view(b"server-key", &token, later),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn emails_offer_only_the_steps_the_case_allows() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let causes = vec!["delivery_delay".to_owned()];
        let offered = |status: crate::Status| {
            let mut state = CaseState::opened();
            state.status = status;
            LinkAction::offered(&state, &causes, now)
        };
        use LinkAction::*;
        let contact = [Acknowledge, Reached, Voicemail, NoAnswer, NotMine];
        assert_eq!(
            offered(crate::Status::Open),
            contact,
            "no resolve on a new case"
        );
        assert_eq!(
            offered(crate::Status::Acknowledged),
            [
                Reached,
                Voicemail,
                NoAnswer,
                Resolve("delivery_delay".into()),
                NotMine
            ]
        );
        assert_eq!(offered(crate::Status::Resolved), [NotMine]);
    }

    #[test]
    fn form_tokens_belong_to_their_link_and_key() {
        let token = link_form_token(b"key", "link-a");
        assert!(check_link_form_token(b"key", "link-a", &token));
        assert!(!check_link_form_token(b"key", "link-b", &token));
        assert!(!check_link_form_token(b"other", "link-a", &token));
        assert!(!check_link_form_token(b"key", "link-a", ""));
        assert!(!check_link_form_token(b"key", "link-a", "not base64!"));
    }

    #[test]
    fn actions_map_to_commands() {
        assert_eq!(
            LinkAction::Acknowledge.command(None),
            Command::Acknowledge { note: None }
        );
        assert_eq!(
            LinkAction::Voicemail.command(Some("left a message".into())),
            Command::RecordContact {
                outcome: ContactOutcome::Voicemail,
                note: Some("left a message".into())
            }
        );
        assert!(
            matches!(LinkAction::NotMine.command(None), Command::AddNote { note } if note.contains("not my store"))
        );
        assert_eq!(
            LinkAction::Resolve("billing".into()).label(),
            "Resolved: billing"
        );
    }
}
