//! Merge-freeze tables: wanted state per scope (with generations), verified state per
//! target, exemptions, and the PR statuses already set.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Store, Tx, from_ms, to_ms};
use crate::incident::model::IncidentId;

mod holds;

pub use holds::{FreezeHold, NewHold};

/// The wanted state of one scope (`acme/api` or `acme/*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreezeScope {
    pub scope: String,
    pub frozen: bool,
    pub generation: i64,
    pub incident_id: Option<IncidentId>,
    pub reason: Option<String>,
    pub drill: bool,
    pub requested_by: String,
    pub updated_at: DateTime<Utc>,
    /// The generation at which the scope last went from unfrozen to frozen: which freeze
    /// this is. Kept by the store ([`Tx::set_freeze_scope`] ignores what is given here).
    #[serde(skip)]
    pub frozen_since: Option<i64>,
}

#[derive(FromRow)]
struct ScopeRow {
    scope: String,
    frozen: i64,
    generation: i64,
    incident_id: Option<String>,
    reason: Option<String>,
    drill: i64,
    requested_by: String,
    updated_at: i64,
    frozen_since: Option<i64>,
}

impl From<ScopeRow> for FreezeScope {
    fn from(r: ScopeRow) -> Self {
        Self {
            scope: r.scope,
            frozen: r.frozen != 0,
            generation: r.generation,
            incident_id: r.incident_id.map(IncidentId),
            reason: r.reason,
            drill: r.drill != 0,
            requested_by: r.requested_by,
            updated_at: from_ms(r.updated_at),
            frozen_since: r.frozen_since,
        }
    }
}

/// What GitHub had for one target (a repository, or an org's ruleset) when last read.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct FreezeTarget {
    pub target: String,
    pub scope: String,
    /// `frozen` or `unfrozen`: what the last pass worked towards.
    pub desired: String,
    /// `active`, `evaluate`, `absent`, `drifted`, `statuses-only` or `error`.
    pub actual: String,
    pub ruleset_id: Option<i64>,
    /// The newest generation GitHub confirmed on this target.
    pub applied_generation: i64,
    /// When GitHub's actual state was last read successfully (ms; 0: never).
    #[serde(skip)]
    pub verified_at: i64,
    /// The last failure, retryable (`will retry: …`) or not; cleared by a success.
    pub last_error: Option<String>,
    /// When `last_error` happened (ms).
    #[serde(skip)]
    pub error_at: Option<i64>,
    /// When it is retried next, if known (ms).
    #[serde(skip)]
    pub retry_at: Option<i64>,
}

impl FreezeTarget {
    /// When GitHub's state was last read successfully, if ever.
    pub fn verified(&self) -> Option<DateTime<Utc>> {
        (self.verified_at > 0).then(|| from_ms(self.verified_at))
    }

    pub fn failed_at(&self) -> Option<DateTime<Utc>> {
        self.error_at.map(from_ms)
    }

    pub fn next_retry(&self) -> Option<DateTime<Utc>> {
        self.retry_at.map(from_ms)
    }
}

/// A failure on one target: what it was, when, and when it is retried if known.
pub struct TargetFailure<'a> {
    pub target: &'a str,
    pub scope: &'a str,
    pub desired: &'a str,
    pub error: &'a str,
    pub at: DateTime<Utc>,
    pub retry_at: Option<DateTime<Utc>>,
    /// A permanent failure: the target shows `error` until a pass gets through.
    pub permanent: bool,
}

const SCOPE_COLUMNS: &str = "scope, frozen, generation, incident_id, reason, drill, requested_by, updated_at, \
     frozen_since";

impl Tx {
    pub async fn next_freeze_generation(&mut self) -> anyhow::Result<i64> {
        let (g,): (i64,) = self.fetch_one(sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'freeze_generation' RETURNING value")
            )
            .await?;
        Ok(g)
    }

    /// Writes a scope's wanted state, unless a newer generation already did. `frozen_since`
    /// becomes this generation when the scope goes from unfrozen to frozen, stays while it
    /// remains frozen, and is cleared when it thaws.
    pub async fn set_freeze_scope(&mut self, s: &FreezeScope) -> anyhow::Result<()> {
        self.execute(sqlx::query(
            "INSERT INTO freeze_scopes (scope, frozen, generation, incident_id, reason, drill, requested_by, updated_at, frozen_since) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $2 = 1 THEN $3 END) \
             ON CONFLICT (scope) DO UPDATE SET frozen = excluded.frozen, generation = excluded.generation, \
             frozen_since = CASE WHEN excluded.frozen = 0 THEN NULL \
             WHEN freeze_scopes.frozen = 1 THEN freeze_scopes.frozen_since ELSE excluded.generation END, \
             incident_id = excluded.incident_id, reason = excluded.reason, drill = excluded.drill, \
             requested_by = excluded.requested_by, updated_at = excluded.updated_at \
             WHERE freeze_scopes.generation < excluded.generation",
        )
        .bind(&s.scope)
        .bind(i64::from(s.frozen))
        .bind(s.generation)
        .bind(s.incident_id.as_ref().map(|i| i.0.clone()))
        .bind(&s.reason)
        .bind(i64::from(s.drill))
        .bind(&s.requested_by)
        .bind(to_ms(s.updated_at))
        )
        .await?;
        Ok(())
    }

    pub async fn freeze_scopes(&mut self) -> anyhow::Result<Vec<FreezeScope>> {
        let sql = format!("SELECT {SCOPE_COLUMNS} FROM freeze_scopes ORDER BY scope");
        let rows: Vec<ScopeRow> = self.fetch(sqlx::query(sqlx::AssertSqlSafe(sql))).await?;
        Ok(rows.into_iter().map(FreezeScope::from).collect())
    }
}

