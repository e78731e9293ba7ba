//! The effects queue under a burst (issue 13): effects of one ordering key wait for the one
//! before them through `after_effect` (so a claim looks at ready effects only, however long
//! the backlog), several effects go in with one statement, and the worker's outcomes are
//! committed in batches while each caller still gets its own answer.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use firebreak::effects::{Effect, EffectState, NewEffect};
use firebreak::store::Store;

on_both!(
    a_chain_of_one_key_runs_one_at_a_time_and_a_failure_lets_the_next_go,
    a_long_backlog_behind_deferred_heads_leaves_ready_effects_claimable,
    several_effects_go_in_together_in_order_and_idempotently,
    outcomes_written_together_each_get_their_own_answer,
    an_effect_queued_while_the_one_before_finishes_is_not_stranded,
    a_fan_outs_children_go_with_its_commit_in_order_and_keep_queued_ones,
    effects_queued_with_the_commit_return_their_ids_and_keep_queued_ones,
    effects_queued_with_a_failing_commit_leave_nothing,
);

const LEASE: Duration = Duration::from_secs(30);

fn effect(key: &str, ordering: Option<&str>) -> NewEffect {
    NewEffect {
        incident_id: None,
        kind: "test".into(),
        payload: serde_json::json!({ "key": key }),
        idempotency_key: key.into(),
        ordering_key: ordering.map(str::to_string),
        audience: None,
        not_before: None,
        records: Vec::new(),
    }
}

async fn enqueue(store: &Store, effects: &[NewEffect]) -> Vec<i64> {
    let mut tx = store.begin().await.unwrap();
    let ids = tx.enqueue_effects(effects).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

async fn claim(store: &Store, limit: i64) -> Vec<i64> {
    let claimed: Vec<Effect> = store
        .claim_effects(Utc::now(), LEASE, limit, None, "w")
        .await
        .unwrap();
    claimed.into_iter().map(|e| e.id).collect()
}

async fn a_chain_of_one_key_runs_one_at_a_time_and_a_failure_lets_the_next_go(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // Shared ordering key: queued one by one, each waiting for the one before.
    let chain = enqueue(
        &store,
        &[
            effect("a", Some("inc-1")),
            effect("b", Some("inc-1")),
            effect("c", Some("inc-1")),
        ],
    )
    .await;
    assert_eq!(claim(&store, 10).await, vec![chain[0]]);
    assert!(store.complete_effect(chain[0], "ok", None).await.unwrap());
    assert_eq!(claim(&store, 10).await, vec![chain[1]], "b after a is done");
    assert!(store.fail_effect(chain[1], "gone", None).await.unwrap());
    assert_eq!(claim(&store, 10).await, vec![chain[2]], "c after b failed");
    // A new effect of the key queued while c runs waits for c.
    let d = enqueue(&store, &[effect("d", Some("inc-1"))]).await[0];
    assert!(claim(&store, 10).await.is_empty());
    assert!(store.complete_effect(chain[2], "ok", None).await.unwrap());
    assert_eq!(claim(&store, 10).await, vec![d]);
}

async fn a_long_backlog_behind_deferred_heads_leaves_ready_effects_claimable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // 300 incidents, each with a head effect that a rate limit put off for an hour and
    // two more queued behind it: none of those may be claimed now.
    let mut effects = Vec::new();
    for i in 0..300 {
        let key = format!("inc-{i}");
        for step in ["head", "next", "last"] {
            effects.push(effect(&format!("{key}-{step}"), Some(&key)));
        }
    }
    let ids = enqueue(&store, &effects).await;
    let heads = claim(&store, 1000).await;
    assert_eq!(
        heads.len(),
        300,
        "only each key's first effect is claimable"
    );
    let hour = Utc::now() + chrono::Duration::hours(1);
    for id in &heads {
        store
            .reschedule_effect(*id, hour, None, true, None)
            .await
            .unwrap();
    }
    let free = enqueue(&store, &[effect("free", None)]).await[0];
    assert_eq!(claim(&store, 10).await, vec![free]);
    assert!(store.complete_effect(free, "ok", None).await.unwrap());
    // An hour later the heads come due, still one per key.
    let later: Vec<i64> = store
        .claim_effects(hour + chrono::Duration::seconds(1), LEASE, 1000, None, "w")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(later.len(), 300);
    assert!(later.iter().all(|id| heads.contains(id)));
    assert_eq!(ids.len(), 900);
}

