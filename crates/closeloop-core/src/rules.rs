//! The rules engine: which events deserve an alert, how urgent, by which channels.
//!
//! Rules live in a TOML file written by ops teams (format in the README). A
//! file is loaded whole into a [`RuleSet`]: every rule is compiled into a
//! [`Condition`] tree once, so evaluation is plain field access and
//! comparisons, with the comment folded (lower case, no accents) once per
//! event. A file with any problem is refused whole, with every problem
//! located by line, rule id and key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigErrors, ConfigProblem};
use crate::event::{AttributeValue, Ces, Csat, FeedbackEvent, Nps};
use crate::scoring::{CesClass, CsatClass, NpsClass};
use crate::text::{fold, keyword};

/// How urgent an alert is. Ordered: when several rules fire, the highest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A way to notify an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(Channel::Email),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// An inclusive score range as written in a rule: `nps = { max = 6 }`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeSpec {
    min: Option<i64>,
    max: Option<i64>,
}

/// The `when` table of a rule, as written. Every key present must hold
/// (logical AND); `any` holds when at least one of its matchers does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherSpec {
    nps: Option<RangeSpec>,
    csat: Option<RangeSpec>,
    ces: Option<RangeSpec>,
    nps_class: Option<Vec<NpsClass>>,
    csat_class: Option<Vec<CsatClass>>,
    ces_class: Option<Vec<CesClass>>,
    touchpoint: Option<Vec<String>>,
    channel: Option<Vec<String>>,
    store: Option<Vec<String>>,
    region: Option<Vec<String>>,
    country: Option<Vec<String>>,
    segment: Option<Vec<String>>,
    product_line: Option<Vec<String>>,
    source: Option<Vec<String>>,
    comment_any: Option<Vec<String>>,
    attributes: Option<BTreeMap<String, AttributeValue>>,
    has_attributes: Option<Vec<String>>,
    any: Option<Vec<MatcherSpec>>,
}

/// One rule, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    #[serde(default)]
    description: Option<String>,
    severity: Severity,
    channels: Vec<Channel>,
    #[serde(default)]
    owner: Option<String>,
    /// Matching stops at the first rule that fires unless it says `continue`.
    #[serde(default, rename = "continue")]
    continue_matching: bool,
    /// A CEL expression...
    #[serde(default)]
    condition: Option<String>,
    /// ...or a table of conditions: exactly one of the two.
    #[serde(default)]
    when: Option<MatcherSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFileSpec {
    #[serde(default)]
    rule: Vec<toml::Spanned<toml::Table>>,
}

/// A text field of the event that rules can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Touchpoint,
    Channel,
    Store,
    Region,
    Country,
    Segment,
    ProductLine,
    Source,
    Locale,
    Comment,
}

/// A score of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreField {
    Nps,
    Csat,
    Ces,
}

