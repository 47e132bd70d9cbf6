//! `closeloop rules check` and `closeloop rules test`: validate and try
//! rules offline, touching no database or broker.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use closeloop_core::{parse_event, OwnerDirectory, Policy, RuleSet};
use serde_json::{json, Value};

/// Events larger than this are refused by `rules test` as by the service's default.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
}

pub fn load_rules(path: &Path) -> anyhow::Result<RuleSet> {
    Ok(RuleSet::from_toml(
        &path.display().to_string(),
        &read(path)?,
    )?)
}

pub fn load_owners(path: &Path) -> anyhow::Result<OwnerDirectory> {
    Ok(OwnerDirectory::from_toml(
        &path.display().to_string(),
        &read(path)?,
    )?)
}

pub fn load_policy(rules: &Path, owners: &Path) -> anyhow::Result<Policy> {
    let rules = load_rules(rules)?;
    let owners = load_owners(owners)?;
    Ok(Policy::new(rules, owners)?)
}

/// `rules check FILE [--owners FILE]`: every problem of both files at
/// once, and an error (non-zero exit) if there is any; warnings (rules that
/// can notify nobody) are printed but do not fail.
pub fn check(rules: &Path, owners: Option<&Path>) -> anyhow::Result<String> {
    let name = rules.display().to_string();
    let text = read(rules)?;
    let rule_set = RuleSet::from_toml(&name, &text);
    let directory = owners.map(load_owners).transpose();
    let mut problems: Vec<String> = Vec::new();
    if let Err(errors) = &rule_set {
        problems.push(errors.to_string());
    }
    match &directory {
        Err(error) => problems.push(format!("{error:#}")),
        Ok(Some(directory)) => {
            let unknown = Policy::unknown_owners(&text, directory);
            if !unknown.is_empty() {
                problems.push(
                    closeloop_core::ConfigErrors {
                        file: name.clone(),
                        problems: unknown,
                    }
                    .to_string(),
                );
            }
        }
        Ok(None) => {}
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    let rule_set = rule_set?;
    let count = rule_set.rules().len();
    let mut out = String::new();
    if let Ok(Some(directory)) = directory {
        let policy = Policy::new(rule_set, directory)?;
        for warning in policy.silent_pairs() {
            out.push_str(&format!("warning: {name}: {warning}\n"));
        }
    }
    out.push_str(&format!("{name}: {count} rules ok"));
    Ok(out)
}

/// The decision line for one input line.
pub fn decide_line(policy: &Policy, line_number: usize, line: &[u8]) -> Value {
    match parse_event(line, DEFAULT_MAX_EVENT_BYTES) {
        Ok(event) => match policy.decide(&event) {
            Some(alert) => json!({
                "line": line_number,
                "event_id": event.event_id,
                "rules": alert.rule_ids,
                "owner": alert.owner.id,
                "owner_from_rule": alert.owner_from_rule,
                "route": alert.route,
                "channels": alert.channels,
                "severity": alert.severity,
                "error": null,
            }),
            None => json!({
                "line": line_number, "event_id": event.event_id, "rules": [], "owner": null,
                "owner_from_rule": null, "route": null, "channels": [], "severity": null, "error": null,
            }),
        },
        Err(error) => {
            let event_id = serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|v| v.get("event_id").and_then(Value::as_str).map(str::to_owned));
            json!({
                "line": line_number, "event_id": event_id, "rules": [], "owner": null,
                "owner_from_rule": null, "route": null, "channels": [], "severity": null, "error": error.to_string(),
            })
        }
    }
}

