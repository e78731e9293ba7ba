//! `ended_sessions`: the nonces of session cookies ended by signing out, each kept until the
//! cookie would have expired anyway, so a copied cookie cannot be replayed after sign-out.

use chrono::{DateTime, Utc};

use super::{Store, to_ms};

impl Store {
    /// Lists the session with `nonce` as ended until `expires`, and prunes the rows of
    /// sessions that have expired by `now`.
    pub async fn end_session(
        &self,
        nonce: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        tx.execute(
            sqlx::query("DELETE FROM ended_sessions WHERE expires_at <= $1").bind(to_ms(now)),
        )
        .await?;
        tx.execute(
            sqlx::query(
                "INSERT INTO ended_sessions (nonce, expires_at) VALUES ($1, $2) \
             ON CONFLICT (nonce) DO NOTHING",
            )
            .bind(nonce)
            .bind(to_ms(expires)),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the session with `nonce` was ended by signing out.
    pub async fn session_ended(&self, nonce: &str) -> anyhow::Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT expires_at FROM ended_sessions WHERE nonce = $1")
                .bind(nonce)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        Ok(row.is_some())
    }
}
