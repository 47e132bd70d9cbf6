//! The feedback event model (`feedback-event-v1`) and its parser.
//!
//! Parse, don't validate: a [`FeedbackEvent`] only exists once every field of
//! the contract has been checked, so the rest of the system never re-checks.
//! Every refusal is an [`EventError`] that names the offending field, because
//! that reason travels to the dead-letter topic and to HTTP clients verbatim.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::EventError;

/// Longest `event_id`, `source` and `customer.id`, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest `comment`, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Longest `customer.name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest store, region, touchpoint, segment, product line, country or
/// channel, in characters.
pub const MAX_LABEL_CHARS: usize = 128;
/// Longest attribute key and text value, in characters.
pub const MAX_ATTRIBUTE_CHARS: usize = 1_000;
/// Most attributes on one event.
pub const MAX_ATTRIBUTES: usize = 64;
/// Channels the contract lists for `journey.channel` (a closed set).
pub const CHANNELS: [&str; 8] = [
    "web",
    "app",
    "store",
    "call_center",
    "email",
    "chat",
    "social",
    "other",
];

/// A Net Promoter Score answer, 0–10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Nps(u8);

/// A customer satisfaction answer, 1–5 (5 = very satisfied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Csat(u8);

/// A customer effort score answer (CES 2.0), 1–7 (1 = high effort, bad).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Ces(u8);

macro_rules! score_scale {
    ($ty:ident, $min:expr, $max:expr) => {
        impl $ty {
            /// Lowest valid answer on this scale.
            pub const MIN: u8 = $min;
            /// Highest valid answer on this scale.
            pub const MAX: u8 = $max;

            /// The score, if `value` lies on the scale.
            pub fn new(value: u8) -> Option<Self> {
                ($min..=$max).contains(&value).then_some(Self(value))
            }

            /// The raw answer.
            pub fn value(self) -> u8 {
                self.0
            }
        }

        /// Read back (stored events, outbox rows) through the same check as
        /// the parser: a score off its scale cannot be constructed.
        impl TryFrom<u8> for $ty {
            type Error = String;

            fn try_from(value: u8) -> Result<Self, String> {
                Self::new(value).ok_or_else(|| {
                    format!("must be an integer from {} to {} (got {value})", $min, $max)
                })
            }
        }

        impl From<$ty> for u8 {
            fn from(score: $ty) -> u8 {
                score.0
            }
        }
    };
}
score_scale!(Nps, 0, 10);
score_scale!(Csat, 1, 5);
score_scale!(Ces, 1, 7);

/// The scores a customer gave; at least one is present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scores {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<Nps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<Csat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ces: Option<Ces>,
}

impl Scores {
    /// "NPS 3, CES 2": the scores present, in a fixed order.
    pub fn summary(&self) -> String {
        [
            self.nps.map(|s| format!("NPS {}", s.value())),
            self.csat.map(|s| format!("CSAT {}", s.value())),
            self.ces.map(|s| format!("CES {}", s.value())),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Who answered. `email` and `phone` are personal data: shown to the owner,
/// never logged in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
}

impl Customer {
    /// How people see the customer: their name, else their id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Where in the customer journey the answer was collected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    pub touchpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The site that served the customer; drives routing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A value of the free-form `attributes` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Bool(b) => write!(f, "{b}"),
            AttributeValue::Number(n) => write!(f, "{n}"),
            AttributeValue::Text(s) => f.write_str(s),
        }
    }
}

/// One validated customer response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackEvent {
    pub event_id: String,
    pub occurred_at: DateTime<FixedOffset>,
    pub source: String,
    pub customer: Customer,
    pub journey: Journey,
    #[serde(default)]
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_line: Option<String>,
    pub scores: Scores,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// Parse and validate one event from raw bytes (a Kafka value, an HTTP body).
///
/// `max_bytes` bounds the input before any parsing, so an oversized message
/// costs nothing but a length check.
pub fn parse_event(bytes: &[u8], max_bytes: usize) -> Result<FeedbackEvent, EventError> {
    if bytes.len() > max_bytes {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EventError::Empty);
    }
    let value: Value = crate::json::parse_strict(bytes).map_err(|e| EventError::InvalidJson {
        message: e.to_string(),
    })?;
    event_from_value(&value)
}

