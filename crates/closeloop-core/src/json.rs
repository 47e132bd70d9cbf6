//! JSON as the contract reads it: serde_json, except that an object with the
//! same key twice is refused. Parsers disagree on which duplicate wins (the
//! first, the last, an error), so a producer relying on one of them would
//! see its events read differently elsewhere: refusing is the safe reading.
//! Nesting is bounded by serde_json's recursion limit (128 levels).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parse one JSON document from `bytes`, refusing duplicate object keys.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = Strict::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The lines of a JSON-lines file: split on `\n`, a trailing `\r` dropped,
/// and no empty last line for the file's final newline. Line `i` of the
/// result is line `i + 1` of the file (empty lines in the middle are kept,
/// so that refusals name the right line).
pub fn json_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect();
    if lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|Strict(v)| v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key \"{key}\"")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_strict;

    #[test]
    fn same_values_as_serde_json_but_duplicates_refused() {
        for text in [
            r#"{"a": 1, "b": [true, null, 2.5, -3, 18446744073709551615], "c": {"d": "é"}}"#,
            "[]",
            "\"x\"",
            "0",
        ] {
            let strict = parse_strict(text.as_bytes()).unwrap();
            let plain: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, plain, "{text}");
        }
        let error = parse_strict(br#"{"a": 1, "b": {"c": 1, "c": 2}}"#).unwrap_err();
        assert!(error.to_string().contains("duplicate key \"c\""), "{error}");
        assert!(parse_strict(b"{} x").is_err(), "trailing characters");
    }

    #[test]
    fn json_lines_of_a_file() {
        use super::json_lines;
        let cases: [(&[u8], Vec<&[u8]>); 5] = [
            (b"a\nb\n", vec![b"a", b"b"]),
            (b"a\r\nb", vec![b"a", b"b"]),
            (b"a\n\nb\n", vec![b"a", b"", b"b"]),
            (b"", vec![]),
            (b"\n", vec![b""]),
        ];
        for (text, lines) in cases {
            assert_eq!(
                json_lines(text),
                lines,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// Nesting: 127 levels of arrays parse, 128 and more are refused.
    #[test]
    fn nesting_limit() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse_strict(nested(127).as_bytes()).is_ok());
        assert!(parse_strict(nested(128).as_bytes()).is_err());
        let plain =
            |depth: usize| serde_json::from_str::<serde_json::Value>(&nested(depth)).is_ok();
        assert_eq!(
            (plain(127), plain(128)),
            (true, false),
            "the same limit as serde_json"
        );
    }
}
