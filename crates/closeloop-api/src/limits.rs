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
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
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
}

impl ClientRateLimit {
    /// `None` when the limits turn rate limiting off.
    pub(crate) fn new(limits: &HttpLimits) -> Option<Self> {
        let rate = NonZeroU32::new(limits.requests_per_second)?;
        let burst = NonZeroU32::new(limits.burst.max(limits.requests_per_second))?;
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(ClientRateLimit {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
        })
    }
}

/// Middleware: refuse a request over its client's quota with 429.
pub(crate) async fn rate_limit(
    State(limit): State<ClientRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    // Without connection info (a router driven in-process) every caller
    // shares one bucket, which is the conservative choice.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
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
