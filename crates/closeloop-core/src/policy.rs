//! The decision: given the active rules and owner directory, what one event
//! calls for (which rules fired, how severe, who owns it, how to tell them).

use serde::Serialize;

use crate::error::{ConfigErrors, ConfigProblem};
use crate::event::FeedbackEvent;
use crate::owners::{DigestMode, Owner, OwnerDirectory, RouteVia};
use crate::rules::RuleSet;
use crate::{Channel, Severity};

/// Rules and owners checked against each other: a rule never names an owner
/// the directory does not know.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: RuleSet,
    owners: OwnerDirectory,
}

/// One notification to send when a case opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedNotification {
    pub channel: Channel,
    /// An email address or a webhook URL.
    pub recipient: String,
}

/// What an alerting event calls for.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Ids of the rules that fired, in rule-file order.
    pub rule_ids: Vec<String>,
    /// The highest severity among them.
    pub severity: Severity,
    pub owner: Owner,
    pub route: RouteVia,
    /// The rule whose `owner` routed the case: when several fired rules
    /// name an owner, the first of them in file order wins.
    pub owner_from_rule: Option<String>,
    /// Channels that will be used: those the rules asked for and the owner
    /// can receive (no webhook without a `webhook_url`).
    pub channels: Vec<Channel>,
    /// Sent as soon as the case opens.
    pub notifications: Vec<PlannedNotification>,
    /// The alert email goes into the owner's digest instead (hourly or daily).
    pub email_digest: Option<DigestMode>,
}

impl Policy {
    /// Combine a rule set and a directory, refusing rules whose `owner` is unknown.
    pub fn new(rules: RuleSet, owners: OwnerDirectory) -> Result<Self, ConfigErrors> {
        let problems: Vec<ConfigProblem> = rules
            .rules()
            .iter()
            .filter_map(|rule| {
                let owner = rule.owner.as_deref()?;
                (!owners.contains(owner))
                    .then(|| unknown_owner(rule.line, format!("rule \"{}\"", rule.id), owner))
            })
            .collect();
        if !problems.is_empty() {
            return Err(ConfigErrors {
                file: rules.file().to_owned(),
                problems,
            });
        }
        Ok(Policy { rules, owners })
    }

    /// The `owner`s a rules file names that `owners` does not know, read
    /// from the file's text, so they are reported with the file's other
    /// problems (`rules check` shows every problem of both files at once).
    pub fn unknown_owners(rules_text: &str, owners: &OwnerDirectory) -> Vec<ConfigProblem> {
        crate::locate::owner_references(rules_text)
            .into_iter()
            .filter(|r| !owners.contains(&r.owner))
            .map(|r| unknown_owner(r.line, r.rule, &r.owner))
            .collect()
    }

