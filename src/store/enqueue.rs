//! Queueing effects inside a transaction, with the chat references they record (held, so
//! they go with the first `INSERT`): one multi-row `INSERT` per wave of effects that
//! share no key ([`waves`]), each row naming the unfinished effect of its ordering key it
//! waits for, and an effect already queued (same idempotency key) kept as it is.

use anyhow::Context;
use chrono::Utc;

use super::{Tx, to_ms};
use crate::effects::NewEffect;

impl Tx {
    /// Enqueues several effects, in order, with as few statements as their keys allow (one
    /// round trip each); each id is returned in the same order. An effect that shares an
    /// ordering key (it waits for the earlier one, which a statement cannot see yet) or an
    /// idempotency key with an earlier one goes in a later statement ([`waves`]).
    pub async fn enqueue_effects(&mut self, effects: &[NewEffect]) -> anyhow::Result<Vec<i64>> {
        self.put_records(effects.iter()).await?;
        let mut ids = vec![0; effects.len()];
        for wave in waves(effects) {
            let batch: Vec<&NewEffect> = wave.iter().map(|&i| &effects[i]).collect();
            for (i, id) in wave.into_iter().zip(self.insert_effects(&batch).await?) {
                ids[i] = id;
            }
        }
        Ok(ids)
    }

    /// Enqueues an effect; a second enqueue with the same idempotency key is a no-op that
    /// returns the existing id.
    pub async fn enqueue_effect(&mut self, e: &NewEffect) -> anyhow::Result<i64> {
        self.put_records(std::iter::once(e)).await?;
        Ok(self.insert_effects(&[e]).await?[0])
    }

    /// Enqueues effects whose ids nobody needs (a fan-out's children): on SQLite the
    /// statements go with the transaction's next one or its `COMMIT`, with no round trip of
    /// their own, and an effect already queued (same idempotency key) is left as it is.
    pub async fn queue_effects(&mut self, effects: &[NewEffect]) -> anyhow::Result<()> {
        self.put_records(effects.iter()).await?;
        let now = to_ms(Utc::now());
        for wave in waves(effects) {
            let batch: Vec<&NewEffect> = wave.iter().map(|&i| &effects[i]).collect();
            let sql = insert_sql(batch.len());
            self.hold(bind_effects(
                sqlx::query(sqlx::AssertSqlSafe(sql)),
                &batch,
                now,
            ))
            .await?;
        }
        Ok(())
    }

    /// Enqueues `effects` and commits: their ids, in order (an effect already queued under
    /// the same idempotency key keeps its row, and its id is the one returned). On SQLite
    /// the inserts, the read of their ids and the `COMMIT` go as one hand-off.
    pub async fn commit_enqueuing(mut self, effects: &[NewEffect]) -> anyhow::Result<Vec<i64>> {
        if effects.is_empty() {
            self.commit().await?;
            return Ok(Vec::new());
        }
        self.queue_effects(effects).await?;
        let marks: Vec<String> = (1..=effects.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, idempotency_key FROM effects WHERE idempotency_key IN ({})",
            marks.join(", ")
        );
        let ids = effects
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, e| {
                query.bind(e.idempotency_key.clone())
            });
        let ids = by_key(self.commit_fetching(ids).await?);
        effects
            .iter()
            .map(|e| {
                ids.get(&e.idempotency_key).copied().with_context(|| {
                    format!(
                        "effect {} was not found after queueing it",
                        e.idempotency_key
                    )
                })
            })
            .collect()
    }

    /// One multi-row `INSERT`, each row naming the unfinished effect of its ordering key it
    /// waits for; an effect already queued (same idempotency key) keeps its row and id.
    async fn insert_effects(&mut self, effects: &[&NewEffect]) -> anyhow::Result<Vec<i64>> {
        if effects.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{} RETURNING id, idempotency_key",
            insert_sql(effects.len())
        );
        let query = bind_effects(
            sqlx::query(sqlx::AssertSqlSafe(sql)),
            effects,
            to_ms(Utc::now()),
        );
        let inserted = by_key(self.fetch(query).await?);
        let mut ids = Vec::with_capacity(effects.len());
        for e in effects {
            ids.push(match inserted.get(&e.idempotency_key) {
                Some(id) => *id,
                None => self.effect_id_by_key(&e.idempotency_key).await?,
            });
        }
        Ok(ids)
    }

    /// The chat references the effects record with them (held: on SQLite they go with the
    /// `INSERT` that follows, in the same hand-off).
    async fn put_records(
        &mut self,
        effects: impl Iterator<Item = &NewEffect>,
    ) -> anyhow::Result<()> {
        for record in effects.flat_map(|e| &e.records) {
            self.put_chat_ref(record).await?;
        }
        Ok(())
    }

    async fn effect_id_by_key(&mut self, key: &str) -> anyhow::Result<i64> {
        let (id,): (i64,) = self
            .fetch_one(sqlx::query("SELECT id FROM effects WHERE idempotency_key = $1").bind(key))
            .await?;
        Ok(id)
    }
}

