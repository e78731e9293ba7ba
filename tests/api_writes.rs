//! The API for machines: declaring, updating, changing status and resolving over HTTP as an
//! API token's actor (`api:<name>`), through the same service and permissions as chat; and
//! `Idempotency-Key`: one change per key, the first answer again for a retry, 422 for the
//! same key with another body, kept across a restart. On SQLite and Postgres.

mod common;

use common::machine::MachineApi;
use common::*;
use firebreak::http::idempotency;
use firebreak::incident::{EntryKind, Severity, Source, Status};
use serde_json::json;

on_both!(
    declaring_twice_with_one_key_makes_one_incident,
    concurrent_requests_with_one_key_make_one_change,
    one_key_with_another_body_is_422,
    updates_status_and_resolve_run_as_the_token,
    permissions_name_api_callers,
    user_errors_are_sentences,
    a_restart_keeps_idempotency_keys,
    a_key_whose_answer_was_lost_changes_nothing_again,
    a_key_just_recorded_waits_for_its_answer,
    one_key_with_the_same_json_in_another_order_is_a_retry,
    resolving_with_an_empty_body_needs_no_summary,
    a_wrong_next_names_the_field,
    a_write_answers_with_the_newest_entries_only,
);

const BOTH: &[&str] = &["declare", "update"];

fn checkout() -> serde_json::Value {
    json!({ "title": "Checkout API returns 502", "severity": "sev2", "description": "From the synthetic check." })
}

async fn declaring_twice_with_one_key_makes_one_incident(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    let first = api.post("/api/incidents", &checkout(), Some("key-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(!first.replayed);
    assert_eq!(first.body["key"], "INC-1");
    assert_eq!(first.body["severity"], "SEV2");
    assert_eq!(first.body["declared_by"], "api:ci");
    let second = api.post("/api/incidents", &checkout(), Some("key-1")).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert!(second.replayed, "the retry is answered from the key");
    assert_eq!(second.body, first.body, "the first answer, again");
    assert_eq!(api.incident_count().await, 1);
    // Without a key, the same body is a new declaration.
    let third = api.post("/api/incidents", &checkout(), None).await;
    assert_eq!(third.body["key"], "INC-2");
    // Another token's key of the same name is its own.
    let other = api
        .as_caller("other", BOTH)
        .await
        .post("/api/incidents", &checkout(), Some("key-1"))
        .await;
    assert_eq!((other.status, other.replayed), (201, false));
    assert_eq!(api.incident_count().await, 3);
}

async fn concurrent_requests_with_one_key_make_one_change(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    let body = checkout();
    let answers =
        futures::future::join_all((0..8).map(|_| api.post("/api/incidents", &body, Some("race"))))
            .await;
    let summary: Vec<_> = answers
        .iter()
        .map(|a| (a.status, a.replayed, a.body["key"].clone()))
        .collect();
    assert_eq!(api.incident_count().await, 1, "{summary:?}");
    for a in &answers {
        assert_eq!(a.status, 201, "{a:?}");
        assert_eq!(a.body["key"], "INC-1");
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    // Updates race the same way: one entry on the timeline.
    let update = json!({ "text": "Rolled back the deploy." });
    let answers = futures::future::join_all(
        (0..6).map(|_| api.post("/api/incidents/INC-1/updates", &update, Some("u1"))),
    )
    .await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let updates = api
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == EntryKind::Update)
        .count();
    assert_eq!(updates, 1);
}

async fn one_key_with_another_body_is_422(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    assert_eq!(
        api.post("/api/incidents", &checkout(), Some("k"))
            .await
            .status,
        201
    );
    let other = json!({ "title": "Another outage", "severity": "sev1" });
    let refused = api.post("/api/incidents", &other, Some("k")).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert!(
        refused
            .error()
            .contains("already used with a different request"),
        "{}",
        refused.error()
    );
    // The same key on another route is another request too.
    let update = api
        .post(
            "/api/incidents/1/updates",
            &json!({ "text": "x" }),
            Some("k"),
        )
        .await;
    assert_eq!(update.status, 422);
    assert_eq!(api.incident_count().await, 1);
    assert_eq!(
        api.timeline(1).await.len(),
        2,
        "declared and its description"
    );
}

async fn updates_status_and_resolve_run_as_the_token(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "deploybot", BOTH).await;
    api.post("/api/incidents", &checkout(), None).await;
    let update = api
        .post(
            "/api/incidents/INC-1/updates",
            &json!({ "text": "Rolled back release 412.", "next": "15m" }),
            None,
        )
        .await;
    assert_eq!(update.status, 200, "{:?}", update.body);
    let last = update.body["timeline"].as_array().unwrap().last().unwrap();
    assert_eq!(last["text"], "Rolled back release 412.");
    assert_eq!(last["actor"], "api:deploybot");
    assert_eq!(last["source"], "api");
    let status = api
        .post(
            "/api/incidents/1/status",
            &json!({ "status": "mitigated" }),
            None,
        )
        .await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["status"], "mitigated");
    let resolved = api
        .post(
            "/api/incidents/1/resolve",
            &json!({ "summary": "Bad release rolled back." }),
            None,
        )
        .await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    let inc = api
        .app
        .store
        .incident_by_number(firebreak::incident::IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.status, Status::Resolved);
    assert_eq!(inc.summary.as_deref(), Some("Bad release rolled back."));
    assert_eq!(inc.severity, Severity::Sev2);
    let timeline = api.timeline(1).await;
    assert!(
        timeline.iter().all(|e| e.source == Source::Api),
        "{timeline:?}"
    );
    let again = api.post("/api/incidents/1/resolve", &json!({}), None).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.error(), "The incident is already resolved.");
}

