//! The service's counters kept as plain numbers (the Kafka intake's, the
//! rules reloads, the unnotified alerts), written into `/metrics` at
//! scrape time through a `closeloop_telemetry` collector.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use closeloop_kafka::IntakeStats;
use closeloop_telemetry::counters;
use closeloop_telemetry::prometheus_client::collector::Collector;
use closeloop_telemetry::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use closeloop_telemetry::prometheus_client::metrics::counter::ConstCounter;
use closeloop_telemetry::prometheus_client::metrics::gauge::ConstGauge;

use crate::reload::ActivePolicy;

pub(crate) struct ServiceCounters {
    pub policy: Arc<ActivePolicy>,
    pub intake: Arc<IntakeStats>,
    pub unnotified: Arc<AtomicU64>,
}

impl std::fmt::Debug for ServiceCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCounters").finish_non_exhaustive()
    }
}

impl Collector for ServiceCounters {
    fn encode(&self, mut out: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rules = self.policy.status();
        let intake = &self.intake;
        for (name, help, value) in [
            (
                "closeloop_intake_messages",
                "Messages read from the intake topic (Kafka mode).",
                intake.messages.load(Relaxed),
            ),
            (
                "closeloop_intake_events_dead_lettered",
                "Invalid events sent to the dead-letter topic.",
                intake.dead_lettered.load(Relaxed),
            ),
            (
                "closeloop_intake_batches",
                "Batches stored and committed.",
                intake.batches.load(Relaxed),
            ),
            (
                "closeloop_intake_store_failures",
                "Failed attempts to store a batch (retried).",
                intake.handler_failures.load(Relaxed),
            ),
            (
                "closeloop_rules_reloads",
                "Successful rules reloads.",
                rules.reloads,
            ),
            (
                "closeloop_rules_reload_failures",
                "Refused rules reloads (the last good rules stay active).",
                rules.reload_failures,
            ),
            (
                "closeloop_alerts_unnotified",
                "Cases opened that no channel reaches (nobody notified).",
                self.unnotified.load(Relaxed),
            ),
        ] {
            counters::write(&mut out, name, help, value)?;
        }
        let phases = ConstCounter::new(0u64);
        let mut family = out.encode_descriptor(
            "closeloop_intake_phase_seconds",
            "Time of the intake loop per phase: fetch (waiting for and gathering messages), store (parse, decide, persist), commit (offsets), seconds.",
            None,
            phases.metric_type(),
        )?;
        for (phase, micros) in [
            ("fetch", &intake.fetch_micros),
            ("store", &intake.store_micros),
            ("commit", &intake.commit_micros),
        ] {
            let seconds = ConstCounter::new(micros.load(Relaxed) as f64 / 1e6);
            seconds.encode(family.encode_family(&[("phase", phase)])?)?;
        }
        let lag = ConstGauge::new(0i64);
        let mut family = out.encode_descriptor(
            "closeloop_intake_consumer_lag",
            "Messages of the intake topic not consumed yet, per partition (Kafka mode; librdkafka's statistics, every 5 s).",
            None,
            lag.metric_type(),
        )?;
        let partitions = intake
            .consumer_lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((topic, partition), behind) in partitions {
            let partition = partition.to_string();
            ConstGauge::new(behind).encode(family.encode_family(&[
                ("topic", topic.as_str()),
                ("partition", partition.as_str()),
            ])?)?;
        }
        let failed = ConstGauge::new(i64::from(rules.last_error.is_some()));
        failed.encode(out.encode_descriptor(
            "closeloop_rules_last_reload_failed",
            "1 when the last reload was refused.",
            None,
            failed.metric_type(),
        )?)?;
        let info = ConstGauge::new(1i64);
        let mut family = out.encode_descriptor(
            "closeloop_rules_info",
            "The active rules set.",
            None,
            info.metric_type(),
        )?;
        let (version, count) = (rules.version.to_string(), rules.rules.to_string());
        info.encode(
            family.encode_family(&[("version", version.as_str()), ("rules", count.as_str())])?,
        )?;
        Ok(())
    }
}