impl ScoreField {
    pub fn name(self) -> &'static str {
        match self {
            ScoreField::Nps => "nps",
            ScoreField::Csat => "csat",
            ScoreField::Ces => "ces",
        }
    }

    fn get(self, event: &FeedbackEvent) -> Option<u8> {
        match self {
            ScoreField::Nps => event.scores.nps.map(Nps::value),
            ScoreField::Csat => event.scores.csat.map(Csat::value),
            ScoreField::Ces => event.scores.ces.map(Ces::value),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped: `6 >= nps` is `nps <= 6`.
    pub fn flipped(self) -> Self {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }

    fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

impl TextField {
    pub fn name(self) -> &'static str {
        match self {
            TextField::Touchpoint => "touchpoint",
            TextField::Channel => "channel",
            TextField::Store => "store",
            TextField::Region => "region",
            TextField::Country => "country",
            TextField::Segment => "segment",
            TextField::ProductLine => "product_line",
            TextField::Source => "source",
            TextField::Locale => "locale",
            TextField::Comment => "comment",
        }
    }

    fn get(self, event: &FeedbackEvent) -> Option<&str> {
        match self {
            TextField::Locale => event.customer.locale.as_deref(),
            TextField::Comment => event.comment.as_deref(),
            TextField::Touchpoint => Some(&event.journey.touchpoint),
            TextField::Channel => event.journey.channel.as_deref(),
            TextField::Store => event.location.store_id.as_deref(),
            TextField::Region => event.location.region.as_deref(),
            TextField::Country => event.location.country.as_deref(),
            TextField::Segment => event.customer.segment.as_deref(),
            TextField::ProductLine => event.product_line.as_deref(),
            TextField::Source => Some(&event.source),
        }
    }
}

/// A compiled condition. Conditions on an absent field are false: a rule on
/// `nps` never fires for a CES-only answer.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    NpsIn(u8, u8),
    CsatIn(u8, u8),
    CesIn(u8, u8),
    NpsClassIn(Vec<NpsClass>),
    CsatClassIn(Vec<CsatClass>),
    CesClassIn(Vec<CesClass>),
    TextIn(TextField, Vec<String>),
    /// Keywords already folded; matched as substrings of the folded comment.
    CommentAny(Vec<String>),
    AttributeEquals(String, AttributeValue),
    HasAttribute(String),
    /// From CEL: `true`, `false`.
    Const(bool),
    Not(Box<Condition>),
    /// False when the score is absent, whatever the operator.
    ScoreCmp(ScoreField, CmpOp, i64),
    ScorePresent(ScoreField),
    TextPresent(TextField),
    /// A regular expression, compiled at load, on the raw text.
    TextMatches(TextField, regex::Regex),
    /// Folded prefix / suffix of the folded comment.
    CommentStarts(String),
    CommentEnds(String),
    /// A numeric attribute compared with a number.
    AttributeCmp(String, CmpOp, f64),
    /// A regular expression on a string attribute; false when the attribute
    /// is absent or not a string.
    AttributeMatches(String, regex::Regex),
}

/// An event prepared for evaluation: the expensive derivations, done once.
pub struct Prepared<'a> {
    pub event: &'a FeedbackEvent,
    folded_comment: Option<String>,
}

impl<'a> Prepared<'a> {
    /// Prepare `event`; the comment is folded only if some rule reads it.
    pub fn new(event: &'a FeedbackEvent, needs_comment: bool) -> Self {
        let folded_comment = if needs_comment {
            event.comment.as_deref().map(fold)
        } else {
            None
        };
        Prepared {
            event,
            folded_comment,
        }
    }
}

impl Condition {
    /// Whether the prepared event satisfies this condition.
    pub fn matches(&self, input: &Prepared<'_>) -> bool {
        let event = input.event;
        let in_range = |v: Option<u8>, lo: u8, hi: u8| v.is_some_and(|v| (lo..=hi).contains(&v));
        match self {
            Condition::All(all) => all.iter().all(|c| c.matches(input)),
            Condition::Any(any) => any.iter().any(|c| c.matches(input)),
            Condition::NpsIn(lo, hi) => in_range(event.scores.nps.map(Nps::value), *lo, *hi),
            Condition::CsatIn(lo, hi) => in_range(event.scores.csat.map(Csat::value), *lo, *hi),
            Condition::CesIn(lo, hi) => in_range(event.scores.ces.map(Ces::value), *lo, *hi),
            Condition::NpsClassIn(classes) => event
                .scores
                .nps
                .is_some_and(|s| classes.contains(&s.class())),
            Condition::CsatClassIn(classes) => event
                .scores
                .csat
                .is_some_and(|s| classes.contains(&s.class())),
            Condition::CesClassIn(classes) => event
                .scores
                .ces
                .is_some_and(|s| classes.contains(&s.class())),
            Condition::TextIn(field, values) => field
                .get(event)
                .is_some_and(|v| values.iter().any(|candidate| candidate == v)),
            Condition::CommentAny(keywords) => input
                .folded_comment
                .as_deref()
                .is_some_and(|c| keywords.iter().any(|k| c.contains(k.as_str()))),
            Condition::AttributeEquals(key, expected) => event
                .attributes
                .get(key)
                .is_some_and(|v| attribute_eq(v, expected)),
            Condition::HasAttribute(key) => event.attributes.contains_key(key),
            Condition::Const(value) => *value,
            Condition::Not(inner) => !inner.matches(input),
            Condition::ScoreCmp(score, op, value) => score
                .get(event)
                .is_some_and(|v| op.holds(i64::from(v), *value)),
            Condition::ScorePresent(score) => score.get(event).is_some(),
            Condition::TextPresent(field) => field.get(event).is_some(),
            Condition::TextMatches(field, regex) => {
                field.get(event).is_some_and(|v| regex.is_match(v))
            }
            Condition::CommentStarts(prefix) => input
                .folded_comment
                .as_deref()
                .is_some_and(|c| c.starts_with(prefix.as_str())),
            Condition::CommentEnds(suffix) => input
                .folded_comment
                .as_deref()
                .is_some_and(|c| c.ends_with(suffix.as_str())),
            Condition::AttributeCmp(key, op, value) => match event.attributes.get(key) {
                Some(AttributeValue::Number(n)) => n.as_f64().is_some_and(|v| op.holds(v, *value)),
                _ => false,
            },
            Condition::AttributeMatches(key, regex) => match event.attributes.get(key) {
                Some(AttributeValue::Text(text)) => regex.is_match(text),
                _ => false,
            },
        }
    }

