//! Signed webhooks, per the Standard Webhooks specification.
//!
//! Headers: `webhook-id` (the outbox id, identical on every retry: the
//! receiver's idempotency key), `webhook-timestamp` (seconds since the epoch
//! at this attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, one per configured secret, space-separated, so a
//! secret can be rotated without a gap.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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

/// Which addresses webhooks may reach. Public unicast addresses always;
/// every special-purpose range (loopback, private, shared, link-local,
/// documentation, benchmarking, reserved, multicast, IPv6 unique-local and
/// site-local, and every IPv6 form that embeds an IPv4 address) only when a
/// configured range allows it. This is the SSRF guard: a webhook URL written
/// by someone cannot make closeloop probe the internal network.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
    /// Plain `http://` endpoints (local development); `https://` only
    /// otherwise.
    allow_http: bool,
}

impl AddressPolicy {
    /// `allowed`: CIDR ranges such as `127.0.0.0/8`. Plain http is refused
    /// until [`AddressPolicy::allow_http`].
    pub fn new(allowed: &[String]) -> Result<Self> {
        let allowed = allowed
            .iter()
            .map(|r| {
                r.parse::<IpNet>()
                    .map_err(|e| NotifyError::Config(format!("allowed range \"{r}\": {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AddressPolicy {
            allowed,
            allow_http: false,
        })
    }

    /// Whether plain `http://` endpoints may be used (`webhook.allow_http`).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        // ::ffff:a.b.c.d is a.b.c.d: an allowed IPv4 range covers it.
        let embedded = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        is_public(ip)
            || self
                .allowed
                .iter()
                .any(|range| range.contains(&ip) || embedded.is_some_and(|v4| range.contains(&v4)))
    }
}

/// Special-purpose IPv4 ranges (IANA registry) webhooks never reach unless
/// allowed.
const NON_PUBLIC_V4: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // shared address space (CGNAT)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay anycast
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, broadcast
];

/// Special-purpose IPv6 ranges, and every form that embeds an IPv4 address
/// (which would let a URL reach a private IPv4 host through a translator).
const NON_PUBLIC_V6: &[&str] = &[
    "::/128",         // unspecified
    "::1/128",        // loopback
    "::/96",          // IPv4-compatible (deprecated)
    "::ffff:0:0/96",  // IPv4-mapped
    "64:ff9b::/96",   // NAT64
    "64:ff9b:1::/48", // local-use NAT64
    "100::/64",       // discard
    "2001::/32",      // Teredo
    "2001:10::/28",   // ORCHID
    "2001:20::/28",   // ORCHIDv2
    "2001:db8::/32",  // documentation
    "2002::/16",      // 6to4
    "3fff::/20",      // documentation
    "fc00::/7",       // unique local
    "fe80::/10",      // link-local
    "fec0::/10",      // site-local (deprecated)
    "ff00::/8",       // multicast
];

/// The special-purpose ranges, parsed once (every resolved address of every
/// webhook is checked against them).
static NON_PUBLIC: std::sync::LazyLock<Vec<IpNet>> = std::sync::LazyLock::new(|| {
    NON_PUBLIC_V4
        .iter()
        .chain(NON_PUBLIC_V6)
        .map(|range| {
            range
                .parse()
                .expect("the special-purpose ranges are valid CIDRs")
        })
        .collect()
});

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    !NON_PUBLIC.iter().any(|net| net.contains(&ip))
}

/// Seconds to wait from a `Retry-After` value: delay-seconds, or an
/// HTTP-date (RFC 9110) measured from `now`; `None` when unreadable.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The guard's refusal, found again in reqwest's error chain to classify it.
#[derive(Debug)]
struct BlockedAddress(String);

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to addresses webhooks may not reach (loopback, private or link-local; see webhook.allow_private_ranges)", self.0)
    }
}

impl std::error::Error for BlockedAddress {}

/// DNS resolution that drops forbidden addresses, so the check holds for
/// the address actually connected to (no DNS rebinding between check and use).
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(
                    Box::new(BlockedAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Sends webhooks.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    secrets: Vec<WebhookSecret>,
    policy: Arc<AddressPolicy>,
    default_timeout: Duration,
    /// (URL prefix, timeout): the longest matching prefix wins.
    endpoint_timeouts: Vec<(String, Duration)>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("policy", &self.policy)
            .finish()
    }
}

impl WebhookSender {
    pub fn new(secrets: Vec<WebhookSecret>, timeout: Duration) -> Result<Self> {
        Self::with_policy(secrets, timeout, Vec::new(), AddressPolicy::default())
    }

    pub fn with_policy(
        secrets: Vec<WebhookSecret>,
        default_timeout: Duration,
        endpoint_timeouts: Vec<(String, Duration)>,
        policy: AddressPolicy,
    ) -> Result<Self> {
        if secrets.is_empty() {
            return Err(NotifyError::Config(
                "at least one webhook signing secret is required".into(),
            ));
        }
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .timeout(default_timeout)
            // A proxy from the environment (HTTP_PROXY…) would resolve the
            // name itself, and the guard would never see the address.
            .no_proxy()
            // A redirect could point a signed payload anywhere; refuse it.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .user_agent(concat!("closeloop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Config(e.to_string()))?;
        Ok(WebhookSender {
            client,
            secrets,
            policy,
            default_timeout,
            endpoint_timeouts,
        })
    }