async fn permissions_name_api_callers(backend: Backend) {
    let config = test_config(
        "[permissions]\ndeclare = [\"api:alertmanager\"]\nresolve = [\"slack:U0BOSS\"]\n",
    );
    let api = MachineApi::start(backend, config, "alertmanager", BOTH).await;
    let ok = api.post("/api/incidents", &checkout(), None).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let stranger = api
        .as_caller("grafana", BOTH)
        .await
        .post("/api/incidents", &checkout(), Some("g1"))
        .await;
    assert_eq!(stranger.status, 403, "{:?}", stranger.body);
    assert!(
        stranger.error().contains("[permissions] declare"),
        "{}",
        stranger.error()
    );
    let resolve = api.post("/api/incidents/1/resolve", &json!({}), None).await;
    assert_eq!(resolve.status, 403);
    assert_eq!(api.incident_count().await, 1);
    let audit = api.app.store.audit_log(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.kind == EntryKind::Refused && e.actor == "api:grafana"),
        "the refusal is recorded as the token's actor: {audit:?}"
    );
    let timeline = api.timeline(1).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == EntryKind::Refused && e.actor == "api:alertmanager")
    );
}

async fn user_errors_are_sentences(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", &["declare"]).await;
    let cases = [
        (
            "/api/incidents",
            "{\"title\": \"x\"}",
            400,
            "missing field `severity`",
        ),
        (
            "/api/incidents",
            "not json",
            400,
            "not what POST /api/incidents takes",
        ),
        (
            "/api/incidents",
            "{\"title\": \"x\", \"severity\": \"sev9\"}",
            400,
            "\"sev9\" is not a severity",
        ),
        (
            "/api/incidents",
            "{\"title\": \" \", \"severity\": \"sev1\"}",
            400,
            "title",
        ),
    ];
    for (path, body, status, says) in cases {
        let a = api.post_raw(path, body).await;
        assert_eq!(a.status, status, "{body}: {:?}", a.body);
        assert!(a.error().contains(says), "{body}: {}", a.error());
    }
    let no_scope = api
        .post("/api/incidents/1/updates", &json!({ "text": "x" }), None)
        .await;
    assert_eq!(no_scope.status, 403);
    assert!(
        no_scope.error().contains("update scope"),
        "{}",
        no_scope.error()
    );
    let updater = api.as_caller("ops", &["update"]).await;
    let missing = updater
        .post("/api/incidents/7/updates", &json!({ "text": "x" }), None)
        .await;
    assert_eq!(
        (missing.status, missing.error()),
        (404, "There is no incident INC-7.")
    );
    let bad_number = updater
        .post(
            "/api/incidents/abc/status",
            &json!({ "status": "mitigated" }),
            None,
        )
        .await;
    assert_eq!(bad_number.status, 400);
    let bad_key = api
        .post("/api/incidents", &checkout(), Some("has space"))
        .await;
    assert_eq!(bad_key.status, 400);
    assert!(
        bad_key.error().contains("Idempotency-Key"),
        "{}",
        bad_key.error()
    );
    let anonymous = api.post_anonymous("/api/incidents", &checkout()).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(api.incident_count().await, 0);
}

