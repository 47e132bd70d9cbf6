//! The event contract is the repository's own: the committed data files are
//! what the generator makes, and the parser and the JSON Schema
//! (`docs/schemas/`) agree on every sample and every invalid line.
//! Needs no stack.

use closeloop_tests::{contract_schema as schema, repo_root, webhook_validator};
use serde_json::Value;

const MAX_EVENT_BYTES: usize = 262_144;

fn event_validator() -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema("feedback-event-v1.schema.json"))
        .expect("the event schema compiles")
}

fn data(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/data").join(name)).unwrap()
}

/// Both judges on one line: (parser accepts, schema accepts).
fn judge(
    validator: &jsonschema::Validator,
    line: &str,
) -> (Result<(), String>, Result<(), String>) {
    let parser = closeloop_core::parse_event(line.as_bytes(), MAX_EVENT_BYTES)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let schema = match serde_json::from_str::<Value>(line) {
        Err(e) => Err(format!("not JSON: {e}")),
        Ok(value) if line.len() > MAX_EVENT_BYTES => {
            Err(format!("{} bytes", value.to_string().len()))
        }
        Ok(value) => validator
            .validate(&value)
            .map_err(|e| format!("{e} at {}", e.instance_path())),
    };
    (parser, schema)
}

#[test]
fn committed_data_is_what_the_generator_makes() {
    let sample: Vec<String> = closeloop_gen::lines(closeloop_gen::Options::new(2000, 1)).collect();
    let committed = data("feedback-sample.jsonl");
    assert_eq!(
        committed.lines().collect::<Vec<_>>(),
        sample,
        "tests/data/feedback-sample.jsonl: regenerate with `closeloop generate --count 2000 --seed 1`"
    );
    assert_eq!(
        data("feedback-invalid.jsonl").lines().collect::<Vec<_>>(),
        closeloop_gen::invalid_corpus(1),
        "tests/data/feedback-invalid.jsonl: regenerate with `closeloop generate --invalid --seed 1`"
    );
}

#[test]
fn every_sample_event_passes_the_parser_and_the_schema() {
    let validator = event_validator();
    for (n, line) in data("feedback-sample.jsonl").lines().enumerate() {
        let (parser, schema) = judge(&validator, line);
        assert!(parser.is_ok(), "line {}: parser: {parser:?}", n + 1);
        assert!(schema.is_ok(), "line {}: schema: {schema:?}", n + 1);
    }
}

#[test]
fn every_invalid_line_is_refused_by_the_parser_and_the_schema() {
    let validator = event_validator();
    let corpus = data("feedback-invalid.jsonl");
    assert!(corpus.lines().count() >= 30);
    for (n, line) in corpus.lines().enumerate() {
        let (parser, schema) = judge(&validator, line);
        assert!(parser.is_err(), "line {}: the parser accepted it", n + 1);
        assert!(schema.is_err(), "line {}: the schema accepted it", n + 1);
    }
}

/// The edges the contract states, one line each: both judges give the same
/// verdict, and it is the stated one.
#[test]
fn parser_and_schema_agree_on_the_stated_edges() {
    let validator = event_validator();
    let base = r#"{"event_id":"e-1","occurred_at":"2026-11-20T10:15:00+01:00","source":"s","customer":{"id":"C-1"},"journey":{"touchpoint":"delivery"},"scores":{"nps":3}}"#;
    let cases: &[(&str, &str, bool)] = &[
        ("as is", base, true),
        (
            "integral float score",
            &base.replace("\"nps\":3", "\"nps\":3.0"),
            true,
        ),
        (
            "fractional score",
            &base.replace("\"nps\":3", "\"nps\":3.5"),
            false,
        ),
        (
            "null optional field",
            &base.replace("{\"id\":\"C-1\"}", "{\"id\":\"C-1\",\"name\":null}"),
            true,
        ),
        (
            "null score",
            &base.replace("\"nps\":3", "\"nps\":null"),
            false,
        ),
        ("space for T", &base.replace("T10", " 10"), false),
        (
            "unicode minus",
            &base.replace("+01:00", "\u{2212}01:00"),
            false,
        ),
        ("no offset", &base.replace("+01:00", ""), false),
        (
            "lower-case t and Z",
            &base.replace("T10:15:00+01:00", "t10:15:00Z"),
            true,
        ),
        (
            "unknown field",
            &base.replace("{\"event_id\"", "{\"extra\":[1],\"event_id\""),
            true,
        ),
        (
            "NUL in a string",
            &base.replace("\"s\"", "\"a\\u0000b\""),
            false,
        ),
        (
            "lower-case country",
            &base.replace("\"scores\"", "\"location\":{\"country\":\"fr\"},\"scores\""),
            false,
        ),
        (
            "unknown channel",
            &base.replace("\"delivery\"", "\"delivery\",\"channel\":\"fax\""),
            false,
        ),
        ("128-char id", &base.replace("e-1", &"x".repeat(128)), true),
        ("129-char id", &base.replace("e-1", &"x".repeat(129)), false),
        (
            "nested attribute",
            &base.replace("\"scores\"", "\"attributes\":{\"a\":[1]},\"scores\""),
            false,
        ),
    ];
    for (what, line, valid) in cases {
        let (parser, schema) = judge(&validator, line);
        assert_eq!(parser.is_ok(), *valid, "{what}: parser: {parser:?}");
        assert_eq!(schema.is_ok(), *valid, "{what}: schema: {schema:?}");
    }
}

#[test]
fn the_webhook_schema_compiles_and_refuses_a_wrong_type() {
    let validator = webhook_validator();
    let body = serde_json::json!({"type": "case.deleted", "timestamp": "2026-11-20T10:15:00Z", "data": {}});
    assert!(!validator.is_valid(&body));
}

/// The README's example expectations hold on the committed sample.
#[test]
fn the_shipped_expectations_hold_on_the_sample() {
    let root = repo_root();
    let output = closeloop_tests::closeloop_command()
        .current_dir(&root)
        .args([
            "rules",
            "test",
            "--rules",
            "config/rules.toml",
            "--owners",
            "config/owners.toml",
            "--events",
            "tests/data/feedback-sample.jsonl",
            "--expect",
            "config/examples/expectations.toml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("3 expectations, 3 passed, 0 failed"),
        "{stdout}"
    );
}

/// What JSON Schema cannot see: a duplicate key refuses the event, naming
/// the key (on every intake: the HTTP and Kafka paths share the parser).
#[test]
fn duplicate_keys_are_refused_naming_the_key() {
    let line = r#"{"event_id":"e-1","event_id":"e-2","occurred_at":"2026-11-20T10:15:00+01:00","source":"s","customer":{"id":"C-1"},"journey":{"touchpoint":"delivery"},"scores":{"nps":3}}"#;
    let error = closeloop_core::parse_event(line.as_bytes(), MAX_EVENT_BYTES).unwrap_err();
    assert!(
        error.to_string().contains("duplicate key \"event_id\""),
        "{error}"
    );
}