impl Store {
    pub async fn freeze_scopes(&self) -> anyhow::Result<Vec<FreezeScope>> {
        let sql = format!("SELECT {SCOPE_COLUMNS} FROM freeze_scopes ORDER BY scope");
        let rows: Vec<ScopeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        Ok(rows.into_iter().map(FreezeScope::from).collect())
    }

    /// The newest generation handed out so far.
    pub async fn freeze_generation(&self) -> anyhow::Result<i64> {
        let (g,): (i64,) =
            sqlx::query_as("SELECT value FROM counters WHERE name = 'freeze_generation'")
                .fetch_one(&mut *self.reader().await?)
                .await?;
        Ok(g)
    }

    /// Records what a successful read (and write) found on a target, unless a newer
    /// generation already wrote it. Returns `false` when the write was stale and skipped.
    pub async fn record_target(&self, t: &FreezeTarget) -> anyhow::Result<bool> {
        let mut tx = self.begin_background().await?;
        let done = tx.execute(sqlx::query(
            "INSERT INTO freeze_targets (target, scope, desired, actual, ruleset_id, applied_generation, verified_at, last_error, error_at, retry_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (target) DO UPDATE SET scope = excluded.scope, desired = excluded.desired, actual = excluded.actual, \
             ruleset_id = excluded.ruleset_id, applied_generation = excluded.applied_generation, \
             verified_at = excluded.verified_at, last_error = excluded.last_error, \
             error_at = excluded.error_at, retry_at = excluded.retry_at \
             WHERE freeze_targets.applied_generation <= excluded.applied_generation",
        )
        .bind(&t.target)
        .bind(&t.scope)
        .bind(&t.desired)
        .bind(&t.actual)
        .bind(t.ruleset_id)
        .bind(t.applied_generation)
        .bind(t.verified_at)
        .bind(&t.last_error)
        .bind(t.error_at)
        .bind(t.retry_at)
        )
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failure on a target without touching what was last read, when, or which
    /// generation GitHub last confirmed. A target never read before shows `error`.
    pub async fn record_target_failure(&self, f: &TargetFailure<'_>) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(sqlx::query(
            "INSERT INTO freeze_targets (target, scope, desired, actual, ruleset_id, applied_generation, verified_at, last_error, error_at, retry_at) \
             VALUES ($1, $2, $3, 'error', NULL, 0, 0, $4, $5, $6) \
             ON CONFLICT (target) DO UPDATE SET scope = excluded.scope, desired = excluded.desired, \
             actual = CASE WHEN $7 = 1 THEN 'error' ELSE freeze_targets.actual END, \
             last_error = excluded.last_error, error_at = excluded.error_at, retry_at = excluded.retry_at",
        )
        .bind(f.target)
        .bind(f.scope)
        .bind(f.desired)
        .bind(f.error)
        .bind(to_ms(f.at))
        .bind(f.retry_at.map(to_ms))
        .bind(i64::from(f.permanent))
        )
        .await?;
        tx.commit().await
    }

    pub async fn freeze_targets(&self) -> anyhow::Result<Vec<FreezeTarget>> {
        Ok(sqlx::query_as(
            "SELECT target, scope, desired, actual, ruleset_id, applied_generation, verified_at, last_error, error_at, retry_at \
             FROM freeze_targets ORDER BY target",
        )
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// The freeze status firebreak last set on a commit: (state, generation, whether a
    /// drill's).
    pub async fn pr_status(
        &self,
        repo: &str,
        sha: &str,
    ) -> anyhow::Result<Option<(String, i64, bool)>> {
        Ok(self
            .pr_status_written(repo, sha)
            .await?
            .map(|w| (w.state, w.generation, w.drill)))
    }

    /// Everything firebreak last wrote as a commit's freeze status.
    pub async fn pr_status_written(
        &self,
        repo: &str,
        sha: &str,
    ) -> anyhow::Result<Option<WrittenStatus>> {
        let row: Option<(String, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT state, generation, drill, description FROM freeze_pr_statuses WHERE repo = $1 AND sha = $2",
        )
        .bind(repo)
        .bind(sha)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(
            row.map(|(state, generation, drill, description)| WrittenStatus {
                state,
                generation,
                drill: drill != 0,
                description,
            }),
        )
    }

    pub async fn set_pr_status(
        &self,
        repo: &str,
        sha: &str,
        pr: u64,
        status: &WrittenStatus,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.execute(sqlx::query(
            "INSERT INTO freeze_pr_statuses (repo, sha, pr_number, state, generation, updated_at, drill, description) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (repo, sha) DO UPDATE SET state = excluded.state, generation = excluded.generation, \
             pr_number = excluded.pr_number, updated_at = excluded.updated_at, drill = excluded.drill, description = excluded.description",
        )
        .bind(repo)
        .bind(sha)
        .bind(i64::try_from(pr).unwrap_or(i64::MAX))
        .bind(&status.state)
        .bind(status.generation)
        .bind(to_ms(Utc::now()))
        .bind(i64::from(status.drill))
        .bind(&status.description)
        )
        .await?;
        tx.commit().await
    }

    /// The commits whose freeze status a lift must set back: those firebreak failed, and
    /// those carrying a drill's "DRILL (nothing blocked)".
    pub async fn pr_statuses_to_lift(&self, repo: &str) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT sha, pr_number FROM freeze_pr_statuses \
             WHERE repo = $1 AND (state = 'failure' OR drill = 1) ORDER BY pr_number",
        )
        .bind(repo)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }
}

/// What firebreak last wrote as a commit's freeze status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenStatus {
    pub state: String,
    pub generation: i64,
    pub drill: bool,
    /// `None` for statuses written before descriptions were kept.
    pub description: Option<String>,
}
