//! The rules engine: which events deserve an alert, how urgent, by which channels.
//!
//! Rules live in a TOML file written by ops teams (format in the README). A
//! file is loaded whole into a [`RuleSet`]: every rule is compiled into a
//! [`Condition`] tree once, so evaluation is plain field access and
//! comparisons, with the comment folded (lower case, no accents) once per
//! event. A file with any problem is refused whole, with every problem
//! located by line, rule id and key.
//!
//! - `condition.rs`: the condition IR and its evaluation.
//! - `toml.rs`: the `[rule.when]` tables front end; `cel.rs`: the CEL front
//!   end; both compile to [`Condition`].
//! - `index.rs`: which rules an event can match; `set.rs`: the rule set.

pub mod cel;
mod condition;
mod index;
mod rule;
mod set;
mod toml;

pub use crate::channel::Channel;
pub use crate::severity::Severity;
pub use condition::{CmpOp, Condition, Prepared, ScoreField, TextField};
pub use set::{Rule, RuleSet};

#[cfg(test)]
mod tests;