async fn several_effects_go_in_together_in_order_and_idempotently(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let first = enqueue(
        &store,
        &[
            effect("x", None),
            effect("y", Some("k1")),
            effect("z", Some("k2")),
        ],
    )
    .await;
    assert_eq!(first.len(), 3);
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "ids in order: {first:?}"
    );
    // Again, with one new effect among them: the old ones keep their ids.
    let again = enqueue(
        &store,
        &[
            effect("x", None),
            effect("w", None),
            effect("z", Some("k2")),
        ],
    )
    .await;
    assert_eq!(again[0], first[0]);
    assert_eq!(again[2], first[2]);
    assert!(!first.contains(&again[1]));
    let all = store
        .effects_by_ids(&[first, again].concat())
        .await
        .unwrap();
    let mut keys: Vec<String> = all
        .iter()
        .map(|e| e.payload["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys, ["w", "x", "y", "z"]);
}

async fn outcomes_written_together_each_get_their_own_answer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let effects: Vec<NewEffect> = (0..40).map(|i| effect(&format!("e{i}"), None)).collect();
    let ids = enqueue(&store, &effects).await;
    assert_eq!(claim(&store, 100).await.len(), 40);
    // One lost its lease and went back to the queue: completing it must say so, while
    // the rest, written in the same batches, apply.
    let lost = ids[7];
    store
        .reschedule_effect(lost, Utc::now(), None, true, None)
        .await
        .unwrap();
    let soon = Utc::now() + chrono::Duration::minutes(5);
    let writes = ids.iter().map(|&id| {
        let store = store.clone();
        async move {
            match id % 3 {
                0 => store.complete_effect(id, "ok", None).await.unwrap(),
                1 => store.fail_effect(id, "no", None).await.unwrap(),
                _ => {
                    store
                        .reschedule_effect(id, soon, Some("later"), false, None)
                        .await
                        .unwrap();
                    id != lost
                }
            }
        }
    });
    let applied = futures::future::join_all(writes).await;
    for (id, applied) in ids.iter().zip(&applied) {
        assert_eq!(*applied, *id != lost, "effect {id}");
    }
    let after = store.effects_by_ids(&ids).await.unwrap();
    for e in after {
        let expected = match (e.id == lost, e.id % 3) {
            (true, _) | (false, 2) => EffectState::Pending,
            (false, 0) => EffectState::Done,
            (false, _) => EffectState::Failed,
        };
        assert_eq!(e.state, expected, "effect {}", e.id);
    }
}

/// Postgres lets a command queue an effect naming the one before it (still running in the
/// command's snapshot) while the worker finishes that one in another transaction, whose
/// clearing cannot see the uncommitted row. The new effect must still be claimable.
async fn an_effect_queued_while_the_one_before_finishes_is_not_stranded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let before = enqueue(&store, &[effect("before", Some("inc-1"))]).await[0];
    assert_eq!(claim(&store, 10).await, vec![before]);
    let after = match backend {
        Backend::Postgres => {
            let mut tx = store.begin().await.unwrap();
            let after = tx
                .enqueue_effect(&effect("after", Some("inc-1")))
                .await
                .unwrap();
            assert!(store.complete_effect(before, "ok", None).await.unwrap());
            tx.commit().await.unwrap();
            after
        }
        // One writer at a time: the two orders are the only cases.
        Backend::Sqlite => {
            assert!(store.complete_effect(before, "ok", None).await.unwrap());
            enqueue(&store, &[effect("after", Some("inc-1"))]).await[0]
        }
    };
    assert_eq!(claim(&store, 10).await, vec![after]);
}

