//! Alert emails over SMTP (lettre).
//!
//! The email is rendered from the case as frozen in the outbox, so a retry
//! sends the same content. Its `Message-ID` derives from the delivery id,
//! so a mail system can drop the rare duplicate of an at-least-once send.

use std::fmt::Write as _;
use std::time::Duration;

use closeloop_store::CaseView;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{NotifyError, Result};

/// How to reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP (local relays, tests).
    None,
    /// Upgrade with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `closeloop <alerts@example.com>`.
    pub from: String,
    pub timeout: Duration,
}

/// Sends alert emails.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl EmailSender {
    pub fn new(settings: &SmtpSettings) -> Result<Self> {
        let config = |e: &dyn std::fmt::Display| NotifyError::Config(format!("smtp: {e}"));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(settings.timeout));
        if settings.security != SmtpSecurity::None {
            let tls = TlsParameters::new(settings.host.clone()).map_err(|e| config(&e))?;
            builder = builder.tls(match settings.security {
                SmtpSecurity::StartTls => Tls::Required(tls),
                _ => Tls::Wrapper(tls),
            });
        }
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = settings
            .from
            .parse()
            .map_err(|e| config(&format!("from address: {e}")))?;
        Ok(EmailSender {
            transport: builder.build(),
            from,
        })
    }

    /// Send the alert for `case` to `to`. Returns the server's answer.
    pub async fn send(&self, delivery_id: &str, to: &str, case: &CaseView) -> Result<String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| NotifyError::Permanent(format!("invalid recipient address: {e}")))?;
        let (subject, text, html) = render(case);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{delivery_id}@closeloop>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| NotifyError::Permanent(format!("could not build the email: {e}")))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(format!("SMTP {}", response.code())),
            Err(e) if e.is_permanent() => Err(NotifyError::Permanent(format!("smtp refused: {e}"))),
            // 4xx answers, connection failures and timeouts: try again.
            Err(e) => Err(NotifyError::transient(format!("smtp: {e}"))),
        }
    }
}

/// Subject line: severity, scores and store at a glance.
pub fn subject(case: &CaseView) -> String {
    let store = case
        .event
        .location
        .store_id
        .as_deref()
        .unwrap_or("no store");
    format!(
        "[{}] {} | {} | {}",
        case.severity.as_str().to_uppercase(),
        scores_line(case),
        store,
        case.event.journey.touchpoint
    )
}

fn scores_line(case: &CaseView) -> String {
    let scores = &case.event.scores;
    let mut parts = Vec::new();
    if let Some(nps) = scores.nps {
        parts.push(format!("NPS {}", nps.value()));
    }
    if let Some(csat) = scores.csat {
        parts.push(format!("CSAT {}", csat.value()));
    }
    if let Some(ces) = scores.ces {
        parts.push(format!("CES {}", ces.value()));
    }
    parts.join(", ")
}

/// (subject, plain text, HTML) of the alert email.
pub fn render(case: &CaseView) -> (String, String, String) {
    let event = &case.event;
    let customer = &event.customer;
    let mut fields: Vec<(&str, String)> = vec![
        (
            "Severity",
            format!("{} (rules: {})", case.severity, case.rule_ids.join(", ")),
        ),
        ("Scores", scores_line(case)),
        (
            "Store",
            match (&event.location.store_id, &event.location.region) {
                (Some(s), Some(r)) => format!("{s} ({r})"),
                (Some(s), None) => s.clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => "-".into(),
            },
        ),
        (
            "Touchpoint",
            match &event.journey.channel {
                Some(c) => format!("{} ({c})", event.journey.touchpoint),
                None => event.journey.touchpoint.clone(),
            },
        ),
        (
            "Answered",
            event.occurred_at.format("%Y-%m-%d %H:%M %:z").to_string(),
        ),
        (
            "Customer",
            customer.name.clone().unwrap_or_else(|| customer.id.clone()),
        ),
    ];
    if let Some(email) = &customer.email {
        fields.push(("Email", email.clone()));
    }
    if let Some(phone) = &customer.phone {
        fields.push(("Phone", phone.clone()));
    }
    for (key, value) in &event.attributes {
        if key == "order_id" {
            fields.push(("Order", value.to_string()));
        }
    }
    let comment = event.comment.as_deref().filter(|c| !c.trim().is_empty());

    let mut text = String::from("A customer needs a call back.\n\n");
    for (label, value) in &fields {
        let _ = writeln!(text, "{:<11} {value}", format!("{label}:"));
    }
    if let Some(comment) = comment {
        let _ = write!(text, "\nThe customer wrote:\n  \"{comment}\"\n");
    }
    let _ = write!(
        text,
        "\nOpen the case to acknowledge it, record your call and resolve it:\n  {}\n\nCase {} · owner {}\n",
        case.url, case.id, case.owner_name
    );

    let mut html = String::from(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>A customer needs a call back.</p><table>",
    );
    for (label, value) in &fields {
        let _ = write!(
            html,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    html.push_str("</table>");
    if let Some(comment) = comment {
        let _ = write!(
            html,
            "<p>The customer wrote:</p><blockquote>{}</blockquote>",
            escape(comment)
        );
    }
    let _ = write!(
        html,
        "<p><a href=\"{url}\">Open the case</a> to acknowledge it, record your call and resolve it.</p></body></html>",
        url = escape(&case.url)
    );
    (subject(case), text, html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use closeloop_core::{parse_event, Severity, Status};

    fn case() -> CaseView {
        let event = parse_event(
            r#"{"event_id":"e-1","occurred_at":"2026-11-20T10:15:00+01:00","source":"s",
                "customer":{"id":"C-1","name":"Julie Moreau","email":"julie@example.org","phone":"+33 6 12"},
                "journey":{"touchpoint":"delivery","channel":"web"},
                "location":{"store_id":"LYON-02","region":"FR-ARA"},
                "scores":{"nps":3,"ces":2},"comment":"Livraison avec <trois> jours de retard",
                "attributes":{"order_id":"CMD-55120"}}"#
                .as_bytes(),
            1 << 16,
        )
        .unwrap();
        CaseView {
            id: uuid::Uuid::nil(),
            url: "http://127.0.0.1:8080/cases/00000000-0000-0000-0000-000000000000".into(),
            version: 1,
            status: Status::Open,
            severity: Severity::High,
            owner_id: "mgr-lyon-02".into(),
            owner_name: "Claire Martin".into(),
            route: "store".into(),
            rule_ids: vec!["nps-detractor".into(), "ces-high-effort".into()],
            channels: vec!["email".into()],
            event_id: "e-1".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            acknowledged_at: None,
            first_contact_at: None,
            resolved_at: None,
            closed_at: None,
            resolved_by: None,
            root_cause: None,
            contact_attempts: 0,
            event,
        }
    }

    #[test]
    fn subject_carries_severity_score_and_store() {
        assert_eq!(subject(&case()), "[HIGH] NPS 3, CES 2 | LYON-02 | delivery");
    }

    #[test]
    fn body_carries_comment_contact_and_link() {
        let (_, text, html) = render(&case());
        for expected in [
            "Livraison avec <trois> jours de retard",
            "Julie Moreau",
            "julie@example.org",
            "+33 6 12",
            "CMD-55120",
            "http://127.0.0.1:8080/cases/00000000-0000-0000-0000-000000000000",
            "LYON-02 (FR-ARA)",
        ] {
            assert!(text.contains(expected), "text lacks {expected}:\n{text}");
        }
        assert!(html.contains("&lt;trois&gt;"), "html escapes the comment");
        assert!(!html.contains("<trois>"));
    }
}
