//! Rules evaluation: closeloop's compiled evaluator against the `cel`
//! crate's interpreter, on the same 50 conditions and the sample
//! events, in one run. `cargo bench -p closeloop-core --bench rules`
//! (or `make bench-rules`); figures go to BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use cel::extractors::This;
use cel::{Context, Program, Value};
use closeloop_core::event::AttributeValue;
use closeloop_core::text::fold;
use closeloop_core::{parse_event, FeedbackEvent, RuleSet};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// 50 realistic conditions: the defaults, then rules on touchpoint, region,
/// segment, product line, channel, keywords, store lists and attributes.
fn conditions() -> Vec<String> {
    let mut c: Vec<String> = vec![
        "nps <= 6".into(),
        "ces <= 3".into(),
        r#"comment.containsAny(["resilier", "resiliation", "cancel", "avocat", "lawyer", "dangereux", "dangerous", "pris feu"])"#.into(),
    ];
    for t in [
        "purchase",
        "delivery",
        "returns",
        "support_call",
        "onboarding",
        "installation",
        "billing",
    ] {
        c.push(format!(r#"nps <= 6 && touchpoint == "{t}""#));
    }
    for r in [
        "FR-ARA", "FR-IDF", "FR-PAC", "FR-HDF", "FR-NAQ", "FR-OCC", "BE-BRU", "CH-GE",
    ] {
        c.push(format!(r#"ces <= 3 && region == "{r}""#));
    }
    for s in ["standard", "gold", "b2b", "new"] {
        c.push(format!(r#"nps <= 4 && segment == "{s}""#));
    }
    for p in [
        "electromenager",
        "informatique",
        "telephonie",
        "tv-son",
        "jardin",
        "cuisine",
    ] {
        c.push(format!(r#"csat <= 2 && product_line == "{p}""#));
    }
    for ch in ["web", "app", "store", "call_center", "email", "chat"] {
        c.push(format!(r#"nps_class == "detractor" && channel == "{ch}""#));
    }
    for k in [
        ["retard", "late"],
        ["casse", "broken"],
        ["rembourse", "refund"],
        ["attente", "wait"],
        ["technicien", "installation"],
        ["facture", "charged"],
    ] {
        c.push(format!(r#"comment.containsAny(["{}", "{}"])"#, k[0], k[1]));
    }
    for stores in [
        r#"["LYON-01", "LYON-02"]"#,
        r#"["PARIS-01", "PARIS-02", "PARIS-03"]"#,
        r#"["MARSEILLE-01", "MARSEILLE-02"]"#,
        r#"["LILLE-01", "LILLE-02"]"#,
        r#"["BORDEAUX-01", "BORDEAUX-02"]"#,
    ] {
        c.push(format!("store in {stores} && nps <= 6"));
    }
    c.push("has(attributes.order_id) && ces <= 2".into());
    c.push(r#"country == "BE" && nps <= 6"#.into());
    c.push(r#"source == "ivr.post-call" && csat <= 2"#.into());
    c.push(r#"locale == "en-GB" && nps <= 5"#.into());
    c.push(r#"touchpoint in ["billing", "returns"] && (nps <= 6 || ces <= 3)"#.into());
    assert_eq!(c.len(), 50);
    c
}

fn sample_events() -> Vec<FeedbackEvent> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/feedback-sample.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| parse_event(l.as_bytes(), 1 << 20).unwrap())
        .collect()
}

fn compiled_rules(conditions: &[String]) -> RuleSet {
    let mut toml = String::new();
    for (i, c) in conditions.iter().enumerate() {
        // continue = true: every rule is evaluated, as the interpreter does.
        toml.push_str(&format!(
            "[[rule]]\nid = \"r{i}\"\nseverity = \"high\"\nchannels = [\"email\"]\ncontinue = true\ncondition = '{c}'\n\n"
        ));
    }
    RuleSet::from_toml("bench", &toml).unwrap()
}

fn score(v: Option<u8>) -> i64 {
    // Absent scores sit outside every scale, so `<=`/`==` conditions are
    // false for them, as in closeloop's semantics.
    v.map_or(99, i64::from)
}

/// The interpreter's per-event work: a context holding the event's fields.
fn interpret(root: &Context<'_, '_>, programs: &[Program], event: &FeedbackEvent) -> usize {
    let mut ctx = root.new_inner_scope();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    ctx.add_variable_from_value("nps", score(event.scores.nps.map(|s| s.value())));
    ctx.add_variable_from_value("csat", score(event.scores.csat.map(|s| s.value())));
    ctx.add_variable_from_value("ces", score(event.scores.ces.map(|s| s.value())));
    let nps_class = match event.scores.nps.map(|s| s.value()) {
        Some(0..=6) => "detractor",
        Some(7..=8) => "passive",
        Some(_) => "promoter",
        None => "",
    };
    ctx.add_variable_from_value("nps_class", nps_class);
    ctx.add_variable_from_value("touchpoint", event.journey.touchpoint.clone());
    ctx.add_variable_from_value("channel", text(&event.journey.channel));
    ctx.add_variable_from_value("store", text(&event.location.store_id));
    ctx.add_variable_from_value("region", text(&event.location.region));
    ctx.add_variable_from_value("country", text(&event.location.country));
    ctx.add_variable_from_value("segment", text(&event.customer.segment));
    ctx.add_variable_from_value("locale", text(&event.customer.locale));
    ctx.add_variable_from_value("product_line", text(&event.product_line));
    ctx.add_variable_from_value("source", event.source.clone());
    ctx.add_variable_from_value(
        "comment",
        event.comment.as_deref().map(fold).unwrap_or_default(),
    );
    let attributes: std::collections::HashMap<String, Value> = event
        .attributes
        .iter()
        .map(|(k, v)| {
            let value = match v {
                AttributeValue::Text(s) => Value::from(s.clone()),
                AttributeValue::Bool(b) => Value::from(*b),
                AttributeValue::Number(n) => Value::from(n.as_f64().unwrap_or_default()),
            };
            (k.clone(), value)
        })
        .collect();
    ctx.add_variable_from_value("attributes", attributes);
    programs
        .iter()
        .filter(|p| matches!(p.execute(&ctx), Ok(Value::Bool(true))))
        .count()
}

fn bench(c: &mut Criterion) {
    let conditions = conditions();
    let events = sample_events();
    let rules = compiled_rules(&conditions);
    let programs: Vec<Program> = conditions
        .iter()
        .map(|c| Program::compile(c).unwrap())
        .collect();
    let mut root = Context::default();
    root.add_function(
        "containsAny",
        |This(s): This<Arc<String>>, words: Arc<Vec<Value>>| -> bool {
            words
                .iter()
                .any(|w| matches!(w, Value::String(w) if s.contains(w.as_str())))
        },
    )
    .unwrap();

    // Both engines must agree before their speed means anything.
    let compiled_fired: usize = events.iter().map(|e| rules.evaluate(e).len()).sum();
    let interpreted_fired: usize = events.iter().map(|e| interpret(&root, &programs, e)).sum();
    assert_eq!(
        compiled_fired, interpreted_fired,
        "the two engines disagree"
    );
    println!(
        "rules: 50 conditions x {} events, {compiled_fired} rule firings (both engines agree)",
        events.len()
    );

    let mut group = c.benchmark_group("rules_50");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("compiled", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| rules.evaluate(black_box(e)).len())
                .sum::<usize>()
        })
    });
    group.bench_function("cel_interpreter", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| interpret(&root, &programs, black_box(e)))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
