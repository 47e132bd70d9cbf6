//! The condition IR every front end compiles to, and its evaluation.

use crate::event::{AttributeValue, Ces, Csat, FeedbackEvent, Nps};
use crate::scoring::{CesClass, CsatClass, NpsClass};
use crate::text::fold;

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

    pub(super) fn get(self, event: &FeedbackEvent) -> Option<u8> {
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

    pub(super) fn get(self, event: &FeedbackEvent) -> Option<&str> {
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
    pub(super) folded_comment: Option<String>,
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
pub(super) fn attribute_eq(actual: &AttributeValue, expected: &AttributeValue) -> bool {
    match (actual, expected) {
        (AttributeValue::Number(a), AttributeValue::Number(b)) => a.as_f64() == b.as_f64(),
        _ => actual == expected,
    }
}
