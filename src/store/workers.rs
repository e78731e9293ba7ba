//! `workers`: the processes running effects (each `serve`, and a CLI while it drains), so a
//! restart can take over what a dead worker held at once instead of waiting out its lease,
//! and `readiness_probe`, which `/readyz` writes to prove the store accepts writes.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::effects::release_owned_in;
use super::{Store, to_ms};

/// A worker as registered.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WorkerRow {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub heartbeat_at: i64,
}

impl Store {
    /// Registers (or refreshes) a worker.
    pub async fn register_worker(
        &self,
        id: &str,
        hostname: &str,
        pid: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(sqlx::query(
            "INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(hostname)
        .bind(i64::from(pid))
        .bind(to_ms(now))
        )
        .await?;
        tx.commit().await
    }

    pub async fn workers(&self) -> anyhow::Result<Vec<WorkerRow>> {
        Ok(
            sqlx::query_as("SELECT id, hostname, pid, heartbeat_at FROM workers ORDER BY id")
                .fetch_all(&mut *self.reader().await?)
                .await?,
        )
    }

    /// Removes a worker and hands back every effect it still held. Returns how many.
    pub async fn retire_worker(&self, id: &str, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut tx = self.begin_background().await?;
        let released = release_owned_in(&mut tx, id, now).await?;
        tx.execute(sqlx::query("DELETE FROM workers WHERE id = $1").bind(id))
            .await?;
        tx.commit().await?;
        Ok(released)
    }

    /// Proves the store takes writes: an update in a transaction that is then rolled back.
    /// A read-only SQLite file, a read-only Postgres or a full disk fails here.
    pub async fn probe_write(&self) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(
            sqlx::query("UPDATE readiness_probe SET checked_at = $1 WHERE id = 1")
                .bind(to_ms(Utc::now())),
        )
        .await?;
        tx.rollback().await
    }
}
