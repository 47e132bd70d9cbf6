//! Email templates (minijinja), one folder per language, editable by ops
//! without rebuilding. See `config/templates/README.md` for the variables.
//!
//! Templates are checked at load: each is compiled and rendered against a
//! sample case in strict mode, so a syntax error or an unknown variable
//! stops start-up naming the file and line, instead of failing at 3 a.m.

use std::collections::BTreeMap;
use std::path::Path;

use closeloop_core::parse_event;
use closeloop_wire::{CaseV1, FollowupItem, FollowupV1, Notice};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{NotifyError, Result};

/// The parts of one alert email.
const PARTS: [&str; 15] = [
    "alert.subject.txt",
    "alert.txt",
    "alert.html",
    "digest.subject.txt",
    "digest.txt",
    "digest.html",
    "followup.subject.txt",
    "followup.txt",
    "followup.html",
    "signin.subject.txt",
    "signin.txt",
    "signin.html",
    "report.subject.txt",
    "report.txt",
    "report.html",
];
/// The folder of the web app's page templates, beside the language folders.
pub const WEB_FOLDER: &str = "web";
/// The language used when the owner's has no templates.
const FALLBACK: &str = "en";

/// Loaded, checked templates.
#[derive(Debug)]
pub struct EmailTemplates {
    env: Environment<'static>,
    languages: Vec<String>,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Serialize)]
struct CustomerContext<'a> {
    id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
}

#[derive(Serialize)]
struct AlertContext<'a> {
    severity: &'a str,
    severity_upper: String,
    scores: String,
    nps: Option<u8>,
    csat: Option<u8>,
    ces: Option<u8>,
    /// The scores' classes, from the core (`detractor`, `high_effort`...),
    /// for templates to name in their language.
    nps_class: Option<&'static str>,
    csat_class: Option<&'static str>,
    ces_class: Option<&'static str>,
    /// The customer as people see them (name, else id).
    customer_name: &'a str,
    rules: &'a [String],
    store: Option<&'a str>,
    region: Option<&'a str>,
    touchpoint: &'a str,
    channel: Option<&'a str>,
    answered_at: String,
    comment: Option<&'a str>,
    customer: CustomerContext<'a>,
    order_id: Option<String>,
    attributes: BTreeMap<&'a str, String>,
    case_url: &'a str,
    case_id: String,
    owner_name: &'a str,
    /// One-click action links (empty when links are not configured).
    actions: &'a [crate::links::ActionLink],
}

#[derive(Serialize)]
struct DigestItem<'a> {
    severity: &'a str,
    severity_upper: String,
    scores: String,
    store: Option<&'a str>,
    touchpoint: &'a str,
    customer_name: &'a str,
    comment: Option<&'a str>,
    case_url: &'a str,
    opened_at: String,
}

#[derive(Serialize)]
struct DigestContext<'a> {
    count: usize,
    owner_name: &'a str,
    cases: Vec<DigestItem<'a>>,
}

#[derive(Serialize)]
struct FollowupLine<'a> {
    /// reminder, escalation, overdue, acknowledged, resolved.
    notice: &'a str,
    /// acknowledge, first_contact, resolve (reminders and escalations).
    stage: Option<&'a str>,
    due_at: Option<String>,
    actor: Option<&'a str>,
    severity_upper: String,
    scores: String,
    store: Option<&'a str>,
    touchpoint: &'a str,
    owner_name: &'a str,
    customer_name: &'a str,
    status: &'a str,
    case_url: &'a str,
}

#[derive(Serialize)]
struct FollowupContext<'a> {
    recipient_name: &'a str,
    count: usize,
    items: Vec<FollowupLine<'a>>,
}

/// "NPS 3, CES 2": the scores present, in a fixed order.
pub fn scores_text(case: &CaseV1) -> String {
    case.event.scores.summary()
}

