//! Reading the `effects` queue: single effects, a command's effects and what they caused,
//! the lists the CLI and the ops pages show, when the next one is due, and the queue's depth.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{COLUMNS, EffectRow};
use crate::effects::Effect;
use crate::incident::model::IncidentId;
use crate::store::{Store, from_ms, to_ms};

/// Queue depth for health and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EffectCounts {
    pub pending: i64,
    pub running: i64,
    pub failed: i64,
    /// Age in seconds of the oldest effect that is due and not yet done.
    pub oldest_due_age_secs: i64,
}

impl Store {
    pub async fn effect(&self, id: i64) -> anyhow::Result<Option<Effect>> {
        let sql = format!("SELECT {COLUMNS} FROM effects WHERE id = $1");
        let row: Option<EffectRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.map(Effect::try_from).transpose()
    }

    pub async fn effects_by_ids(&self, ids: &[i64]) -> anyhow::Result<Vec<Effect>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM effects WHERE id IN ({}) ORDER BY id",
            list.join(",")
        );
        let rows: Vec<EffectRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(Effect::try_from).collect()
    }

    /// The ids of effects queued for any of `incidents` at or after `since`.
    pub async fn effect_ids_since(
        &self,
        incidents: &[IncidentId],
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<i64>> {
        if incidents.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = (0..incidents.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "SELECT id FROM effects WHERE created_at >= $1 AND incident_id IN ({}) ORDER BY id",
            list.join(",")
        );
        let mut query = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql)).bind(to_ms(since));
        for incident in incidents {
            query = query.bind(&incident.0);
        }
        let rows = query.fetch_all(&mut *self.reader().await?).await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Effects newest first; with `failed_only`, just the ones that gave up.
    pub async fn list_effects(&self, failed_only: bool, limit: i64) -> anyhow::Result<Vec<Effect>> {
        let filter = if failed_only {
            "WHERE state = 'failed'"
        } else {
            ""
        };
        let sql = format!("SELECT {COLUMNS} FROM effects {filter} ORDER BY id DESC LIMIT $1");
        let rows: Vec<EffectRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(Effect::try_from).collect()
    }

    /// Effects not done (pending, running or failed), newest first: what the effects page
    /// lists, however many done ones are newer.
    pub async fn unfinished_effects(&self, limit: i64) -> anyhow::Result<Vec<Effect>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM effects WHERE state IN ('pending', 'running', 'failed') \
             ORDER BY id DESC LIMIT $1"
        );
        let rows: Vec<EffectRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(Effect::try_from).collect()
    }

    /// When the next pending effect among `only` (or any) is due, if there is one.
    pub async fn next_due(&self, only: Option<&[i64]>) -> anyhow::Result<Option<DateTime<Utc>>> {
        let only = match only {
            Some([]) => return Ok(None),
            Some(ids) => {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!(" AND id IN ({})", list.join(","))
            }
            None => String::new(),
        };
        let sql = format!(
            "SELECT MIN(CASE WHEN state = 'pending' THEN run_at ELSE lease_until END) \
             FROM effects WHERE state IN ('pending', 'running'){only}"
        );
        let (min,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *self.reader().await?)
            .await?;
        Ok(min.map(from_ms))
    }

    /// When the next pending effect of `kind` is due, if one is waiting.
    pub async fn next_run_of_kind(&self, kind: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        let (min,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(run_at) FROM effects WHERE kind = $1 AND state = 'pending'")
                .bind(kind)
                .fetch_one(&mut *self.reader().await?)
                .await?;
        Ok(min.map(from_ms))
    }

    /// How many effects wait, run and gave up, and the oldest due one's age: one pass over
    /// the `(state, run_at)` index for the unfinished states only, so it costs the same
    /// however many delivered effects the table holds.
    pub async fn effect_counts(&self, now: DateTime<Utc>) -> anyhow::Result<EffectCounts> {
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT state, CAST(COUNT(*) AS BIGINT), MIN(run_at) FROM effects \
             WHERE state IN ('pending', 'running', 'failed') GROUP BY state",
        )
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(counts_of(&rows, to_ms(now)))
    }
}

/// [`EffectCounts`] from `(state, count, earliest run_at)` rows (pure).
fn counts_of(rows: &[(String, i64, Option<i64>)], now_ms: i64) -> EffectCounts {
    let count = |state: &str| {
        rows.iter()
            .find(|(s, ..)| s == state)
            .map_or(0, |(_, n, _)| *n)
    };
    let oldest_due = rows
        .iter()
        .filter(|(s, ..)| s == "pending" || s == "running")
        .filter_map(|(_, _, run_at)| *run_at)
        .filter(|run_at| *run_at <= now_ms)
        .min();
    EffectCounts {
        pending: count("pending"),
        running: count("running"),
        failed: count("failed"),
        oldest_due_age_secs: oldest_due.map_or(0, |t| (now_ms - t).max(0) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_oldest_due_among_waiting_and_running_only() {
        let rows = vec![
            ("pending".to_string(), 3, Some(10_000)),
            ("running".to_string(), 1, Some(4_000)),
            ("failed".to_string(), 2, Some(1_000)),
        ];
        let c = counts_of(&rows, 20_000);
        assert_eq!((c.pending, c.running, c.failed), (3, 1, 2));
        assert_eq!(c.oldest_due_age_secs, 16, "running's, not failed's");
        let future = vec![("pending".to_string(), 1, Some(30_000))];
        assert_eq!(counts_of(&future, 20_000).oldest_due_age_secs, 0);
        assert_eq!(counts_of(&[], 20_000).pending, 0);
    }
}