/// Validate an already-parsed JSON value (used for HTTP arrays).
pub fn event_from_value(value: &Value) -> Result<FeedbackEvent, EventError> {
    let root = value.as_object().ok_or(EventError::NotAnObject {
        found: json_type(value),
    })?;

    let event_id = required_id(root, "event_id", "event_id")?;
    let occurred_at = parse_timestamp(root)?;
    let source = required_id(root, "source", "source")?;

    let customer_obj = required_object(root, "customer", "customer")?;
    let customer = Customer {
        id: required_id(customer_obj, "id", "customer.id")?,
        name: optional_string(customer_obj, "name", "customer.name")?,
        email: optional_string(customer_obj, "email", "customer.email")?,
        phone: optional_string(customer_obj, "phone", "customer.phone")?,
        locale: optional_string(customer_obj, "locale", "customer.locale")?
            .map(|tag| check_locale(tag, "customer.locale"))
            .transpose()?,
        segment: optional_string(customer_obj, "segment", "customer.segment")?,
    };

    let journey_obj = required_object(root, "journey", "journey")?;
    let touchpoint = required_string(journey_obj, "touchpoint", "journey.touchpoint")?;
    if touchpoint.is_empty() {
        return Err(field("journey.touchpoint", "must not be empty"));
    }
    let channel = optional_string(journey_obj, "channel", "journey.channel")?;
    if let Some(channel) = &channel {
        if !CHANNELS.contains(&channel.as_str()) {
            return Err(field(
                "journey.channel",
                format!("must be one of {}", CHANNELS.join(", ")),
            ));
        }
    }
    let journey = Journey {
        touchpoint,
        channel,
    };

    let location = match optional_object(root, "location", "location")? {
        None => Location::default(),
        Some(obj) => Location {
            store_id: optional_string(obj, "store_id", "location.store_id")?,
            region: optional_string(obj, "region", "location.region")?,
            country: optional_string(obj, "country", "location.country")?
                .map(|c| check_country(c, "location.country"))
                .transpose()?,
        },
    };

    let product_line = optional_string(root, "product_line", "product_line")?;
    let scores = parse_scores(root)?;

    let comment = optional_string(root, "comment", "comment")?;
    if let Some(comment) = &comment {
        let chars = comment.chars().count();
        if chars > MAX_COMMENT_CHARS {
            return Err(field(
                "comment",
                format!("must be at most {MAX_COMMENT_CHARS} characters (got {chars})"),
            ));
        }
    }

    let attributes = parse_attributes(root)?;

    Ok(FeedbackEvent {
        event_id,
        occurred_at,
        source,
        customer,
        journey,
        location,
        product_line,
        scores,
        comment,
        attributes,
    })
}

fn field(name: &str, reason: impl Into<String>) -> EventError {
    EventError::Field {
        field: name.to_owned(),
        reason: reason.into(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// PostgreSQL refuses NUL in `text` and `jsonb`; an event carrying one would
/// be accepted here and then fail every insert, blocking its partition. Refuse
/// it at the door instead, where it can be dead-lettered.
fn check_text(value: &str, name: &str) -> Result<(), EventError> {
    if value.contains('\0') {
        return Err(field(name, "must not contain a NUL character"));
    }
    if name == "comment" {
        // The customer's own words keep their line breaks and tabs.
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(field(
                name,
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        return Ok(());
    }
    // Every other field is one line: a CR/LF in a name or a store would be a
    // new line (a fake field, a fake link) in the text of an email.
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(field(name, "must be one line, without control characters"));
    }
    let max = max_chars(name);
    let chars = value.chars().count();
    if chars > max {
        return Err(field(
            name,
            format!("must be at most {max} characters (got {chars})"),
        ));
    }
    Ok(())
}

/// The longest value of each single-line field (the contract's table):
/// bounded so that every valid event renders deliverable emails.
fn max_chars(name: &str) -> usize {
    match name {
        // Checked with their own message (1 to 128).
        "event_id" | "source" | "customer.id" => usize::MAX,
        "customer.name" => MAX_NAME_CHARS,
        "customer.email" => 254,
        "customer.phone" => 64,
        "customer.locale" => 35,
        "occurred_at" => 64,
        _ if name.starts_with("attributes.") => MAX_ATTRIBUTE_CHARS,
        _ => MAX_LABEL_CHARS,
    }
}

fn required_string(obj: &Map<String, Value>, key: &str, name: &str) -> Result<String, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(field(name, "is required")),
        Some(Value::String(s)) => {
            check_text(s, name)?;
            Ok(s.clone())
        }
        Some(other) => Err(field(
            name,
            format!("must be a string (got {})", json_type(other)),
        )),
    }
}

fn required_id(obj: &Map<String, Value>, key: &str, name: &str) -> Result<String, EventError> {
    let value = required_string(obj, key, name)?;
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(field(
            name,
            format!("must be 1 to {MAX_ID_CHARS} characters (got {chars})"),
        ));
    }
    Ok(value)
}

/// Optional strings accept `null` as "absent": upstream serializers often
/// emit nulls for unset fields, and refusing those would lose complaints.
fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    name: &str,
) -> Result<Option<String>, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required_string(obj, key, name).map(Some),
    }
}

