//! The rules defects of issue 15, one table each: what used to panic,
//! misfire or be refused now compiles to what the README says, or is
//! refused with a located message.

use closeloop_core::cel::Matcher;
use closeloop_core::{parse_event, FeedbackEvent, RuleSet};

fn event(comment: &str, attributes: &str) -> FeedbackEvent {
    let text = format!(
        r#"{{"event_id":"e","occurred_at":"2026-11-20T10:00:00Z","source":"s","customer":{{"id":"c"}},"journey":{{"touchpoint":"delivery"}},"scores":{{"nps":3}},"comment":{},"attributes":{attributes}}}"#,
        serde_json::to_string(comment).unwrap()
    );
    parse_event(text.as_bytes(), 1 << 20).unwrap()
}

/// (condition, comment, attributes, fires)
#[test]
fn conditions_that_compile_fire_as_documented() {
    let cases: &[(&str, &str, &str, bool)] = &[
        // startsWith / endsWith with a list test every element.
        (
            r#"comment.startsWith(["merci", "bravo"])"#,
            "Bravo pour la livraison",
            "{}",
            true,
        ),
        (
            r#"comment.startsWith(["merci", "bravo"])"#,
            "Livraison, bravo",
            "{}",
            false,
        ),
        (
            r#"comment.endsWith(["!", "?"])"#,
            "Vraiment\u{a0}?",
            "{}",
            true,
        ),
        (
            r#"comment.startsWith("MERCI")"#,
            "merci beaucoup",
            "{}",
            true,
        ),
        // Keywords are whole, spaces included, in CEL as in the table form.
        (
            r#"comment.containsAny([" résilie "])"#,
            "Bravo pour votre résilience",
            "{}",
            false,
        ),
        (
            r#"comment.containsAny([" résilie "])"#,
            "je résilie demain",
            "{}",
            true,
        ),
        // Full case folding and spacing.
        (
            r#"comment.contains("straße")"#,
            "GROSSE STRASSE",
            "{}",
            true,
        ),
        (
            r#"comment.contains("très bien !")"#,
            "Très   bien\u{a0}!",
            "{}",
            true,
        ),
        // `in` on an attribute.
        (
            r#"attributes.carrier in ["XPO", "GEODIS"]"#,
            "",
            r#"{"carrier":"GEODIS"}"#,
            true,
        ),
        (
            r#"attributes.carrier in ["XPO", "GEODIS"]"#,
            "",
            r#"{"carrier":"DPD"}"#,
            false,
        ),
        (
            r#"attributes.carrier in ["XPO", "GEODIS"]"#,
            "",
            "{}",
            false,
        ),
        (
            r#"attributes.items in [2, 3]"#,
            "",
            r#"{"items":3.0}"#,
            true,
        ),
        // matches() on a string attribute; false when absent or not a string.
        (
            r#"attributes.order_id.matches("^CMD-[0-9]+$")"#,
            "",
            r#"{"order_id":"CMD-55120"}"#,
            true,
        ),
        (
            r#"attributes.order_id.matches("^CMD-[0-9]+$")"#,
            "",
            r#"{"order_id":55120}"#,
            false,
        ),
        (
            r#"attributes.order_id.matches("^CMD-[0-9]+$")"#,
            "",
            "{}",
            false,
        ),
    ];
    for (condition, comment, attributes, fires) in cases {
        let matcher =
            Matcher::compile(condition).unwrap_or_else(|e| panic!("{condition}: {}", e.message));
        assert_eq!(
            matcher.matches(&event(comment, attributes)),
            *fires,
            "{condition} on {comment:?} {attributes}"
        );
    }
}

/// (condition, words the refusal must contain)
#[test]
fn refusals_are_messages_not_panics() {
    let cases: &[(&str, &[&str])] = &[
        (
            "comment.startsWith([])",
            &["startsWith()", "at least one keyword"],
        ),
        (
            "comment.endsWith([])",
            &["endsWith()", "at least one keyword"],
        ),
        (
            "comment.containsAny([])",
            &["containsAny()", "at least one keyword"],
        ),
        (r#"comment.startsWith([" "])"#, &["must not be empty"]),
        (r#"comment.containsAny(["\u00a0"])"#, &["must not be empty"]),
        (
            r#"attributes.carrier.contains("X")"#,
            &["comment only", "matches()", "in [...]"],
        ),
        (
            r#"attributes.carrier in [store]"#,
            &["attributes.carrier", "list"],
        ),
        ("nps in [-(9223372036854775808)]", &[]),
        ("-9223372036854775808 < nps", &[]),
    ];
    for (condition, words) in cases {
        match Matcher::compile(condition) {
            Ok(_) if words.is_empty() => {}
            Ok(_) => panic!("{condition}: compiled, expected a refusal"),
            Err(error) => {
                for word in *words {
                    assert!(
                        error.message.contains(word),
                        "{condition}: {}",
                        error.message
                    );
                }
            }
        }
    }
}

/// The table form's `comment_any` and CEL's `containsAny` are one
/// implementation: the same keyword gives the same verdict.
#[test]
fn table_and_cel_keywords_agree() {
    for keyword in [" résilie ", "RÉSILIER", "straße", "merci\u{a0}!", "résil"] {
        let escaped = serde_json::to_string(keyword).unwrap();
        let table = RuleSet::from_toml(
            "t.toml",
            &format!("[[rule]]\nid = \"t\"\nseverity = \"low\"\nchannels = [\"email\"]\n[rule.when]\ncomment_any = [{escaped}]\n"),
        )
        .unwrap();
        let cel = Matcher::compile(&format!("comment.containsAny([{escaped}])")).unwrap();
        for comment in [
            "Bravo pour votre résilience",
            "je résilie demain",
            "Je vais RESILIER",
            "grosse strasse",
            "Merci !",
        ] {
            let event = event(comment, "{}");
            assert_eq!(
                !table.evaluate(&event).is_empty(),
                cel.matches(&event),
                "{keyword:?} on {comment:?}"
            );
        }
    }
}