/// Call `each` with the decision for every line of `events`, in order.
fn for_each_decision(
    policy: &Policy,
    events: &Path,
    mut each: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(events)
        .with_context(|| format!("could not read {}", events.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        each(decide_line(policy, number, trimmed))?;
    }
}

/// `rules test`: one JSON line per input line, in order.
pub fn test(policy: &Policy, events: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    for_each_decision(policy, events, |decision| {
        serde_json::to_writer(&mut *out, &decision)?;
        Ok(out.write_all(b"\n")?)
    })?;
    out.flush()?;
    Ok(())
}

/// One expectation of an expectations file (`rules test --expect`): the
/// decision an event must get. Keys left out are not checked.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    event_id: String,
    /// `false`: no rule may fire.
    #[serde(default)]
    alert: Option<bool>,
    #[serde(default)]
    rules: Option<Vec<String>>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectationsFile {
    expect: Vec<Expectation>,
}

/// Check `decisions` (the lines `rules test` prints) against an
/// expectations file. Returns the report and whether everything matched.
pub fn check_expectations(path: &Path, decisions: &[Value]) -> anyhow::Result<(String, bool)> {
    let text = read(path)?;
    let file: ExpectationsFile =
        toml::from_str(&text).with_context(|| format!("expectations {}", path.display()))?;
    let by_id: std::collections::HashMap<&str, &Value> = decisions
        .iter()
        .filter_map(|d| Some((d.get("event_id")?.as_str()?, d)))
        .collect();
    let mut report = String::new();
    let mut failures = 0;
    for expectation in &file.expect {
        let Some(decision) = by_id.get(expectation.event_id.as_str()) else {
            failures += 1;
            report.push_str(&format!(
                "FAIL {}: no such event in the events file\n",
                expectation.event_id
            ));
            continue;
        };
        let mut diffs = Vec::new();
        let got_rules: Vec<String> =
            serde_json::from_value(decision["rules"].clone()).unwrap_or_default();
        if let Some(alert) = expectation.alert {
            if alert == got_rules.is_empty() {
                diffs.push(format!(
                    "  alert:    expected {alert}, got {}",
                    !got_rules.is_empty()
                ));
            }
        }
        let mut compare = |name: &str, expected: Value, got: &Value| {
            if &expected != got {
                diffs.push(format!(
                    "  {:<9} expected {expected}, got {got}",
                    format!("{name}:")
                ));
            }
        };
        if let Some(rules) = &expectation.rules {
            compare("rules", json!(rules), &decision["rules"]);
        }
        if let Some(owner) = &expectation.owner {
            compare("owner", json!(owner), &decision["owner"]);
        }
        if let Some(severity) = &expectation.severity {
            compare("severity", json!(severity), &decision["severity"]);
        }
        if let Some(channels) = &expectation.channels {
            compare("channels", json!(channels), &decision["channels"]);
        }
        if diffs.is_empty() {
            report.push_str(&format!("ok   {}\n", expectation.event_id));
        } else {
            failures += 1;
            report.push_str(&format!(
                "FAIL {}\n{}\n",
                expectation.event_id,
                diffs.join("\n")
            ));
        }
    }
    report.push_str(&format!(
        "{} expectations, {} passed, {failures} failed\n",
        file.expect.len(),
        file.expect.len() - failures
    ));
    Ok((report, failures == 0))
}

/// Every decision line for an events file, in order.
pub fn decide_file(policy: &Policy, events: &Path) -> anyhow::Result<Vec<Value>> {
    let mut decisions = Vec::new();
    for_each_decision(policy, events, |decision| {
        decisions.push(decision);
        Ok(())
    })?;
    Ok(decisions)
}

/// What `rules simulate` reports.
pub fn simulate(
    new: &Policy,
    old: Option<&Policy>,
    events: &Path,
    json_output: bool,
) -> anyhow::Result<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let file = std::fs::File::open(events)
        .with_context(|| format!("could not read {}", events.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = indicatif::ProgressBar::new(size);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let (mut events_read, mut invalid, mut alerts) = (0usize, 0usize, 0usize);
    let mut per_rule: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    let mut per_owner: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut changes = Vec::new();
    let summary = |a: Option<closeloop_core::Alert>| {
        a.map(|a| json!({"rules": a.rule_ids, "owner": a.owner.id, "severity": a.severity}))
            .unwrap_or(Value::Null)
    };
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        progress.inc(n as u64);
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        events_read += 1;
        let Ok(event) = parse_event(trimmed, DEFAULT_MAX_EVENT_BYTES) else {
            invalid += 1;
            continue;
        };
        let decision = new.decide(&event);
        if let Some(alert) = &decision {
            alerts += 1;
            let day = event.occurred_at.date_naive().to_string();
            *per_owner
                .entry(alert.owner.id.clone())
                .or_default()
                .entry(day)
                .or_default() += 1;
            for rule in &alert.rule_ids {
                let entry = per_rule.entry(rule.clone()).or_default();
                entry.0 += 1;
                entry.1.insert(alert.owner.id.clone());
            }
        }
        if let Some(old) = old {
            let before = summary(old.decide(&event));
            let after = summary(decision);
            if before != after {
                changes.push(json!({"event_id": event.event_id, "old": before, "new": after}));
            }
        }
    }
    progress.finish_and_clear();

    let owners: Vec<Value> = per_owner
        .iter()
        .map(|(owner, days)| {
            let total: usize = days.values().sum();
            json!({
                "owner": owner, "alerts": total, "days": days.len(),
                "per_day_avg": (total as f64 / days.len().max(1) as f64 * 10.0).round() / 10.0,
                "per_day_max": days.values().max().copied().unwrap_or(0),
            })
        })
        .collect();
    let rules: Vec<Value> = new
        .rules()
        .rules()
        .iter()
        .map(|r| {
            let (count, owners) = per_rule.get(&r.id).cloned().unwrap_or_default();
            json!({"rule": r.id, "alerts": count, "owners": owners.len()})
        })
        .collect();
    let report = json!({
        "events": events_read, "invalid": invalid, "alerts": alerts,
        "rules": rules, "owners": owners,
        "changed": old.map(|_| changes.len()), "changes": changes,
    });
    if json_output {
        return Ok(serde_json::to_string_pretty(&report)?);
    }
    let mut out =
        format!("{events_read} events ({invalid} invalid), {alerts} alerts\n\nper rule:\n");
    for r in &rules {
        out.push_str(&format!(
            "  {:<32} {:>7} alerts  {:>4} owners\n",
            r["rule"].as_str().unwrap_or(""),
            r["alerts"],
            r["owners"]
        ));
    }
    out.push_str("\nper owner (daily load over the days with alerts):\n");
    for o in &owners {
        out.push_str(&format!(
            "  {:<24} {:>7} alerts  {:>5} days  avg {:>5}/day  max {:>4}/day\n",
            o["owner"].as_str().unwrap_or(""),
            o["alerts"],
            o["days"],
            o["per_day_avg"],
            o["per_day_max"]
        ));
    }
    if old.is_some() {
        out.push_str(&format!("\n{} events change decision:\n", changes.len()));
        for c in changes.iter().take(50) {
            out.push_str(&format!(
                "  {}: {} -> {}\n",
                c["event_id"].as_str().unwrap_or(""),
                c["old"],
                c["new"]
            ));
        }
        if changes.len() > 50 {
            out.push_str(&format!(
                "  … and {} more (use --json for all)\n",
                changes.len() - 50
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const EVENTS: &str = concat!(
        r#"{"event_id":"a","occurred_at":"2026-11-20T10:00:00Z","source":"s","customer":{"id":"c"},"journey":{"touchpoint":"delivery"},"location":{"store_id":"LYON-02"},"scores":{"nps":3}}"#,
        "\n",
        r#"{"event_id":"b","occurred_at":"2026-11-21T10:00:00Z","source":"s","customer":{"id":"c"},"journey":{"touchpoint":"delivery"},"location":{"store_id":"LYON-02"},"scores":{"nps":6}}"#,
        "\n",
        r#"{"event_id":"c","occurred_at":"2026-11-21T11:00:00Z","source":"s","customer":{"id":"c"},"journey":{"touchpoint":"delivery"},"scores":{"nps":9}}"#,
        "\nnot json\n"
    );

    /// `rules check`: problems of both files at once, each naming its file
    /// and line; unknown owners reported beside the rules' other problems;
    /// webhook-only rules to owners without a webhook warned about.
    #[test]
    fn check_reports_both_files_at_once_and_warns_about_silent_rules() {
        let dir = tempfile::TempDir::new().unwrap();
        let rules = write(
            &dir,
            "rules.toml",
            "[[rule]]\nid = \"a\"\nseverity = \"urgent\"\nchannels = [\"email\"]\ncondition = 'nps <= 6'\n\n[[rule]]\nid = \"b\"\nseverity = \"low\"\nchannels = [\"email\"]\nowner = \"ghost\"\ncondition = 'nps <= 6'\n",
        );
        let owners = write(&dir, "owners.toml", "default_owner = \"d\"\n\n[[owner]]\nid = \"d\"\nname = \"D\"\nemail = \"bad-address\"\n");
        let error = format!("{:#}", check(&rules, Some(&owners)).unwrap_err());
        for expected in [
            "rules.toml: line 1: rule \"a\": severity",
            "owners.toml",
            "email",
        ] {
            assert!(
                error.contains(expected),
                "`{expected}` missing from:\n{error}"
            );
        }
        let good_owners = write(&dir, "good-owners.toml", "default_owner = \"d\"\n\n[[owner]]\nid = \"d\"\nname = \"D\"\nemail = \"d@example.com\"\n");
        let error = format!("{:#}", check(&rules, Some(&good_owners)).unwrap_err());
        assert!(
            error.contains("rules.toml: line 1: rule \"a\": severity"),
            "{error}"
        );
        assert!(
            error.contains("rules.toml: line 11: rule \"b\": owner: unknown owner \"ghost\""),
            "both problems at once, the owner's on its own line:\n{error}"
        );
        let silent = write(&dir, "silent.toml", "[[rule]]\nid = \"crm-only\"\nseverity = \"low\"\nchannels = [\"webhook\"]\ncondition = 'nps <= 6'\n");
        let report = check(&silent, Some(&good_owners)).unwrap();
        assert!(
            report.contains("warning:")
                && report.contains("rule \"crm-only\"")
                && report.contains("owner \"d\" has no webhook_url"),
            "{report}"
        );
        assert!(report.ends_with("1 rules ok"), "{report}");
    }

    #[test]
    fn rules_test_shows_which_rule_chose_the_owner() {
        let dir = tempfile::TempDir::new().unwrap();
        let rules = write(&dir, "rules.toml", "[[rule]]\nid = \"first\"\nseverity = \"low\"\nchannels = [\"email\"]\nowner = \"rm-fr-ara\"\ncontinue = true\ncondition = 'nps <= 6'\n\n[[rule]]\nid = \"second\"\nseverity = \"high\"\nchannels = [\"email\"]\nowner = \"cx-director\"\ncondition = 'nps <= 6'\n");
        let policy = load_policy(&rules, &repo("config/owners.toml")).unwrap();
        let decision = decide_line(&policy, 1, EVENTS.lines().next().unwrap().as_bytes());
        assert_eq!(decision["owner"], "rm-fr-ara");
        assert_eq!(decision["owner_from_rule"], "first");
        assert_eq!(decision["rules"], json!(["first", "second"]));
    }

    #[test]
    fn expectations_pass_and_fail_with_a_diff() {
        let dir = tempfile::TempDir::new().unwrap();
        let events = write(&dir, "events.jsonl", EVENTS);
        let policy = load_policy(&repo("config/rules.toml"), &repo("config/owners.toml")).unwrap();
        let decisions = decide_file(&policy, &events).unwrap();
        assert_eq!(decisions.len(), 4);
        assert!(decisions[3]["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"));

        let good = write(&dir, "good.toml", "[[expect]]\nevent_id = \"a\"\nrules = [\"nps-detractor\"]\nowner = \"mgr-lyon-02\"\nseverity = \"high\"\n\n[[expect]]\nevent_id = \"c\"\nalert = false\n");
        let (report, passed) = check_expectations(&good, &decisions).unwrap();
        assert!(passed, "{report}");
        assert!(report.contains("2 expectations, 2 passed, 0 failed"));

        let bad = write(&dir, "bad.toml", "[[expect]]\nevent_id = \"a\"\nseverity = \"low\"\n\n[[expect]]\nevent_id = \"c\"\nalert = true\n\n[[expect]]\nevent_id = \"zzz\"\n");
        let (report, passed) = check_expectations(&bad, &decisions).unwrap();
        assert!(!passed);
        for expected in [
            "FAIL a\n  severity: expected \"low\", got \"high\"",
            "FAIL c\n  alert:    expected true, got false",
            "FAIL zzz: no such event",
            "3 expectations, 0 passed, 3 failed",
        ] {
            assert!(
                report.contains(expected),
                "`{expected}` missing from:\n{report}"
            );
        }
        let typo = write(
            &dir,
            "typo.toml",
            "[[expect]]\nevent_id = \"a\"\nsevrity = \"low\"\n",
        );
        assert!(
            format!("{:#}", check_expectations(&typo, &decisions).unwrap_err())
                .contains("unknown field `sevrity`")
        );
    }

    #[test]
    fn simulate_counts_load_and_changes() {
        let dir = tempfile::TempDir::new().unwrap();
        let events = write(&dir, "events.jsonl", EVENTS);
        let owners = repo("config/owners.toml");
        let old = load_policy(&repo("config/rules.toml"), &owners).unwrap();
        let stricter = std::fs::read_to_string(repo("config/rules.toml"))
            .unwrap()
            .replace("condition = \"nps <= 6\"", "condition = \"nps <= 5\"");
        let new = load_policy(&write(&dir, "new.toml", &stricter), &owners).unwrap();
        let report: Value =
            serde_json::from_str(&simulate(&new, Some(&old), &events, true).unwrap()).unwrap();
        assert_eq!(
            (
                report["events"].as_i64(),
                report["invalid"].as_i64(),
                report["alerts"].as_i64()
            ),
            (Some(4), Some(1), Some(1))
        );
        assert_eq!(report["changed"], 1, "event b (NPS 6) no longer alerts");
        assert_eq!(report["changes"][0]["event_id"], "b");
        assert!(report["changes"][0]["new"].is_null());
        let owner = &report["owners"][0];
        assert_eq!(
            (
                owner["owner"].as_str(),
                owner["alerts"].as_i64(),
                owner["per_day_max"].as_i64()
            ),
            (Some("mgr-lyon-02"), Some(1), Some(1))
        );
        let text = simulate(&new, Some(&old), &events, false).unwrap();
        assert!(
            text.contains("1 events change decision") && text.contains("nps-detractor"),
            "{text}"
        );
    }
}
