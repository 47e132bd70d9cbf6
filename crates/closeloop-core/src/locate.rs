//! Where things stand in a rules file, from the TOML parser's own spans:
//! the line and column of a CEL error inside a `condition` string, and the
//! `owner` each rule names (checked against the owner directory even when
//! other rules of the file have problems).

use crate::error::ConfigProblem;
use std::ops::Range;

use serde::Deserialize;

/// Only what is located; every other key is ignored here (the full parse
/// reports problems with them).
#[derive(Debug, Default, Deserialize)]
struct FileSpans {
    #[serde(default)]
    rule: Vec<RuleSpans>,
}

#[derive(Debug, Default, Deserialize)]
struct RuleSpans {
    #[serde(default)]
    id: Option<toml::Value>,
    #[serde(default)]
    condition: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    owner: Option<toml::Spanned<toml::Value>>,
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn spans(text: &str) -> Vec<RuleSpans> {
    toml::from_str::<FileSpans>(text)
        .map(|f| f.rule)
        .unwrap_or_default()
}

/// The span of rule `index`'s `condition` value (quotes included).
pub(crate) fn condition_span(text: &str, index: usize) -> Option<Range<usize>> {
    spans(text)
        .into_iter()
        .nth(index)?
        .condition
        .map(|c| c.span())
}

/// File line and column of (`expr_line`, `expr_column`), 1-based, inside
/// the condition string whose value spans `span` in `text`.
pub(crate) fn condition_position(
    text: &str,
    span: Range<usize>,
    expr_line: usize,
    expr_column: usize,
) -> (usize, usize) {
    let start = span.start.min(text.len());
    let rest = &text[start..];
    let delimiter = if rest.starts_with("'''") || rest.starts_with("\"\"\"") {
        3
    } else {
        1
    };
    let mut content = start + delimiter;
    // A newline right after a triple-quote delimiter is not part of the
    // string (TOML trims it): the content starts on the next line.
    if delimiter == 3 {
        if text[content..].starts_with("\r\n") {
            content += 2;
        } else if text[content..].starts_with('\n') {
            content += 1;
        }
    }
    let content = content.min(text.len());
    let line = line_of(text, content) + expr_line.saturating_sub(1);
    let column = if expr_line <= 1 {
        let line_start = text[..content].rfind('\n').map_or(0, |i| i + 1);
        text[line_start..content].chars().count() + expr_column
    } else {
        expr_column
    };
    (line, column)
}

/// One rule's `owner`, where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerReference {
    pub line: usize,
    /// `rule "id"`, or `rule #N` when the id is missing.
    pub rule: String,
    pub owner: String,
}

/// Every `owner = "..."` of the rules file, read even when the file has
/// other problems (but not when it is not TOML at all).
pub fn owner_references(text: &str) -> Vec<OwnerReference> {
    spans(text)
        .into_iter()
        .enumerate()
        .filter_map(|(index, rule)| {
            let owner = rule.owner?;
            let line = line_of(text, owner.span().start);
            let name = owner.into_inner().as_str()?.to_owned();
            let label = match rule.id.as_ref().and_then(toml::Value::as_str) {
                Some(id) => format!("rule \"{id}\""),
                None => format!("rule #{}", index + 1),
            };
            Some(OwnerReference {
                line,
                rule: label,
                owner: name,
            })
        })
        .collect()
}

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

    /// A line and a column, 1-based.
    type At = (usize, usize);

    /// (file text, expression line and column) -> file line and column.
    #[test]
    fn positions_inside_condition_strings() {
        let cases: &[(&str, At, At)] = &[
            (
                "[[rule]]\nid = \"a\"\ncondition = 'nps <= x'\n",
                (1, 8),
                (3, 21),
            ),
            (
                // The word "condition" in a description comes first.
                "[[rule]]\nid = \"a\"\ndescription = \"a condition\"\nseverity = \"low\"\ncondition = 'nps <= x'\n",
                (1, 8),
                (5, 21),
            ),
            (
                // A triple-quoted condition starting on the key's line.
                "[[rule]]\nid = \"a\"\ncondition = '''nps <= 6 &&\n  bad'''\n",
                (2, 3),
                (4, 3),
            ),
            (
                // A triple-quoted condition starting on the next line.
                "[[rule]]\nid = \"a\"\ncondition = '''\nnps <= 6 &&\n  bad'''\n",
                (2, 3),
                (5, 3),
            ),
            (
                "[[rule]]\nid = \"a\"\ncondition = '''nps <= x'''\n",
                (1, 8),
                (3, 23),
            ),
        ];
        for (text, (line, column), expected) in cases {
            let span = condition_span(text, 0).expect("a condition");
            assert_eq!(
                condition_position(text, span, *line, *column),
                *expected,
                "{text}"
            );
        }
    }

    #[test]
    fn owner_references_are_read_whatever_else_is_wrong() {
        let text = "[[rule]]\nid = \"a\"\nseverity = \"nope\"\nowner = \"ghost\"\n\n[[rule]]\nowner = \"mgr\"\n";
        assert_eq!(
            owner_references(text),
            vec![
                OwnerReference {
                    line: 4,
                    rule: "rule \"a\"".into(),
                    owner: "ghost".into()
                },
                OwnerReference {
                    line: 7,
                    rule: "rule #2".into(),
                    owner: "mgr".into()
                },
            ]
        );
    }
}
