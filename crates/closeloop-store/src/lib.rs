//! PostgreSQL persistence for closeloop (sqlx): accepted events, cases, their
//! append-only history, and the transactional outbox the dispatcher drains.
//!
//! Architecture invariants:
//! - an event and everything it causes (case, history, outbox rows) commit in
//!   one transaction, or not at all;
//! - `feedback_events.event_id` is the primary key, so replays create nothing;
//! - history is append-only (a trigger refuses UPDATE and DELETE);
//! - the store never decides anything: rules and transitions come from
//!   `closeloop-core`; time (`now`) is always a parameter.

mod cases;
mod digest;
mod error;
mod history;
mod inbox;
mod intake;
mod intake_rows;
mod intake_write;
mod keys;
mod metrics;
mod outbox;
mod outbox_write;
mod reports;
mod score_days;
mod scores;
mod sessions;
mod silences;
mod sla;
mod times;
mod tokens;
mod transition;
mod views;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use cases::{CaseDetail, CaseFilter, DeliveryView, HistoryView, LinkUse};
pub use error::{Result, StoreError};
pub use inbox::{InboxCounts, InboxFilter, InboxPage};
pub use intake::{BatchOutcome, IntakeRecord, SourcePosition};
pub use metrics::{CaseGrouping, LoopFilter, LoopMetricsRow, RootCauseRow};
pub use outbox::{
    AttemptView, Delivery, DeliveryResult, DeliverySummary, DisabledEndpoint, OutboxHealth,
    ReplaySelector,
};
pub use scores::{ScoreFilter, ScoreGrouping, ScoreRow};
pub use sessions::{NewSession, SignInUse, WebSession, SIGN_IN_LINKS_PER_WINDOW, SIGN_IN_WINDOW};
pub use silences::SilenceView;
pub use sla::{Recipient, SlaCaseRow, SlaPlan, SlaTickOutcome, WatcherView};
pub use times::CalendarSource;
pub use tokens::TokenView;
pub use views::{CaseSla, CaseView};

/// Static settings the store needs to render what it stores.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Base of case links, e.g. `https://closeloop.example.com`; a case's
    /// page is `{public_url}/cases/{id}`.
    pub public_url: String,
    /// Fields of the case key: alerts with the same key coalesce.
    pub case_key: Vec<closeloop_core::coalesce::CaseKeyField>,
    /// How long a case gathers new alerts with its key; zero turns coalescing off.
    pub coalesce_window: chrono::Duration,
    /// Immediate alert emails per owner per UTC day; past it, emails go to
    /// the owner's digest (daily unless they have one). Zero: no cap.
    pub fatigue_cap_per_day: u32,
    /// How long after resolution a new answer of the customer closes the
    /// recovery loop (a promoter) or reopens the case (an alert). Zero: off.
    pub recovery_window: chrono::Duration,
}

impl StoreOptions {
    /// The defaults: coalesce by customer and store for 7 days.
    pub fn new(public_url: impl Into<String>) -> Self {
        StoreOptions {
            public_url: public_url.into(),
            case_key: closeloop_core::coalesce::DEFAULT_CASE_KEY.to_vec(),
            coalesce_window: chrono::Duration::days(7),
            fatigue_cap_per_day: 0,
            recovery_window: chrono::Duration::days(30),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    options: StoreOptions,
    /// Owners' business hours, for the times each case takes (`times.rs`).
    calendars: Option<CalendarSource>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("options", &self.options)
            .finish()
    }
}

impl Store {
    /// Connect a pool to `url`. Connections are made lazily, so a database
    /// that is down at start-up is retried rather than fatal.
    pub fn connect_lazy(url: &str, max_connections: u32, options: StoreOptions) -> Result<Self> {
        let connect: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(connect);
        Ok(Store {
            pool,
            options,
            calendars: None,
        })
    }

    /// Create the database named in `url` if it does not exist yet, so a
    /// new installation needs no manual `createdb`.
    pub async fn create_database_if_missing(url: &str) -> Result<()> {
        use sqlx::migrate::MigrateDatabase;
        if !sqlx::Postgres::database_exists(url).await? {
            sqlx::Postgres::create_database(url).await?;
        }
        Ok(())
    }

    /// Apply pending migrations (embedded at build time).
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn case_url(&self, id: uuid::Uuid) -> String {
        format!(
            "{}/cases/{id}",
            self.options.public_url.trim_end_matches('/')
        )
    }
}

/// Stored status names as an SQL list, `('open', 'acknowledged')`: names
/// of a closed enum, not input.
pub(crate) fn status_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("({})", quoted.join(", "))
}
