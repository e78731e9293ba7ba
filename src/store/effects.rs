//! The `effects` table: claim with a lease, record outcomes, and read the queue (queueing
//! is in `enqueue.rs`).
//!
//! A claim is a lease, not a lock held across the network call: the row says `running`
//! until `lease_until`. If the process dies mid-call the lease expires and another worker
//! (or the restarted one) claims it again. On Postgres, `FOR UPDATE SKIP LOCKED` lets
//! several replicas claim different rows without waiting on each other.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::outcomes::Outcome;
use super::{Backend, Store, Tx, from_ms, parse_column, to_ms};
use crate::effects::{Effect, EffectState, NewEffect};
use crate::incident::model::IncidentId;
use crate::incident::timeline::NewEntry;

mod reads;

pub use reads::EffectCounts;

/// `NOT EXISTS` an earlier unfinished effect with `e`'s ordering key.
macro_rules! first_of_its_key {
    () => {
        "(e.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM effects p \
         WHERE p.ordering_key = e.ordering_key AND p.id < e.id AND p.state IN ('pending', 'running')))"
    };
}

/// An effect that may be claimed at `$2` (now): pending and due, or running with an expired
/// lease, and first of its ordering key. `after_effect` names the earlier effect it waits
/// for, cleared when that one finishes. On Postgres a command can queue an effect after the
/// one it waits for finished but before the command committed (the clearing missed it), so
/// there the effect waited for is looked at too (by primary key, only for rows that name
/// one). The ordering-key check covers an earlier effect of the key queued by a concurrent
/// transaction.
const CLAIMABLE: &str = concat!(
    "((e.state = 'pending' AND e.run_at <= $2) OR (e.state = 'running' AND e.lease_until < $2)) \
    AND (e.after_effect IS NULL OR NOT EXISTS (SELECT 1 FROM effects a \
         WHERE a.id = e.after_effect AND a.state IN ('pending', 'running'))) AND ",
    first_of_its_key!()
);

/// The order check for SQLite's candidate search, which walks the partial index of effects
/// waiting for nothing: SQLite has one writer at a time, so an effect's `after_effect` is
/// always cleared when the effect it names finishes.
const FIRST_OF_ITS_KEY: &str = concat!("e.after_effect IS NULL AND ", first_of_its_key!());

const COLUMNS: &str = "id, incident_id, kind, payload, idempotency_key, state, attempts, \
    run_at, last_error, result, created_at, COALESCE(budget_from, created_at) AS budget_from";

#[derive(FromRow)]
struct EffectRow {
    id: i64,
    incident_id: Option<String>,
    kind: String,
    payload: String,
    idempotency_key: String,
    state: String,
    attempts: i64,
    run_at: i64,
    last_error: Option<String>,
    result: Option<String>,
    created_at: i64,
    budget_from: i64,
}

impl TryFrom<EffectRow> for Effect {
    type Error = anyhow::Error;
    fn try_from(r: EffectRow) -> anyhow::Result<Self> {
        Ok(Effect {
            id: r.id,
            incident_id: r.incident_id.map(IncidentId),
            kind: r.kind,
            payload: serde_json::from_str(&r.payload)?,
            idempotency_key: r.idempotency_key,
            state: parse_column::<EffectState>(&r.state, "effects.state")?,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            run_at: from_ms(r.run_at),
            last_error: r.last_error,
            result: r.result,
            created_at: from_ms(r.created_at),
            budget_from: from_ms(r.budget_from),
        })
    }
}

/// Up to `$3` effects claimable at `$2` among `only`, in queue order (pure; SQLite): two
/// index walks, each stopping at the limit, over pending effects waiting for nothing and
/// running ones whose lease expired. `by_index` names the partial indexes to walk (the
/// planner, without statistics, would walk every pending effect's `(state, run_at)`); a
/// search among named ids is left to the primary key.
///
/// `limit` is written into the text, not bound: SQLite marks a statement whose `LIMIT` is a
/// parameter as planned for that value, and re-prepares it whenever the parameter is bound
/// again, which under a burst was every claim (6 % of the writer thread). The few limits a
/// worker asks for are a few cached statements.
fn candidates(only: &str, by_index: bool, limit: i64) -> String {
    let (ready, leased) = match by_index {
        true => (" INDEXED BY effects_ready", " INDEXED BY effects_leased"),
        false => ("", ""),
    };
    format!(
        "SELECT id FROM ( \
           SELECT id, run_at FROM (SELECT e.id, e.run_at FROM effects e{ready} \
             WHERE e.state = 'pending' AND e.after_effect IS NULL AND e.run_at <= $2 \
             AND {FIRST_OF_ITS_KEY}{only} ORDER BY e.run_at, e.id LIMIT {limit}) ready \
           UNION ALL \
           SELECT id, run_at FROM (SELECT e.id, e.run_at FROM effects e{leased} \
             WHERE e.state = 'running' AND e.lease_until < $2 \
             AND {FIRST_OF_ITS_KEY}{only} ORDER BY e.run_at, e.id LIMIT {limit}) expired \
         ) due ORDER BY run_at, id LIMIT {limit}"
    )
}

