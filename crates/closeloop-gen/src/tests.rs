use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn sample(count: usize, seed: u64) -> Vec<Value> {
    Generator::new(Options::new(count, seed)).collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_events() {
    let a: Vec<String> = lines(Options::new(300, 7)).collect();
    let b: Vec<String> = lines(Options::new(300, 7)).collect();
    let c: Vec<String> = lines(Options::new(300, 8)).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 300);
}

#[test]
fn every_event_has_a_score_inside_its_scale_and_the_required_fields() {
    for event in sample(2000, 1) {
        let scores = event["scores"].as_object().unwrap();
        assert!(!scores.is_empty(), "{event}");
        for (name, range) in [("nps", 0..=10), ("csat", 1..=5), ("ces", 1..=7)] {
            if let Some(score) = scores.get(name) {
                assert!(range.contains(&score.as_i64().unwrap()), "{event}");
            }
        }
        for field in ["event_id", "occurred_at", "source"] {
            assert!(event[field].is_string(), "{field}: {event}");
        }
        assert!(event["customer"]["id"].is_string());
        assert!(event["journey"]["touchpoint"].is_string());
        DateTime::parse_from_rfc3339(event["occurred_at"].as_str().unwrap()).unwrap();
    }
}

#[test]
fn the_mix_looks_like_a_survey_programme() {
    let events = sample(2000, 1);
    let nps: Vec<i64> = events
        .iter()
        .filter_map(|e| e["scores"]["nps"].as_i64())
        .collect();
    let share =
        |f: &dyn Fn(i64) -> bool| nps.iter().filter(|n| f(**n)).count() as f64 / nps.len() as f64;
    let detractors = share(&|n| n <= 6);
    let promoters = share(&|n| n >= 9);
    assert!(
        (0.12..0.35).contains(&detractors),
        "detractors {detractors}"
    );
    assert!((0.35..0.65).contains(&promoters), "promoters {promoters}");
    assert!(events.iter().any(|e| e["scores"]["ces"].is_i64()));
    assert!(events.iter().any(|e| e["scores"]["csat"].is_i64()));
    let touchpoints: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["journey"]["touchpoint"].as_str())
        .collect();
    assert!(touchpoints.len() >= 8, "{touchpoints:?}");
    let countries: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["location"]["country"].as_str())
        .collect();
    assert_eq!(countries, BTreeSet::from(["BE", "CH", "FR"]));
}

#[test]
fn comments_are_in_both_languages_typed_as_people_type_with_threats() {
    let events = sample(3000, 2);
    let comments: Vec<&str> = events
        .iter()
        .filter_map(|e| e["comment"].as_str())
        .collect();
    let any = |f: &dyn Fn(&str) -> bool| comments.iter().any(|c| f(c));
    assert!(any(&|c| c.contains("Livraison")));
    assert!(any(&|c| c.contains("Delivery")));
    assert!(any(&|c| c.contains('é')), "accents");
    assert!(
        any(&|c| c
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| !c.is_lowercase())),
        "all capitals"
    );
    assert!(any(&|c| c.contains('\u{a0}')), "no-break spaces");
    assert!(any(
        &|c| c.to_lowercase().contains("résilier") || c.to_lowercase().contains("resilier")
    ));
    assert!(any(&|c| c.contains("lawyer") || c.contains("cancel")));
    for theme in [
        "stock", "factur", "site", "retour", "install", "prix", "vendeur",
    ] {
        assert!(any(&|c| c.to_lowercase().contains(theme)), "{theme}");
    }
}

#[test]
fn customers_answer_again_later_at_their_store_and_detractors_recover() {
    let events = sample(2000, 1);
    let mut by_customer: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for event in &events {
        by_customer
            .entry(event["customer"]["id"].as_str().unwrap())
            .or_default()
            .push(event);
    }
    let repeat: Vec<_> = by_customer.values().filter(|v| v.len() > 1).collect();
    assert!(repeat.len() > 100, "{} repeat customers", repeat.len());
    let mut recovered = 0;
    for answers in repeat {
        let store = &answers[0]["location"]["store_id"];
        assert!(answers.iter().all(|a| &a["location"]["store_id"] == store));
        let times: Vec<_> = answers
            .iter()
            .map(|a| DateTime::parse_from_rfc3339(a["occurred_at"].as_str().unwrap()).unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "answers in time order"
        );
        let nps: Vec<i64> = answers
            .iter()
            .filter_map(|a| a["scores"]["nps"].as_i64())
            .collect();
        recovered += nps.windows(2).filter(|w| w[0] <= 6 && w[1] >= 9).count();
    }
    assert!(recovered > 10, "{recovered} recoveries");
}

#[test]
fn the_invalid_corpus_is_fixed_and_never_a_valid_event_of_the_generator() {
    let corpus = invalid_corpus(3);
    assert_eq!(corpus, invalid_corpus(3));
    assert!(corpus.len() >= 30);
    assert!(corpus.iter().all(|line| !line.contains('\n')));
}
