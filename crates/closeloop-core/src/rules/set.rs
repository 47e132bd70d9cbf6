//! An ordered, validated set of rules: loading and evaluation.

use std::collections::HashSet;

use crate::error::{ConfigErrors, ConfigProblem};
use crate::event::FeedbackEvent;

use super::condition::*;
use super::index::RuleIndex;
pub use super::rule::Rule;
use super::toml::*;
use crate::locate::{clean_serde_message, line_of, toml_problem};

/// An ordered, validated set of rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// The file's name, as given to `from_toml`: errors about the rules
    /// (e.g. an unknown owner) name it.
    pub(super) file: String,
    pub(super) rules: Vec<Rule>,
    pub(super) needs_comment: bool,
    pub(super) index: RuleIndex,
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