fn context<'a>(
    case: &'a CaseV1,
    actions: &'a [crate::links::ActionLink],
    language: &str,
) -> AlertContext<'a> {
    let event = &case.event;
    AlertContext {
        severity: case.severity.as_str(),
        severity_upper: case.severity.as_str().to_uppercase(),
        scores: scores_text(case),
        nps: event.scores.nps.map(|s| s.value()),
        csat: event.scores.csat.map(|s| s.value()),
        ces: event.scores.ces.map(|s| s.value()),
        nps_class: event.scores.nps.map(|s| s.class().as_str()),
        csat_class: event.scores.csat.map(|s| s.class().as_str()),
        ces_class: event.scores.ces.map(|s| s.class().as_str()),
        customer_name: event.customer.display_name(),
        rules: &case.rule_ids,
        store: event.location.store_id.as_deref(),
        region: event.location.region.as_deref(),
        touchpoint: &event.journey.touchpoint,
        channel: event.journey.channel.as_deref(),
        answered_at: answered_at(&event.occurred_at, language),
        comment: event.comment.as_deref().filter(|c| !c.trim().is_empty()),
        customer: CustomerContext {
            id: &event.customer.id,
            name: event.customer.name.as_deref(),
            email: event.customer.email.as_deref(),
            phone: event.customer.phone.as_deref(),
        },
        order_id: event.attributes.get("order_id").map(ToString::to_string),
        attributes: event
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect(),
        case_url: &case.url,
        case_id: case.id.to_string(),
        owner_name: &case.owner_name,
        actions,
    }
}

/// When the customer answered, as a person of `language` reads it, in the
/// answer's own time (the store's, for store surveys): "20/11/2026 10:15"
/// in French, "20 Nov 2026, 10:15" in English.
fn answered_at(at: &chrono::DateTime<chrono::FixedOffset>, language: &str) -> String {
    match language {
        "fr" => at.format("%d/%m/%Y %H:%M").to_string(),
        _ => at.format("%-d %b %Y, %H:%M").to_string(),
    }
}

/// A deadline as the store's people read it: in the store's time zone
/// (UTC, said so, when the message names none or an unknown one), in the
/// language's date order.
fn due_at(at: chrono::DateTime<chrono::Utc>, timezone: Option<&str>, language: &str) -> String {
    let zone: Option<chrono_tz::Tz> = timezone.and_then(|tz| tz.parse().ok());
    let Some(zone) = zone else {
        return match language {
            "fr" => at.format("%d/%m/%Y %H:%M UTC").to_string(),
            _ => at.format("%-d %b %Y, %H:%M UTC").to_string(),
        };
    };
    let local = at.with_timezone(&zone);
    match language {
        "fr" => local.format("%d/%m/%Y à %H:%M").to_string(),
        _ => local.format("%-d %b %Y, %H:%M").to_string(),
    }
}

fn template_error(dir: &Path, error: &minijinja::Error) -> NotifyError {
    let file = error
        .name()
        .map(|n| dir.join(n).display().to_string())
        .unwrap_or_else(|| dir.display().to_string());
    let line = error
        .line()
        .map(|l| format!(" line {l}:"))
        .unwrap_or_default();
    NotifyError::Config(format!(
        "template {file}:{line} {}",
        error.detail().unwrap_or(&error.to_string())
    ))
}

