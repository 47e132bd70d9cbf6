//! closeloop's service metrics, for the people who run it (not the loop and
//! score figures, which are the dashboard's): the Prometheus project's
//! client (`prometheus-client`), OpenMetrics text at `/metrics`.
//!
//! Invariants:
//! - Every metric is declared here, once, with its help text: this file is
//!   the list the Grafana dashboard (`deploy/grafana/closeloop.json`) and the
//!   alerting rules (`deploy/prometheus/alerts.yaml`) may query, and a test
//!   checks they query nothing else.
//! - Names follow Prometheus' guide: base units in the name (`_seconds`),
//!   counters end in `_total` (the encoder adds it), no quantile in a name
//!   (durations are histograms).
//! - Labels are bounded: channels, outcomes, reasons, partitions, routes
//!   (the router's patterns, never a raw path), endpoint ids (a hash, never
//!   a URL, which may carry a token). No owner, no customer.
//! - Figures kept elsewhere (the Kafka intake's counters and consumer lag,
//!   the rules reloads) come in through `Collector`s read at scrape time, so
//!   nothing counts twice; the binary's `telemetry.rs` is that collector.

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use prometheus_client;

/// The content type of [`Telemetry::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `email` or `webhook`.
    pub channel: String,
    /// `sent`, `retry` or `dead`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Failure {
    pub channel: String,
    /// `transient`, `permanent`, `gone` (HTTP 410) or `paused` (circuit open).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Endpoint {
    /// The endpoint's short id (`GET /v1/endpoints/disabled` names the same).
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Request {
    pub method: String,
    /// The route pattern (`/v1/cases/{id}`), or `unmatched`.
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms to about 65 s: a batch, a delivery, a request.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The intake: what is stored, how long a batch takes, how far behind.
#[derive(Debug)]
pub struct Intake {
    /// New events stored (duplicates of stored ones not counted), both modes.
    pub events_stored: Counter,
    pub batch_duration_seconds: Histogram,
    pub last_event_timestamp_seconds: Gauge<f64, AtomicU64>,
}

/// Deliveries of the outbox, by channel.
#[derive(Debug)]
pub struct Delivery {
    pub deliveries: Family<Outcome, Counter>,
    pub failures: Family<Failure, Counter>,
    pub duration_seconds: Histograms<ChannelLabel>,
    /// 1 while the endpoint's circuit breaker holds its deliveries back.
    pub breaker_open: Family<Endpoint, Gauge>,
}

/// The outbox as the database has it (the same on every instance).
#[derive(Debug, Default)]
pub struct Outbox {
    pub pending: Gauge,
    pub dead: Gauge,
    pub oldest_pending_age_seconds: Gauge<f64, AtomicU64>,
}

#[derive(Debug)]
pub struct Http {
    pub requests: Family<Request, Counter>,
    pub duration_seconds: Histograms<Route>,
}

#[derive(Debug, Default)]
pub struct Sla {
    pub reminders: Counter,
    pub escalations: Counter,
}

/// Every metric of the service, and the registry that writes them out.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    pub intake: Intake,
    pub delivery: Delivery,
    pub outbox: Outbox,
    pub http: Http,
    pub sla: Sla,
}

