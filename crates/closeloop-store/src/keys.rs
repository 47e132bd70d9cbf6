//! Service keys generated at first start and kept in the database.

use crate::{Result, Store};

impl Store {
    /// The key called `name`: the one stored, or `fresh` stored now if there
    /// is none. Several instances starting at once agree on one key (the
    /// first insert wins; the others read it).
    pub async fn service_key(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO service_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT secret FROM service_keys WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