impl EmailTemplates {
    /// Load every language folder of `dir`. English is required.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = |m: String| NotifyError::Config(format!("templates {}: {m}", dir.display()));
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut languages = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| config(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| config(e.to_string()))?;
            let language = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() || language == WEB_FOLDER {
                continue;
            }
            for part in PARTS {
                let path = entry.path().join(part);
                let source = std::fs::read_to_string(&path).map_err(|e| {
                    NotifyError::Config(format!("template {}: {e}", path.display()))
                })?;
                env.add_template_owned(format!("{language}/{part}"), source)
                    .map_err(|e| template_error(dir, &e))?;
            }
            languages.push(language);
        }
        if !languages.iter().any(|l| l == FALLBACK) {
            return Err(config(format!(
                "the fallback language folder `{FALLBACK}` is missing"
            )));
        }
        languages.sort();
        let templates = EmailTemplates { env, languages };
        // Render every language once: unknown variables and filters surface now.
        let sample = sample_case();
        for language in &templates.languages {
            templates
                .render_language(language, &sample, &sample_actions())
                .map_err(|e| template_error(dir, &e))?;
            templates
                .render_digest_language(language, std::slice::from_ref(&sample))
                .map_err(|e| template_error(dir, &e))?;
            templates
                .render_sign_in_language(language, &sample_sign_in())
                .map_err(|e| template_error(dir, &e))?;
            templates
                .render_report_language(language, &sample_report())
                .map_err(|e| template_error(dir, &e))?;
            for followup in sample_followups(&sample) {
                templates
                    .render_followup_language(language, &followup)
                    .map_err(|e| template_error(dir, &e))?;
            }
        }
        Ok(templates)
    }

    /// The languages available, sorted.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// The template language for `locale`: its primary subtag (`fr-FR` →
    /// `fr`) when there are templates for it, else English.
    fn language(&self, locale: &str) -> String {
        let primary = locale.split('-').next().unwrap_or(FALLBACK).to_lowercase();
        if self.languages.contains(&primary) {
            primary
        } else {
            FALLBACK.to_owned()
        }
    }

    /// Render the alert for `case` in its owner's language.
    pub fn render(
        &self,
        case: &CaseV1,
        actions: &[crate::links::ActionLink],
    ) -> Result<RenderedEmail> {
        self.render_language(&self.language(&case.owner_locale), case, actions)
            .map_err(|e| NotifyError::Permanent(format!("template rendering failed: {e}")))
    }

    /// Render a digest of `cases` in `locale`'s language.
    pub fn render_digest(&self, locale: &str, cases: &[CaseV1]) -> Result<RenderedEmail> {
        self.render_digest_language(&self.language(locale), cases)
            .map_err(|e| NotifyError::Permanent(format!("template rendering failed: {e}")))
    }

    /// Render a follow-up email (reminders, escalations, watcher notices).
    pub fn render_followup(&self, payload: &FollowupV1) -> Result<RenderedEmail> {
        self.render_followup_language(&self.language(&payload.locale), payload)
            .map_err(|e| NotifyError::Permanent(format!("template rendering failed: {e}")))
    }

    /// Render a sign-in email.
    pub fn render_sign_in(&self, payload: &closeloop_wire::SignInV1) -> Result<RenderedEmail> {
        self.render_sign_in_language(&self.language(&payload.locale), payload)
            .map_err(|e| NotifyError::Permanent(format!("template rendering failed: {e}")))
    }

    fn render_sign_in_language(
        &self,
        language: &str,
        payload: &closeloop_wire::SignInV1,
    ) -> std::result::Result<RenderedEmail, minijinja::Error> {
        let ctx = SignInContext {
            recipient_name: &payload.recipient_name,
            url: &payload.url,
            valid_minutes: payload.valid_minutes,
        };
        self.render_parts(language, "signin", &ctx)
    }

    /// Render a weekly report.
    pub fn render_report(&self, report: &closeloop_wire::WeeklyReportV1) -> Result<RenderedEmail> {
        self.render_report_language(&self.language(&report.locale), report)
            .map_err(|e| NotifyError::Permanent(format!("template rendering failed: {e}")))
    }

    fn render_report_language(
        &self,
        language: &str,
        report: &closeloop_wire::WeeklyReportV1,
    ) -> std::result::Result<RenderedEmail, minijinja::Error> {
        let ctx = crate::report::context(report, language);
        self.render_parts(language, "report", &ctx)
    }

    fn render_followup_language(
        &self,
        language: &str,
        payload: &FollowupV1,
    ) -> std::result::Result<RenderedEmail, minijinja::Error> {
        let items = payload
            .items
            .iter()
            .map(|item| {
                let case = &item.case;
                FollowupLine {
                    notice: notice_name(item.notice),
                    stage: item.stage.map(|s| s.as_str()),
                    due_at: item
                        .due_at
                        .map(|d| due_at(d, item.timezone.as_deref(), language)),
                    actor: item.actor.as_deref(),
                    severity_upper: case.severity.as_str().to_uppercase(),
                    scores: scores_text(case),
                    store: case.event.location.store_id.as_deref(),
                    touchpoint: &case.event.journey.touchpoint,
                    owner_name: &case.owner_name,
                    customer_name: case.event.customer.display_name(),
                    status: case.status.as_str(),
                    case_url: &case.url,
                }
            })
            .collect::<Vec<_>>();
        let ctx = FollowupContext {
            recipient_name: &payload.recipient_name,
            count: items.len(),
            items,
        };
        self.render_parts(language, "followup", &ctx)
    }

    /// Render the three parts of email `kind` (`alert`, `digest`) with `ctx`.
    fn render_parts(
        &self,
        language: &str,
        kind: &str,
        ctx: &impl Serialize,
    ) -> std::result::Result<RenderedEmail, minijinja::Error> {
        let render = |part: &str| {
            self.env
                .get_template(&format!("{language}/{kind}.{part}"))?
                .render(ctx)
        };
        Ok(RenderedEmail {
            // A subject is one line, whatever the template's trailing newline.
            subject: render("subject.txt")?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            text: render("txt")?,
            html: render("html")?,
        })
    }

    fn render_digest_language(
        &self,
        language: &str,
        cases: &[CaseV1],
    ) -> std::result::Result<RenderedEmail, minijinja::Error> {
        let items: Vec<DigestItem<'_>> = cases
            .iter()
            .map(|case| DigestItem {
                severity: case.severity.as_str(),
                severity_upper: case.severity.as_str().to_uppercase(),
                scores: scores_text(case),
                store: case.event.location.store_id.as_deref(),
                touchpoint: &case.event.journey.touchpoint,
                customer_name: case.event.customer.display_name(),
                comment: case
                    .event
                    .comment
                    .as_deref()
                    .filter(|c| !c.trim().is_empty()),
                case_url: &case.url,
                // In the offset the customer answered in (the store's).
                opened_at: answered_at(
                    &case
                        .created_at
                        .with_timezone(case.event.occurred_at.offset()),
                    language,
                ),
            })
            .collect();
        let ctx = DigestContext {
            count: items.len(),
            owner_name: cases.first().map_or("", |c| c.owner_name.as_str()),
            cases: items,
        };
        self.render_parts(language, "digest", &ctx)
    }

    fn render_language(
        &self,
        language: &str,
        case: &CaseV1,
        actions: &[crate::links::ActionLink],
    ) -> std::result::Result<RenderedEmail, minijinja::Error> {
        let ctx = context(case, actions, language);
        self.render_parts(language, "alert", &ctx)
    }
}

