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

/// `rules check FILE [--owners FILE]`: report and exit non-zero on problems.
pub fn check(rules: &Path, owners: Option<&Path>) -> anyhow::Result<String> {
    let rule_set = load_rules(rules)?;
    let count = rule_set.rules().len();
    if let Some(owners) = owners {
        let directory = load_owners(owners)?;
        Policy::new(rule_set, directory)?;
    }
    Ok(format!("{}: {count} rules ok", rules.display()))
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
                "route": alert.route,
                "channels": alert.channels,
                "severity": alert.severity,
                "error": null,
            }),
            None => json!({
                "line": line_number, "event_id": event.event_id, "rules": [], "owner": null,
                "route": null, "channels": [], "severity": null, "error": null,
            }),
        },
        Err(error) => {
            let event_id = serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|v| v.get("event_id").and_then(Value::as_str).map(str::to_owned));
            json!({
                "line": line_number, "event_id": event_id, "rules": [], "owner": null,
                "route": null, "channels": [], "severity": null, "error": error.to_string(),
            })
        }
    }
}

/// `rules test`: one JSON line per input line, in order.
pub fn test(policy: &Policy, events: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let file = std::fs::File::open(events)
        .with_context(|| format!("could not read {}", events.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        serde_json::to_writer(&mut *out, &decide_line(policy, number, trimmed))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
