//! Freeze exemptions: one row per pull request, holding its current merge attempt. A new
//! attempt starts (compare-and-set on `attempt`) only once the current one ended; the
//! GitHub effects pin the head it applies to and record how it ended.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Store, Tx, to_ms};

/// Where an exemption's current attempt stands.
pub mod state {
    /// Queued, merging, or waiting for checks.
    pub const PENDING: &str = "pending";
    pub const MERGED: &str = "merged";
    /// Ended without a merge, for a reason that was told (a push, a failed check, a drill).
    pub const NOT_MERGED: &str = "not_merged";
    /// Ended because it could not be carried out (the pull request does not exist).
    pub const FAILED: &str = "failed";
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Exemption {
    pub repo: String,
    pub pr_number: i64,
    pub allowed_by: String,
    pub reason: Option<String>,
    /// 1 for the first `freeze exempt` of this pull request, then one more per new attempt.
    pub attempt: i64,
    /// One of [`state`].
    pub state: String,
    /// How the attempt ended, in a sentence.
    pub outcome: Option<String>,
    /// The head it applies to, pinned when the exemption effect read the pull request.
    pub sha: Option<String>,
    /// The freeze it was granted in: the covering scope and its `frozen_since`.
    pub scope: Option<String>,
    pub frozen_since: Option<i64>,
    /// The queue effect carrying the attempt now.
    #[serde(skip)]
    pub effect_key: Option<String>,
}

impl Exemption {
    pub fn in_progress(&self) -> bool {
        self.state == state::PENDING
    }
}

/// A new attempt at exempting `repo#pr_number`.
pub struct NewAttempt<'a> {
    pub repo: &'a str,
    pub pr_number: i64,
    pub allowed_by: &'a str,
    pub reason: Option<&'a str>,
    pub scope: &'a str,
    pub frozen_since: Option<i64>,
    pub effect_key: &'a str,
    pub at: DateTime<Utc>,
}

const COLUMNS: &str = "repo, pr_number, allowed_by, reason, attempt, state, outcome, sha, scope, \
     frozen_since, effect_key";

impl Tx {
    /// The exemption of `repo#pr` (any case of `repo`), if there ever was one.
    pub async fn exemption(&mut self, repo: &str, pr: i64) -> anyhow::Result<Option<Exemption>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM freeze_exemptions WHERE LOWER(repo) = LOWER($1) AND pr_number = $2"
        );
        self.fetch_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(repo).bind(pr))
            .await
    }

    /// Starts attempt `attempt` (the first when 1): only if the row is still at
    /// `attempt - 1`, so two racing requests start one attempt. The caller has checked that
    /// attempt ended. Returns whether this call started it.
    pub async fn start_exemption(
        &mut self,
        new: &NewAttempt<'_>,
        attempt: i64,
    ) -> anyhow::Result<bool> {
        let query = if attempt == 1 {
            sqlx::query(
                "INSERT INTO freeze_exemptions (repo, pr_number, allowed_by, reason, created_at, attempt, state, \
                 scope, frozen_since, effect_key) VALUES ($1, $2, $3, $4, $5, 1, 'pending', $6, $7, $8) \
                 ON CONFLICT (repo, pr_number) DO NOTHING",
            )
        } else {
            sqlx::query(
                "UPDATE freeze_exemptions SET allowed_by = $3, reason = $4, created_at = $5, attempt = $9, \
                 state = 'pending', outcome = NULL, sha = NULL, scope = $6, frozen_since = $7, effect_key = $8 \
                 WHERE LOWER(repo) = LOWER($1) AND pr_number = $2 AND attempt = $9 - 1",
            )
        };
        let query = query
            .bind(new.repo)
            .bind(new.pr_number)
            .bind(new.allowed_by)
            .bind(new.reason)
            .bind(to_ms(new.at))
            .bind(new.scope)
            .bind(new.frozen_since)
            .bind(new.effect_key);
        let query = if attempt == 1 {
            query
        } else {
            query.bind(attempt)
        };
        let done = self.execute(query).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Pins `attempt`'s head to `sha` and hands the attempt to the effect `effect_key` (the
    /// caller queues it in this transaction). Returns `false` when that attempt is no longer
    /// the current, pending one.
    pub async fn pin_exemption(
        &mut self,
        repo: &str,
        pr: i64,
        attempt: i64,
        sha: &str,
        effect_key: &str,
    ) -> anyhow::Result<bool> {
        let done = self.execute(sqlx::query(
            "UPDATE freeze_exemptions SET sha = $1, effect_key = $2 \
             WHERE LOWER(repo) = LOWER($3) AND pr_number = $4 AND attempt = $5 AND state = 'pending'",
        )
        .bind(sha)
        .bind(effect_key)
        .bind(repo)
        .bind(pr)
        .bind(attempt)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the queue effect `key` ended (done, or given up), or was never queued.
    pub async fn effect_ended(&mut self, key: &str) -> anyhow::Result<bool> {
        let state: Option<(String,)> = self
            .fetch_optional(
                sqlx::query("SELECT state FROM effects WHERE idempotency_key = $1").bind(key),
            )
            .await?;
        Ok(state.is_none_or(|(s,)| s == "done" || s == "failed"))
    }
}

impl Store {
    /// Every exemption recorded for `repo` (any case), whatever its state.
    pub async fn exemptions(&self, repo: &str) -> anyhow::Result<Vec<Exemption>> {
        let sql = format!("SELECT {COLUMNS} FROM freeze_exemptions WHERE LOWER(repo) = LOWER($1)");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repo)
            .fetch_all(&mut *self.reader().await?)
            .await?)
    }

    /// Every exemption recorded for any of `repos` (any case), in one query: the freezes
    /// page shows those of every frozen target.
    pub async fn exemptions_for(&self, repos: &[&str]) -> anyhow::Result<Vec<Exemption>> {
        if repos.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=repos.len()).map(|i| format!("LOWER(${i})")).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM freeze_exemptions WHERE LOWER(repo) IN ({}) \
             ORDER BY repo, pr_number",
            marks.join(",")
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for repo in repos {
            query = query.bind(*repo);
        }
        Ok(query.fetch_all(&mut *self.reader().await?).await?)
    }

    /// Ends `attempt` in `state` (one of [`state`]) with `outcome`, if it is still pending.
    pub async fn end_exemption(
        &self,
        repo: &str,
        pr: i64,
        attempt: i64,
        state: &str,
        outcome: &str,
    ) -> anyhow::Result<bool> {
        let mut tx = self.begin_background().await?;
        let done = tx.execute(sqlx::query(
            "UPDATE freeze_exemptions SET state = $1, outcome = $2 \
             WHERE LOWER(repo) = LOWER($3) AND pr_number = $4 AND attempt = $5 AND state = 'pending'",
        )
        .bind(state)
        .bind(outcome)
        .bind(repo)
        .bind(pr)
        .bind(attempt)
        )
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
