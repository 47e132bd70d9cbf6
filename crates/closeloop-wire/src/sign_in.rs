//! The sign-in email of the web app: a single-use link, valid minutes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A sign-in link to send to a person of the owner directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInV1 {
    pub recipient_name: String,
    pub locale: String,
    /// The link itself (`{public_url}/signin/{token}`): a capability, so
    /// the dispatcher never logs it.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    /// How long the link is valid, as the email says it.
    pub valid_minutes: u32,
}
