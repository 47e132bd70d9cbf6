//! The `[[rule]]` tables front end: specs as written, compiled to conditions.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::event::{AttributeValue, Ces, Csat, Nps};
use crate::scoring::{CesClass, CsatClass, NpsClass};
use crate::text::keyword;

use super::condition::*;
use crate::{Channel, Severity};

/// An inclusive score range as written in a rule: `nps = { max = 6 }`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeSpec {
    pub(super) min: Option<i64>,
    pub(super) max: Option<i64>,
}

/// The `when` table of a rule, as written. Every key present must hold
/// (logical AND); `any` holds when at least one of its matchers does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MatcherSpec {
    pub(super) nps: Option<RangeSpec>,
    pub(super) csat: Option<RangeSpec>,
    pub(super) ces: Option<RangeSpec>,
    pub(super) nps_class: Option<Vec<NpsClass>>,
    pub(super) csat_class: Option<Vec<CsatClass>>,
    pub(super) ces_class: Option<Vec<CesClass>>,
    pub(super) touchpoint: Option<Vec<String>>,
    pub(super) channel: Option<Vec<String>>,
    pub(super) store: Option<Vec<String>>,
    pub(super) region: Option<Vec<String>>,
    pub(super) country: Option<Vec<String>>,
    pub(super) segment: Option<Vec<String>>,
    pub(super) product_line: Option<Vec<String>>,
    pub(super) source: Option<Vec<String>>,
    pub(super) comment_any: Option<Vec<String>>,
    pub(super) attributes: Option<BTreeMap<String, AttributeValue>>,
    pub(super) has_attributes: Option<Vec<String>>,
    pub(super) any: Option<Vec<MatcherSpec>>,
}

/// One rule, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSpec {
    pub(super) id: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    pub(super) severity: Severity,
    pub(super) channels: Vec<Channel>,
    #[serde(default)]
    pub(super) owner: Option<String>,
    /// Matching stops at the first rule that fires unless it says `continue`.
    #[serde(default, rename = "continue")]
    pub(super) continue_matching: bool,
    /// A CEL expression...
    #[serde(default)]
    pub(super) condition: Option<String>,
    /// ...or a table of conditions: exactly one of the two.
    #[serde(default)]
    pub(super) when: Option<MatcherSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesFileSpec {
    #[serde(default)]
    pub(super) rule: Vec<toml::Spanned<toml::Table>>,
}

