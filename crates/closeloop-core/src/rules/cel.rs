//! Rule conditions in CEL, the Common Expression Language of Kubernetes and
//! Envoy: `nps <= 6 && touchpoint == "delivery"`.
//!
//! The `cel` crate parses; this module type-checks the syntax tree against
//! the event model and compiles it into a [`Condition`] tree, once, at load.
//! Evaluation is then typed field access and comparisons, with no CEL
//! values, maps or dynamic dispatch. Unknown fields, type mismatches such as
//! `nps == "6"` and unsupported constructs are refused here, with the column.
//!
//! Semantics beyond plain CEL, documented for ops:
//! - a comparison on an absent field is false (`nps <= 6` for a CES-only
//!   answer, and `nps != 6` too);
//! - `contains`, `containsAny`, `startsWith`, `endsWith` on `comment` ignore
//!   case, accents and spacing (`text::fold`, the same keywords as the table
//!   form's `comment_any`); `startsWith` and `endsWith` take a string or a
//!   list, and a list holds when any element does; `matches` takes a regular
//!   expression (compiled once), on a text field or a string attribute.
//! - `attributes.<key> in [...]` holds when the attribute equals one item.

use cel::common::ast::{CallExpr, Expr, LiteralValue};
use cel::IdedExpr;
use regex::Regex;

use super::condition::{CmpOp, Condition, Prepared, ScoreField, TextField};
use crate::event::AttributeValue;
use crate::text::keyword;

/// A refusal, located in the expression (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The fields a condition may read, as CEL identifiers.
pub const FIELDS: &str = "nps, csat, ces, nps_class, csat_class, ces_class, touchpoint, channel, store, region, \
                          country, segment, product_line, source, locale, comment, attributes.<key>";

enum Operand {
    Score(ScoreField),
    Text(TextField),
    Class(ScoreField),
    Attribute(String),
    Int(i64),
    Double(f64),
    Str(String),
    Bool(bool),
    List(Vec<Operand>),
}

impl Operand {
    fn describe(&self) -> String {
        match self {
            Operand::Score(s) => format!("{} (an int)", s.name()),
            Operand::Text(t) => format!("{} (a string)", t.name()),
            Operand::Class(s) => format!("{}_class (a string)", s.name()),
            Operand::Attribute(k) => format!("attributes.{k}"),
            Operand::Int(v) => format!("{v} (an int)"),
            Operand::Double(v) => format!("{v} (a double)"),
            Operand::Str(v) => format!("\"{v}\" (a string)"),
            Operand::Bool(v) => format!("{v} (a bool)"),
            Operand::List(_) => "a list".into(),
        }
    }
}

struct Compiler<'a> {
    info: &'a cel::common::ast::SourceInfo,
    source: &'a str,
}

type Compiled<T> = Result<T, (u64, String)>;

/// Parse and compile `source`.
pub fn compile(source: &str) -> Result<Condition, CelError> {
    let (expr, info) = cel::parser::Parser::new()
        .parse_with_source_info(source)
        .map_err(|errors| {
            let first = errors.errors.first();
            CelError {
                line: first.map_or(1, |e| e.pos.0.max(1) as usize),
                column: first.map_or(1, |e| e.pos.1.max(1) as usize),
                message: first.map_or_else(
                    || "syntax error".to_owned(),
                    |e| format!("syntax error: {}", e.msg),
                ),
            }
        })?;
    let compiler = Compiler {
        info: &info,
        source,
    };
    compiler.condition(&expr).map_err(|(id, message)| {
        let (line, column) = compiler.position(id);
        CelError {
            line,
            column,
            message,
        }
    })
}

