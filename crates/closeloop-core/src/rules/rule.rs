//! One compiled rule.

use super::condition::Condition;
use crate::{Channel, Severity};

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
