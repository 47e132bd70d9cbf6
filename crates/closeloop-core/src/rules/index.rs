//! Which rules an event can possibly match.

use std::collections::HashMap;

use crate::event::FeedbackEvent;

use super::condition::{Condition, TextField};
use super::rule::Rule;

/// Which rules an event can possibly match. A rule whose condition requires
/// a text field to take one of some values (a top-level `store in [...]`,
/// `touchpoint == "x"`) is listed under those values; the others are always
/// candidates. Candidates are evaluated in file order.
#[derive(Debug, Clone, Default)]
pub(super) struct RuleIndex {
    /// Bitsets over rule positions (64 rules a word).
    pub(super) always: Vec<u64>,
    pub(super) by_value: Vec<(TextField, HashMap<String, Vec<u64>>)>,
}

impl RuleIndex {
    pub(super) fn build(rules: &[Rule]) -> Self {
        let words = rules.len().div_ceil(64);
        let set = |bits: &mut Vec<u64>, i: usize| bits[i / 64] |= 1 << (i % 64);
        let mut index = RuleIndex {
            always: vec![0; words],
            by_value: Vec::new(),
        };
        for (i, rule) in rules.iter().enumerate() {
            match required_text(&rule.condition) {
                Some((field, values)) => {
                    let slot = match index.by_value.iter().position(|(f, _)| *f == field) {
                        Some(slot) => slot,
                        None => {
                            index.by_value.push((field, HashMap::new()));
                            index.by_value.len() - 1
                        }
                    };
                    for value in values {
                        set(
                            index.by_value[slot]
                                .1
                                .entry(value.clone())
                                .or_insert_with(|| vec![0; words]),
                            i,
                        );
                    }
                }
                None => set(&mut index.always, i),
            }
        }
        index
    }

    /// Positions of the rules `event` may match, ascending.
    pub(super) fn candidates(&self, event: &FeedbackEvent) -> impl Iterator<Item = usize> {
        let mut bits = self.always.clone();
        for (field, map) in &self.by_value {
            if let Some(mask) = field.get(event).and_then(|v| map.get(v)) {
                for (word, m) in bits.iter_mut().zip(mask) {
                    *word |= m;
                }
            }
        }
        bits.into_iter().enumerate().flat_map(|(w, mut word)| {
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    w * 64 + bit
                })
            })
        })
    }
}

/// A text field the condition requires to be one of some values, found
/// among its top-level conjuncts (so indexing never changes a decision).
pub(super) fn required_text(condition: &Condition) -> Option<(TextField, &Vec<String>)> {
    match condition {
        Condition::TextIn(field, values) if *field != TextField::Comment => Some((*field, values)),
        Condition::All(parts) => parts.iter().find_map(required_text),
        _ => None,
    }
}
