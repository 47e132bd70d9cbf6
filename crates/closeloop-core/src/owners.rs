//! The owner directory: who answers for which store and region, and to whom
//! they escalate.
//!
//! Loaded from a TOML file (format in the README) and validated whole: ids
//! unique, every `escalates_to` known and acyclic, every store and region
//! claimed by at most one owner, the default owner present.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigErrors, ConfigProblem};
use crate::locate::{clean_serde_message, line_of, toml_problem};
use crate::sla::{Calendar, CalendarSpec};

/// A person (or team) responsible for following up cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Where case webhooks for this owner go (a CRM, a ticketing tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// BCP 47 tag choosing the language of notifications.
    #[serde(default = "default_locale")]
    pub locale: String,
    /// The next level up: store manager → regional manager → director.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalates_to: Option<String>,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    /// How alert emails reach this owner: one by one, or gathered.
    #[serde(default)]
    pub digest: DigestMode,
    /// The business hours their SLA clocks run in (a `[[calendar]]` id);
    /// the directory's `default_calendar` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
    /// The weekly report email: on or off; when absent, on for those with
    /// people under them or regions (`closeloop_core::report::gets_report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_report: Option<bool>,
}

fn default_locale() -> String {
    "en".to_owned()
}

/// Immediate alert emails, or one digest email per period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestMode {
    #[default]
    Immediate,
    Hourly,
    Daily,
}

impl DigestMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestMode::Immediate => "immediate",
            DigestMode::Hourly => "hourly",
            DigestMode::Daily => "daily",
        }
    }

    /// When the digest holding a case opened at `at` is due: the end of
    /// the hour or of the (UTC) day; `at` itself when immediate.
    pub fn period_end(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let naive = at.naive_utc();
        let start = match self {
            DigestMode::Immediate => return at,
            DigestMode::Hourly => naive.date().and_hms_opt(naive.hour(), 0, 0),
            DigestMode::Daily => naive.date().and_hms_opt(0, 0, 0),
        };
        let step = match self {
            DigestMode::Hourly => chrono::Duration::hours(1),
            _ => chrono::Duration::days(1),
        };
        start.map_or(at, |s| s.and_utc() + step)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnersFileSpec {
    default_owner: String,
    #[serde(default)]
    default_calendar: Option<String>,
    #[serde(default)]
    calendar: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    owner: Vec<toml::Spanned<toml::Table>>,
}

/// How an alert's owner was found, recorded on the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteVia {
    /// The rule names its owner.
    Rule,
    /// The owner of the event's store.
    Store,
    /// No store owner: the owner of the event's region.
    Region,
    /// Neither: the directory's default owner.
    Default,
}

impl RouteVia {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteVia::Rule => "rule",
            RouteVia::Store => "store",
            RouteVia::Region => "region",
            RouteVia::Default => "default",
        }
    }
}

/// A validated owner directory.
#[derive(Debug, Clone)]
pub struct OwnerDirectory {
    owners: BTreeMap<String, Owner>,
    by_store: HashMap<String, String>,
    by_region: HashMap<String, String>,
    default_owner: String,
    calendars: BTreeMap<String, Calendar>,
    default_calendar: Calendar,
}