#[derive(Serialize)]
struct SignInContext<'a> {
    recipient_name: &'a str,
    url: &'a str,
    valid_minutes: u32,
}

fn sample_report() -> closeloop_wire::WeeklyReportV1 {
    use closeloop_wire::{AttentionV1, StoreAttentionV1};
    closeloop_wire::WeeklyReportV1 {
        recipient_name: "Julien Faure".into(),
        locale: "en".into(),
        week: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default(),
        responses: 120,
        nps: Some(31.5),
        nps_before: Some(40.0),
        opened: 18,
        resolved: 15,
        overdue: 2,
        ack_within_sla: Some(0.875),
        resolve_within_sla: None,
        stores: vec![StoreAttentionV1 {
            store: "LYON-02".into(),
            reasons: vec![
                AttentionV1::Overdue { cases: 2 },
                AttentionV1::NpsFell {
                    from: 42.0,
                    to: 20.5,
                },
                AttentionV1::RootCause {
                    cause: "delivery_delay".into(),
                    cases: 4,
                },
            ],
            url: "https://closeloop.example.com/insights?by=store&store=LYON-02".into(),
        }],
        dashboard_url: "https://closeloop.example.com/insights".into(),
    }
}

fn sample_sign_in() -> closeloop_wire::SignInV1 {
    closeloop_wire::SignInV1 {
        recipient_name: "Claire Martin".into(),
        locale: "en".into(),
        url: "https://closeloop.example.com/signin/sample".into(),
        expires_at: chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default(),
        valid_minutes: 15,
    }
}

fn notice_name(notice: Notice) -> &'static str {
    match notice {
        Notice::Reminder => "reminder",
        Notice::Escalation => "escalation",
        Notice::Overdue => "overdue",
        Notice::Acknowledged => "acknowledged",
        Notice::Resolved => "resolved",
    }
}