async fn a_restart_keeps_idempotency_keys(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    let first = api
        .post("/api/incidents", &checkout(), Some("k-restart"))
        .await;
    assert_eq!(first.status, 201);
    let api = api.restart(test_config("")).await;
    let again = api
        .post("/api/incidents", &checkout(), Some("k-restart"))
        .await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, first.body);
    let other = json!({ "title": "Different", "severity": "sev1" });
    assert_eq!(
        api.post("/api/incidents", &other, Some("k-restart"))
            .await
            .status,
        422
    );
    assert_eq!(api.incident_count().await, 1);
}

/// What a crash between the commit and keeping the answer leaves: the key recorded (with
/// the incident it declared, written by the declaration's own transaction) and no answer,
/// older than the grace for an answer on its way. A retry is answered at once with the
/// incident as it is now, marked as standing in for the lost answer (and that answer is
/// kept); nothing is applied twice.
async fn a_key_whose_answer_was_lost_changes_nothing_again(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    let body = checkout();
    let first = api
        .post("/api/incidents", &body, Some("lost-declare"))
        .await;
    assert_eq!(first.status, 201);
    // An update recorded with its key in its own transaction, its answer lost.
    let update = json!({ "text": "Rolled back." });
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("idempotency-key", "lost-update".parse().unwrap());
    let path = "/api/incidents/1/updates";
    let updated =
        idempotency::delivery(&headers, "ci", "POST", path, update.to_string().as_bytes())
            .unwrap()
            .unwrap();
    let mut tx = api.app.store.begin().await.unwrap();
    assert!(tx.record_delivery(&updated).await.unwrap());
    tx.commit().await.unwrap();
    // Both answers lost a minute ago (the declaration's answer dropped).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&api.db.url).await.unwrap();
    sqlx::query("UPDATE inbound_seen SET reply = NULL, received_at = received_at - 60000 WHERE source = 'api'")
        .execute(&pool)
        .await
        .unwrap();
    let timeline_before = api.timeline(1).await.len();

    let started = std::time::Instant::now();
    let again = api
        .post("/api/incidents", &body, Some("lost-declare"))
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "answered at once: {:?}",
        started.elapsed()
    );
    assert_eq!(
        (again.status, again.replayed, again.answer_lost),
        (201, true, true),
        "{:?}",
        again.body
    );
    assert_eq!(again.body["key"], "INC-1");
    let third = api
        .post("/api/incidents", &body, Some("lost-declare"))
        .await;
    assert_eq!((third.replayed, third.answer_lost), (true, true), "kept");
    assert_eq!(third.body, again.body);

    let started = std::time::Instant::now();
    let change = api.post(path, &update, Some("lost-update")).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "answered at once: {:?}",
        started.elapsed()
    );
    assert_eq!(
        (change.status, change.replayed, change.answer_lost),
        (200, true, true),
        "{:?}",
        change.body
    );
    assert_eq!(change.body["key"], "INC-1");
    assert_eq!(api.incident_count().await, 1);
    assert_eq!(
        api.timeline(1).await.len(),
        timeline_before,
        "nothing applied again"
    );
    pool.close().await;
}

/// A key recorded a moment ago without its answer may be answered any moment: a retry
/// waits for it rather than calling it lost.
async fn a_key_just_recorded_waits_for_its_answer(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    api.post("/api/incidents", &checkout(), None).await;
    let update = json!({ "text": "Rolled back." });
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("idempotency-key", "in-flight".parse().unwrap());
    let path = "/api/incidents/1/updates";
    let delivery =
        idempotency::delivery(&headers, "ci", "POST", path, update.to_string().as_bytes())
            .unwrap()
            .unwrap();
    let mut tx = api.app.store.begin().await.unwrap();
    assert!(tx.record_delivery(&delivery).await.unwrap());
    tx.commit().await.unwrap();
    let store = api.app.store.clone();
    let kept = delivery.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let answer = json!({ "status": 200, "body": { "key": "INC-1", "first": true } });
        store
            .save_delivery_reply(&kept, &answer.to_string())
            .await
            .unwrap();
    });
    let retry = api.post(path, &update, Some("in-flight")).await;
    assert_eq!(
        (retry.status, retry.replayed, retry.answer_lost),
        (200, true, false)
    );
    assert_eq!(retry.body["first"], true, "the first answer, waited for");
}

