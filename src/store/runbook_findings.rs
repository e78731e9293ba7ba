//! `runbook_findings`: what the periodic runbook check found stale, one row per problem.
//! Seeing, posting and clearing are compare-and-sets on the row, so two replicas (or a
//! restart) report each occurrence of a problem once; one that clears and returns starts a
//! new occurrence, which is reported again.

use chrono::{DateTime, Utc};

use super::{Store, Tx, from_ms, opt_from_ms, to_ms};
use crate::runbook::check::Finding;

/// A problem as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    pub key: String,
    pub finding: Finding,
    /// When this occurrence was first seen: with the key, it names the occurrence.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub posted_at: Option<DateTime<Utc>>,
    pub cleared_at: Option<DateTime<Utc>>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: &str =
    "key, runbook, step, what, problem, first_seen, last_seen, posted_at, cleared_at";

fn decode(row: Row) -> StoredFinding {
    let (key, runbook, step, what, problem, first, last, posted, cleared) = row;
    StoredFinding {
        key,
        finding: Finding {
            runbook,
            step,
            what,
            problem,
        },
        first_seen: from_ms(first),
        last_seen: from_ms(last),
        posted_at: opt_from_ms(posted),
        cleared_at: opt_from_ms(cleared),
    }
}

impl Tx {
    /// Records that `finding` is seen at `now`: a new row, the same occurrence seen again, or
    /// (when it had cleared) a new occurrence, not yet posted.
    pub async fn see_finding(
        &mut self,
        finding: &Finding,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let query = sqlx::query(
            "INSERT INTO runbook_findings (key, runbook, step, what, problem, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (key) DO UPDATE SET problem = excluded.problem, last_seen = excluded.last_seen, \
             first_seen = CASE WHEN runbook_findings.cleared_at IS NULL \
                 THEN runbook_findings.first_seen ELSE excluded.first_seen END, \
             posted_at = CASE WHEN runbook_findings.cleared_at IS NULL \
                 THEN runbook_findings.posted_at ELSE NULL END, \
             cleared_at = NULL",
        )
        .bind(finding.key())
        .bind(&finding.runbook)
        .bind(&finding.step)
        .bind(&finding.what)
        .bind(&finding.problem)
        .bind(to_ms(now));
        self.execute(query).await?;
        Ok(())
    }

    /// Marks an open, unposted finding as posted: its first-seen time (naming the
    /// occurrence) if this call did it, `None` if it was posted already (by anyone).
    pub async fn claim_finding_post(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let rows: Vec<(i64,)> = self
            .fetch(
                sqlx::query(
                    "UPDATE runbook_findings SET posted_at = $1 \
                     WHERE key = $2 AND posted_at IS NULL AND cleared_at IS NULL \
                     RETURNING first_seen",
                )
                .bind(to_ms(now))
                .bind(key),
            )
            .await?;
        Ok(rows.first().map(|(first,)| from_ms(*first)))
    }

    /// Every finding not cleared.
    pub async fn open_findings(&mut self) -> anyhow::Result<Vec<StoredFinding>> {
        // No row lock: clearing is itself a compare-and-set.
        let sql =
            format!("SELECT {COLUMNS} FROM runbook_findings WHERE cleared_at IS NULL ORDER BY key");
        let rows: Vec<Row> = self.fetch(sqlx::query(sqlx::AssertSqlSafe(sql))).await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// Marks an open finding as cleared; `false` if someone else cleared it first.
    pub async fn clear_finding(&mut self, key: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE runbook_findings SET cleared_at = $1 WHERE key = $2 AND cleared_at IS NULL",
                )
                .bind(to_ms(now))
                .bind(key),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Every finding ever recorded, by key (tests, operators).
    pub async fn runbook_findings(&self) -> anyhow::Result<Vec<StoredFinding>> {
        let sql = format!("SELECT {COLUMNS} FROM runbook_findings ORDER BY key");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        Ok(rows.into_iter().map(decode).collect())
    }
}