    /// The value of the `webhook-signature` header.
    pub fn signature_header(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.secrets
            .iter()
            .map(|s| s.sign(id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The timeout for `url`: the longest configured prefix, else the default.
    pub fn timeout_for(&self, url: &str) -> Duration {
        self.endpoint_timeouts
            .iter()
            .filter(|(prefix, _)| url.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default_timeout, |(_, t)| *t)
    }

    /// POST `body` to `url`. Returns the HTTP status line on success.
    pub async fn send(&self, url: &str, id: &str, timestamp: i64, body: Vec<u8>) -> Result<String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NotifyError::Permanent(format!("invalid webhook URL: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            "http" => {
                return Err(NotifyError::Permanent(
                    "plain http webhook URLs are refused (use https, or set webhook.allow_http for local development)".into(),
                ))
            }
            other => {
                return Err(NotifyError::Permanent(format!(
                    "webhook URLs use https, not {other}"
                )))
            }
        }
        // IP literals never reach the resolver: check them here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            if !self.policy.permits(ip) {
                return Err(NotifyError::Permanent(
                    BlockedAddress(ip.to_string()).to_string(),
                ));
            }
        }
        let signature = self.signature_header(id, timestamp, &body);
        let response = self
            .client
            .post(parsed)
            .timeout(self.timeout_for(url))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            // The URL may carry a token: keep it out of errors (and so of
            // logs and `last_error`).
            .map_err(|e| classify_transport(&e.without_url()))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, chrono::Utc::now()));
        classify_status(status, retry_after)
    }
}

fn classify_transport(error: &reqwest::Error) -> NotifyError {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<BlockedAddress>() {
            return NotifyError::Permanent(blocked.to_string());
        }
        source = cause.source();
    }
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
        410 => Err(NotifyError::Gone(
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
                Err(NotifyError::Permanent(_) | NotifyError::Gone(_)) => "permanent",
                Err(NotifyError::Config(_)) => "config",
            };
            assert_eq!(got, expected, "HTTP {code}");
        }
    }

    #[test]
    fn address_policy_table() {
        let none = AddressPolicy::default();
        let loopback = AddressPolicy::new(&["127.0.0.0/8".into()]).unwrap();
        // (address, allowed with no ranges, allowed with 127.0.0.0/8)
        let cases = [
            ("93.184.216.34", true, true),
            ("2606:2800:220:1::1", true, true),
            ("127.0.0.1", false, true),
            ("10.1.2.3", false, false),
            ("172.16.0.1", false, false),
            ("192.168.1.1", false, false),
            ("169.254.169.254", false, false),
            ("100.64.0.1", false, false),
            ("0.0.0.0", false, false),
            ("::1", false, false),
            ("fd00::1", false, false),
            ("fe80::1", false, false),
            ("::ffff:10.0.0.1", false, false),
            ("::ffff:127.0.0.1", false, true),
            // The ranges a read of the code found open (issue 14).
            ("0.1.2.3", false, false),
            ("192.0.0.8", false, false),
            ("198.18.0.1", false, false),
            ("198.19.255.255", false, false),
            ("240.0.0.1", false, false),
            ("255.255.255.255", false, false),
            ("224.0.0.1", false, false),
            ("fec0::1", false, false),
            ("ff02::1", false, false),
            ("::ffff:8.8.8.8", false, false),
            ("::127.0.0.1", false, false),
            ("64:ff9b::a00:1", false, false),
            ("2002:a00:1::1", false, false),
            ("2001:0:4136:e378::1", false, false),
            ("2001:db8::1", false, false),
            ("8.8.8.8", true, true),
            ("2a00:1450:4007:80e::200e", true, true),
        ];
        for (ip, open, with_loopback) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(none.permits(ip), open, "{ip}");
            assert_eq!(
                loopback.permits(ip),
                with_loopback,
                "{ip} with loopback allowed"
            );
        }
        assert!(AddressPolicy::new(&["not-a-range".into()]).is_err());
    }

    #[tokio::test]
    async fn private_targets_are_refused_permanently() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sender = WebhookSender::new(vec![secret], Duration::from_secs(2)).unwrap();
        for url in [
            "https://127.0.0.1:9/hook",
            "https://[::1]:9/hook",
            "https://localhost:9/hook",
            "https://169.254.169.254/latest",
            "https://[64:ff9b::a9fe:a9fe]/latest",
            "https://[::ffff:169.254.169.254]/latest",
        ] {
            match sender.send(url, "id", 1, b"{}".to_vec()).await {
                Err(NotifyError::Permanent(message)) => {
                    assert!(message.contains("may not reach"), "{url}: {message}")
                }
                other => panic!("{url}: expected a permanent refusal, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_allowed() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sender = WebhookSender::new(vec![secret], Duration::from_secs(2)).unwrap();
        for url in ["http://crm.example.com/hook", "ftp://crm.example.com/hook"] {
            match sender.send(url, "id", 1, b"{}".to_vec()).await {
                Err(NotifyError::Permanent(message)) => {
                    assert!(message.contains("https"), "{url}: {message}")
                }
                other => panic!("{url}: expected a permanent refusal, got {other:?}"),
            }
        }
        let policy = AddressPolicy::new(&[]).unwrap().allow_http(true);
        assert!(policy.allow_http);
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Fri, 20 Nov 2026 10:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after("Fri, 20 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: retry now"
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn endpoint_timeouts_pick_the_longest_prefix() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sender = WebhookSender::with_policy(
            vec![secret],
            Duration::from_secs(10),
            vec![
                ("https://crm.example.com/".into(), Duration::from_secs(3)),
                (
                    "https://crm.example.com/slow/".into(),
                    Duration::from_secs(30),
                ),
            ],
            AddressPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            sender.timeout_for("https://crm.example.com/hooks"),
            Duration::from_secs(3)
        );
        assert_eq!(
            sender.timeout_for("https://crm.example.com/slow/x"),
            Duration::from_secs(30)
        );
        assert_eq!(
            sender.timeout_for("https://other.example.com/"),
            Duration::from_secs(10)
        );
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
