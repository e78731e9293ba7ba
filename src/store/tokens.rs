//! `api_tokens`: API tokens as the SHA-256 of their secret, with their name, scopes, who
//! made them and when they were last used; revoked rows stay for the record.

use chrono::{DateTime, Utc};

use super::{Store, from_ms, opt_from_ms, parse_column, to_ms};
use crate::auth::Scopes;

/// A stored token (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    /// The identity that created it (`cli:alice`).
    pub created_by: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token to store.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub scopes: &'a Scopes,
    pub created_by: &'a str,
    pub at: DateTime<Utc>,
}

type Row = (i64, String, String, i64, String, Option<i64>, Option<i64>);

const COLUMNS: &str = "id, name, scopes, created_at, created_by, last_used_at, revoked_at";

fn decode(row: Row) -> anyhow::Result<ApiToken> {
    let (id, name, scopes, created_at, created_by, last_used_at, revoked_at) = row;
    Ok(ApiToken {
        id,
        name,
        scopes: parse_column(&scopes, "api_tokens.scopes")?,
        created_at: from_ms(created_at),
        created_by,
        last_used_at: opt_from_ms(last_used_at),
        revoked_at: opt_from_ms(revoked_at),
    })
}

impl Store {
    /// Stores a new token. `false` (and nothing stored) when an unrevoked token already has
    /// that name.
    pub async fn create_token(&self, new: &NewToken<'_>) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT id FROM api_tokens WHERE name = $1 AND revoked_at IS NULL{}",
            tx.lock_clause()
        );
        let taken: Option<(i64,)> = tx
            .fetch_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(new.name))
            .await?;
        if taken.is_some() {
            return Ok(false);
        }
        // The unique index on active names refuses a racing twin; it surfaces as an error.
        tx.execute(
            sqlx::query(
                "INSERT INTO api_tokens (name, token_hash, scopes, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new.name)
            .bind(new.hash)
            .bind(new.scopes.to_string())
            .bind(to_ms(new.at))
            .bind(new.created_by),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Tokens not revoked, by name.
    pub async fn active_tokens(&self) -> anyhow::Result<Vec<ApiToken>> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_tokens WHERE revoked_at IS NULL ORDER BY name");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// The unrevoked token whose hash is `hash`, if any.
    pub async fn token_by_hash(&self, hash: &str) -> anyhow::Result<Option<ApiToken>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        );
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.map(decode).transpose()
    }

    /// The unrevoked token with row id `id`, if any (a session names its token by id).
    pub async fn active_token_by_id(&self, id: i64) -> anyhow::Result<Option<ApiToken>> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1 AND revoked_at IS NULL");
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.map(decode).transpose()
    }

    /// Revokes the unrevoked token called `name`; `false` if there is none.
    pub async fn revoke_token(&self, name: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let done = tx
            .execute(
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                )
                .bind(to_ms(at))
                .bind(name),
            )
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Records a use of token `id` at `at`, unless one at or after `since` is already
    /// recorded (so concurrent requests write it once).
    pub async fn token_used(
        &self,
        id: i64,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(to_ms(at))
            .bind(id)
            .bind(to_ms(since)),
        )
        .await?;
        tx.commit().await
    }
}
