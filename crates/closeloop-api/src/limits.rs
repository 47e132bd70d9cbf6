//! Request limits: a body-size cap and a per-client rate limit, so one
//! misbehaving upstream or a scraping script cannot starve the managers'
//! pages or the intake.
//!
//! The rate limit is a GCRA token bucket per client IP address (the
//! `governor` crate); answers over the limit are `429 Too Many Requests`
//! with `Retry-After`. Health probes and `/metrics` are never limited, so an
//! orchestrator keeps seeing the truth under load.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use serde_json::json;

/// The limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Sustained requests per second per client IP; 0 turns the limit off.
    pub requests_per_second: u32,
    /// Requests a client may send at once above the sustained rate.
    pub burst: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 4 * 1024 * 1024,
            requests_per_second: 100,
            burst: 200,
        }
    }
}

/// Per-client rate limiter shared by every request.
#[derive(Clone)]
pub(crate) struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed.
    trusted: Arc<Vec<IpNet>>,
}

impl ClientRateLimit {
    /// `None` when the limits turn rate limiting off.
    pub(crate) fn new(limits: &HttpLimits, trusted: Arc<Vec<IpNet>>) -> Option<Self> {
        let rate = NonZeroU32::new(limits.requests_per_second)?;
        let burst = NonZeroU32::new(limits.burst.max(limits.requests_per_second))?;
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(ClientRateLimit {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
            trusted,
        })
    }
}

/// The client a request comes from: the peer, unless the peer is a trusted
/// proxy (`http.trusted_proxies`); then the nearest address of the
/// forwarding chain (`Forwarded: for=`, else `X-Forwarded-For`, read from
/// the right) that is not a trusted proxy itself. A client can write
/// anything on the left of the chain, so nothing left of the first untrusted
/// hop is believed; headers from an untrusted peer are ignored.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return *ip,
            // An unreadable hop: nothing left of it can be trusted.
            None => return peer,
        }
    }
    peer
}

/// The forwarding chain, left (the original client) to right (the last
/// proxy); `None` for a hop that is not an address (`unknown`, an obfuscated
/// identifier).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for").then(|| parse_hop(value))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_hop)
        .collect()
}

/// `192.0.2.1`, `"[2001:db8::1]:443"`, `198.51.100.7:8080`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    hop.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// Middleware: refuse a request over its client's quota with 429.
pub(crate) async fn rate_limit(
    State(limit): State<ClientRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    // Without connection info (a router driven in-process) every caller
    // shares one bucket, which is the conservative choice.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let client = client_address(peer, request.headers(), &limit.trusted);
    // Forget quiet clients now and then, so the table stays small.
    if limit.limiter.len() > 10_000 {
        limit.limiter.retain_recent();
    }
    match limit.limiter.check_key(&client) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds.max(1).to_string())],
                Json(json!({
                    "error": format!("rate limit exceeded: retry in {} s", seconds.max(1))
                })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_behind_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // (peer, header name, header value, client)
        let cases = [
            (
                "203.0.113.9",
                "x-forwarded-for",
                "198.51.100.1",
                "203.0.113.9",
            ), // untrusted peer: header ignored
            (
                "10.0.0.2",
                "x-forwarded-for",
                "198.51.100.1",
                "198.51.100.1",
            ),
            (
                "10.0.0.2",
                "x-forwarded-for",
                "1.1.1.1, 198.51.100.1",
                "198.51.100.1",
            ), // spoofed left part ignored
            (
                "10.0.0.2",
                "x-forwarded-for",
                "198.51.100.1, 10.0.0.7",
                "198.51.100.1",
            ), // two proxies
            (
                "10.0.0.2",
                "x-forwarded-for",
                "garbage, 198.51.100.1",
                "198.51.100.1",
            ),
            (
                "10.0.0.2",
                "x-forwarded-for",
                "198.51.100.1, garbage",
                "10.0.0.2",
            ),
            (
                "10.0.0.2",
                "forwarded",
                "for=198.51.100.1;proto=https",
                "198.51.100.1",
            ),
            (
                "10.0.0.2",
                "forwarded",
                "for=\"[2001:db8::7]:443\"",
                "2001:db8::7",
            ),
            ("10.0.0.2", "forwarded", "for=unknown", "10.0.0.2"),
            ("10.0.0.2", "x-real-ip", "198.51.100.1", "10.0.0.2"), // no chain: the proxy
        ];
        for (peer, name, value, client) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                axum::http::HeaderName::from_static(name),
                value.parse().unwrap(),
            );
            assert_eq!(
                client_address(ip(peer), &headers, &trusted),
                ip(client),
                "{peer} {name}: {value}"
            );
        }
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &[]),
            ip("10.0.0.2")
        );
    }
}
