//! Dispatch for closeloop: drains the transactional outbox and sends each
//! notification by email (SMTP, lettre) or signed webhook (reqwest).
//!
//! Architecture invariants: a delivery is claimed (and the claim committed)
//! before any network I/O; every attempt is recorded; a failure is
//! classified here, at the edge, as permanent (dead at once) or transient
//! (retried on the schedule); nothing is ever deleted from the outbox.

pub mod breaker;
pub mod email;
mod error;
pub mod links;
mod report;
pub mod templates;
pub mod webhook;
pub mod worker;

pub use breaker::CircuitBreaker;
pub use email::{EmailSender, SmtpSecurity, SmtpSettings};
pub use error::{NotifyError, Result};
pub use links::{ActionLink, LinkSigner};
pub use templates::{EmailTemplates, RenderedEmail};
pub use webhook::{AddressPolicy, WebhookSecret, WebhookSender};
pub use worker::{retry_delay, Clock, DispatchSettings, Dispatcher};
