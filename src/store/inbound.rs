//! `inbound_seen`: deliveries already handled (a Slack `event_id`, an `X-GitHub-Delivery`),
//! so a platform's retry is not applied twice. The row is written in the same transaction
//! as whatever the delivery causes, so a crash between the two can neither lose the event
//! nor apply it twice.

use chrono::Utc;

use super::{Store, Tx, to_ms};

/// One inbound delivery: where it came from and the platform's id for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub source: &'static str,
    pub id: String,
}

impl Tx {
    /// Records `delivery` in this transaction; `false` if it was recorded before (a retry).
    pub async fn record_delivery(&mut self, delivery: &Delivery) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO inbound_seen (source, id, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(delivery.source)
        .bind(&delivery.id)
        .bind(to_ms(Utc::now()))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Whether `delivery` was handled before.
    pub async fn delivery_seen(&self, delivery: &Delivery) -> anyhow::Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM inbound_seen WHERE source = $1 AND id = $2")
                .bind(delivery.source)
                .bind(&delivery.id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.is_some())
    }
}
