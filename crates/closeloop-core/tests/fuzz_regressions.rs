//! Every input the fuzzers keep (`fuzz/seeds`, `fuzz/corpus`, and crashes
//! saved in `fuzz/regressions`) replayed through the same checks as the
//! fuzz targets, on the stable toolchain: a crash once found stays fixed.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut found = Vec::new();
    for folder in ["seeds", "corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            found.push((entry.path(), std::fs::read(entry.path()).unwrap()));
        }
    }
    found
}

#[test]
fn event_parser_inputs() {
    let inputs = inputs("event_parser");
    assert!(inputs.len() >= 30, "the seeds are there ({})", inputs.len());
    for (path, data) in inputs {
        if let Ok(event) = closeloop_core::parse_event(&data, 256 * 1024) {
            let again = serde_json::to_vec(&event).unwrap();
            let reparsed = closeloop_core::parse_event(&again, 1 << 20)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(event, reparsed, "{}", path.display());
        }
    }
}

#[test]
fn rule_condition_inputs() {
    let inputs = inputs("rule_condition");
    assert!(!inputs.is_empty());
    let event = closeloop_core::parse_event(
        br#"{"event_id":"fz-1","source":"survey.post-delivery","occurred_at":"2026-11-02T10:00:00Z","customer":{"id":"c1"},"journey":{"touchpoint":"delivery"},"location":{"store_id":"LYON-02","region":"FR-ARA"},"scores":{"nps":3},"comment":"rude staff"}"#,
        1 << 20,
    )
    .unwrap();
    let mut compiled = 0;
    for (_, data) in inputs {
        if let Ok(source) = std::str::from_utf8(&data) {
            if let Ok(condition) = closeloop_core::cel::Matcher::compile(source) {
                compiled += 1;
                let _ = condition.matches(&event);
            }
        }
    }
    assert!(compiled > 0, "some seeds are valid conditions");
}

#[test]
fn rules_file_inputs() {
    let inputs = inputs("rules_file");
    assert!(!inputs.is_empty());
    for (_, data) in inputs {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = closeloop_core::RuleSet::from_toml("rules.toml", text);
        }
    }
}

#[test]
fn link_token_inputs() {
    let inputs = inputs("link_token");
    assert!(inputs.len() >= 10, "the seeds are there ({})", inputs.len());
    let key = b"fuzz-link-key-0123456789abcdef";
    let mut verified = 0;
    for (_, data) in &inputs {
        closeloop_core::links::check_token(key, data);
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        if let Ok(token) = std::str::from_utf8(data) {
            verified += usize::from(closeloop_core::links::verify(key, token, now).is_ok());
        }
    }
    assert!(verified >= 2, "the valid seeds verify ({verified})");
}
