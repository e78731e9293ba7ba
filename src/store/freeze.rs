//! Merge-freeze tables: wanted state per scope (with generations), verified state per
//! target, exemptions, and the PR statuses already set.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Store, Tx, from_ms, to_ms};
use crate::incident::model::IncidentId;

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
        }
    }
}

/// What GitHub had for one target (a repository, or an org's ruleset) when last verified.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct FreezeTarget {
    pub target: String,
    pub scope: String,
    /// `frozen` or `unfrozen`.
    pub desired: String,
    /// `active`, `evaluate`, `absent` or `error`.
    pub actual: String,
    pub ruleset_id: Option<i64>,
    pub applied_generation: i64,
    #[serde(skip)]
    pub verified_at: i64,
    pub last_error: Option<String>,
}

impl FreezeTarget {
    pub fn verified(&self) -> DateTime<Utc> {
        from_ms(self.verified_at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Exemption {
    pub repo: String,
    pub pr_number: i64,
    pub allowed_by: String,
    pub reason: Option<String>,
}

const SCOPE_COLUMNS: &str =
    "scope, frozen, generation, incident_id, reason, drill, requested_by, updated_at";

impl Tx {
    pub async fn next_freeze_generation(&mut self) -> anyhow::Result<i64> {
        let (g,): (i64,) = sqlx::query_as("UPDATE counters SET value = value + 1 WHERE name = 'freeze_generation' RETURNING value")
            .fetch_one(&mut *self.inner)
            .await?;
        Ok(g)
    }

    pub async fn set_freeze_scope(&mut self, s: &FreezeScope) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO freeze_scopes (scope, frozen, generation, incident_id, reason, drill, requested_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (scope) DO UPDATE SET frozen = excluded.frozen, generation = excluded.generation, \
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
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn freeze_scopes(&mut self) -> anyhow::Result<Vec<FreezeScope>> {
        let sql = format!("SELECT {SCOPE_COLUMNS} FROM freeze_scopes ORDER BY scope");
        let rows: Vec<ScopeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *self.inner)
            .await?;
        Ok(rows.into_iter().map(FreezeScope::from).collect())
    }

    pub async fn add_exemption(&mut self, e: &Exemption) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO freeze_exemptions (repo, pr_number, allowed_by, reason, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, pr_number) DO UPDATE SET allowed_by = excluded.allowed_by, reason = excluded.reason",
        )
        .bind(&e.repo)
        .bind(e.pr_number)
        .bind(&e.allowed_by)
        .bind(&e.reason)
        .bind(to_ms(Utc::now()))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }
}

impl Store {
    pub async fn freeze_scopes(&self) -> anyhow::Result<Vec<FreezeScope>> {
        let sql = format!("SELECT {SCOPE_COLUMNS} FROM freeze_scopes ORDER BY scope");
        let rows: Vec<ScopeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(FreezeScope::from).collect())
    }

    /// The newest generation handed out so far.
    pub async fn freeze_generation(&self) -> anyhow::Result<i64> {
        let (g,): (i64,) =
            sqlx::query_as("SELECT value FROM counters WHERE name = 'freeze_generation'")
                .fetch_one(self.pool())
                .await?;
        Ok(g)
    }

    /// Records what a target looks like now, unless a newer generation already wrote it.
    /// Returns `false` when the write was stale and skipped.
    pub async fn record_target(&self, t: &FreezeTarget) -> anyhow::Result<bool> {
        let mut tx = self.begin_background().await?;
        let done = sqlx::query(
            "INSERT INTO freeze_targets (target, scope, desired, actual, ruleset_id, applied_generation, verified_at, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (target) DO UPDATE SET scope = excluded.scope, desired = excluded.desired, actual = excluded.actual, \
             ruleset_id = excluded.ruleset_id, applied_generation = excluded.applied_generation, \
             verified_at = excluded.verified_at, last_error = excluded.last_error \
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
        .execute(&mut *tx.inner)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn freeze_targets(&self) -> anyhow::Result<Vec<FreezeTarget>> {
        Ok(sqlx::query_as(
            "SELECT target, scope, desired, actual, ruleset_id, applied_generation, verified_at, last_error \
             FROM freeze_targets ORDER BY target",
        )
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn exemptions(&self, repo: &str) -> anyhow::Result<Vec<Exemption>> {
        Ok(sqlx::query_as(
            "SELECT repo, pr_number, allowed_by, reason FROM freeze_exemptions WHERE repo = $1",
        )
        .bind(repo)
        .fetch_all(self.pool())
        .await?)
    }

    /// The freeze status firebreak last set on a commit: (state, generation).
    pub async fn pr_status(&self, repo: &str, sha: &str) -> anyhow::Result<Option<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT state, generation FROM freeze_pr_statuses WHERE repo = $1 AND sha = $2",
        )
        .bind(repo)
        .bind(sha)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn set_pr_status(
        &self,
        repo: &str,
        sha: &str,
        pr: u64,
        state: &str,
        generation: i64,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        sqlx::query(
            "INSERT INTO freeze_pr_statuses (repo, sha, pr_number, state, generation, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (repo, sha) DO UPDATE SET state = excluded.state, generation = excluded.generation, \
             pr_number = excluded.pr_number, updated_at = excluded.updated_at",
        )
        .bind(repo)
        .bind(sha)
        .bind(i64::try_from(pr).unwrap_or(i64::MAX))
        .bind(state)
        .bind(generation)
        .bind(to_ms(Utc::now()))
        .execute(&mut *tx.inner)
        .await?;
        tx.commit().await
    }

    /// Commits in `repo` whose freeze status is `state`, as (sha, pr number).
    pub async fn pr_statuses_in_state(
        &self,
        repo: &str,
        state: &str,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as("SELECT sha, pr_number FROM freeze_pr_statuses WHERE repo = $1 AND state = $2 ORDER BY pr_number")
            .bind(repo)
            .bind(state)
            .fetch_all(self.pool())
            .await?)
    }
}
