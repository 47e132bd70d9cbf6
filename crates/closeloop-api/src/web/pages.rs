//! The web app's page templates (minijinja, `config/templates/web/`) and
//! their texts per language (`i18n/{lang}.toml`), loaded and checked at
//! start-up: every language has every text of English, and every page
//! renders with sample data in every language, so a broken edit is refused
//! with its file and line before the service serves anything.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use super::format::humanize;

/// The page templates, each rendered inside `base.html`.
pub(crate) const PAGES: [&str; 9] = [
    "base.html",
    "insights.html",
    "operations.html",
    "scores.html",
    "signin.html",
    "inbox.html",
    "inbox_list.html",
    "case.html",
    "message.html",
];
/// The language every other one is checked against, and the fallback.
pub(crate) const FALLBACK: &str = "en";

/// The texts of one language.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Catalog {
    /// The language's own name, for the switch ("Français").
    pub name: String,
    /// Sentences and labels of the pages, by key.
    pub text: BTreeMap<String, String>,
    #[serde(default)]
    pub status: BTreeMap<String, String>,
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    #[serde(default)]
    pub touchpoint: BTreeMap<String, String>,
    #[serde(default)]
    pub root_cause: BTreeMap<String, String>,
    #[serde(default)]
    pub outcome: BTreeMap<String, String>,
    #[serde(default)]
    pub action: BTreeMap<String, String>,
    /// Score classes: detractor, high_effort…
    #[serde(default)]
    pub class: BTreeMap<String, String>,
    /// Notifications by event type (`case.created`, `followup`…).
    #[serde(default)]
    pub notification: BTreeMap<String, String>,
    /// Delivery statuses and channels (`sent`, `email`…).
    #[serde(default)]
    pub delivery: BTreeMap<String, String>,
}

/// The kinds of codes a catalog names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Status,
    Severity,
    Touchpoint,
    RootCause,
    Outcome,
    Action,
    Class,
    Notification,
    Delivery,
}

impl Catalog {
    /// The label of `code`, else the code as words.
    pub fn label(&self, kind: Kind, code: &str) -> String {
        let table = match kind {
            Kind::Status => &self.status,
            Kind::Severity => &self.severity,
            Kind::Touchpoint => &self.touchpoint,
            Kind::RootCause => &self.root_cause,
            Kind::Outcome => &self.outcome,
            Kind::Action => &self.action,
            Kind::Class => &self.class,
            Kind::Notification => &self.notification,
            Kind::Delivery => &self.delivery,
        };
        table.get(code).cloned().unwrap_or_else(|| humanize(code))
    }

    /// A text with its `{name}` placeholders filled.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self
            .text
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned());
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    pub fn text(&self, key: &str) -> String {
        self.fill(key, &[])
    }
}

/// Loaded, checked pages.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    catalogs: BTreeMap<String, Catalog>,
}

fn problem(file: &str, error: &minijinja::Error) -> String {
    let line = error
        .line()
        .map(|l| format!(" line {l}:"))
        .unwrap_or_default();
    format!(
        "template web/{file}:{line} {}",
        error.detail().unwrap_or(&error.to_string())
    )
}

impl Pages {
    /// Load `dir` (`config/templates/web`): the pages and `i18n/*.toml`.
    pub fn load(dir: &Path) -> Result<Pages, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for page in PAGES {
            let path = dir.join(page);
            let source = std::fs::read_to_string(&path)
                .map_err(|e| format!("template {}: {e}", path.display()))?;
            env.add_template_owned(page, source)
                .map_err(|e| problem(page, &e))?;
        }
        let catalogs = load_catalogs(&dir.join("i18n"))?;
        let pages = Pages { env, catalogs };
        for lang in pages.languages() {
            let text = &pages.catalog(&lang).text;
            for (page, context) in super::samples::contexts(&lang, text, &pages.others(&lang)) {
                pages
                    .env
                    .get_template(page)
                    .and_then(|t| t.render(&context))
                    .map_err(|e| problem(e.name().unwrap_or(page), &e))?;
            }
        }
        Ok(pages)
    }

    pub fn languages(&self) -> Vec<String> {
        self.catalogs.keys().cloned().collect()
    }

    /// The page language for a BCP 47 tag: its primary subtag when there
    /// is a catalog for it, else English.
    pub(crate) fn language(&self, locale: &str) -> String {
        let primary = locale.split(['-', '_']).next().unwrap_or("").to_lowercase();
        if self.catalogs.contains_key(&primary) {
            primary
        } else {
            FALLBACK.to_owned()
        }
    }

    pub(crate) fn catalog(&self, lang: &str) -> &Catalog {
        self.catalogs
            .get(lang)
            .or_else(|| self.catalogs.get(FALLBACK))
            .expect("the fallback catalog is checked at load")
    }

    /// The other languages, for the switch: (code, own name).
    pub(crate) fn others(&self, lang: &str) -> Vec<(String, String)> {
        self.catalogs
            .iter()
            .filter(|(code, _)| code.as_str() != lang)
            .map(|(code, c)| (code.clone(), c.name.clone()))
            .collect()
    }

    pub(crate) fn render(
        &self,
        page: &str,
        context: &impl Serialize,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(page)?.render(context)
    }
}