impl OwnerDirectory {
    /// Parse and validate an owners file. `file` names it in error messages.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigErrors> {
        let fail = |problems: Vec<ConfigProblem>| ConfigErrors {
            file: file.to_owned(),
            problems,
        };
        let spec: OwnersFileSpec =
            toml::from_str(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;

        let mut problems = Vec::new();
        let mut calendars = BTreeMap::new();
        for (index, spanned) in spec.calendar.into_iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let table = spanned.into_inner();
            let label = match table.get("id").and_then(toml::Value::as_str) {
                Some(id) => format!("calendar \"{id}\""),
                None => format!("calendar #{}", index + 1),
            };
            let mut problem = |field: String, message: String| {
                problems.push(ConfigProblem {
                    line: Some(line),
                    item: Some(label.clone()),
                    field: (!field.is_empty()).then_some(field),
                    message,
                })
            };
            let calendar_spec: CalendarSpec =
                match serde_path_to_error::deserialize(toml::Value::Table(table)) {
                    Ok(spec) => spec,
                    Err(e) => {
                        let path = e.path().to_string();
                        let path = if path == "." { String::new() } else { path };
                        problem(path, clean_serde_message(&e.into_inner().to_string()));
                        continue;
                    }
                };
            if calendars.contains_key(&calendar_spec.id) {
                problem("id".into(), "duplicate calendar id".into());
                continue;
            }
            match Calendar::from_spec(calendar_spec) {
                Ok(calendar) => {
                    calendars.insert(calendar.id().to_owned(), calendar);
                }
                Err((field, message)) => problem(field, message),
            }
        }
        let mut owners = BTreeMap::new();
        let mut lines = HashMap::new();
        let mut by_store: HashMap<String, String> = HashMap::new();
        let mut by_region: HashMap<String, String> = HashMap::new();
        for (index, spanned) in spec.owner.into_iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let table = spanned.into_inner();
            let label = match table.get("id").and_then(toml::Value::as_str) {
                Some(id) => format!("owner \"{id}\""),
                None => format!("owner #{}", index + 1),
            };
            let mut problem = |field: &str, message: String| {
                problems.push(ConfigProblem {
                    line: Some(line),
                    item: Some(label.clone()),
                    field: (!field.is_empty()).then(|| field.to_owned()),
                    message,
                })
            };
            let owner: Owner = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
                Ok(owner) => owner,
                Err(e) => {
                    let path = e.path().to_string();
                    let path = if path == "." { String::new() } else { path };
                    problem(&path, clean_serde_message(&e.into_inner().to_string()));
                    continue;
                }
            };
            if owner.id.trim().is_empty() {
                problem("id", "must not be empty".into());
                continue;
            }
            if owners.contains_key(&owner.id) {
                problem("id", "duplicate owner id".into());
                continue;
            }
            if !looks_like_email(&owner.email) {
                problem(
                    "email",
                    format!("\"{}\" is not an email address", owner.email),
                );
            }
            if let Some(url) = &owner.webhook_url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    problem(
                        "webhook_url",
                        format!("must be an http:// or https:// URL (got \"{url}\")"),
                    );
                }
            }
            for store in &owner.stores {
                if let Some(other) = by_store.insert(store.clone(), owner.id.clone()) {
                    problem(
                        "stores",
                        format!("store {store} is already owned by \"{other}\""),
                    );
                }
            }
            for region in &owner.regions {
                if let Some(other) = by_region.insert(region.clone(), owner.id.clone()) {
                    problem(
                        "regions",
                        format!("region {region} is already owned by \"{other}\""),
                    );
                }
            }
            if let Some(calendar) = &owner.calendar {
                if !calendars.contains_key(calendar) {
                    problem("calendar", format!("unknown calendar \"{calendar}\""));
                }
            }
            lines.insert(owner.id.clone(), line);
            owners.insert(owner.id.clone(), owner);
        }

        for owner in owners.values() {
            let Some(next) = &owner.escalates_to else {
                continue;
            };
            let problem = |message: String| ConfigProblem {
                line: lines.get(&owner.id).copied(),
                item: Some(format!("owner \"{}\"", owner.id)),
                field: Some("escalates_to".into()),
                message,
            };
            if !owners.contains_key(next) {
                problems.push(problem(format!("unknown owner \"{next}\"")));
                continue;
            }
            // Walk the chain: a cycle would escalate forever.
            let mut seen = HashSet::from([owner.id.as_str()]);
            let mut cursor = owners.get(next);
            while let Some(step) = cursor {
                if !seen.insert(step.id.as_str()) {
                    problems.push(problem(format!(
                        "escalation chain loops back to \"{}\"",
                        step.id
                    )));
                    break;
                }
                cursor = step.escalates_to.as_ref().and_then(|n| owners.get(n));
            }
        }
        if !owners.contains_key(&spec.default_owner) {
            problems.push(ConfigProblem {
                line: None,
                item: None,
                field: Some("default_owner".into()),
                message: format!("unknown owner \"{}\"", spec.default_owner),
            });
        }
        let default_calendar = match &spec.default_calendar {
            None => Calendar::always_open(),
            Some(id) => match calendars.get(id) {
                Some(calendar) => calendar.clone(),
                None => {
                    problems.push(ConfigProblem {
                        line: None,
                        item: None,
                        field: Some("default_calendar".into()),
                        message: format!("unknown calendar \"{id}\""),
                    });
                    Calendar::always_open()
                }
            },
        };
        if !problems.is_empty() {
            return Err(fail(problems));
        }
        Ok(OwnerDirectory {
            owners,
            by_store,
            by_region,
            default_owner: spec.default_owner,
            calendars,
            default_calendar,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Owner> {
        self.owners.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.owners.contains_key(id)
    }

    pub fn default_owner(&self) -> &Owner {
        // Checked at load: the default owner exists.
        &self.owners[&self.default_owner]
    }

    pub fn owners(&self) -> impl Iterator<Item = &Owner> {
        self.owners.values()
    }

    /// The owner for an event: the rule's own owner, else the store's, else
    /// the region's, else the default owner.
    pub fn route(
        &self,
        rule_owner: Option<&str>,
        store: Option<&str>,
        region: Option<&str>,
    ) -> (&Owner, RouteVia) {
        if let Some(owner) = rule_owner.and_then(|id| self.owners.get(id)) {
            return (owner, RouteVia::Rule);
        }
        if let Some(owner) = store
            .and_then(|s| self.by_store.get(s))
            .and_then(|id| self.owners.get(id))
        {
            return (owner, RouteVia::Store);
        }
        if let Some(owner) = region
            .and_then(|r| self.by_region.get(r))
            .and_then(|id| self.owners.get(id))
        {
            return (owner, RouteVia::Region);
        }
        (self.default_owner(), RouteVia::Default)
    }

    /// The business hours an owner's SLA clocks run in: their calendar, else
    /// the directory's default, else always open (UTC).
    pub fn calendar_for(&self, owner_id: &str) -> &Calendar {
        self.owners
            .get(owner_id)
            .and_then(|o| o.calendar.as_ref())
            .and_then(|id| self.calendars.get(id))
            .unwrap_or(&self.default_calendar)
    }

    /// Every owner at or below `owner_id` in the escalation tree: whose chain
    /// leads up to them (their own id included).
    pub fn team_of(&self, owner_id: &str) -> Vec<&Owner> {
        self.owners
            .values()
            .filter(|o| {
                o.id == owner_id
                    || self
                        .escalation_chain(&o.id)
                        .iter()
                        .any(|above| above.id == owner_id)
            })
            .collect()
    }

    /// The escalation chain above `owner_id`, nearest first.
    pub fn escalation_chain(&self, owner_id: &str) -> Vec<&Owner> {
        let mut chain = Vec::new();
        let mut cursor = self
            .owners
            .get(owner_id)
            .and_then(|o| o.escalates_to.as_ref())
            .and_then(|n| self.owners.get(n));
        while let Some(owner) = cursor {
            chain.push(owner);
            cursor = owner.escalates_to.as_ref().and_then(|n| self.owners.get(n));
        }
        chain
    }
}

/// A plausible address: one `@`, a dotted domain, no spaces (delivery is the real check).
pub fn looks_like_email(text: &str) -> bool {
    let mut parts = text.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None)
            if !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECTORY: &str = r#"
default_owner = "director"

[[owner]]
id = "director"
name = "Dana Director"
email = "director@example.com"

[[owner]]
id = "rm-ara"
name = "Regional ARA"
email = "rm-ara@example.com"
escalates_to = "director"
regions = ["FR-ARA"]

[[owner]]
id = "mgr-lyon-02"
name = "Claire Martin"
email = "claire@example.com"
locale = "fr-FR"
webhook_url = "http://127.0.0.1:9000/hook"
escalates_to = "rm-ara"
stores = ["LYON-02"]
"#;

    #[test]
    fn routing_table() {
        let dir = OwnerDirectory::from_toml("owners.toml", DIRECTORY).unwrap();
        // (rule owner, store, region, expected owner, expected path)
        let cases = [
            (
                None,
                Some("LYON-02"),
                Some("FR-ARA"),
                "mgr-lyon-02",
                RouteVia::Store,
            ),
            (
                None,
                Some("LYON-01"),
                Some("FR-ARA"),
                "rm-ara",
                RouteVia::Region,
            ),
            (None, None, Some("FR-ARA"), "rm-ara", RouteVia::Region),
            (
                None,
                Some("PARIS-01"),
                Some("FR-IDF"),
                "director",
                RouteVia::Default,
            ),
            (None, None, None, "director", RouteVia::Default),
            (
                Some("rm-ara"),
                Some("LYON-02"),
                None,
                "rm-ara",
                RouteVia::Rule,
            ),
        ];
        for (rule_owner, store, region, owner, via) in cases {
            let (got, got_via) = dir.route(rule_owner, store, region);
            assert_eq!(
                (got.id.as_str(), got_via),
                (owner, via),
                "{store:?} {region:?}"
            );
        }
    }

    #[test]
    fn digest_period_end_table() {
        use chrono::TimeZone;
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 20, h, m, s).unwrap();
        let cases = [
            (DigestMode::Hourly, at(9, 10, 0), at(10, 0, 0)),
            (DigestMode::Hourly, at(9, 0, 0), at(10, 0, 0)),
            (
                DigestMode::Hourly,
                at(23, 59, 59),
                Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(),
            ),
            (
                DigestMode::Daily,
                at(9, 10, 0),
                Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(),
            ),
            (DigestMode::Immediate, at(9, 10, 0), at(9, 10, 0)),
        ];
        for (mode, opened, due) in cases {
            assert_eq!(mode.period_end(opened), due, "{mode:?} {opened}");
        }
        let dir = OwnerDirectory::from_toml(
            "owners.toml",
            &DIRECTORY.replace(
                "regions = [\"FR-ARA\"]",
                "regions = [\"FR-ARA\"]\ndigest = \"hourly\"",
            ),
        )
        .unwrap();
        assert_eq!(dir.get("rm-ara").unwrap().digest, DigestMode::Hourly);
        assert_eq!(dir.get("director").unwrap().digest, DigestMode::Immediate);
        let err = OwnerDirectory::from_toml(
            "owners.toml",
            &DIRECTORY.replace(
                "regions = [\"FR-ARA\"]",
                "regions = [\"FR-ARA\"]\ndigest = \"weekly\"",
            ),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("digest")
                && err.to_string().contains("unknown variant `weekly`"),
            "{err}"
        );
    }

    #[test]
    fn escalation_chain_goes_up() {
        let dir = OwnerDirectory::from_toml("owners.toml", DIRECTORY).unwrap();
        let chain: Vec<_> = dir
            .escalation_chain("mgr-lyon-02")
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(chain, ["rm-ara", "director"]);
        assert_eq!(dir.get("director").unwrap().locale, "en");
    }

    #[test]
    fn calendars_apply_to_their_owners_and_the_default_to_others() {
        // Top-level keys come before the first table.
        let text = DIRECTORY
            .replacen(
                "default_owner = \"director\"\n",
                "default_owner = \"director\"\ndefault_calendar = \"hq\"\n",
                1,
            )
            .replace(
                "stores = [\"LYON-02\"]",
                "stores = [\"LYON-02\"]\ncalendar = \"lyon\"",
            )
            + r#"
[[calendar]]
id = "hq"
timezone = "Europe/Paris"
hours = { mon = "09:00-17:00" }

[[calendar]]
id = "lyon"
timezone = "Europe/Paris"
hours = { sat = "10:00-18:00" }
closed = ["2026-12-25"]
"#;
        let dir = OwnerDirectory::from_toml("owners.toml", &text).unwrap();
        assert_eq!(dir.calendar_for("mgr-lyon-02").id(), "lyon");
        assert_eq!(dir.calendar_for("rm-ara").id(), "hq");
        assert_eq!(dir.calendar_for("someone-unknown").id(), "hq");
        let plain = OwnerDirectory::from_toml("owners.toml", DIRECTORY).unwrap();
        assert_eq!(plain.calendar_for("mgr-lyon-02").id(), "always");
    }

    #[test]
    fn a_team_is_everyone_whose_chain_leads_to_the_owner() {
        let dir = OwnerDirectory::from_toml("owners.toml", DIRECTORY).unwrap();
        let team =
            |id: &str| -> Vec<String> { dir.team_of(id).iter().map(|o| o.id.clone()).collect() };
        assert_eq!(team("director"), ["director", "mgr-lyon-02", "rm-ara"]);
        assert_eq!(team("rm-ara"), ["mgr-lyon-02", "rm-ara"]);
        assert_eq!(team("mgr-lyon-02"), ["mgr-lyon-02"]);
        assert!(team("ghost").is_empty());
    }

    #[test]
    fn refusals_name_owner_and_field() {
        let owner = |id: &str, extra: &str| {
            format!(
                "[[owner]]\nid = \"{id}\"\nname = \"N\"\nemail = \"{id}@example.com\"\n{extra}\n"
            )
        };
        let cases: Vec<(String, Vec<&str>)> = vec![
            (format!("default_owner = \"nobody\"\n{}", owner("a", "")), vec!["default_owner", "unknown owner \"nobody\""]),
            (format!("default_owner = \"a\"\n{}", owner("a", "escalates_to = \"ghost\"")), vec!["owner \"a\"", "escalates_to", "unknown owner \"ghost\""]),
            (format!("default_owner = \"a\"\n{}{}", owner("a", "escalates_to = \"b\""), owner("b", "escalates_to = \"a\"")), vec!["escalation chain loops"]),
            (format!("default_owner = \"a\"\n{}{}", owner("a", "stores = [\"S1\"]"), owner("b", "stores = [\"S1\"]")), vec!["owner \"b\"", "stores", "already owned by \"a\""]),
            (format!("default_owner = \"a\"\n{}{}", owner("a", ""), owner("a", "")), vec!["line 7", "duplicate owner id"]),
            ("default_owner = \"a\"\n[[owner]]\nid = \"a\"\nname = \"N\"\nemail = \"not-an-email\"\n".into(), vec!["email", "not an email address"]),
            (format!("default_owner = \"a\"\n{}", owner("a", "webhook_url = \"ftp://x\"")), vec!["webhook_url", "http://"]),
            (format!("default_owner = \"a\"\n{}", owner("a", "phone = \"1\"")), vec!["owner \"a\"", "unknown field `phone`"]),
            ("default_owner = \"a\"\n[[owner]]\nid = \"a\"\n".into(), vec!["line 2", "owner \"a\"", "missing field `name`"]),
            (format!("default_owner = \"a\"\n{}", owner("a", "calendar = \"nope\"")), vec!["owner \"a\"", "calendar", "unknown calendar \"nope\""]),
            (format!("default_owner = \"a\"\ndefault_calendar = \"nope\"\n{}", owner("a", "")), vec!["default_calendar", "unknown calendar"]),
            (format!("default_owner = \"a\"\n{}[[calendar]]\nid = \"c\"\ntimezone = \"Europe/Nowhere\"\nhours = {{ mon = \"09:00-17:00\" }}\n", owner("a", "")), vec!["line 7", "calendar \"c\"", "timezone", "unknown timezone"]),
            (format!("default_owner = \"a\"\n{}[[calendar]]\nid = \"c\"\ntimezone = \"UTC\"\nhours = {{ mon = \"9-5\" }}\n", owner("a", "")), vec!["calendar \"c\"", "hours.mon", "not a time"]),
        ];
        for (body, fragments) in cases {
            let err = OwnerDirectory::from_toml("owners.toml", &body)
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
}