impl Telemetry {
    /// The metrics of build `version`, with `collectors` for the counters
    /// kept elsewhere.
    pub fn new(version: &str, collectors: Vec<Box<dyn Collector>>) -> Telemetry {
        let intake = Intake {
            events_stored: Counter::default(),
            batch_duration_seconds: duration_histogram(),
            last_event_timestamp_seconds: Gauge::default(),
        };
        let delivery = Delivery {
            deliveries: Family::default(),
            failures: Family::default(),
            duration_seconds: Family::new_with_constructor(duration_histogram),
            breaker_open: Family::default(),
        };
        let http = Http {
            requests: Family::default(),
            duration_seconds: Family::new_with_constructor(duration_histogram),
        };
        let (outbox, sla) = (Outbox::default(), Sla::default());
        let mut registry = Registry::default();
        let r = &mut registry;
        r.register(
            "closeloop_build",
            "The running build.",
            Info::new(Build {
                version: version.to_owned(),
            }),
        );
        r.register(
            "closeloop_intake_events_stored",
            "New events stored (a replayed event is stored once).",
            intake.events_stored.clone(),
        );
        r.register(
            "closeloop_intake_batch_duration_seconds",
            "Time to store one batch of events (parse, decide, persist), seconds.",
            intake.batch_duration_seconds.clone(),
        );
        r.register(
            "closeloop_intake_last_event_timestamp_seconds",
            "When this instance last stored an event (Unix time).",
            intake.last_event_timestamp_seconds.clone(),
        );
        r.register(
            "closeloop_deliveries",
            "Delivery attempts by channel and outcome (sent, retry, dead).",
            delivery.deliveries.clone(),
        );
        r.register(
            "closeloop_delivery_failures",
            "Failed delivery attempts by channel and reason (transient, permanent, gone, paused).",
            delivery.failures.clone(),
        );
        r.register(
            "closeloop_delivery_duration_seconds",
            "Time of one delivery attempt, seconds.",
            delivery.duration_seconds.clone(),
        );
        r.register(
            "closeloop_webhook_breaker_open",
            "1 while a webhook endpoint's circuit breaker holds its deliveries back.",
            delivery.breaker_open.clone(),
        );
        r.register(
            "closeloop_outbox_pending",
            "Notifications waiting in the outbox (the database's count: the same on every instance).",
            outbox.pending.clone(),
        );
        r.register(
            "closeloop_outbox_dead",
            "Notifications that failed for good and wait for a replay.",
            outbox.dead.clone(),
        );
        r.register(
            "closeloop_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending notification, seconds (0 when none).",
            outbox.oldest_pending_age_seconds.clone(),
        );
        r.register(
            "closeloop_http_requests",
            "HTTP requests by method, route and status.",
            http.requests.clone(),
        );
        r.register(
            "closeloop_http_request_duration_seconds",
            "Time to answer an HTTP request, seconds.",
            http.duration_seconds.clone(),
        );
        r.register(
            "closeloop_sla_reminders",
            "Reminders sent before an SLA deadline.",
            sla.reminders.clone(),
        );
        r.register(
            "closeloop_sla_escalations",
            "Escalations and overdue notices sent after a missed deadline.",
            sla.escalations.clone(),
        );
        for collector in collectors {
            registry.register_collector(collector);
        }
        // Every channel's outcomes and failure reasons exist from the start,
        // at zero: a rate over a series that appears late misses its first
        // increase, and an alert on a missing series never fires.
        for channel in ["email", "webhook"] {
            for outcome in ["sent", "retry", "dead"] {
                let _ = delivery.deliveries.get_or_create(&Outcome {
                    channel: channel.to_owned(),
                    outcome: outcome.to_owned(),
                });
            }
            for reason in ["transient", "permanent", "gone"] {
                let _ = delivery.failures.get_or_create(&Failure {
                    channel: channel.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        }
        Telemetry {
            registry,
            intake,
            delivery,
            outbox,
            http,
            sla,
        }
    }

    /// The OpenMetrics text of every metric ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Count a delivery attempt's outcome and time.
    pub fn delivery_attempt(
        &self,
        channel: &str,
        outcome: &str,
        reason: Option<&str>,
        seconds: f64,
    ) {
        self.delivery
            .deliveries
            .get_or_create(&Outcome {
                channel: channel.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(reason) = reason {
            self.delivery
                .failures
                .get_or_create(&Failure {
                    channel: channel.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
        self.delivery
            .duration_seconds
            .get_or_create(&ChannelLabel {
                channel: channel.to_owned(),
            })
            .observe(seconds);
    }

    /// Count an HTTP request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http
            .requests
            .get_or_create(&Request {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.http
            .duration_seconds
            .get_or_create(&Route {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

/// Counters kept as plain numbers elsewhere, written out at scrape time.
pub mod counters {
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;

    /// Write one counter `name` (without `_total`) of `value`.
    pub fn write(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: u64,
    ) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(value);
        let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
        counter.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl Collector for Fixed {
        fn encode(
            &self,
            mut encoder: prometheus_client::encoding::DescriptorEncoder,
        ) -> Result<(), std::fmt::Error> {
            counters::write(&mut encoder, "closeloop_test_things", "Things.", 7)
        }
    }

    #[test]
    fn names_follow_the_guide_and_collectors_join_in() {
        let telemetry = Telemetry::new("1.2.3", vec![Box::new(Fixed)]);
        telemetry.delivery_attempt("webhook", "dead", Some("permanent"), 0.02);
        telemetry.request("GET", "/v1/cases/{id}", 200, 0.004);
        telemetry.sla.reminders.inc();
        let text = telemetry.render();
        for sample in [
            "closeloop_build_info{version=\"1.2.3\"} 1",
            "closeloop_deliveries_total{channel=\"webhook\",outcome=\"dead\"} 1",
            "closeloop_delivery_failures_total{channel=\"webhook\",reason=\"permanent\"} 1",
            "closeloop_delivery_duration_seconds_count{channel=\"webhook\"} 1",
            "closeloop_http_requests_total{method=\"GET\",route=\"/v1/cases/{id}\",status=\"200\"} 1",
            "closeloop_sla_reminders_total 1",
            "closeloop_test_things_total 7",
            "# EOF",
        ] {
            assert!(text.contains(sample), "{sample} in\n{text}");
        }
        // No quantile in a name, every counter ends in _total.
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert!(
                !parts[2].contains("p50") && !parts[2].contains("p99"),
                "{line}"
            );
        }
    }
}
