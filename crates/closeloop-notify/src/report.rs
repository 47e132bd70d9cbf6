//! The template values of the weekly report: figures written as the
//! language writes them ("31,5" in French), shares as percentages.

use closeloop_wire::{AttentionV1, WeeklyReportV1};
use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Reason {
    kind: &'static str,
    cases: i64,
    from: String,
    to: String,
    cause: String,
}

#[derive(Serialize)]
pub(crate) struct Store<'a> {
    store: &'a str,
    url: &'a str,
    reasons: Vec<Reason>,
}

#[derive(Serialize)]
pub(crate) struct ReportContext<'a> {
    recipient_name: &'a str,
    week: String,
    responses: i64,
    nps: Option<String>,
    nps_before: Option<String>,
    opened: i64,
    resolved: i64,
    overdue: i64,
    ack_within_sla: Option<String>,
    resolve_within_sla: Option<String>,
    stores: Vec<Store<'a>>,
    dashboard_url: &'a str,
}

/// A figure with one decimal, with the language's decimal mark.
pub(crate) fn decimal(value: f64, language: &str) -> String {
    let text = format!("{value:.1}");
    if language == "fr" {
        text.replace('.', ",")
    } else {
        text
    }
}

fn percent(share: f64, language: &str) -> String {
    let value = format!("{:.0}", 100.0 * share);
    if language == "fr" {
        format!("{value} %")
    } else {
        format!("{value}%")
    }
}

pub(crate) fn context<'a>(report: &'a WeeklyReportV1, language: &str) -> ReportContext<'a> {
    let reason = |r: &AttentionV1| match r {
        AttentionV1::Overdue { cases } => Reason {
            kind: "overdue",
            cases: *cases,
            from: String::new(),
            to: String::new(),
            cause: String::new(),
        },
        AttentionV1::NpsFell { from, to } => Reason {
            kind: "nps_fell",
            cases: 0,
            from: decimal(*from, language),
            to: decimal(*to, language),
            cause: String::new(),
        },
        AttentionV1::RootCause { cause, cases } => Reason {
            kind: "root_cause",
            cases: *cases,
            from: String::new(),
            to: String::new(),
            cause: cause.clone(),
        },
    };
    ReportContext {
        recipient_name: &report.recipient_name,
        week: match language {
            "fr" => report.week.format("%d/%m/%Y").to_string(),
            _ => report.week.format("%-d %b %Y").to_string(),
        },
        responses: report.responses,
        nps: report.nps.map(|v| decimal(v, language)),
        nps_before: report.nps_before.map(|v| decimal(v, language)),
        opened: report.opened,
        resolved: report.resolved,
        overdue: report.overdue,
        ack_within_sla: report.ack_within_sla.map(|v| percent(v, language)),
        resolve_within_sla: report.resolve_within_sla.map(|v| percent(v, language)),
        stores: report
            .stores
            .iter()
            .map(|s| Store {
                store: &s.store,
                url: &s.url,
                reasons: s.reasons.iter().map(reason).collect(),
            })
            .collect(),
        dashboard_url: &report.dashboard_url,
    }
}
