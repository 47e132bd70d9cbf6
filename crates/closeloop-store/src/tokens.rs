//! API tokens: only the SHA-256 of each token is stored; the token itself is
//! shown once, when created.

use chrono::{DateTime, Utc};
use closeloop_core::access::Role;
use serde::Serialize;
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// A token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenView {
    pub id: Uuid,
    /// Who uses it; recorded as the actor of every case action.
    pub name: String,
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// For managers: whose scope the token sees.
    pub owner_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

fn role_name<S: serde::Serializer>(role: &Role, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    name: String,
    role: String,
    owner_id: Option<String>,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TokenRow {
    fn into_view(self) -> Result<TokenView> {
        Ok(TokenView {
            role: Role::parse(&self.role).ok_or_else(|| {
                StoreError::Corrupt(format!("token {}: unknown role {}", self.id, self.role))
            })?,
            id: self.id,
            name: self.name,
            owner_id: self.owner_id,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        })
    }
}

const TOKEN_COLUMNS: &str = "id, name, role, owner_id, created_at, revoked_at, last_used_at";

impl Store {
    /// Record a new token by its hash.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        owner_id: Option<&str>,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<TokenView> {
        let sql = format!(
            "INSERT INTO api_tokens (id, name, role, owner_id, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        );
        let row: TokenRow = sqlx::query_as(&sql)
            .bind(Uuid::now_v7())
            .bind(name)
            .bind(role.as_str())
            .bind(owner_id)
            .bind(token_hash)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        row.into_view()
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenView>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC");
        let rows: Vec<TokenRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(TokenRow::into_view).collect()
    }

    /// Revoke a token; `None` if there is no such token.
    pub async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<TokenView>> {
        let sql = format!(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
             RETURNING {TOKEN_COLUMNS}"
        );
        let row: Option<TokenRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenRow::into_view).transpose()
    }

    /// The live (not revoked) token with this hash, marked as used now.
    pub async fn authenticate(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<TokenView>> {
        let sql = format!(
            "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL
             RETURNING {TOKEN_COLUMNS}"
        );
        let row: Option<TokenRow> = sqlx::query_as(&sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenRow::into_view).transpose()
    }
}