/// Effect ids by idempotency key, from `(id, idempotency_key)` rows.
fn by_key(rows: Vec<(i64, String)>) -> std::collections::HashMap<String, i64> {
    rows.into_iter().map(|(id, key)| (key, id)).collect()
}

/// `INSERT INTO effects … VALUES (…), … ON CONFLICT (idempotency_key) DO NOTHING` for `n`
/// rows of seven parameters each (pure); see [`bind_effects`].
fn insert_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = |n: usize| format!("${}", i * 7 + n);
            format!(
                "({}, {}, {}, {}, 'pending', 0, 0, {}, {}, {}, {}, \
                 (SELECT MAX(p.id) FROM effects p WHERE p.ordering_key = {} AND p.state IN ('pending', 'running')))",
                p(1), p(2), p(3), p(4), p(7), p(5), p(5), p(6), p(6)
            )
        })
        .collect();
    format!(
        "INSERT INTO effects (incident_id, kind, payload, idempotency_key, state, attempts, \
         max_attempts, run_at, created_at, updated_at, ordering_key, after_effect) VALUES {} \
         ON CONFLICT (idempotency_key) DO NOTHING",
        rows.join(", ")
    )
}

/// Binds each effect's seven parameters, in [`insert_sql`]'s order.
fn bind_effects<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    effects: &[&NewEffect],
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for e in effects {
        query = query
            .bind(e.incident_id.as_ref().map(|i| i.0.clone()))
            .bind(e.kind.clone())
            .bind(e.payload.to_string())
            .bind(e.idempotency_key.clone())
            .bind(now)
            .bind(e.ordering_key.clone())
            .bind(e.not_before.map_or(now, to_ms).max(now));
    }
    query
}

/// The effects (by index) in statements that each hold no two sharing an idempotency key
/// or an ordering key, keeping each key's effects in order (pure). Effects with distinct
/// keys are one wave.
fn waves(effects: &[NewEffect]) -> Vec<Vec<usize>> {
    let mut rest: Vec<usize> = (0..effects.len()).collect();
    let mut waves = Vec::new();
    while !rest.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (mut wave, mut later) = (Vec::new(), Vec::new());
        for i in rest {
            let e = &effects[i];
            let keys = [
                Some(("idempotency", e.idempotency_key.as_str())),
                e.ordering_key.as_deref().map(|k| ("ordering", k)),
            ];
            let free = keys.iter().flatten().all(|k| !seen.contains(k));
            seen.extend(keys.into_iter().flatten());
            match free {
                true => wave.push(i),
                false => later.push(i),
            }
        }
        waves.push(wave);
        rest = later;
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(key: &str, order: Option<&str>) -> NewEffect {
        NewEffect {
            incident_id: None,
            kind: "k".into(),
            payload: serde_json::Value::Null,
            idempotency_key: key.into(),
            ordering_key: order.map(str::to_string),
            audience: None,
            not_before: None,
            records: Vec::new(),
        }
    }

    #[test]
    fn effects_sharing_a_key_go_in_later_statements_in_order() {
        let all = [
            effect("a", Some("room")),
            effect("b", None),
            effect("c", Some("room")),
            effect("d", Some("other")),
            effect("a", None),
            effect("e", Some("room")),
        ];
        assert_eq!(waves(&all), vec![vec![0, 1, 3], vec![2, 4], vec![5]]);
        assert_eq!(
            waves(&all[..2]),
            vec![vec![0, 1]],
            "distinct keys: one statement"
        );
        assert!(waves(&[]).is_empty());
    }
}
