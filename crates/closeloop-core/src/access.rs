//! Access control, the pure part: roles, what each may do, the scope of a
//! manager, and how API tokens are kept (only a hash is stored).
//!
//! - `admin`: everything.
//! - `ops`: rules, silences, deliveries, endpoints, event intake, metrics and
//!   every case.
//! - `manager`: the cases of their scope only: cases they own or that belong
//!   to their stores, and those of everyone under them in the escalation
//!   tree (a regional manager sees their region's stores).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::owners::OwnerDirectory;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Ops,
    Manager,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Ops, Role::Manager];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Manager => "manager",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether this role may use `area` at all (a manager's cases are
    /// further limited to their [`Scope`]).
    pub fn may(self, area: Area) -> bool {
        match area {
            Area::Cases => true,
            Area::Operations => matches!(self, Role::Admin | Role::Ops),
        }
    }
}

/// The parts of the API, by who may use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Cases, their actions and watchers, the root-cause list.
    Cases,
    /// Rules, silences, deliveries, endpoints, event intake, metrics.
    Operations,
}

/// The cases a manager may see and act on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    pub owners: BTreeSet<String>,
    pub stores: BTreeSet<String>,
    pub regions: BTreeSet<String>,
}

impl Scope {
    /// The scope of `owner_id`: their team (themselves and everyone whose
    /// escalation chain leads to them), with the team's stores and regions.
    pub fn of(directory: &OwnerDirectory, owner_id: &str) -> Scope {
        let mut scope = Scope::default();
        for owner in directory.team_of(owner_id) {
            scope.owners.insert(owner.id.clone());
            scope.stores.extend(owner.stores.iter().cloned());
            scope.regions.extend(owner.regions.iter().cloned());
        }
        scope
    }

    /// Whether a case with this owner, store and region is in scope.
    pub fn covers(&self, owner_id: &str, store: Option<&str>, region: Option<&str>) -> bool {
        self.owners.contains(owner_id)
            || store.is_some_and(|s| self.stores.contains(s))
            || region.is_some_and(|r| self.regions.contains(r))
    }
}

/// The SHA-256 of a token: what is stored and looked up. Tokens are long
/// random strings, so a fast hash is enough (no password stretching needed).
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Who may be added as a watcher of a case (who then receives the
/// customer's name and the case link): a person of the owner directory, or
/// an address on one of the organisation's `domains` (`cases.watcher_domains`,
/// matched case-insensitively on the part after `@`). Anything else would let
/// any manager send customer data outside.
pub fn watcher_allowed(email: &str, in_directory: bool, domains: &[String]) -> bool {
    if in_directory {
        return true;
    }
    let Some((_, domain)) = email.trim().rsplit_once('@') else {
        return false;
    };
    domains.iter().any(|allowed| {
        allowed
            .trim()
            .trim_start_matches('@')
            .eq_ignore_ascii_case(domain)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECTORY: &str = r#"
default_owner = "director"

[[owner]]
id = "director"
name = "D"
email = "d@example.com"

[[owner]]
id = "rm-ara"
name = "R"
email = "r@example.com"
escalates_to = "director"
regions = ["FR-ARA"]

[[owner]]
id = "mgr-lyon-02"
name = "C"
email = "c@example.com"
escalates_to = "rm-ara"
stores = ["LYON-02"]

[[owner]]
id = "mgr-paris"
name = "P"
email = "p@example.com"
escalates_to = "director"
stores = ["PARIS-01"]
"#;

    #[test]
    fn roles_table() {
        let table = [
            (Role::Admin, Area::Operations, true),
            (Role::Admin, Area::Cases, true),
            (Role::Ops, Area::Operations, true),
            (Role::Ops, Area::Cases, true),
            (Role::Manager, Area::Operations, false),
            (Role::Manager, Area::Cases, true),
        ];
        for (role, area, allowed) in table {
            assert_eq!(role.may(area), allowed, "{role:?} {area:?}");
        }
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn scope_table() {
        let dir = OwnerDirectory::from_toml("owners.toml", DIRECTORY).unwrap();
        // (viewer, case owner, store, region, visible?)
        let table = [
            (
                "mgr-lyon-02",
                "mgr-lyon-02",
                Some("LYON-02"),
                Some("FR-ARA"),
                true,
            ),
            (
                "mgr-lyon-02",
                "mgr-paris",
                Some("PARIS-01"),
                Some("FR-IDF"),
                false,
            ),
            // Routed by region to the regional manager: not the store manager's.
            (
                "mgr-lyon-02",
                "rm-ara",
                Some("LYON-09"),
                Some("FR-ARA"),
                false,
            ),
            // Reassigned away from the store's manager: still their store.
            (
                "mgr-lyon-02",
                "rm-ara",
                Some("LYON-02"),
                Some("FR-ARA"),
                true,
            ),
            (
                "rm-ara",
                "mgr-lyon-02",
                Some("LYON-02"),
                Some("FR-ARA"),
                true,
            ),
            ("rm-ara", "rm-ara", Some("LYON-09"), Some("FR-ARA"), true),
            (
                "rm-ara",
                "mgr-paris",
                Some("PARIS-01"),
                Some("FR-IDF"),
                false,
            ),
            ("director", "mgr-paris", Some("PARIS-01"), None, true),
            ("director", "default", None, None, false),
            ("ghost", "mgr-lyon-02", Some("LYON-02"), None, false),
        ];
        for (viewer, owner, store, region, visible) in table {
            let scope = Scope::of(&dir, viewer);
            assert_eq!(
                scope.covers(owner, store, region),
                visible,
                "{viewer} looking at a case of {owner} {store:?} {region:?}"
            );
        }
    }

    #[test]
    fn token_hash_is_sha256() {
        assert_eq!(
            token_hash("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn watchers_from_the_directory_or_allowed_domains_only() {
        let domains = vec!["closeloop.local".to_owned(), "@Example.COM".to_owned()];
        let cases = [
            ("quality@closeloop.local", false, true),
            ("QUALITY@CLOSELOOP.LOCAL", false, true),
            ("someone@example.com", false, true),
            ("attacker@evil.example", false, false),
            ("attacker@closeloop.local.evil.example", false, false),
            ("partner@evil.example", true, true),
            ("no-at-sign", false, false),
        ];
        for (email, in_directory, allowed) in cases {
            assert_eq!(
                watcher_allowed(email, in_directory, &domains),
                allowed,
                "{email}"
            );
        }
        assert!(!watcher_allowed("a@closeloop.local", false, &[]));
    }
}