    /// Rule and owner pairs that can open a case nobody hears about: every
    /// channel of the rule needs something the owner lacks (today: only
    /// `webhook`, and no `webhook_url`). The owners a rule can reach are its
    /// own `owner`, or every owner routing can pick (store and region owners,
    /// the default owner). Warnings: such a case still opens, records that
    /// nobody was notified, and is counted in
    /// `closeloop_alerts_unnotified_total`.
    pub fn silent_pairs(&self) -> Vec<ConfigProblem> {
        let routable: Vec<&Owner> = self
            .owners
            .owners()
            .filter(|o| {
                !o.stores.is_empty()
                    || !o.regions.is_empty()
                    || o.id == self.owners.default_owner().id
            })
            .collect();
        let mut warnings = Vec::new();
        for rule in self.rules.rules() {
            let candidates: Vec<&Owner> = match &rule.owner {
                Some(id) => self.owners.get(id).into_iter().collect(),
                None => routable.clone(),
            };
            for owner in candidates {
                let reachable = rule.channels.iter().any(|channel| match channel {
                    Channel::Email => true,
                    Channel::Webhook => owner.webhook_url.is_some(),
                });
                if !reachable {
                    warnings.push(ConfigProblem {
                        line: Some(rule.line),
                        item: Some(format!("rule \"{}\"", rule.id)),
                        field: Some("channels".into()),
                        message: format!(
                            "owner \"{}\" has no webhook_url: a case this rule alone routes to them notifies nobody",
                            owner.id
                        ),
                    });
                }
            }
        }
        warnings
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn owners(&self) -> &OwnerDirectory {
        &self.owners
    }

    /// Decide what `event` calls for; `None` when no rule fires.
    pub fn decide(&self, event: &FeedbackEvent) -> Option<Alert> {
        let fired = self.rules.evaluate(event);
        let first = fired.first()?;
        let severity = fired
            .iter()
            .map(|r| r.severity)
            .max()
            .unwrap_or(first.severity);
        let owner_rule = fired.iter().find(|r| r.owner.is_some());
        let rule_owner = owner_rule.and_then(|r| r.owner.as_deref());
        let (owner, route) = self.owners.route(
            rule_owner,
            event.location.store_id.as_deref(),
            event.location.region.as_deref(),
        );
        let mut requested: Vec<Channel> = fired
            .iter()
            .flat_map(|r| r.channels.iter().copied())
            .collect();
        requested.sort();
        requested.dedup();
        let digest = (owner.digest != DigestMode::Immediate && requested.contains(&Channel::Email))
            .then_some(owner.digest);
        let notifications: Vec<PlannedNotification> = requested
            .iter()
            .filter(|&&channel| !(channel == Channel::Email && digest.is_some()))
            .filter_map(|&channel| {
                let recipient = match channel {
                    Channel::Email => Some(owner.email.clone()),
                    Channel::Webhook => owner.webhook_url.clone(),
                }?;
                Some(PlannedNotification { channel, recipient })
            })
            .collect();
        Some(Alert {
            rule_ids: fired.iter().map(|r| r.id.clone()).collect(),
            severity,
            owner: owner.clone(),
            route,
            owner_from_rule: owner_rule.map(|r| r.id.clone()),
            channels: notifications
                .iter()
                .map(|n| n.channel)
                .chain(digest.map(|_| Channel::Email))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            notifications,
            email_digest: digest,
        })
    }
}

/// The refusal of a rule's `owner` that the directory does not know.
fn unknown_owner(line: usize, rule: String, owner: &str) -> ConfigProblem {
    ConfigProblem {
        line: Some(line),
        item: Some(rule),
        field: Some("owner".into()),
        message: format!("unknown owner \"{owner}\" (not in the owner directory)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    const RULES: &str = r#"
[[rule]]
id = "nps-detractor"
severity = "high"
channels = ["email", "webhook"]
continue = true
[rule.when]
nps_class = ["detractor"]

[[rule]]
id = "ces-high-effort"
severity = "medium"
channels = ["email"]
continue = true
[rule.when]
ces_class = ["high_effort"]

[[rule]]
id = "legal-threat"
severity = "critical"
channels = ["email"]
owner = "legal"
[rule.when]
comment_any = ["avocat", "lawyer"]
"#;

    const OWNERS: &str = r#"
default_owner = "director"
[[owner]]
id = "director"
name = "D"
email = "d@example.com"
[[owner]]
id = "legal"
name = "Legal"
email = "legal@example.com"
[[owner]]
id = "mgr-lyon-02"
name = "Claire"
email = "claire@example.com"
webhook_url = "http://127.0.0.1:9000/hook"
stores = ["LYON-02"]
"#;

    fn policy() -> Policy {
        Policy::new(
            RuleSet::from_toml("rules.toml", RULES).unwrap(),
            OwnerDirectory::from_toml("owners.toml", OWNERS).unwrap(),
        )
        .unwrap()
    }

    fn event(store: &str, scores: &str, comment: &str) -> FeedbackEvent {
        let json = format!(
            r#"{{"event_id":"e","occurred_at":"2026-11-20T10:00:00Z","source":"s","customer":{{"id":"c"}},
               "journey":{{"touchpoint":"delivery"}},"location":{{"store_id":"{store}"}},"scores":{scores},"comment":"{comment}"}}"#
        );
        parse_event(json.as_bytes(), 1 << 16).unwrap()
    }

    /// (store, scores, comment, rules, severity, owner, route, channels)
    #[test]
    fn decisions_table() {
        let p = policy();
        let cases = [
            (
                "LYON-02",
                r#"{"nps":3,"ces":2}"#,
                "",
                vec!["nps-detractor", "ces-high-effort"],
                Severity::High,
                "mgr-lyon-02",
                RouteVia::Store,
                vec![Channel::Email, Channel::Webhook],
            ),
            (
                "LYON-01",
                r#"{"nps":3}"#,
                "",
                vec!["nps-detractor"],
                Severity::High,
                "director",
                RouteVia::Default,
                vec![Channel::Email],
            ),
            (
                "LYON-02",
                r#"{"ces":3}"#,
                "",
                vec!["ces-high-effort"],
                Severity::Medium,
                "mgr-lyon-02",
                RouteVia::Store,
                vec![Channel::Email],
            ),
            (
                "LYON-02",
                r#"{"nps":9}"#,
                "My LAWYER",
                vec!["legal-threat"],
                Severity::Critical,
                "legal",
                RouteVia::Rule,
                vec![Channel::Email],
            ),
        ];
        for (store, scores, comment, rules, severity, owner, route, channels) in cases {
            let alert = p.decide(&event(store, scores, comment)).expect(scores);
            assert_eq!(alert.rule_ids, rules, "{scores}");
            assert_eq!(alert.severity, severity, "{scores}");
            assert_eq!(alert.owner.id, owner, "{scores}");
            assert_eq!(alert.route, route, "{scores}");
            assert_eq!(alert.channels, channels, "{scores}");
        }
        assert!(p
            .decide(&event("LYON-02", r#"{"nps":8,"ces":5}"#, "ok"))
            .is_none());
    }

    #[test]
    fn unknown_rule_owner_is_refused() {
        let rules = RuleSet::from_toml("rules.toml", RULES).unwrap();
        let owners = OwnerDirectory::from_toml(
            "owners.toml",
            "default_owner = \"d\"\n[[owner]]\nid = \"d\"\nname = \"D\"\nemail = \"d@example.com\"\n",
        )
        .unwrap();
        let err = Policy::new(rules, owners).unwrap_err().to_string();
        assert!(
            err.contains("rule \"legal-threat\"") && err.contains("unknown owner \"legal\""),
            "{err}"
        );
    }
}