/// A key compares what the JSON says, not how it is written: key order and spacing do not
/// make another request; another value does.
async fn one_key_with_the_same_json_in_another_order_is_a_retry(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    let first = api
        .post_text(
            "/api/incidents",
            r#"{"severity":"sev4","title":"x"}"#,
            Some("order"),
        )
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let reordered = api
        .post_text(
            "/api/incidents",
            "{ \"title\" : \"x\",\n  \"severity\": \"sev4\" }",
            Some("order"),
        )
        .await;
    assert_eq!(
        (reordered.status, reordered.replayed),
        (201, true),
        "{:?}",
        reordered.body
    );
    assert_eq!(reordered.body, first.body);
    let changed = api
        .post_text(
            "/api/incidents",
            r#"{"title":"x","severity":"sev3"}"#,
            Some("order"),
        )
        .await;
    assert_eq!(changed.status, 422, "{:?}", changed.body);
    assert_eq!(api.incident_count().await, 1);
}

/// `summary` is optional, so an empty body (`curl -X POST`, no Content-Type) resolves; a
/// route with required fields still says which is missing.
async fn resolving_with_an_empty_body_needs_no_summary(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    api.post("/api/incidents", &checkout(), None).await;
    let resolved = api.post_empty("/api/incidents/INC-1/resolve").await;
    assert_eq!(resolved.status, 200, "{:?}", resolved.body);
    assert_eq!(resolved.body["status"], "resolved");
    let declare = api.post_empty("/api/incidents").await;
    assert_eq!(declare.status, 400);
    assert!(
        declare.error().contains("missing field `title`"),
        "{}",
        declare.error()
    );
}

/// The API's `next` is a JSON field, not the CLI's `--next`: its error names the field.
async fn a_wrong_next_names_the_field(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    api.post("/api/incidents", &checkout(), None).await;
    for next in ["30s", "3d", "soon"] {
        let a = api
            .post(
                "/api/incidents/1/updates",
                &json!({ "text": "x", "next": next }),
                None,
            )
            .await;
        assert_eq!(a.status, 400, "{next}: {:?}", a.body);
        assert!(
            a.error().starts_with("\"next\" must be between 1m and 24h"),
            "{next}: {}",
            a.error()
        );
        assert!(!a.error().contains("--next"), "{}", a.error());
    }
    let updates = api
        .timeline(1)
        .await
        .into_iter()
        .filter(|e| e.kind == EntryKind::Update)
        .count();
    assert_eq!(updates, 0);
}

/// A write on a long incident answers with its 20 newest entries, how many there are and
/// where to read them all; `GET` still shows every entry.
async fn a_write_answers_with_the_newest_entries_only(backend: Backend) {
    let api = MachineApi::start(backend, test_config(""), "ci", BOTH).await;
    api.post("/api/incidents", &checkout(), None).await;
    for i in 0..30 {
        let a = api
            .post(
                "/api/incidents/1/updates",
                &json!({ "text": format!("step {i}") }),
                None,
            )
            .await;
        assert_eq!(a.status, 200);
    }
    let total = api.timeline(1).await.len();
    assert_eq!(total, 32, "declared, description, 30 updates");
    let a = api
        .post("/api/incidents/1/updates", &json!({ "text": "last" }), None)
        .await;
    let entries = a.body["timeline"].as_array().unwrap();
    assert_eq!(entries.len(), 20, "{:?}", a.body["timeline_total"]);
    assert_eq!(entries.last().unwrap()["text"], "last");
    assert_eq!(
        entries.first().unwrap()["text"],
        "step 11",
        "entries 14 to 33"
    );
    assert_eq!(a.body["timeline_total"], 33);
    assert_eq!(a.body["timeline_url"], "/api/incidents/INC-1");
}