fn required_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    name: &str,
) -> Result<&'a Map<String, Value>, EventError> {
    optional_object(obj, key, name)?.ok_or_else(|| field(name, "is required"))
}

fn optional_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, EventError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(other) => Err(field(
            name,
            format!("must be an object (got {})", json_type(other)),
        )),
    }
}

fn parse_timestamp(root: &Map<String, Value>) -> Result<DateTime<FixedOffset>, EventError> {
    let raw = required_string(root, "occurred_at", "occurred_at")?;
    // RFC 3339 proper: `T` between date and time, ASCII signs only (chrono
    // also takes a space, and a U+2212 minus, which the schema refuses).
    if !raw.is_ascii() || !matches!(raw.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(field(
            "occurred_at",
            "must be an RFC 3339 timestamp with offset, e.g. 2026-11-20T10:15:00+01:00 (ASCII, with T between date and time)",
        ));
    }
    DateTime::parse_from_rfc3339(&raw).map_err(|e| {
        field(
            "occurred_at",
            format!(
                "must be an RFC 3339 timestamp with offset, e.g. 2026-11-20T10:15:00+01:00 ({e})"
            ),
        )
    })
}

fn parse_scores(root: &Map<String, Value>) -> Result<Scores, EventError> {
    let obj = required_object(root, "scores", "scores")?;
    let nps = score(obj, "nps", Nps::MIN, Nps::MAX)?.map(Nps);
    let csat = score(obj, "csat", Csat::MIN, Csat::MAX)?.map(Csat);
    let ces = score(obj, "ces", Ces::MIN, Ces::MAX)?.map(Ces);
    if nps.is_none() && csat.is_none() && ces.is_none() {
        return Err(field(
            "scores",
            "must contain at least one of nps, csat, ces",
        ));
    }
    Ok(Scores { nps, csat, ces })
}

/// Scores are strict: a present key must hold an integer on its scale. `null`
/// is refused too, because a survey tool that sends `"nps": null` has a bug
/// the producer must hear about.
fn score(obj: &Map<String, Value>, key: &str, min: u8, max: u8) -> Result<Option<u8>, EventError> {
    let Some(value) = obj.get(key) else {
        return Ok(None);
    };
    let name = format!("scores.{key}");
    let reason = |got: String| format!("must be an integer from {min} to {max} (got {got})");
    match value {
        // An integral number written as a float (`6.0`) is that integer, as
        // JSON Schema's `integer` type says; `6.5` is refused.
        Value::Number(n) => match n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 1e6)
                .map(|f| f as i64)
        }) {
            Some(v) if (i64::from(min)..=i64::from(max)).contains(&v) => Ok(Some(v as u8)),
            _ => Err(field(&name, reason(n.to_string()))),
        },
        other => Err(field(&name, reason(json_type(other).to_owned()))),
    }
}

fn parse_attributes(
    root: &Map<String, Value>,
) -> Result<BTreeMap<String, AttributeValue>, EventError> {
    let mut attributes = BTreeMap::new();
    let Some(obj) = optional_object(root, "attributes", "attributes")? else {
        return Ok(attributes);
    };
    if obj.len() > MAX_ATTRIBUTES {
        return Err(field(
            "attributes",
            format!(
                "must hold at most {MAX_ATTRIBUTES} keys (got {})",
                obj.len()
            ),
        ));
    }
    for (key, value) in obj {
        // The key names the field in reasons: it must be printable first.
        if key.is_empty() || key.chars().any(|c| c.is_control()) {
            return Err(field("attributes", "keys must be non-empty and printable"));
        }
        let name = format!("attributes.{key}");
        if key.chars().count() > MAX_LABEL_CHARS {
            return Err(field(
                "attributes",
                format!("keys must be at most {MAX_LABEL_CHARS} characters"),
            ));
        }
        check_text(key, &name)?;
        let parsed = match value {
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Number(n) => AttributeValue::Number(n.clone()),
            Value::String(s) => {
                check_text(s, &name)?;
                AttributeValue::Text(s.clone())
            }
            other => {
                return Err(field(
                    &name,
                    format!(
                        "must be a string, number or boolean (got {})",
                        json_type(other)
                    ),
                ))
            }
        };
        attributes.insert(key.clone(), parsed);
    }
    Ok(attributes)
}

