//! A circuit breaker per webhook endpoint (scheme, host and port): after
//! `failures_to_open` consecutive transient failures the endpoint is paused
//! for `cooldown`, so a dead receiver costs one attempt per cooldown instead
//! of one per delivery, and never slows deliveries to other endpoints.
//! State is per dispatcher process; time comes from the caller.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Default, Clone, Copy)]
struct EndpointState {
    consecutive_failures: u32,
    open_until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    failures_to_open: u32,
    cooldown: Duration,
    endpoints: Mutex<HashMap<String, EndpointState>>,
}

/// The part of a URL that identifies an endpoint's server.
pub fn endpoint_key(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => closeloop_core::redact::mask_url(url),
    }
}

impl CircuitBreaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(until)` while the endpoint is paused. Once the cooldown is over
    /// one attempt goes through (half-open); its outcome closes or reopens.
    pub fn open_until(&self, url: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints
            .get(&endpoint_key(url))?
            .open_until
            .filter(|until| *until > now)
    }

    pub fn record_success(&self, url: &str) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints.remove(&endpoint_key(url));
    }

    /// Count a transient failure; returns the pause end if this opened the breaker.
    pub fn record_failure(&self, url: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let state = endpoints.entry(endpoint_key(url)).or_default();
        state.consecutive_failures += 1;
        if state.consecutive_failures >= self.failures_to_open {
            let until = now
                + chrono::Duration::from_std(self.cooldown)
                    .unwrap_or(chrono::Duration::seconds(30));
            state.open_until = Some(until);
            return Some(until);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn opens_after_consecutive_failures_and_closes_on_success() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(30));
        let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let url = "https://crm.example.com/hooks/a";
        assert_eq!(breaker.record_failure(url, t0), None);
        assert_eq!(breaker.record_failure(url, t0), None);
        let until = breaker
            .record_failure(url, t0)
            .expect("third failure opens");
        assert_eq!(until, t0 + chrono::Duration::seconds(30));
        assert_eq!(
            breaker.open_until("https://crm.example.com/hooks/other", t0),
            Some(until),
            "same server, same breaker"
        );
        assert_eq!(
            breaker.open_until("https://other.example.com/", t0),
            None,
            "other endpoints are not blocked"
        );
        assert_eq!(
            breaker.open_until(url, until),
            None,
            "half-open after the cooldown"
        );
        breaker.record_success(url);
        assert_eq!(
            breaker.record_failure(url, until),
            None,
            "a success resets the count"
        );
    }
}