/// Compile one matcher table; problems are reported through `report` with
/// the key path (`when.any[1].nps.max`).
pub(super) fn compile_matcher(
    spec: &MatcherSpec,
    path: &str,
    report: &mut dyn FnMut(String, String),
) -> Condition {
    let mut all = Vec::new();
    let range = |name: &str,
                 range: &Option<RangeSpec>,
                 lo: u8,
                 hi: u8,
                 report: &mut dyn FnMut(String, String)| {
        let Some(r) = range else { return None };
        let key = format!("{path}.{name}");
        if r.min.is_none() && r.max.is_none() {
            report(key, "give min, max or both".into());
            return None;
        }
        let min = r.min.unwrap_or(i64::from(lo));
        let max = r.max.unwrap_or(i64::from(hi));
        let scale = i64::from(lo)..=i64::from(hi);
        if !scale.contains(&min) {
            report(
                format!("{key}.min"),
                format!("must be within the {name} scale {lo}..{hi} (got {min})"),
            );
            return None;
        }
        if !scale.contains(&max) {
            report(
                format!("{key}.max"),
                format!("must be within the {name} scale {lo}..{hi} (got {max})"),
            );
            return None;
        }
        if min > max {
            report(key, format!("min {min} is greater than max {max}"));
            return None;
        }
        Some((min as u8, max as u8))
    };
    if let Some((lo, hi)) = range("nps", &spec.nps, Nps::MIN, Nps::MAX, report) {
        all.push(Condition::NpsIn(lo, hi));
    }
    if let Some((lo, hi)) = range("csat", &spec.csat, Csat::MIN, Csat::MAX, report) {
        all.push(Condition::CsatIn(lo, hi));
    }
    if let Some((lo, hi)) = range("ces", &spec.ces, Ces::MIN, Ces::MAX, report) {
        all.push(Condition::CesIn(lo, hi));
    }

    let non_empty = |name: &str, len: usize, report: &mut dyn FnMut(String, String)| {
        if len == 0 {
            report(
                format!("{path}.{name}"),
                "must list at least one value".into(),
            );
            false
        } else {
            true
        }
    };
    if let Some(v) = &spec.nps_class {
        if non_empty("nps_class", v.len(), report) {
            all.push(Condition::NpsClassIn(v.clone()));
        }
    }
    if let Some(v) = &spec.csat_class {
        if non_empty("csat_class", v.len(), report) {
            all.push(Condition::CsatClassIn(v.clone()));
        }
    }
    if let Some(v) = &spec.ces_class {
        if non_empty("ces_class", v.len(), report) {
            all.push(Condition::CesClassIn(v.clone()));
        }
    }
    let text_fields = [
        ("touchpoint", TextField::Touchpoint, &spec.touchpoint),
        ("channel", TextField::Channel, &spec.channel),
        ("store", TextField::Store, &spec.store),
        ("region", TextField::Region, &spec.region),
        ("country", TextField::Country, &spec.country),
        ("segment", TextField::Segment, &spec.segment),
        ("product_line", TextField::ProductLine, &spec.product_line),
        ("source", TextField::Source, &spec.source),
    ];
    for (name, field, values) in text_fields {
        if let Some(values) = values {
            if non_empty(name, values.len(), report) {
                all.push(Condition::TextIn(field, values.clone()));
            }
        }
    }
    if let Some(keywords) = &spec.comment_any {
        if non_empty("comment_any", keywords.len(), report) {
            // One implementation with CEL's containsAny: folded, not trimmed.
            let folded: Vec<Option<String>> = keywords.iter().map(|k| keyword(k)).collect();
            if let Some(i) = folded.iter().position(Option::is_none) {
                report(
                    format!("{path}.comment_any[{i}]"),
                    "keyword must not be empty".into(),
                );
            } else {
                all.push(Condition::CommentAny(
                    folded.into_iter().flatten().collect(),
                ));
            }
        }
    }
    if let Some(attributes) = &spec.attributes {
        if non_empty("attributes", attributes.len(), report) {
            for (key, value) in attributes {
                all.push(Condition::AttributeEquals(key.clone(), value.clone()));
            }
        }
    }
    if let Some(keys) = &spec.has_attributes {
        if non_empty("has_attributes", keys.len(), report) {
            all.extend(keys.iter().cloned().map(Condition::HasAttribute));
        }
    }
    if let Some(any) = &spec.any {
        if non_empty("any", any.len(), report) {
            let branches = any
                .iter()
                .enumerate()
                .map(|(i, m)| compile_matcher(m, &format!("{path}.any[{i}]"), report))
                .collect();
            all.push(Condition::Any(branches));
        }
    }
    if all.is_empty() && !has_any_key(spec) {
        report(
            path.to_owned(),
            "must have at least one condition (a rule that matches everything would alert on every response)".into(),
        );
    }
    Condition::All(all)
}

pub(super) fn has_any_key(spec: &MatcherSpec) -> bool {
    spec.nps.is_some()
        || spec.csat.is_some()
        || spec.ces.is_some()
        || spec.nps_class.is_some()
        || spec.csat_class.is_some()
        || spec.ces_class.is_some()
        || spec.touchpoint.is_some()
        || spec.channel.is_some()
        || spec.store.is_some()
        || spec.region.is_some()
        || spec.country.is_some()
        || spec.segment.is_some()
        || spec.product_line.is_some()
        || spec.source.is_some()
        || spec.comment_any.is_some()
        || spec.attributes.is_some()
        || spec.has_attributes.is_some()
        || spec.any.is_some()
}
