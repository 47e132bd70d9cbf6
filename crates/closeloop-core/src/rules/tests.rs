use super::*;
use crate::error::ConfigErrors;
use crate::event::{parse_event, FeedbackEvent};

fn event(json: serde_json::Value) -> FeedbackEvent {
    let mut base = serde_json::json!({
        "event_id": "e-1", "occurred_at": "2026-11-20T10:15:00+01:00", "source": "survey.post-delivery",
        "customer": {"id": "C-1", "segment": "gold"},
        "journey": {"touchpoint": "delivery", "channel": "web"},
        "location": {"store_id": "LYON-02", "region": "FR-ARA", "country": "FR"},
        "product_line": "electromenager",
        "scores": {"nps": 3},
        "attributes": {"order_id": "CMD-1", "items": 3, "gift": false}
    });
    for (k, v) in json.as_object().unwrap() {
        base[k] = v.clone();
    }
    parse_event(&serde_json::to_vec(&base).unwrap(), 1 << 20).unwrap()
}

fn one_rule(when: &str) -> RuleSet {
    let text = format!(
        "[[rule]]\nid = \"r\"\nseverity = \"high\"\nchannels = [\"email\"]\n[rule.when]\n{when}\n"
    );
    RuleSet::from_toml("rules.toml", &text).unwrap_or_else(|e| panic!("{when}: {e}"))
}

/// (condition, event patch, expected to fire)
#[test]
fn conditions_table() {
    use serde_json::json;
    let cases: Vec<(&str, serde_json::Value, bool)> = vec![
        ("nps = { max = 6 }", json!({"scores": {"nps": 6}}), true),
        ("nps = { max = 6 }", json!({"scores": {"nps": 7}}), false),
        ("nps = { max = 6 }", json!({"scores": {"ces": 2}}), false),
        ("nps = { min = 9 }", json!({"scores": {"nps": 10}}), true),
        ("ces = { max = 3 }", json!({"scores": {"ces": 3}}), true),
        ("ces = { max = 3 }", json!({"scores": {"ces": 4}}), false),
        (
            "csat = { min = 1, max = 2 }",
            json!({"scores": {"csat": 2}}),
            true,
        ),
        (
            "nps_class = [\"detractor\"]",
            json!({"scores": {"nps": 0}}),
            true,
        ),
        (
            "nps_class = [\"detractor\"]",
            json!({"scores": {"nps": 7}}),
            false,
        ),
        (
            "nps_class = [\"passive\", \"promoter\"]",
            json!({"scores": {"nps": 8}}),
            true,
        ),
        (
            "csat_class = [\"dissatisfied\"]",
            json!({"scores": {"csat": 1}}),
            true,
        ),
        (
            "csat_class = [\"dissatisfied\"]",
            json!({"scores": {"csat": 3}}),
            false,
        ),
        (
            "ces_class = [\"high_effort\"]",
            json!({"scores": {"ces": 1}}),
            true,
        ),
        (
            "ces_class = [\"high_effort\"]",
            json!({"scores": {"ces": 5}}),
            false,
        ),
        ("touchpoint = [\"delivery\", \"returns\"]", json!({}), true),
        ("touchpoint = [\"returns\"]", json!({}), false),
        ("channel = [\"web\"]", json!({}), true),
        (
            "channel = [\"app\"]",
            json!({"journey": {"touchpoint": "delivery"}}),
            false,
        ),
        ("store = [\"LYON-01\", \"LYON-02\"]", json!({}), true),
        ("region = [\"FR-IDF\"]", json!({}), false),
        ("country = [\"FR\"]", json!({}), true),
        ("segment = [\"gold\"]", json!({}), true),
        ("product_line = [\"jardin\"]", json!({}), false),
        ("source = [\"survey.post-delivery\"]", json!({}), true),
        (
            "comment_any = [\"résilier\"]",
            json!({"comment": "Je vais RESILIER mon abonnement"}),
            true,
        ),
        (
            "comment_any = [\"RETARD\"]",
            json!({"comment": "Livraison en retard"}),
            true,
        ),
        (
            "comment_any = [\"avocat\", \"lawyer\"]",
            json!({"comment": "My LAWYER will hear"}),
            true,
        ),
        (
            "comment_any = [\"avocat\"]",
            json!({"comment": "Merci"}),
            false,
        ),
        ("comment_any = [\"avocat\"]", json!({}), false),
        ("attributes = { order_id = \"CMD-1\" }", json!({}), true),
        ("attributes = { items = 3 }", json!({}), true),
        ("attributes = { items = 3.0 }", json!({}), true),
        ("attributes = { gift = true }", json!({}), false),
        ("has_attributes = [\"order_id\"]", json!({}), true),
        ("has_attributes = [\"agent_id\"]", json!({}), false),
        (
            "nps = { max = 6 }\ntouchpoint = [\"delivery\"]",
            json!({}),
            true,
        ),
        (
            "nps = { max = 6 }\ntouchpoint = [\"returns\"]",
            json!({}),
            false,
        ),
        (
            "any = [{ ces = { max = 3 } }, { comment_any = [\"cancel\"] }]",
            json!({"scores": {"nps": 9}, "comment": "I will cancel"}),
            true,
        ),
        (
            "any = [{ ces = { max = 3 } }, { comment_any = [\"cancel\"] }]",
            json!({"scores": {"nps": 9}}),
            false,
        ),
        (
            "any = [{ ces = { max = 3 } }, { comment_any = [\"cancel\"] }]",
            json!({"scores": {"ces": 2}}),
            true,
        ),
    ];
    for (when, patch, expected) in cases {
        let rules = one_rule(when);
        let fired = !rules.evaluate(&event(patch.clone())).is_empty();
        assert_eq!(fired, expected, "`{when}` on {patch}");
    }
}

