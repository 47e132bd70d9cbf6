//! The web app's sign-in links and sessions. Only SHA-256 hashes of their
//! secrets are stored (`closeloop_core::access::token_hash`); a stolen
//! database dump opens nothing.

use chrono::{DateTime, Duration, Utc};
use closeloop_core::access::Role;
use closeloop_wire::{OutboxMessage, SignInV1};
use uuid::Uuid;

use crate::outbox_write::OutboxRows;
use crate::{Result, Store, StoreError};

/// How many sign-in links a person may ask for in [`SIGN_IN_WINDOW`]: past
/// it, requests are dropped (the page says the same either way).
pub const SIGN_IN_LINKS_PER_WINDOW: i64 = 5;
pub const SIGN_IN_WINDOW: Duration = Duration::minutes(15);

/// What using a sign-in link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInUse {
    /// Valid: the owner it was sent to. The link is now used.
    Owner(String),
    Used,
    Expired,
    Unknown,
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub role: Role,
    pub owner_id: Option<&'a str>,
    pub name: &'a str,
    pub locale: &'a str,
    pub csrf_token: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id: Uuid,
    pub role: Role,
    pub owner_id: Option<String>,
    pub name: String,
    pub locale: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    role: String,
    owner_id: Option<String>,
    name: String,
    locale: String,
    csrf_token: String,
    expires_at: DateTime<Utc>,
}

impl Store {
    /// Record a sign-in link for `owner_id` and queue its email, in one
    /// transaction. `false` when the person asked for too many links
    /// lately (nothing is queued).
    pub async fn request_sign_in(
        &self,
        owner_id: &str,
        recipient: &str,
        token_hash: &[u8],
        email: SignInV1,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // One person's requests one at a time, so the count is exact.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sign-in:' || $1))")
            .bind(owner_id)
            .execute(&mut *tx)
            .await?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sign_in_links WHERE owner_id = $1 AND created_at > $2",
        )
        .bind(owner_id)
        .bind(now - SIGN_IN_WINDOW)
        .fetch_one(&mut *tx)
        .await?;
        if recent >= SIGN_IN_LINKS_PER_WINDOW {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sign_in_links (token_hash, owner_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(owner_id)
        .bind(now)
        .bind(email.expires_at)
        .execute(&mut *tx)
        .await?;
        let mut rows = OutboxRows::default();
        rows.push(None, recipient, OutboxMessage::SignIn(email));
        rows.insert(&mut tx, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Use a sign-in link: valid once, before it expires.
    pub async fn use_sign_in(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<SignInUse> {
        let used: Option<String> = sqlx::query_scalar(
            "UPDATE sign_in_links SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING owner_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(owner) = used {
            return Ok(SignInUse::Owner(owner));
        }
        let known: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT used_at FROM sign_in_links WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match known {
            None => SignInUse::Unknown,
            Some(Some(_)) => SignInUse::Used,
            Some(None) => SignInUse::Expired,
        })
    }

    pub async fn open_session(&self, new: &NewSession<'_>, now: DateTime<Utc>) -> Result<Uuid> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO web_sessions (id, token_hash, role, owner_id, name, locale, csrf_token,
                                       created_at, expires_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
        )
        .bind(id)
        .bind(new.token_hash)
        .bind(new.role.as_str())
        .bind(new.owner_id)
        .bind(new.name)
        .bind(new.locale)
        .bind(new.csrf_token)
        .bind(now)
        .bind(new.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The live session of a cookie: not expired, not revoked.
    pub async fn session(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<WebSession>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "UPDATE web_sessions SET last_seen_at = $2
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2
             RETURNING id, role, owner_id, name, locale, csrf_token, expires_at",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(WebSession {
                role: Role::parse(&r.role).ok_or_else(|| {
                    StoreError::Corrupt(format!("session {}: unknown role {}", r.id, r.role))
                })?,
                id: r.id,
                owner_id: r.owner_id,
                name: r.name,
                locale: r.locale,
                csrf_token: r.csrf_token,
                expires_at: r.expires_at,
            })
        })
        .transpose()
    }

    /// Remember the language a person picked.
    pub async fn set_session_locale(&self, id: Uuid, locale: &str) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET locale = $2 WHERE id = $1")
            .bind(id)
            .bind(locale)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// End one session (sign-out).
    pub async fn revoke_session(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// End every session of an owner (a lost phone, someone who left);
    /// the number ended.
    pub async fn revoke_sessions_of(&self, owner_id: &str, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE web_sessions SET revoked_at = $2 WHERE owner_id = $1 AND revoked_at IS NULL",
        )
        .bind(owner_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