impl Compiler<'_> {
    fn position(&self, id: u64) -> (usize, usize) {
        let Some((start, _)) = self.info.offset_for(id) else {
            return (1, 1);
        };
        let before: String = self.source.chars().take(start as usize).collect();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// An expression that must be true or false.
    fn condition(&self, e: &IdedExpr) -> Compiled<Condition> {
        match &e.expr {
            Expr::Literal(LiteralValue::Boolean(b)) => Ok(Condition::Const(*b.inner())),
            Expr::Call(call) => self.call(e.id, call),
            Expr::Select(select) if select.test => match &select.operand.expr {
                Expr::Ident(root) if root == "attributes" => {
                    Ok(Condition::HasAttribute(select.field.clone()))
                }
                _ => Err((
                    e.id,
                    "has() takes an attribute, e.g. has(attributes.order_id)".into(),
                )),
            },
            Expr::Comprehension(_) => Err((
                e.id,
                "list macros (all, exists, map, filter) are not supported".into(),
            )),
            _ => {
                let operand = self.operand(e)?;
                Err((
                    e.id,
                    format!(
                        "expected a condition (true or false), got {}",
                        operand.describe()
                    ),
                ))
            }
        }
    }

    fn call(&self, id: u64, call: &CallExpr) -> Compiled<Condition> {
        let args = call.args.as_slice();
        // Operators always carry their operands; matched by shape anyway,
        // so no input can make the compiler index out of bounds.
        match (call.func_name.as_str(), &call.target, args) {
            ("_&&_", None, [a, b]) => {
                Ok(Condition::All(vec![self.condition(a)?, self.condition(b)?]))
            }
            ("_||_", None, [a, b]) => {
                Ok(Condition::Any(vec![self.condition(a)?, self.condition(b)?]))
            }
            ("!_", None, [a]) => Ok(Condition::Not(Box::new(self.condition(a)?))),
            ("@in", None, [element, list]) => self.membership(id, element, list),
            (op @ ("_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_"), None, [left, right]) => {
                let op = match op {
                    "_==_" => CmpOp::Eq,
                    "_!=_" => CmpOp::Ne,
                    "_<_" => CmpOp::Lt,
                    "_<=_" => CmpOp::Le,
                    "_>_" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                self.comparison(id, op, left, right)
            }
            (
                name @ ("contains" | "containsAny" | "startsWith" | "endsWith" | "matches"),
                Some(target),
                _,
            ) => self.text_function(id, name, target, args),
            (name, _, _) => Err((
                id,
                format!("unknown function or operator `{}`", name.trim_matches('_')),
            )),
        }
    }

    fn operand(&self, e: &IdedExpr) -> Compiled<Operand> {
        match &e.expr {
            Expr::Ident(name) => field(name).ok_or_else(|| {
                (
                    e.id,
                    format!("unknown field `{name}`; fields are: {FIELDS}"),
                )
            }),
            Expr::Select(select) if !select.test => match &select.operand.expr {
                Expr::Ident(root) if root == "attributes" => {
                    Ok(Operand::Attribute(select.field.clone()))
                }
                Expr::Ident(root) => {
                    let path = format!("{root}.{}", select.field);
                    field(&path).ok_or_else(|| {
                        (
                            e.id,
                            format!("unknown field `{path}`; fields are: {FIELDS}"),
                        )
                    })
                }
                _ => Err((
                    e.id,
                    "only fields and attributes.<key> can be selected".into(),
                )),
            },
            Expr::Literal(literal) => match literal {
                LiteralValue::Int(v) => Ok(Operand::Int(*v.inner())),
                LiteralValue::UInt(v) => Ok(Operand::Int(*v.inner() as i64)),
                LiteralValue::Double(v) => Ok(Operand::Double(*v.inner())),
                LiteralValue::String(v) => Ok(Operand::Str(v.inner().to_owned())),
                LiteralValue::Boolean(v) => Ok(Operand::Bool(*v.inner())),
                _ => Err((e.id, "unsupported literal (null or bytes)".into())),
            },
            Expr::List(list) => Ok(Operand::List(
                list.elements
                    .iter()
                    .map(|x| self.operand(x))
                    .collect::<Compiled<_>>()?,
            )),
            Expr::Call(call) if call.func_name == "-_" && call.args.len() == 1 => {
                match self.operand(&call.args[0])? {
                    Operand::Int(v) => Ok(Operand::Int(
                        v.checked_neg()
                            .ok_or((e.id, "number out of range".to_owned()))?,
                    )),
                    Operand::Double(v) => Ok(Operand::Double(-v)),
                    _ => Err((e.id, "unary minus applies to numbers".into())),
                }
            }
            Expr::Call(call) => Err((
                e.id,
                format!(
                    "unknown function or operator `{}` where a field or a literal is expected",
                    call.func_name.trim_matches('_')
                ),
            )),
            _ => Err((e.id, "expected a field or a literal here".into())),
        }
    }

    fn comparison(
        &self,
        id: u64,
        op: CmpOp,
        left: &IdedExpr,
        right: &IdedExpr,
    ) -> Compiled<Condition> {
        let (l, r) = (self.operand(left)?, self.operand(right)?);
        // Put the field on the left: `6 >= nps` is `nps <= 6`.
        let (field, value, op) = match (&l, &r) {
            (
                Operand::Score(_) | Operand::Text(_) | Operand::Class(_) | Operand::Attribute(_),
                _,
            ) => (l, r, op),
            (
                _,
                Operand::Score(_) | Operand::Text(_) | Operand::Class(_) | Operand::Attribute(_),
            ) => (r, l, op.flipped()),
            _ => return Err((id, "a comparison needs a field on one side".into())),
        };
        let mismatch = |f: &Operand, v: &Operand| {
            (
                id,
                format!(
                    "type mismatch: {} compared with {}",
                    f.describe(),
                    v.describe()
                ),
            )
        };
        match (&field, &value) {
            (Operand::Score(score), Operand::Int(v)) => Ok(Condition::ScoreCmp(*score, op, *v)),
            (Operand::Text(text), Operand::Str(v)) => match op {
                CmpOp::Eq => Ok(Condition::TextIn(*text, vec![v.clone()])),
                CmpOp::Ne => Ok(Condition::All(vec![
                    Condition::TextPresent(*text),
                    Condition::Not(Box::new(Condition::TextIn(*text, vec![v.clone()]))),
                ])),
                _ => Err((
                    id,
                    format!("strings compare with == and != only ({})", text.name()),
                )),
            },
            (Operand::Class(score), Operand::Str(v)) => {
                let class =
                    class_condition(*score, std::slice::from_ref(v)).map_err(|m| (id, m))?;
                match op {
                    CmpOp::Eq => Ok(class),
                    CmpOp::Ne => Ok(Condition::All(vec![
                        Condition::ScorePresent(*score),
                        Condition::Not(Box::new(class)),
                    ])),
                    _ => Err((id, "classes compare with == and != only".into())),
                }
            }
            (Operand::Attribute(key), literal) => {
                let value = attribute_literal(literal).ok_or_else(|| {
                    (
                        id,
                        format!(
                            "attributes compare with literals, not {}",
                            literal.describe()
                        ),
                    )
                })?;
                match (op, &value) {
                    (CmpOp::Eq, _) => Ok(Condition::AttributeEquals(key.clone(), value)),
                    (CmpOp::Ne, _) => Ok(Condition::All(vec![
                        Condition::HasAttribute(key.clone()),
                        Condition::Not(Box::new(Condition::AttributeEquals(key.clone(), value))),
                    ])),
                    (_, AttributeValue::Number(n)) => Ok(Condition::AttributeCmp(
                        key.clone(),
                        op,
                        n.as_f64().unwrap_or(f64::NAN),
                    )),
                    _ => Err((id, "only numbers compare with <, <=, >, >=".into())),
                }
            }
            (f, v) => Err(mismatch(f, v)),
        }
    }

    fn membership(&self, id: u64, element: &IdedExpr, list: &IdedExpr) -> Compiled<Condition> {
        let (element, list) = (self.operand(element)?, self.operand(list)?);
        let Operand::List(items) = list else {
            return Err((
                id,
                "`in` needs a list literal on its right, e.g. store in [\"LYON-01\"]".into(),
            ));
        };
        let strings = |item: Operand| match item {
            Operand::Str(s) => Ok(s),
            other => Err(other),
        };
        match element {
            Operand::Text(text) => Ok(Condition::TextIn(
                text,
                list_of(id, items, text.name(), strings)?,
            )),
            Operand::Score(score) => {
                let equals = |item: Operand| match item {
                    Operand::Int(v) => Ok(Condition::ScoreCmp(score, CmpOp::Eq, v)),
                    other => Err(other),
                };
                Ok(Condition::Any(list_of(id, items, score.name(), equals)?))
            }
            Operand::Class(score) => {
                let values = list_of(id, items, &format!("{}_class", score.name()), strings)?;
                class_condition(score, &values).map_err(|m| (id, m))
            }
            Operand::Attribute(key) => {
                let what = format!("attributes.{key}");
                let equals = |item: Operand| {
                    attribute_literal(&item)
                        .map(|value| Condition::AttributeEquals(key.clone(), value))
                        .ok_or(item)
                };
                Ok(Condition::Any(list_of(id, items, &what, equals)?))
            }
            other => Err((
                id,
                format!("`in` applies to a field, not {}", other.describe()),
            )),
        }
    }

    fn text_function(
        &self,
        id: u64,
        name: &str,
        target: &IdedExpr,
        args: &[IdedExpr],
    ) -> Compiled<Condition> {
        let target = self.operand(target)?;
        let strings = |arg: &IdedExpr| -> Compiled<Vec<String>> {
            match self.operand(arg)? {
                Operand::Str(s) => Ok(vec![s]),
                Operand::List(items) => items
                    .into_iter()
                    .map(|i| match i {
                        Operand::Str(s) => Ok(s),
                        other => Err((
                            arg.id,
                            format!("{name}() takes strings, got {}", other.describe()),
                        )),
                    })
                    .collect(),
                other => Err((
                    arg.id,
                    format!("{name}() takes strings, got {}", other.describe()),
                )),
            }
        };
        let [arg] = args else {
            return Err((id, format!("{name}() takes one argument")));
        };
        let values = strings(arg)?;
        let text = match target {
            Operand::Text(text) => text,
            Operand::Attribute(key) if name == "matches" => {
                let [pattern] = values.as_slice() else {
                    return Err((id, "matches() takes one pattern".into()));
                };
                let regex = Regex::new(pattern)
                    .map_err(|e| (arg.id, format!("invalid regular expression: {e}")))?;
                // False when the attribute is absent or not a string.
                return Ok(Condition::AttributeMatches(key, regex));
            }
            Operand::Attribute(key) => {
                return Err((
                    id,
                    format!(
                        "{name}() is available on comment only; attributes.{key} takes ==, !=, <, <=, >, >=, in [...], has() and matches()"
                    ),
                ))
            }
            _ => return Err((id, format!("{name}() applies to a string field"))),
        };
        if name == "matches" {
            let [pattern] = values.as_slice() else {
                return Err((id, "matches() takes one pattern".into()));
            };
            let regex = Regex::new(pattern)
                .map_err(|e| (arg.id, format!("invalid regular expression: {e}")))?;
            return Ok(Condition::TextMatches(text, regex));
        }
        if text != TextField::Comment {
            return Err((id, format!("{name}() is available on comment only")));
        }
        if name == "contains" && values.len() != 1 {
            return Err((
                id,
                "contains() takes one string; use containsAny([...]) for several".into(),
            ));
        }
        if values.is_empty() {
            return Err((arg.id, format!("{name}() needs at least one keyword")));
        }
        // The same keywords as the table form's comment_any: folded, kept
        // whole (spaces included), never blank.
        let keywords = values
            .iter()
            .map(|v| keyword(v))
            .collect::<Option<Vec<String>>>()
            .ok_or((arg.id, "keywords must not be empty".to_owned()))?;
        // A list tests every keyword: startsWith(["merci", "bravo"]) holds
        // for a comment starting with either.
        let each = |make: fn(String) -> Condition| {
            let mut conditions: Vec<Condition> = keywords.iter().cloned().map(make).collect();
            match conditions.len() {
                1 => conditions.remove(0),
                _ => Condition::Any(conditions),
            }
        };
        Ok(match name {
            "startsWith" => each(Condition::CommentStarts),
            "endsWith" => each(Condition::CommentEnds),
            _ => Condition::CommentAny(keywords),
        })
    }
}

/// A literal as an attribute value; `None` for fields, lists and
/// non-finite numbers.
fn attribute_literal(literal: &Operand) -> Option<AttributeValue> {
    Some(match literal {
        Operand::Int(v) => AttributeValue::Number((*v).into()),
        Operand::Double(v) => AttributeValue::Number(serde_json::Number::from_f64(*v)?),
        Operand::Str(v) => AttributeValue::Text(v.clone()),
        Operand::Bool(v) => AttributeValue::Bool(*v),
        _ => return None,
    })
}

/// The items of a list literal, each converted by `pick`; an item it gives
/// back is a type mismatch with `what`, the field on the left of `in`.
fn list_of<T>(
    id: u64,
    items: Vec<Operand>,
    what: &str,
    pick: impl Fn(Operand) -> Result<T, Operand>,
) -> Compiled<Vec<T>> {
    items
        .into_iter()
        .map(|item| {
            pick(item).map_err(|other| {
                (
                    id,
                    format!(
                        "type mismatch: {what} in a list holding {}",
                        other.describe()
                    ),
                )
            })
        })
        .collect()
}

fn field(name: &str) -> Option<Operand> {
    Some(match name {
        "nps" | "scores.nps" => Operand::Score(ScoreField::Nps),
        "csat" | "scores.csat" => Operand::Score(ScoreField::Csat),
        "ces" | "scores.ces" => Operand::Score(ScoreField::Ces),
        "nps_class" => Operand::Class(ScoreField::Nps),
        "csat_class" => Operand::Class(ScoreField::Csat),
        "ces_class" => Operand::Class(ScoreField::Ces),
        "touchpoint" | "journey.touchpoint" => Operand::Text(TextField::Touchpoint),
        "channel" | "journey.channel" => Operand::Text(TextField::Channel),
        "store" | "location.store_id" => Operand::Text(TextField::Store),
        "region" | "location.region" => Operand::Text(TextField::Region),
        "country" | "location.country" => Operand::Text(TextField::Country),
        "segment" | "customer.segment" => Operand::Text(TextField::Segment),
        "locale" | "customer.locale" => Operand::Text(TextField::Locale),
        "product_line" => Operand::Text(TextField::ProductLine),
        "source" => Operand::Text(TextField::Source),
        "comment" => Operand::Text(TextField::Comment),
        _ => return None,
    })
}

fn class_condition(score: ScoreField, values: &[String]) -> Result<Condition, String> {
    use crate::scoring::{CesClass, CsatClass, NpsClass};
    /// Each value as a class of `T`, or the error listing the allowed ones.
    fn parse<T: serde::de::DeserializeOwned>(
        score: ScoreField,
        values: &[String],
        allowed: &str,
    ) -> Result<Vec<T>, String> {
        values
            .iter()
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                    format!("unknown {}_class \"{v}\"; one of {allowed}", score.name())
                })
            })
            .collect()
    }
    Ok(match score {
        ScoreField::Nps => Condition::NpsClassIn(parse::<NpsClass>(
            score,
            values,
            "detractor, passive, promoter",
        )?),
        ScoreField::Csat => Condition::CsatClassIn(parse::<CsatClass>(
            score,
            values,
            "dissatisfied, neutral, satisfied",
        )?),
        ScoreField::Ces => Condition::CesClassIn(parse::<CesClass>(
            score,
            values,
            "high_effort, neutral, low_effort",
        )?),
    })
}

/// A standalone CEL condition over one event (silence matchers).
#[derive(Debug, Clone)]
pub struct Matcher {
    condition: Condition,
    needs_comment: bool,
}

impl Matcher {
    /// Compile `source`; refusals carry line and column.
    pub fn compile(source: &str) -> Result<Self, CelError> {
        let condition = compile(source)?;
        let needs_comment = condition.reads_comment();
        Ok(Matcher {
            condition,
            needs_comment,
        })
    }

    pub fn matches(&self, event: &crate::FeedbackEvent) -> bool {
        self.condition
            .matches(&Prepared::new(event, self.needs_comment))
    }
}

impl std::fmt::Display for CelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for CelError {}