/// A light BCP 47 shape check: `fr`, `fr-FR`, `zh-Hant-TW`. Full registry
/// validation would reject tags that are new but harmless.
fn check_locale(tag: String, name: &str) -> Result<String, EventError> {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if primary_ok && rest_ok {
        Ok(tag)
    } else {
        Err(field(name, "must be a BCP 47 language tag such as fr-FR"))
    }
}

fn check_country(code: String, name: &str) -> Result<String, EventError> {
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(field(name, "must be an ISO 3166-1 alpha-2 code such as FR"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Single-line fields refuse control characters (a CR/LF would be a new
    /// line in an email), every field has a bound, and reasons never quote
    /// the value.
    #[test]
    fn one_line_bounded_fields_and_reasons_without_values() {
        let with = |from: &str, to: &str| VALID.replace(from, to);
        let cases: Vec<(String, &str, &str)> = vec![
            (
                with("Julie Moreau", "Julie\\r\\nAction: http://evil"),
                "customer.name",
                "must be one line",
            ),
            (
                with("LYON-02", "LYON\\u2028X"),
                "location.store_id",
                "must be one line",
            ),
            (
                with("\"delivery\"", "\"delivery\\tx\""),
                "journey.touchpoint",
                "must be one line",
            ),
            (
                with("LYON-02", &"S".repeat(129)),
                "location.store_id",
                "at most 128 characters",
            ),
            (
                with("Julie Moreau", &"N".repeat(201)),
                "customer.name",
                "at most 200 characters",
            ),
            (
                with("CMD-55120", "CMD\\n1"),
                "attributes.order_id",
                "must be one line",
            ),
            (
                with("CMD-55120", &"A".repeat(1001)),
                "attributes.order_id",
                "at most 1000 characters",
            ),
            (
                with("Livraison avec", "bell \\u0007"),
                "comment",
                "control characters",
            ),
        ];
        for (text, field, words) in cases {
            let error = parse_event(text.as_bytes(), 1 << 20).unwrap_err();
            assert_eq!(error.field(), Some(field), "{error}");
            assert!(error.to_string().contains(words), "{error}");
        }
        // Line breaks and tabs are the customer's own words in a comment.
        let event = parse_event(
            with("Livraison avec", "Ligne 1\\n\\tLigne 2").as_bytes(),
            1 << 20,
        )
        .unwrap();
        assert!(event.comment.unwrap().contains('\n'));
        // An email address in the wrong field is not copied into the reason.
        for (from, to) in [
            ("fr-FR", "julie@example.org"),
            ("\"FR\"", "\"julie@example.org\""),
            ("\"web\"", "\"julie@example.org\""),
        ] {
            let error = parse_event(with(from, to).as_bytes(), 1 << 20).unwrap_err();
            assert!(!error.to_string().contains("julie@"), "{error}");
        }
    }

    /// Parse, don't validate, with no back door: deserializing a score
    /// checks its scale as the parser does.
    #[test]
    fn scores_validate_on_deserialize() {
        assert_eq!(serde_json::from_str::<Nps>("7").unwrap().value(), 7);
        assert!(serde_json::from_str::<Nps>("200").is_err());
        assert!(serde_json::from_str::<Csat>("0").is_err());
        assert!(serde_json::from_str::<Ces>("8").is_err());
        let error = serde_json::from_str::<Scores>(r#"{"nps": 11}"#).unwrap_err();
        assert!(error.to_string().contains("from 0 to 10"), "{error}");
        assert_eq!(serde_json::to_string(&Nps::new(3).unwrap()).unwrap(), "3");
    }

    #[test]
    fn integral_floats_are_scores_and_timestamps_are_strict_rfc3339() {
        let with = |from: &str, to: &str| VALID.replace(from, to);
        let event = parse_event(with("\"nps\": 3", "\"nps\": 3.0").as_bytes(), 1 << 20).unwrap();
        assert_eq!(event.scores.nps.map(|n| n.value()), Some(3));
        for bad in [
            "2026-11-20 10:15:00+01:00",
            "2026-11-20T10:15:00\u{2212}01:00",
        ] {
            let text = with("2026-11-20T10:15:00+01:00", bad);
            let error = parse_event(text.as_bytes(), 1 << 20).unwrap_err();
            assert_eq!(error.field(), Some("occurred_at"), "{bad}: {error}");
        }
        let error =
            parse_event(with("\"nps\": 3", "\"nps\": 3.5").as_bytes(), 1 << 20).unwrap_err();
        assert_eq!(error.field(), Some("scores.nps"));
    }

    const VALID: &str = r#"{
      "event_id": "resp-2026-11-20-000123",
      "occurred_at": "2026-11-20T10:15:00+01:00",
      "source": "survey.post-delivery",
      "customer": {"id": "C-88231", "name": "Julie Moreau", "email": "julie.moreau@example.org", "locale": "fr-FR", "segment": "gold"},
      "journey": {"touchpoint": "delivery", "channel": "web"},
      "location": {"store_id": "LYON-02", "region": "FR-ARA", "country": "FR"},
      "product_line": "electromenager",
      "scores": {"nps": 3, "ces": 2},
      "comment": "Livraison avec trois jours de retard et personne ne répond au téléphone.",
      "attributes": {"order_id": "CMD-55120", "carrier": "XPO", "items": 3, "gift": false}
    }"#;

    fn with(patch: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_str(VALID).unwrap();
        patch(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn parses_the_spec_example() {
        let event = parse_event(VALID.as_bytes(), 65536).unwrap();
        assert_eq!(event.event_id, "resp-2026-11-20-000123");
        assert_eq!(event.scores.nps, Nps::new(3));
        assert_eq!(event.scores.ces, Ces::new(2));
        assert_eq!(event.scores.csat, None);
        assert_eq!(event.location.store_id.as_deref(), Some("LYON-02"));
        assert_eq!(event.attributes.len(), 4);
        assert_eq!(event.scores.summary(), "NPS 3, CES 2");
        assert_eq!(event.occurred_at.offset().local_minus_utc(), 3600);
    }

    /// (description, input, expected error text)
    #[test]
    fn refusals_name_the_field() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", b"".to_vec(), "empty message"),
            ("truncated", b"{".to_vec(), "invalid JSON"),
            ("array", b"[]".to_vec(), "not a JSON object (got an array)"),
            ("null", b"null".to_vec(), "not a JSON object (got null)"),
            (
                "no event_id",
                with(|v| {
                    v.as_object_mut().unwrap().remove("event_id");
                }),
                "event_id: is required",
            ),
            (
                "empty event_id",
                with(|v| v["event_id"] = "".into()),
                "event_id: must be 1 to 128 characters (got 0)",
            ),
            (
                "long event_id",
                with(|v| v["event_id"] = "x".repeat(129).into()),
                "event_id: must be 1 to 128 characters (got 129)",
            ),
            (
                "bad timestamp",
                with(|v| v["occurred_at"] = "yesterday".into()),
                "occurred_at: must be an RFC 3339",
            ),
            (
                "no offset",
                with(|v| v["occurred_at"] = "2026-11-20T10:15:00".into()),
                "occurred_at: must be an RFC 3339",
            ),
            (
                "customer array",
                with(|v| v["customer"] = serde_json::json!(["C-1"])),
                "customer: must be an object (got an array)",
            ),
            (
                "no customer id",
                with(|v| {
                    v["customer"].as_object_mut().unwrap().remove("id");
                }),
                "customer.id: is required",
            ),
            (
                "no touchpoint",
                with(|v| {
                    v["journey"].as_object_mut().unwrap().remove("touchpoint");
                }),
                "journey.touchpoint: is required",
            ),
            (
                "journey string",
                with(|v| v["journey"] = "delivery".into()),
                "journey: must be an object (got a string)",
            ),
            (
                "bad channel",
                with(|v| v["journey"]["channel"] = "fax".into()),
                "journey.channel: must be one of",
            ),
            (
                "empty scores",
                with(|v| v["scores"] = serde_json::json!({})),
                "scores: must contain at least one of nps, csat, ces",
            ),
            (
                "nps 11",
                with(|v| v["scores"] = serde_json::json!({"nps": 11})),
                "scores.nps: must be an integer from 0 to 10 (got 11)",
            ),
            (
                "nps -1",
                with(|v| v["scores"] = serde_json::json!({"nps": -1})),
                "scores.nps: must be an integer from 0 to 10 (got -1)",
            ),
            (
                "nps 6.5",
                with(|v| v["scores"] = serde_json::json!({"nps": 6.5})),
                "scores.nps: must be an integer from 0 to 10 (got 6.5)",
            ),
            (
                "nps string",
                with(|v| v["scores"] = serde_json::json!({"nps": "6"})),
                "scores.nps: must be an integer from 0 to 10 (got a string)",
            ),
            (
                "nps null",
                with(|v| v["scores"] = serde_json::json!({"nps": null})),
                "scores.nps: must be an integer from 0 to 10 (got null)",
            ),
            (
                "csat 0",
                with(|v| v["scores"] = serde_json::json!({"csat": 0})),
                "scores.csat: must be an integer from 1 to 5 (got 0)",
            ),
            (
                "ces 8",
                with(|v| v["scores"] = serde_json::json!({"ces": 8})),
                "scores.ces: must be an integer from 1 to 7 (got 8)",
            ),
            (
                "long comment",
                with(|v| v["comment"] = "é".repeat(10_001).into()),
                "comment: must be at most 10000 characters (got 10001)",
            ),
            (
                "nested attribute",
                with(|v| v["attributes"] = serde_json::json!({"nested": {"a": 1}})),
                "attributes.nested: must be a string, number or boolean (got an object)",
            ),
            (
                "nul in comment",
                with(|v| v["comment"] = "a\u{0}b".into()),
                "comment: must not contain a NUL character",
            ),
            (
                "bad locale",
                with(|v| v["customer"]["locale"] = "fr_FR!".into()),
                "customer.locale: must be a BCP 47",
            ),
            (
                "bad country",
                with(|v| v["location"]["country"] = "France".into()),
                "location.country: must be an ISO 3166-1",
            ),
        ];
        for (name, input, expected) in cases {
            let err = parse_event(&input, 1 << 20).expect_err(name);
            assert!(
                err.to_string().contains(expected),
                "{name}: expected `{expected}` in `{err}`"
            );
        }
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        let err = parse_event(VALID.as_bytes(), 10).unwrap_err();
        assert!(matches!(err, EventError::TooLarge { limit: 10, .. }));
    }

    #[test]
    fn deep_nesting_and_invalid_utf8_are_refused_not_crashing() {
        let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(matches!(
            parse_event(deep.as_bytes(), 1 << 20),
            Err(EventError::InvalidJson { .. })
        ));
        let bad_utf8 = b"{\"event_id\": \"\xff\xfe\"}";
        assert!(matches!(
            parse_event(bad_utf8, 1 << 20),
            Err(EventError::InvalidJson { .. })
        ));
    }

    #[test]
    fn nulls_in_optional_strings_mean_absent() {
        let input = with(|v| {
            v["customer"]["email"] = Value::Null;
            v["comment"] = Value::Null;
        });
        let event = parse_event(&input, 1 << 20).unwrap();
        assert_eq!(event.customer.email, None);
        assert_eq!(event.comment, None);
    }

    #[test]
    fn round_trips_through_serde() {
        let event = parse_event(VALID.as_bytes(), 65536).unwrap();
        let json = serde_json::to_value(&event).unwrap();
        let again = event_from_value(&json).unwrap();
        assert_eq!(event, again);
    }
}

/// What the parser accepts, serialised again, parses back to the same event
/// (the fuzz target `event_parser` checks the same for any input).
#[cfg(test)]
mod round_trip {
    #[test]
    fn accepted_events_reparse_to_themselves() {
        let sample = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/feedback-sample.jsonl"
        );
        let text = std::fs::read_to_string(sample).unwrap();
        for line in text.lines().take(500) {
            let event = super::parse_event(line.as_bytes(), 1 << 20).unwrap();
            let again = serde_json::to_vec(&event).unwrap();
            let reparsed = super::parse_event(&again, 1 << 20)
                .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&again)));
            assert_eq!(event, reparsed);
        }
    }
}