/// One follow-up of each notice alone, and a summary of all, to exercise
/// templates at load.
fn sample_followups(case: &CaseV1) -> Vec<FollowupV1> {
    let item = |notice: Notice| FollowupItem {
        notice,
        stage: Some(closeloop_core::sla::Stage::FirstContact),
        due_at: Some(case.created_at),
        actor: Some("owner".into()),
        timezone: Some("Europe/Paris".into()),
        case: case.clone(),
    };
    let all = [
        Notice::Reminder,
        Notice::Escalation,
        Notice::Overdue,
        Notice::Acknowledged,
        Notice::Resolved,
    ];
    let payload = |items: Vec<FollowupItem>| FollowupV1 {
        recipient_name: "Recipient".into(),
        locale: "en".into(),
        built_at: case.created_at,
        items,
    };
    all.iter()
        .map(|&n| payload(vec![item(n)]))
        .chain([payload(all.iter().map(|&n| item(n)).collect())])
        .collect()
}

/// Action links like real ones, to exercise templates at load.
fn sample_actions() -> Vec<crate::links::ActionLink> {
    [
        "acknowledge",
        "reached",
        "voicemail",
        "no_answer",
        "resolve",
        "not_mine",
    ]
    .into_iter()
    .map(|kind| crate::links::ActionLink {
        kind,
        cause: (kind == "resolve").then(|| "delivery_delay".to_owned()),
        label: kind.to_owned(),
        url: format!("https://closeloop.example/a/{kind}"),
    })
    .collect()
}

