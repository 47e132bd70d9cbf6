//! Alert emails over SMTP (lettre).
//!
//! The email is rendered (templates, in the owner's language) from the case
//! as frozen in the outbox, so a retry sends the same content. Its `Message-ID` derives from the delivery id,
//! so a mail system can drop the rare duplicate of an at-least-once send.

use std::sync::Arc;
use std::time::Duration;

use closeloop_wire::CaseV1;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{NotifyError, Result};
use crate::templates::EmailTemplates;

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
    /// Connections kept open to the server (lettre's pool).
    pub pool_max_size: u32,
}

/// Sends alert emails.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<EmailTemplates>,
    links: Option<crate::links::LinkSigner>,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl EmailSender {
    pub fn new(settings: &SmtpSettings, templates: Arc<EmailTemplates>) -> Result<Self> {
        let config = |e: &dyn std::fmt::Display| NotifyError::Config(format!("smtp: {e}"));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(settings.pool_max_size.max(1)));
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
            templates,
            links: None,
        })
    }

    /// Put one-click action links in alert emails.
    pub fn with_links(mut self, links: crate::links::LinkSigner) -> Self {
        self.links = Some(links);
        self
    }

    /// Send the alert for `case` to `to`. Returns the server's answer.
    pub async fn send(
        &self,
        delivery_id: &str,
        to: &str,
        case: &CaseV1,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let actions = self
            .links
            .as_ref()
            .map(|l| l.links(case, now))
            .unwrap_or_default();
        let case = self.signed(case, now);
        let email = self.templates.render(&case, &actions)?;
        self.send_rendered(delivery_id, to, email).await
    }

    /// Send a digest of `cases` to `to`, in `locale`'s language.
    pub async fn send_digest(
        &self,
        delivery_id: &str,
        to: &str,
        locale: &str,
        cases: &[CaseV1],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let cases: Vec<CaseV1> = cases.iter().map(|c| self.signed(c, now)).collect();
        let email = self.templates.render_digest(locale, &cases)?;
        self.send_rendered(delivery_id, to, email).await
    }

    /// Send a follow-up (reminders, escalations, watcher notices) to `to`.
    pub async fn send_followup(
        &self,
        delivery_id: &str,
        to: &str,
        payload: &closeloop_wire::FollowupV1,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let mut payload = payload.clone();
        for item in &mut payload.items {
            item.case = self.signed(&item.case, now);
        }
        let email = self.templates.render_followup(&payload)?;
        self.send_rendered(delivery_id, to, email).await
    }

    /// Send a weekly report.
    pub async fn send_report(
        &self,
        delivery_id: &str,
        to: &str,
        report: &closeloop_wire::WeeklyReportV1,
    ) -> Result<String> {
        let email = self.templates.render_report(report)?;
        self.send_rendered(delivery_id, to, email).await
    }

    /// Send a sign-in link to the web app.
    pub async fn send_sign_in(
        &self,
        delivery_id: &str,
        to: &str,
        payload: &closeloop_wire::SignInV1,
    ) -> Result<String> {
        let email = self.templates.render_sign_in(payload)?;
        self.send_rendered(delivery_id, to, email).await
    }

    /// The case with its page link signed, when links are on: the email's
    /// "open the case" works without a sign-in, for that case only.
    fn signed(&self, case: &CaseV1, now: chrono::DateTime<chrono::Utc>) -> CaseV1 {
        match &self.links {
            Some(links) => links.signed(case, now),
            None => case.clone(),
        }
    }

    async fn send_rendered(
        &self,
        delivery_id: &str,
        to: &str,
        email: crate::templates::RenderedEmail,
    ) -> Result<String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| NotifyError::Permanent(format!("invalid recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(format!("<{delivery_id}@closeloop>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(email.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(email.html),
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