/// A fan-out queues its children without reading their ids back (`Tx::queue_effects`, held
/// until the commit on SQLite): nothing shows before the commit, nothing after a rollback,
/// a child already queued keeps its row, and children sharing an ordering key still wait
/// for each other.
async fn a_fan_outs_children_go_with_its_commit_in_order_and_keep_queued_ones(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let queued = enqueue(&store, &[effect("notice:C1", Some("C1"))]).await[0];
    let children = [
        effect("notice:C1", Some("C1")),
        effect("reply:C1", Some("C1")),
        effect("notice:C2", Some("C2")),
    ];
    let unfinished = || async { store.unfinished_effects(100).await.unwrap() };

    let mut tx = store.begin().await.unwrap();
    tx.queue_effects(&children).await.unwrap();
    drop(tx);
    assert_eq!(
        unfinished().await.len(),
        1,
        "a rolled-back fan-out queues nothing"
    );

    let mut tx = store.begin().await.unwrap();
    tx.queue_effects(&children).await.unwrap();
    assert_eq!(
        unfinished().await.len(),
        1,
        "nothing shows before the commit"
    );
    tx.commit().await.unwrap();
    let all = unfinished().await;
    let id_of = |key: &str| {
        let found = all.iter().find(|e| e.payload["key"] == key);
        found
            .map(|e| e.id)
            .unwrap_or_else(|| panic!("{key} queued: {all:?}"))
    };
    assert_eq!(all.len(), 3, "one row per key: {all:?}");
    assert_eq!(id_of("notice:C1"), queued, "the queued child keeps its row");
    let (reply, other) = (id_of("reply:C1"), id_of("notice:C2"));
    let mut first = claim(&store, 10).await;
    first.sort();
    assert_eq!(
        first,
        vec![queued, other],
        "the reply waits for its channel's notice"
    );
    assert!(store.complete_effect(queued, "ok", None).await.unwrap());
    assert_eq!(claim(&store, 10).await, vec![reply]);
}

async fn effects_queued_with_the_commit_return_their_ids_and_keep_queued_ones(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let queued = enqueue(&store, &[effect("notice:C1", Some("C1"))]).await[0];
    let effects = [
        effect("reply:C1", Some("C1")),
        effect("notice:C1", Some("C1")),
        effect("notice:C2", Some("C2")),
        effect("card", None),
    ];
    let tx = store.begin().await.unwrap();
    let ids = tx.commit_enqueuing(&effects).await.unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[1], queued, "a queued key keeps its row and id");
    let stored = store.effects_by_ids(&ids).await.unwrap();
    for (id, e) in ids.iter().zip(&effects) {
        let row = stored
            .iter()
            .find(|s| s.id == *id)
            .expect("every id names a row");
        assert_eq!(
            row.idempotency_key, e.idempotency_key,
            "ids in the effects' order"
        );
    }
    assert_eq!(store.unfinished_effects(100).await.unwrap().len(), 4);
    // Nothing to queue still commits what the transaction wrote.
    let mut tx = store.begin().await.unwrap();
    tx.queue_effects(&[effect("held", None)]).await.unwrap();
    assert!(tx.commit_enqueuing(&[]).await.unwrap().is_empty());
    assert_eq!(store.unfinished_effects(100).await.unwrap().len(), 5);
}

async fn effects_queued_with_a_failing_commit_leave_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let mut bad = effect("bad", None);
    bad.incident_id = Some(firebreak::incident::model::IncidentId(
        "no-such-incident".into(),
    ));
    let tx = store.begin().await.unwrap();
    let err = tx
        .commit_enqueuing(&[effect("good", None), bad])
        .await
        .expect_err("an effect naming no incident breaks its foreign key");
    assert!(!format!("{err:#}").is_empty());
    assert!(
        store.unfinished_effects(100).await.unwrap().is_empty(),
        "nothing of the failed transaction stays"
    );
    // The writer is usable after the failure.
    let tx = store.begin().await.unwrap();
    assert_eq!(
        tx.commit_enqueuing(&[effect("after", None)])
            .await
            .unwrap()
            .len(),
        1
    );
}