/// (file body, expected fragments of the error text)
#[test]
fn refusals_name_rule_field_and_line() {
    let head = "[[rule]]\nid = \"bad\"\nseverity = \"high\"\nchannels = [\"email\"]\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
            (format!("{head}[rule.when]\nnpss = {{ max = 6 }}\n"), vec!["line 1", "rule \"bad\"", "when", "unknown field `npss`"]),
            (format!("{head}[rule.when]\nnps = {{ max = 11 }}\n"), vec!["line 1", "rule \"bad\"", "when.nps.max", "0..10"]),
            (format!("{head}[rule.when]\nnps = {{ min = 7, max = 6 }}\n"), vec!["when.nps", "greater than max"]),
            (format!("{head}[rule.when]\nnps = {{ max = \"6\" }}\n"), vec!["rule \"bad\"", "when.nps.max", "invalid type"]),
            (format!("{head}[rule.when]\nnps = {{}}\n"), vec!["when.nps", "give min, max or both"]),
            (format!("{head}[rule.when]\nnps_class = [\"angry\"]\n"), vec!["when.nps_class", "unknown variant `angry`"]),
            (format!("{head}[rule.when]\ntouchpoint = []\n"), vec!["when.touchpoint", "at least one value"]),
            (format!("{head}[rule.when]\ncomment_any = [\" \"]\n"), vec!["when.comment_any[0]", "must not be empty"]),
            (format!("{head}[rule.when]\n"), vec!["rule \"bad\"", "when", "at least one condition"]),
            (head.to_string(), vec!["rule \"bad\"", "exactly one of `condition` (CEL) or a `[rule.when]` table"]),
            ("[[rule]]\nid = \"x\"\nseverity = \"urgent\"\nchannels = [\"email\"]\n[rule.when]\nnps = { max = 6 }\n".into(), vec!["severity", "unknown variant `urgent`"]),
            ("[[rule]]\nid = \"x\"\nseverity = \"high\"\nchannels = [\"sms\"]\n[rule.when]\nnps = { max = 6 }\n".into(), vec!["channels[0]", "unknown variant `sms`"]),
            ("[[rule]]\nid = \"x\"\nseverity = \"high\"\nchannels = []\n[rule.when]\nnps = { max = 6 }\n".into(), vec!["channels", "at least one"]),
            (format!("{head}[rule.when]\nnps = {{ max = 6 }}\n\n{head}[rule.when]\nces = {{ max = 3 }}\n"), vec!["line 8", "duplicate rule id"]),
            ("[[rule]\nid = 1\n".into(), vec!["line 1"]),
            ("rules = []\n".into(), vec!["unknown field `rules`"]),
        ];
    for (body, fragments) in cases {
        let err = RuleSet::from_toml("rules.toml", &body)
            .expect_err(&body)
            .to_string();
        for fragment in fragments {
            assert!(
                err.contains(fragment),
                "expected `{fragment}` in `{err}` for:\n{body}"
            );
        }
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let body = "[[rule]]\nid = \"a\"\nseverity = \"high\"\nchannels = []\n[rule.when]\nnps = { max = 6 }\n\
                    [[rule]]\nid = \"b\"\nseverity = \"high\"\nchannels = [\"email\"]\n[rule.when]\nces = { max = 9 }\n";
    let err = RuleSet::from_toml("rules.toml", body).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
}