    pub(crate) fn reads_comment(&self) -> bool {
        match self {
            Condition::All(c) | Condition::Any(c) => c.iter().any(Condition::reads_comment),
            Condition::Not(c) => c.reads_comment(),
            Condition::CommentAny(_) | Condition::CommentStarts(_) | Condition::CommentEnds(_) => {
                true
            }
            _ => false,
        }
    }
}

/// Numbers compare by value (`3` equals `3.0`); other kinds compare exactly.
fn attribute_eq(actual: &AttributeValue, expected: &AttributeValue) -> bool {
    match (actual, expected) {
        (AttributeValue::Number(a), AttributeValue::Number(b)) => a.as_f64() == b.as_f64(),
        _ => actual == expected,
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub channels: Vec<Channel>,
    /// Route to this owner instead of the store's; checked against the
    /// owner directory when a [`crate::Policy`] is built.
    pub owner: Option<String>,
    pub condition: Condition,
    /// Let later rules match too (Alertmanager's `continue`).
    pub continue_matching: bool,
    /// 1-based line of the rule's `[[rule]]` header in its file.
    pub line: usize,
}

/// An ordered, validated set of rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// The file's name, as given to `from_toml`: errors about the rules
    /// (e.g. an unknown owner) name it.
    file: String,
    rules: Vec<Rule>,
    needs_comment: bool,
    index: RuleIndex,
}

/// Which rules an event can possibly match. A rule whose condition requires
/// a text field to take one of some values (a top-level `store in [...]`,
/// `touchpoint == "x"`) is listed under those values; the others are always
/// candidates. Candidates are evaluated in file order.
#[derive(Debug, Clone, Default)]
struct RuleIndex {
    /// Bitsets over rule positions (64 rules a word).
    always: Vec<u64>,
    by_value: Vec<(TextField, HashMap<String, Vec<u64>>)>,
}

