//! The invalid corpus: one line per way an event can break the contract.
//! Every intake must refuse each of them, naming the field (the tests check
//! that the parser and the JSON Schema agree on every line).

use serde_json::{json, Value};

use crate::{Generator, Options};

/// The lines, in a fixed order. `seed` picks the valid event they start from.
pub fn invalid_corpus(seed: u64) -> Vec<String> {
    let good = Generator::new(Options::new(1, seed))
        .next()
        .expect("one event");
    let mutate = |change: &dyn Fn(&mut Value)| {
        let mut event = good.clone();
        change(&mut event);
        event.to_string()
    };
    let set = |path: &'static [&'static str], value: Value| {
        mutate(&move |event: &mut Value| {
            let (last, parents) = path.split_last().unwrap();
            let mut target = event;
            for key in parents {
                target = &mut target[*key];
            }
            target[*last] = value.clone();
        })
    };
    let remove = |path: &'static [&'static str]| {
        mutate(&move |event: &mut Value| {
            let (last, parents) = path.split_last().unwrap();
            let mut target = event;
            for key in parents {
                target = &mut target[*key];
            }
            target.as_object_mut().unwrap().remove(*last);
        })
    };
    let whole = good.to_string();
    vec![
        // Not an event at all.
        String::new(),
        "{".into(),
        "not json at all".into(),
        "[]".into(),
        "null".into(),
        "42".into(),
        "\"a string\"".into(),
        "{}".into(),
        // Required fields missing or empty.
        remove(&["event_id"]),
        set(&["event_id"], json!("")),
        set(&["event_id"], json!("x".repeat(129))),
        remove(&["occurred_at"]),
        set(&["occurred_at"], json!("yesterday")),
        set(&["occurred_at"], json!("2026-13-45T99:00:00Z")),
        set(&["occurred_at"], json!("2026-11-20T10:15:00")),
        remove(&["source"]),
        remove(&["customer"]),
        remove(&["customer", "id"]),
        set(&["customer"], json!(["C-1"])),
        // Scores.
        set(&["scores"], json!({})),
        remove(&["scores"]),
        set(&["scores"], json!({"nps": 11})),
        set(&["scores"], json!({"nps": -1})),
        set(&["scores"], json!({"nps": 6.5})),
        set(&["scores"], json!({"nps": "6"})),
        set(&["scores"], json!({"csat": 0})),
        set(&["scores"], json!({"ces": 8})),
        set(&["scores"], json!({"nps": 1e30})),
        set(&["scores"], json!({"nps": null})),
        // Journey, comment, attributes.
        remove(&["journey", "touchpoint"]),
        set(&["journey"], json!("delivery")),
        set(&["comment"], json!("x".repeat(10_001))),
        set(&["attributes"], json!({"nested": {"a": 1}})),
        // Truncated, and keys repeated in an object that lacks the rest.
        whole[..whole.len() - 5].to_string(),
        r#"{"event_id": "dup-key", "event_id": "dup-key-2"}"#.into(),
        // One-line fields with line breaks (a fake line in an email) or
        // longer than the contract allows; control characters in a comment.
        set(
            &["customer", "name"],
            json!("Julie\r\nAction: http://evil.example"),
        ),
        set(&["location", "store_id"], json!("LYON-02\nURGENT")),
        set(&["attributes"], json!({"order_id": "CMD-1\r\nX"})),
        set(&["location", "store_id"], json!("S".repeat(129))),
        set(&["customer", "name"], json!("N".repeat(201))),
        set(&["comment"], json!("bell \u{7} here")),
        // Nested far deeper than any parser should follow.
        format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
    ]
}