#[test]
fn evaluation_keeps_file_order() {
    let body = "[[rule]]\nid = \"second-in-severity\"\nseverity = \"medium\"\nchannels = [\"email\"]\ncontinue = true\n[rule.when]\nces = { max = 3 }\n\
                    [[rule]]\nid = \"first\"\nseverity = \"high\"\nchannels = [\"webhook\"]\n[rule.when]\nnps = { max = 6 }\n";
    let rules = RuleSet::from_toml("rules.toml", body).unwrap();
    let fired: Vec<_> = rules
        .evaluate(&event(serde_json::json!({"scores": {"nps": 2, "ces": 1}})))
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(fired, ["second-in-severity", "first"]);
    assert_eq!(rules.rules()[1].line, 8);
    // Without `continue`, the first rule that fires ends matching.
    let stopping =
        RuleSet::from_toml("rules.toml", &body.replace("continue = true\n", "")).unwrap();
    let fired: Vec<_> = stopping
        .evaluate(&event(serde_json::json!({"scores": {"nps": 2, "ces": 1}})))
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(fired, ["second-in-severity"]);
}

#[test]
fn the_index_skips_rules_that_cannot_match_and_keeps_decisions() {
    let body = "[[rule]]\nid = \"lyon\"\nseverity = \"high\"\nchannels = [\"email\"]\ncontinue = true\ncondition = 'nps <= 6 && store in [\"LYON-01\", \"LYON-02\"]'\n\
                    [[rule]]\nid = \"paris\"\nseverity = \"high\"\nchannels = [\"email\"]\ncontinue = true\ncondition = 'store == \"PARIS-01\" && nps <= 6'\n\
                    [[rule]]\nid = \"any-store\"\nseverity = \"low\"\nchannels = [\"email\"]\ncontinue = true\ncondition = 'nps <= 6 || store == \"PARIS-01\"'\n\
                    [[rule]]\nid = \"delivery\"\nseverity = \"low\"\nchannels = [\"email\"]\n[rule.when]\ntouchpoint = [\"delivery\"]\nnps = { max = 6 }\n";
    let rules = RuleSet::from_toml("rules.toml", body).unwrap();
    let lyon = event(serde_json::json!({}));
    // LYON-02, delivery: "paris" is not even a candidate.
    assert_eq!(rules.index.candidates(&lyon).collect::<Vec<_>>(), [0, 2, 3]);
    let fired: Vec<_> = rules
        .evaluate(&lyon)
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        fired,
        ["lyon", "any-store", "delivery"],
        "file order and continue are kept"
    );
    let mut no_store = lyon.clone();
    no_store.location.store_id = None;
    assert_eq!(
        rules.index.candidates(&no_store).collect::<Vec<_>>(),
        [2, 3]
    );
    // Unindexed evaluation gives the same decisions.
    for e in [&lyon, &no_store] {
        let input = Prepared::new(e, rules.needs_comment());
        let mut all = Vec::new();
        for r in rules.rules() {
            if r.condition.matches(&input) {
                all.push(r.id.as_str());
                if !r.continue_matching {
                    break;
                }
            }
        }
        let indexed: Vec<_> = rules.evaluate(e).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(indexed, all);
    }
}

fn cel_rule(condition: &str) -> Result<RuleSet, ConfigErrors> {
    let text = format!(
            "[[rule]]\nid = \"r\"\nseverity = \"high\"\nchannels = [\"email\"]\ncondition = '{condition}'\n"
        );
    RuleSet::from_toml("rules.toml", &text)
}