/// A case with every optional field set, to exercise templates at load.
fn sample_case() -> CaseV1 {
    let event = parse_event(
        br#"{"event_id":"sample","occurred_at":"2026-11-20T10:15:00+01:00","source":"sample",
            "customer":{"id":"C-1","name":"Julie Moreau","email":"julie@example.org","phone":"+33 6 12 34 56 78"},
            "journey":{"touchpoint":"delivery","channel":"web"},
            "location":{"store_id":"LYON-02","region":"FR-ARA","country":"FR"},
            "scores":{"nps":3,"csat":2,"ces":2},"comment":"sample","attributes":{"order_id":"CMD-1"}}"#,
        1 << 16,
    )
    .expect("the sample event is valid");
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:16:00Z")
        .expect("valid")
        .with_timezone(&chrono::Utc);
    CaseV1 {
        id: uuid::Uuid::nil(),
        url: "https://closeloop.example/cases/sample".into(),
        version: 1,
        status: closeloop_core::Status::Open,
        severity: closeloop_core::Severity::High,
        owner_id: "owner".into(),
        owner_name: "Owner".into(),
        owner_locale: "en".into(),
        route: "store".into(),
        rule_ids: vec!["rule".into()],
        channels: vec!["email".into()],
        event_id: "sample".into(),
        created_at: now,
        updated_at: now,
        acknowledged_at: None,
        first_contact_at: None,
        resolved_at: None,
        closed_at: None,
        resolved_by: None,
        root_cause: None,
        contact_attempts: 0,
        event,
        sla: None,
        recovered_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> EmailTemplates {
        EmailTemplates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates"))
            .unwrap()
    }

    fn case(locale: &str) -> CaseV1 {
        let mut case = sample_case();
        case.owner_locale = locale.into();
        case.event.comment = Some("Livraison avec <trois> jours de retard".into());
        case.event.scores.csat = None;
        case.rule_ids = vec!["nps-detractor".into(), "ces-high-effort".into()];
        case
    }

    #[test]
    fn followups_name_the_notice_alone_and_count_a_summary() {
        let templates = shipped();
        let samples = sample_followups(&case("en"));
        // (sample index, locale, expected subject)
        let table = [
            (
                0,
                "en",
                "Reminder: first contact due by 20 Nov 2026, 11:16 (LYON-02, Julie Moreau)",
            ),
            (
                1,
                "en",
                "Escalated to you: first contact missed for Owner's case (LYON-02)",
            ),
            (
                2,
                "en",
                "Overdue: first contact missed (LYON-02, Julie Moreau)",
            ),
            (3, "en", "Acknowledged by owner (LYON-02, Julie Moreau)"),
            (4, "en", "Resolved by owner (LYON-02, Julie Moreau)"),
            (5, "en", "5 cases need your attention"),
            (
                0,
                "fr-FR",
                "Rappel : premier contact, échéance 20/11/2026 à 11:16 (LYON-02, Julie Moreau)",
            ),
            (5, "fr-FR", "5 dossiers demandent votre attention"),
        ];
        for (index, locale, subject) in table {
            let mut payload = samples[index].clone();
            payload.locale = locale.into();
            let email = templates.render_followup(&payload).unwrap();
            assert_eq!(email.subject, subject);
            assert_eq!(
                email
                    .text
                    .matches("https://closeloop.example/cases/sample")
                    .count(),
                payload.items.len(),
                "one link per case:\n{}",
                email.text
            );
        }
    }

    #[test]
    fn shipped_templates_render_in_english_and_french() {
        let templates = shipped();
        assert_eq!(templates.languages(), ["en", "fr"]);
        let en = templates.render(&case("en-GB"), &[]).unwrap();
        assert_eq!(
            en.subject,
            "[HIGH] Julie Moreau · NPS 3, CES 2 | LYON-02 | delivery"
        );
        for expected in [
            "Julie Moreau is waiting for your call back",
            "NPS 3 (detractor), CES 2 (high effort)",
            "20 Nov 2026, 10:15",
            "Livraison avec <trois> jours de retard",
            "Julie Moreau",
            "julie@example.org",
            "+33 6 12 34 56 78",
            "CMD-1",
            "https://closeloop.example/cases/sample",
            "LYON-02 (FR-ARA)",
            "delivery (web)",
        ] {
            assert!(
                en.text.contains(expected),
                "text lacks {expected}:\n{}",
                en.text
            );
        }
        assert!(
            en.html.contains("&lt;trois&gt;") && !en.html.contains("<trois>"),
            "html escapes"
        );
        let fr = templates.render(&case("fr-FR"), &[]).unwrap();
        assert!(
            fr.text.starts_with("Julie Moreau attend votre rappel"),
            "{}",
            fr.text
        );
        assert!(fr.html.contains("Ouvrir le dossier"));
        assert_eq!(
            fr.subject,
            "[HAUTE] Julie Moreau · NPS 3, CES 2 | LYON-02 | livraison"
        );
        // French all through: no code of the contract shown as is.
        for expected in [
            "haute",
            "livraison (web)",
            "NPS 3 (détracteur), CES 2 (effort élevé)",
            "20/11/2026 10:15",
        ] {
            assert!(
                fr.text.contains(expected),
                "text lacks {expected}:\n{}",
                fr.text
            );
        }
        let with_links = templates.render(&case("fr-FR"), &sample_actions()).unwrap();
        for (expected, code) in [
            ("Résolu : retard de livraison", "delivery_delay"),
            ("Pas mon magasin", "not_mine"),
        ] {
            assert!(with_links.html.contains(expected), "{}", with_links.html);
            assert!(
                !with_links.html.contains(&format!(">{code}")),
                "{code} shown"
            );
        }
        let fallback = templates.render(&case("de-DE"), &[]).unwrap();
        assert_eq!(
            fallback.text, en.text,
            "unknown languages fall back to English"
        );
    }

    /// Every email kind rendered, HTML and text, French and English, into
    /// `target/rendered-emails/` (ignored), for people to look at: `make
    /// emails` screenshots them at phone and desktop width.
    #[test]
    fn rendered_emails_are_written_for_review() {
        let templates = shipped();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/rendered-emails");
        std::fs::create_dir_all(&dir).unwrap();
        for locale in ["fr-FR", "en"] {
            let language = &locale[..2];
            let alert = templates.render(&case(locale), &sample_actions()).unwrap();
            let digest = templates
                .render_digest(locale, &[case(locale), case(locale)])
                .unwrap();
            let mut followup = sample_followups(&case(locale))[5].clone();
            followup.locale = locale.into();
            let followup = templates.render_followup(&followup).unwrap();
            let sign_in = templates
                .render_sign_in(&closeloop_wire::SignInV1 {
                    locale: locale.into(),
                    ..sample_sign_in()
                })
                .unwrap();
            assert!(sign_in.text.contains("/signin/sample"));
            let report = templates
                .render_report(&closeloop_wire::WeeklyReportV1 {
                    locale: locale.into(),
                    ..sample_report()
                })
                .unwrap();
            let nps = if language == "fr" { "31,5" } else { "31.5" };
            assert!(
                report.text.contains("LYON-02") && report.text.contains(nps),
                "{}",
                report.text
            );
            for (kind, email) in [
                ("alert", alert),
                ("digest", digest),
                ("followup", followup),
                ("signin", sign_in),
                ("report", report),
            ] {
                assert!(email.html.starts_with("<!doctype html>"), "{kind}");
                let base = dir.join(format!("{kind}-{language}"));
                std::fs::write(base.with_extension("html"), &email.html).unwrap();
                let text = format!("Subject: {}\n\n{}", email.subject, email.text);
                if language == "fr" {
                    // Labels in French, not the contract's codes.
                    for code in ["[HIGH]", "| delivery", "| open", "high_effort", "UTC"] {
                        assert!(!text.contains(code), "{kind}: {code} in\n{text}");
                    }
                }
                std::fs::write(base.with_extension("txt"), text).unwrap();
            }
        }
    }

    #[test]
    fn deadlines_read_in_the_store_time_zone() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T08:40:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let table = [
            (Some("Europe/Paris"), "fr", "01/12/2026 à 09:40"),
            (Some("Europe/Paris"), "en", "1 Dec 2026, 09:40"),
            (Some("America/New_York"), "en", "1 Dec 2026, 03:40"),
            (None, "fr", "01/12/2026 08:40 UTC"),
            (Some("Mars/Olympus"), "en", "1 Dec 2026, 08:40 UTC"),
        ];
        for (zone, language, expected) in table {
            assert_eq!(due_at(at, zone, language), expected, "{zone:?} {language}");
        }
    }

    #[test]
    fn digests_list_every_case() {
        let templates = shipped();
        let mut second = case("fr-FR");
        second.event.location.store_id = Some("NICE-01".into());
        second.url = "https://closeloop.example/cases/second".into();
        let email = templates
            .render_digest("fr-FR", &[case("fr-FR"), second])
            .unwrap();
        assert_eq!(email.subject, "2 clients à rappeler");
        assert!(email.text.contains("LYON-02") && email.text.contains("NICE-01"));
        assert!(email
            .text
            .contains("https://closeloop.example/cases/second"));
        let one = templates.render_digest("en", &[case("en")]).unwrap();
        assert_eq!(one.subject, "1 new customer to call back");
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let templates = shipped();
        let mut bare = case("en");
        bare.event.customer.phone = None;
        bare.event.customer.email = None;
        bare.event.comment = None;
        bare.event.location.store_id = None;
        let email = templates.render(&bare, &[]).unwrap();
        assert!(!email.text.contains("Phone") && !email.text.contains("wrote"));
        assert!(email.subject.contains("no store"));
    }

    #[test]
    fn bad_templates_are_refused_naming_file_and_line() {
        let write = |files: &[(&str, &str)]| {
            let dir = tempfile::TempDir::new().unwrap();
            std::fs::create_dir(dir.path().join("en")).unwrap();
            for part in PARTS {
                std::fs::write(dir.path().join("en").join(part), "ok").unwrap();
            }
            for (name, body) in files {
                std::fs::write(dir.path().join("en").join(name), body).unwrap();
            }
            dir
        };
        let cases = [
            (
                vec![("alert.txt", "line one\n{% if %}\n")],
                vec!["en/alert.txt", "line 2"],
            ),
            (
                vec![("alert.html", "a\nb\n{{ custmer.name }}\n")],
                vec!["en/alert.html", "line 3", "undefined"],
            ),
            (
                vec![("alert.subject.txt", "{{ scores | nosuchfilter }}")],
                vec!["en/alert.subject.txt", "line 1"],
            ),
        ];
        for (files, fragments) in cases {
            let dir = write(&files);
            let err = EmailTemplates::load(dir.path()).unwrap_err().to_string();
            for fragment in fragments {
                assert!(err.contains(fragment), "`{fragment}` missing from `{err}`");
            }
        }
        let dir = write(&[]);
        std::fs::remove_file(dir.path().join("en/alert.html")).unwrap();
        assert!(EmailTemplates::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("alert.html"));
        let empty = tempfile::TempDir::new().unwrap();
        assert!(EmailTemplates::load(empty.path())
            .unwrap_err()
            .to_string()
            .contains("fallback language"));
    }
}