fn load_catalogs(dir: &Path) -> Result<BTreeMap<String, Catalog>, String> {
    let mut catalogs = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let lang = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("web/i18n/{name}: {e}"))?;
        // toml's message names the line and column.
        let catalog: Catalog =
            toml::from_str(&text).map_err(|e| format!("web/i18n/{name}: {e}"))?;
        catalogs.insert(lang, catalog);
    }
    let Some(fallback) = catalogs.get(FALLBACK) else {
        return Err(format!(
            "web/i18n/{FALLBACK}.toml: the fallback language is missing"
        ));
    };
    for (lang, catalog) in &catalogs {
        let missing: Vec<&str> = fallback
            .text
            .keys()
            .filter(|key| !catalog.text.contains_key(*key))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "web/i18n/{lang}.toml: [text] misses {} (every text of {FALLBACK}.toml is needed)",
                missing.join(", ")
            ));
        }
    }
    Ok(catalogs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates/web")
    }

    /// A copy of the shipped pages with `edit` applied to one file.
    fn edited(file: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("i18n")).unwrap();
        for name in PAGES.iter().map(|p| p.to_string()).chain(
            ["i18n/en.toml", "i18n/fr.toml"]
                .iter()
                .map(|p| p.to_string()),
        ) {
            let text = std::fs::read_to_string(shipped().join(&name)).unwrap();
            let text = if name == file { edit(text) } else { text };
            std::fs::write(dir.path().join(&name), text).unwrap();
        }
        dir
    }

    #[test]
    fn shipped_pages_load_in_english_and_french() {
        let pages = Pages::load(&shipped()).unwrap();
        assert_eq!(pages.languages(), ["en", "fr"]);
        assert_eq!(pages.language("fr-FR"), "fr");
        assert_eq!(pages.language("de-DE"), "en");
        let fr = pages.catalog("fr");
        assert_eq!(
            fr.label(Kind::RootCause, "delivery_delay"),
            "Retard de livraison"
        );
        assert_eq!(fr.label(Kind::RootCause, "new_cause"), "New cause");
        assert_eq!(
            fr.fill("clock_due", &[("stage", "Résoudre"), ("left", "2 h")]),
            "Résoudre sous 2 h"
        );
    }

    #[test]
    fn broken_pages_and_texts_are_refused_by_file_and_line() {
        type Edit = fn(String) -> String;
        let table: [(&str, Edit, &str); 4] = [
            (
                "case.html",
                |t| t.replacen("{% block main %}", "{% block main %}{% if %}", 1),
                "web/case.html: line",
            ),
            (
                "inbox.html",
                |t| t.replacen("{{ t.inbox_title }}", "{{ t.no_such_text }}", 1),
                "web/inbox.html",
            ),
            (
                "i18n/fr.toml",
                |t| t.replacen("inbox_title = ", "# inbox_title = ", 1),
                "web/i18n/fr.toml: [text] misses inbox_title",
            ),
            (
                "i18n/en.toml",
                |t| t.replacen("[status]", "[status\n", 1),
                "web/i18n/en.toml: TOML parse error at line",
            ),
        ];
        for (file, edit, expected) in table {
            let dir = edited(file, edit);
            let error = Pages::load(dir.path()).unwrap_err();
            assert!(error.contains(expected), "{file}: {error}");
        }
    }
}