/// (CEL condition, event patch, expected to fire)
#[test]
fn cel_conditions_table() {
    use serde_json::json;
    let cases: Vec<(&str, serde_json::Value, bool)> = vec![
        (r#"nps <= 6 && touchpoint == "delivery""#, json!({}), true),
        (
            r#"nps <= 6 && touchpoint == "delivery""#,
            json!({"scores": {"nps": 7}}),
            false,
        ),
        (
            r#"ces <= 3 || comment.containsAny(["avocat", "lawyer", "résilier", "cancel"])"#,
            json!({"scores": {"nps": 9}, "comment": "Je vais RESILIER"}),
            true,
        ),
        (
            r#"ces <= 3 || comment.containsAny(["avocat", "lawyer", "résilier", "cancel"])"#,
            json!({"scores": {"ces": 2}}),
            true,
        ),
        (
            r#"ces <= 3 || comment.containsAny(["avocat", "lawyer", "résilier", "cancel"])"#,
            json!({"scores": {"nps": 9}, "comment": "merci"}),
            false,
        ),
        (r#"store in ["LYON-01", "LYON-02"]"#, json!({}), true),
        (r#"store in ["PARIS-01"]"#, json!({}), false),
        ("has(attributes.order_id)", json!({}), true),
        ("has(attributes.agent_id)", json!({}), false),
        ("6 >= nps", json!({}), true),
        ("nps != 3", json!({}), false),
        ("nps != 4", json!({}), true),
        ("nps != 4", json!({"scores": {"ces": 2}}), false),
        (r#"nps_class == "detractor""#, json!({}), true),
        (r#"nps_class in ["passive", "promoter"]"#, json!({}), false),
        (
            r#"ces_class == "high_effort""#,
            json!({"scores": {"ces": 3}}),
            true,
        ),
        (r#"!(segment == "gold")"#, json!({}), false),
        (r#"segment != "gold""#, json!({}), false),
        ("attributes.items >= 3", json!({}), true),
        ("attributes.items > 3", json!({}), false),
        (r#"attributes.order_id == "CMD-1""#, json!({}), true),
        (
            r#"comment.matches("^Livr[a-z]+ ")"#,
            json!({"comment": "Livraison en retard"}),
            true,
        ),
        (
            r#"comment.startsWith("livraison")"#,
            json!({"comment": "LIVRAISON en retard"}),
            true,
        ),
        (
            r#"location.store_id == "LYON-02" && scores.nps < 4"#,
            json!({}),
            true,
        ),
        ("nps in [0, 1, 2, 3]", json!({}), true),
        ("true", json!({}), true),
    ];
    for (condition, patch, expected) in cases {
        let rules = cel_rule(condition).unwrap_or_else(|e| panic!("{condition}: {e}"));
        assert_eq!(
            !rules.evaluate(&event(patch.clone())).is_empty(),
            expected,
            "`{condition}` on {patch}"
        );
    }
}

/// (CEL condition, expected fragments: line, column and reason)
#[test]
fn cel_refusals_name_line_and_column() {
    let cases = [
        (
            r#"nps == "6""#,
            vec![
                "line 5",
                "rule \"r\"",
                "condition",
                "column 18",
                "type mismatch: nps (an int) compared with \"6\" (a string)",
            ],
        ),
        (
            "npss <= 6",
            vec!["line 5", "column 14", "unknown field `npss`"],
        ),
        (
            "nps <= 6 && touchpont == \"x\"",
            vec!["column 26", "unknown field `touchpont`"],
        ),
        ("nps <= ", vec!["line 5", "syntax error"]),
        (
            r#"touchpoint < "b""#,
            vec!["strings compare with == and != only"],
        ),
        (
            r#"nps_class == "angry""#,
            vec!["unknown nps_class \"angry\""],
        ),
        ("nps", vec!["expected a condition"]),
        (r#"store.contains("LY")"#, vec!["available on comment only"]),
        (
            r#"comment.matches("[")"#,
            vec!["invalid regular expression"],
        ),
        ("size(comment) > 3", vec!["unknown function"]),
    ];
    for (condition, fragments) in cases {
        let err = cel_rule(condition).expect_err(condition).to_string();
        for fragment in fragments {
            assert!(
                err.contains(fragment),
                "`{fragment}` missing from `{err}` for {condition}"
            );
        }
    }
    let both = "[[rule]]\nid = \"r\"\nseverity = \"high\"\nchannels = [\"email\"]\ncondition = \"nps <= 6\"\n[rule.when]\nnps = { max = 6 }\n";
    assert!(RuleSet::from_toml("rules.toml", both)
        .unwrap_err()
        .to_string()
        .contains("exactly one of"));
}