/// ` AND e.kind IN ('slack.notice', …)` (pure). Kinds are the handlers' own constants
/// (`[a-z_.]`), never input; anything else is left out rather than quoted. No kinds at all
/// matches nothing.
fn kinds_filter(kinds: &[&str]) -> String {
    let safe: Vec<String> = kinds
        .iter()
        .filter(|k| {
            k.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
        })
        .map(|k| format!("'{k}'"))
        .collect();
    match safe.is_empty() {
        true => " AND 1 = 0".into(),
        false => format!(" AND e.kind IN ({})", safe.join(",")),
    }
}

impl Store {
    /// Enqueues one effect in its own transaction (effects not tied to a state change).
    pub async fn enqueue_one(&self, e: &NewEffect) -> anyhow::Result<i64> {
        let mut tx = self.begin().await?;
        let id = tx.enqueue_effect(e).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Claims up to `limit` due effects for worker `owner` (pending and due, or running with
    /// an expired lease), optionally only among `only`. Each claimed row counts one attempt
    /// (the worker refunds it if the attempt never reaches the target). An effect with an
    /// ordering key waits until every earlier effect with that key has finished.
    pub async fn claim_effects(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
        only: Option<&[i64]>,
        owner: &str,
    ) -> anyhow::Result<Vec<Effect>> {
        self.claim_effects_of(now, lease, limit, only, None, owner)
            .await
    }

    /// [`claim_effects`](Self::claim_effects) among the effects of `kinds` only (a worker
    /// claims what it has handlers for, and leaves the rest to a process that has them).
    pub async fn claim_effects_of(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
        only: Option<&[i64]>,
        kinds: Option<&[&'static str]>,
        owner: &str,
    ) -> anyhow::Result<Vec<Effect>> {
        let now_ms = to_ms(now);
        let lease_until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let named = only.is_some();
        let mut only = match only {
            Some([]) => return Ok(Vec::new()),
            Some(ids) => {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!(" AND e.id IN ({})", list.join(","))
            }
            None => String::new(),
        };
        if let Some(kinds) = kinds {
            only.push_str(&kinds_filter(kinds));
        }
        let ids = match self.backend {
            // One statement: SKIP LOCKED lets replicas claim different rows at once.
            Backend::Postgres => format!(
                "SELECT e.id FROM effects e WHERE {CLAIMABLE}{only} \
                 ORDER BY e.run_at, e.id LIMIT $3 FOR UPDATE SKIP LOCKED"
            ),
            // One statement too, under the single writer: the search walks the partial
            // indexes of ready and of leased effects on the writer's own page cache. (A
            // reader's search cost a hand-off of its own and a cold cache after every write:
            // 0.45 ms a claim under a burst.)
            Backend::Sqlite => candidates(&only, !named, limit),
        };
        let sql = format!(
            "UPDATE effects SET state = 'running', lease_until = $1, lease_owner = $4, attempts = attempts + 1, updated_at = $2 \
             WHERE id IN ({ids}) RETURNING {COLUMNS}"
        );
        let tx = self.begin_background().await?;
        // A statement naming its rows is never the same twice: not prepared for reuse,
        // where it would push the statements that are out of each connection's cache.
        // With its `COMMIT`: on SQLite one hand-off.
        let rows: Vec<EffectRow> = tx
            .commit_fetching(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .persistent(!named)
                    .bind(lease_until)
                    .bind(now_ms)
                    .bind(limit)
                    .bind(owner),
            )
            .await?;
        let mut claimed = rows
            .into_iter()
            .map(Effect::try_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        claimed.sort_by_key(|e| (e.run_at, e.id));
        Ok(claimed)
    }

    /// Marks a running effect done and appends its outcome to the timeline, atomically.
    /// Returns `false` if the effect was no longer ours (its lease expired and it was re-claimed).
    pub async fn complete_effect(
        &self,
        id: i64,
        result: &str,
        entry: Option<&NewEntry>,
    ) -> anyhow::Result<bool> {
        self.finish(id, "done", None, Some(result), entry).await
    }

    /// Marks a running effect failed for good, with its outcome on the timeline.
    pub async fn fail_effect(
        &self,
        id: i64,
        error: &str,
        entry: Option<&NewEntry>,
    ) -> anyhow::Result<bool> {
        self.finish(id, "failed", Some(error), None, entry).await
    }

    async fn finish(
        &self,
        id: i64,
        state: &'static str,
        error: Option<&str>,
        result: Option<&str>,
        entry: Option<&NewEntry>,
    ) -> anyhow::Result<bool> {
        self.write_outcome(Outcome::Finish {
            id,
            state,
            error: error.map(str::to_string),
            result: result.map(str::to_string),
            entry: entry.cloned(),
        })
        .await
    }

    /// Puts a running effect back in the queue to run at `run_at`, recording `error` if given.
    /// With `refund`, the attempt does not count (a breaker or rate-limit deferral, or a failed
    /// probe), and the last real error is kept. `waiting_on` names the target it waits for,
    /// so [`release_waiting`](Self::release_waiting) can bring it forward when that recovers.
    pub async fn reschedule_effect(
        &self,
        id: i64,
        run_at: DateTime<Utc>,
        error: Option<&str>,
        refund: bool,
        waiting_on: Option<&str>,
    ) -> anyhow::Result<()> {
        self.write_outcome(Outcome::Reschedule {
            id,
            run_at,
            error: error.map(str::to_string),
            refund,
            waiting_on: waiting_on.map(str::to_string),
        })
        .await
        .map(|_| ())
    }

    /// Pushes a running effect's lease forward (the worker's heartbeat).
    pub async fn extend_lease(
        &self,
        id: i64,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        owner: &str,
    ) -> anyhow::Result<()> {
        let until = to_ms(now) + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut tx = self.begin_background().await?;
        tx.execute(sqlx::query(
            "UPDATE effects SET lease_until = $1 WHERE id = $2 AND state = 'running' AND lease_owner = $3",
        )
            .bind(until)
            .bind(id)
            .bind(owner)
            )
            .await?;
        tx.commit().await
    }

    /// Makes every pending effect waiting on `target` due now (the target answered again).
    /// They then run in queue order, under the target's own rate limit. Returns how many.
    pub async fn release_waiting(&self, target: &str, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut tx = self.begin_background().await?;
        let done = tx
            .execute(
                sqlx::query(
                    "UPDATE effects SET run_at = $1, waiting_on = NULL, updated_at = $1 \
             WHERE waiting_on = $2 AND state = 'pending'",
                )
                .bind(to_ms(now))
                .bind(target),
            )
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Hands back every effect `owner` still holds (shutdown past its grace, or a worker
    /// found dead): they are due at once for the next worker, attempts kept.
    pub async fn release_owned(&self, owner: &str, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut tx = self.begin_background().await?;
        let done = release_owned_in(&mut tx, owner, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Re-queues a failed effect with a fresh attempt budget. Returns `false` if there is no
    /// failed effect with that id.
    pub async fn retry_effect(&self, id: i64) -> anyhow::Result<bool> {
        let now = to_ms(Utc::now());
        let mut tx = self.begin().await?;
        let done = tx.execute(sqlx::query(
            "UPDATE effects SET state = 'pending', attempts = 0, run_at = $1, budget_from = $1, \
             waiting_on = NULL, updated_at = $1 \
             WHERE id = $2 AND state = 'failed'",
        )
        .bind(now)
        .bind(id)
        )
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

/// See [`Store::release_owned`]; also used when a dead worker is reaped.
pub(super) async fn release_owned_in(
    tx: &mut Tx,
    owner: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let done = tx.execute(sqlx::query(
        "UPDATE effects SET state = 'pending', run_at = $1, lease_until = NULL, lease_owner = NULL, \
         updated_at = $1 WHERE state = 'running' AND lease_owner = $2",
    )
    .bind(to_ms(now))
    .bind(owner)
    )
    .await?;
    Ok(done.rows_affected())
}
