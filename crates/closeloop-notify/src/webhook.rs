//! Signed webhooks, per the Standard Webhooks specification.
//!
//! Headers: `webhook-id` (the outbox id, identical on every retry: the
//! receiver's idempotency key), `webhook-timestamp` (seconds since the epoch
//! at this attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, one per configured secret, space-separated, so a
//! secret can be rotated without a gap.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sha2::Sha256;

use crate::error::{NotifyError, Result};

/// A signing secret in the `whsec_<base64>` form.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or_else(|| NotifyError::Config("webhook secret must start with whsec_".into()))?;
        let key = BASE64
            .decode(encoded)
            .map_err(|e| NotifyError::Config(format!("webhook secret is not valid base64: {e}")))?;
        if key.len() < 16 {
            return Err(NotifyError::Config(
                "webhook secret must hold at least 16 bytes".into(),
            ));
        }
        Ok(WebhookSecret { key })
    }

    /// `v1,<signature>` of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// Sends webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    secrets: Vec<WebhookSecret>,
}

impl WebhookSender {
    pub fn new(secrets: Vec<WebhookSecret>, timeout: Duration) -> Result<Self> {
        if secrets.is_empty() {
            return Err(NotifyError::Config(
                "at least one webhook signing secret is required".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect could point a signed payload anywhere; refuse it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("closeloop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Config(e.to_string()))?;
        Ok(WebhookSender { client, secrets })
    }

    /// The value of the `webhook-signature` header.
    pub fn signature_header(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.secrets
            .iter()
            .map(|s| s.sign(id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// POST `body` to `url`. Returns the HTTP status line on success.
    pub async fn send(&self, url: &str, id: &str, timestamp: i64, body: Vec<u8>) -> Result<String> {
        let signature = self.signature_header(id, timestamp, &body);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        classify_status(status, retry_after)
    }
}

fn classify_transport(error: &reqwest::Error) -> NotifyError {
    if error.is_builder() {
        NotifyError::Permanent(format!("invalid webhook request: {error}"))
    } else {
        // Connection refused, reset, timeout: the receiver may come back.
        NotifyError::transient(format!("webhook not delivered: {error}"))
    }
}

/// 2xx: delivered. 408, 429 and 5xx: try again. 410: the endpoint is gone.
/// Any other answer (4xx, 3xx) will not change by retrying.
pub fn classify_status(status: StatusCode, retry_after: Option<Duration>) -> Result<String> {
    let code = status.as_u16();
    match code {
        200..=299 => Ok(format!("HTTP {code}")),
        408 | 429 | 500..=599 => Err(NotifyError::Transient {
            message: format!("receiver answered HTTP {code}"),
            retry_after,
        }),
        410 => Err(NotifyError::Permanent(
            "receiver answered HTTP 410 Gone: endpoint removed".into(),
        )),
        _ => Err(NotifyError::Permanent(format!(
            "receiver answered HTTP {code}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the Standard Webhooks specification.
    #[test]
    fn signs_the_spec_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn status_classification_table() {
        let cases = [
            (200, "ok"),
            (204, "ok"),
            (408, "transient"),
            (429, "transient"),
            (500, "transient"),
            (503, "transient"),
            (400, "permanent"),
            (401, "permanent"),
            (404, "permanent"),
            (410, "permanent"),
            (301, "permanent"),
        ];
        for (code, expected) in cases {
            let got = match classify_status(StatusCode::from_u16(code).unwrap(), None) {
                Ok(_) => "ok",
                Err(NotifyError::Transient { .. }) => "transient",
                Err(NotifyError::Permanent(_)) => "permanent",
                Err(NotifyError::Config(_)) => "config",
            };
            assert_eq!(got, expected, "HTTP {code}");
        }
    }

    #[test]
    fn rotation_sends_every_signature() {
        let a = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let b = WebhookSecret::parse("whsec_c2Vjb25kLXNlY3JldC0xMjM0NTY3OA==").unwrap();
        let sender =
            WebhookSender::new(vec![a.clone(), b.clone()], Duration::from_secs(1)).unwrap();
        let header = sender.signature_header("id", 1, b"{}");
        assert_eq!(
            header,
            format!("{} {}", a.sign("id", 1, b"{}"), b.sign("id", 1, b"{}"))
        );
    }
}
