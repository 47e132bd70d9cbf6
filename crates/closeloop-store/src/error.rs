//! The store's error, classified for callers: transient failures (the
//! database is unreachable, a serialization conflict) are worth retrying,
//! the others are not.

use closeloop_core::TransitionError;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("case {0} not found")]
    CaseNotFound(Uuid),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("this link was already used")]
    LinkUsed,
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => is_transient_sqlx(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => is_transient_sqlx(e),
            _ => false,
        }
    }
}

fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources;
            // 57P0x: server shutting down; 40001/40P01: serialization, deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
