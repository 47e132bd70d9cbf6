//! Sample variables of every page, to render each template once per
//! language at load: a template naming a variable the pages never give,
//! or a text missing from a catalog, is refused before the service starts.
//! They mirror the contexts built by the page modules (the end-to-end
//! tests render the real ones).

use std::collections::BTreeMap;

use serde_json::{json, Value};

fn layout(lang: &str, text: &BTreeMap<String, String>, others: &[(String, String)]) -> Value {
    let others: Vec<Value> = others
        .iter()
        .map(|(code, name)| json!({"code": code, "name": name, "href": format!("/inbox?lang={code}")}))
        .collect();
    json!({
        "lang": lang,
        "t": text,
        "title": "Sample",
        "others": others,
        "who": "Claire Martin",
        "csrf": "sample-token",
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

fn list() -> Value {
    json!({
        "cards": [{
            "id": "0190a000-0000-7000-8000-000000000001", "href": "/cases/0190a000-0000-7000-8000-000000000001",
            "customer": "Jeanne Petit", "select_label": "Select", "scores": "NPS 2 · detractor",
            "comment": "Delivered three days late…", "store": "LYON-01", "touchpoint": "Delivery",
            "status": "New", "severity": "High", "severity_code": "high",
            "clock": "Acknowledge within 1 h 10 min", "clock_state": "due"
        }],
        "empty": "Nothing",
        "page": {"label": "1–50 of 120", "prev": null, "next": "/inbox?offset=50"}
    })
}

/// (page, variables) for every page in `lang`, whose texts are `text` and
/// whose switch offers `others` (code, name).
pub(crate) fn contexts(
    lang: &str,
    text: &BTreeMap<String, String>,
    others: &[(String, String)],
) -> Vec<(&'static str, Value)> {
    let base = layout(lang, text, others);
    let option = json!({"value": "high", "label": "High", "count": 3, "selected": true});
    vec![
        ("base.html", base.clone()),
        (
            "message.html",
            with(
                base.clone(),
                json!({"heading": "Done", "message": "Recorded.",
                       "action": {"href": "/inbox", "label": "Inbox"},
                       "form": {"action": "/signin/x", "csrf": "t", "label": "Sign in", "note": true}}),
            ),
        ),
        (
            "signin.html",
            with(
                base.clone(),
                json!({"email": "claire@example.com", "error": "No"}),
            ),
        ),
        ("inbox_list.html", json!({"t": text, "list": list()})),
        (
            "inbox.html",
            with(
                base.clone(),
                json!({
                    "filters": {"any": true, "q": "late", "overdue": true,
                                "facets": [{"name": "severity", "label": "Severity", "options": [option]}]},
                    "counts": {"all": "12 open", "overdue": "3 overdue"},
                    "list": list(), "flash": "Done", "errors": ["No"], "query": "?q=late", "refresh_ms": 20000
                }),
            ),
        ),
        (
            "insights.html",
            with(
                base.clone(),
                json!({
                    "heading": "Loop health", "group_label": "Region", "operator": true,
                    "from": "2026-11-01", "to": "2026-11-30",
                    "tiles": [{"label": "opened", "value": "12", "tone": "bad"}],
                    "causes": [{"label": "Stock", "value": "3", "tone": ""}],
                    "columns": ["Opened"],
                    "rows": [{"label": "FR-ARA", "href": "/insights?region=FR-ARA", "cells": ["12"]}],
                    "periods": [{"value": "7d", "label": "7 days", "selected": true}],
                    "groupings": [{"value": "store", "label": "Store", "selected": true}],
                    "csv": "/insights.csv?period=7d",
                    "filters": [["Region", "FR-ARA"]],
                    "period_query": "period=7d"
                }),
            ),
        ),
        (
            "scores.html",
            with(
                base.clone(),
                json!({
                    "operator": true, "from": "2026-11-01", "to": "2026-11-30",
                    "dimensions": [{"value": "region", "label": "Region", "selected": true}],
                    "seconds": [{"value": "touchpoint", "label": "Touchpoint", "selected": false}],
                    "periods": [{"value": "30d", "label": "30 days", "selected": true}],
                    "first_label": "Region", "second_label": "Touchpoint",
                    "columns": ["NPS"],
                    "rows": [{"group": "FR-ARA", "subgroup": "delivery", "cells": ["-12.5"]}],
                    "bars": [{"label": "FR-ARA", "value": "-12.5", "x": 43.8, "width": 6.2, "tone": "bad"}],
                    "trend": {"points": "0,40 100,0", "first": "W1", "last": "W2"},
                    "trend_before": {"points": "0,20 100,10", "first": "W0", "last": "W1"},
                    "csv": "/insights/scores.csv?by=region", "region": "", "store": ""
                }),
            ),
        ),
        (
            "operations.html",
            with(
                base.clone(),
                json!({
                    "deliveries": [{"id": "x", "case_href": "/cases/x", "what": "new case (webhook)",
                                    "to": "https://crm.example/…", "error": "HTTP 400", "at": "1 Dec 2026 9:40"}],
                    "endpoints": [{"id": "ab12", "url": "https://crm.example/…", "reason": "410", "since": "1 Dec"}],
                    "silences": [{"id": "y", "matcher": "store == \"X\"", "state": "active", "until": "2 Dec",
                                  "reason": "works", "by": "ops", "muted": 3}],
                    "rules": {"version": "abc", "rules": "3 rules", "loaded_at": "now", "last_error": "line 3"},
                    "flash": "Done", "error": "No"
                }),
            ),
        ),
        (
            "case.html",
            with(
                base,
                json!({
                    "case": {
                        "title": "Call back Jeanne Petit",
                        "scores": [{"text": "NPS 2 · detractor", "class": "bad"}],
                        "phone": "+33 6 12 34 56 78", "phone_href": "tel:+33612345678", "call": "Call",
                        "email": "jeanne@example.com", "mailto": "mailto:jeanne@example.com", "write": "Email",
                        "comment": "Late.", "answered": "Answered 28 Nov 9:40, Delivery",
                        "details": [{"label": "Store", "value": "LYON-01"}]
                    },
                    "clocks": [{"text": "Acknowledge within 1 h", "state": "due"}],
                    "steps": ["acknowledge", "contact", "resolve", "wait", "resume", "reopen", "close", "note"],
                    "options": {
                        "root_causes": [{"value": "stock", "label": "Out of stock"}],
                        "outcomes": [{"value": "reached", "label": "Reached"}],
                        "owners": [{"value": "rm-fr-ara", "label": "Julien Faure"}]
                    },
                    "forms": {"base": "/cases/x/do", "link": "signed"},
                    "history": [{"at": "28 Nov 2026 9:41", "what": "Case opened", "who": "by closeloop",
                                 "change": "New → Acknowledged", "note": "On it", "kind": "step"}],
                    "earlier": [{"text": "NPS 4", "href": "/cases/y"}],
                    "flash": "Done", "error": "No", "signed_in": false
                }),
            ),
        ),
    ]
}