impl RuleIndex {
    fn build(rules: &[Rule]) -> Self {
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
    fn candidates(&self, event: &FeedbackEvent) -> impl Iterator<Item = usize> {
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
fn required_text(condition: &Condition) -> Option<(TextField, &Vec<String>)> {
    match condition {
        Condition::TextIn(field, values) if *field != TextField::Comment => Some((*field, values)),
        Condition::All(parts) => parts.iter().find_map(required_text),
        _ => None,
    }
}

impl RuleSet {
    /// Parse and compile a rules file. `file` names it in error messages.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigErrors> {
        let fail = |problems: Vec<ConfigProblem>| ConfigErrors {
            file: file.to_owned(),
            problems,
        };
        let spec: RulesFileSpec =
            toml::from_str(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;

        let mut problems = Vec::new();
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        for (index, spanned) in spec.rule.into_iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let table = spanned.into_inner();
            let label = match table.get("id").and_then(toml::Value::as_str) {
                Some(id) => format!("rule \"{id}\""),
                None => format!("rule #{}", index + 1),
            };
            let problem = |field: Option<String>, message: String| ConfigProblem {
                line: Some(line),
                item: Some(label.clone()),
                field,
                message,
            };
            let rule_spec: RuleSpec =
                match serde_path_to_error::deserialize(toml::Value::Table(table)) {
                    Ok(spec) => spec,
                    Err(e) => {
                        let path = e.path().to_string();
                        let field = (path != ".").then_some(path);
                        problems.push(problem(
                            field,
                            clean_serde_message(&e.into_inner().to_string()),
                        ));
                        continue;
                    }
                };
            let mut local = Vec::new();
            if rule_spec.id.trim().is_empty() {
                local.push(problem(Some("id".into()), "must not be empty".into()));
            } else if !seen.insert(rule_spec.id.clone()) {
                local.push(problem(Some("id".into()), "duplicate rule id".into()));
            }
            if rule_spec.channels.is_empty() {
                local.push(problem(
                    Some("channels".into()),
                    "must list at least one of email, webhook".into(),
                ));
            }
            let condition = match (&rule_spec.condition, &rule_spec.when) {
                (Some(_), Some(_)) | (None, None) => {
                    local.push(problem(
                        None,
                        "give exactly one of `condition` (CEL) or a `[rule.when]` table".into(),
                    ));
                    Condition::Const(false)
                }
                (None, Some(when)) => compile_matcher(when, "when", &mut |field, message| {
                    local.push(problem(Some(field), message));
                }),
                (Some(source), None) => match crate::cel::compile(source) {
                    Ok(condition) => condition,
                    Err(e) => {
                        let (line, column) = match crate::locate::condition_span(text, index) {
                            Some(span) => {
                                crate::locate::condition_position(text, span, e.line, e.column)
                            }
                            None => (line, e.column),
                        };
                        local.push(ConfigProblem {
                            line: Some(line),
                            item: Some(label.clone()),
                            field: Some("condition".into()),
                            message: format!("column {column}: {}", e.message),
                        });
                        Condition::Const(false)
                    }
                },
            };
            if local.is_empty() {
                let mut channels = rule_spec.channels.clone();
                channels.sort();
                channels.dedup();
                rules.push(Rule {
                    id: rule_spec.id,
                    description: rule_spec.description,
                    severity: rule_spec.severity,
                    channels,
                    owner: rule_spec.owner,
                    condition,
                    continue_matching: rule_spec.continue_matching,
                    line,
                });
            }
            problems.extend(local);
        }
        if !problems.is_empty() {
            return Err(fail(problems));
        }
        let needs_comment = rules.iter().any(|r| r.condition.reads_comment());
        let index = RuleIndex::build(&rules);
        Ok(RuleSet {
            file: file.to_owned(),
            rules,
            needs_comment,
            index,
        })
    }

    /// The file the rules came from, as named to `from_toml`.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule reads the comment (so it must be folded).
    pub fn needs_comment(&self) -> bool {
        self.needs_comment
    }

    /// The rules that fire for `event`, in file order: matching stops after
    /// the first rule that fires unless that rule says `continue`.
    pub fn evaluate<'r>(&'r self, event: &FeedbackEvent) -> Vec<&'r Rule> {
        let input = Prepared::new(event, self.needs_comment);
        let mut fired = Vec::new();
        for rule in self.index.candidates(event).map(|i| &self.rules[i]) {
            if rule.condition.matches(&input) {
                fired.push(rule);
                if !rule.continue_matching {
                    break;
                }
            }
        }
        fired
    }
}

/// Compile one matcher table; problems are reported through `report` with
/// the key path (`when.any[1].nps.max`).
fn compile_matcher(
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

fn has_any_key(spec: &MatcherSpec) -> bool {
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

pub(crate) use crate::locate::line_of;

/// A TOML syntax or shape error, located by line.
pub(crate) fn toml_problem(text: &str, error: &toml::de::Error) -> ConfigProblem {
    ConfigProblem {
        line: error.span().map(|s| line_of(text, s.start)),
        item: None,
        field: None,
        message: clean_serde_message(error.message()),
    }
}

/// serde's messages end with a newline or a period now and then; keep them
/// on one line for logs and terminals.
pub(crate) fn clean_serde_message(message: &str) -> String {
    message.trim().trim_end_matches('.').replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

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
}
