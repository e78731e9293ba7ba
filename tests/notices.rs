//! Company-wide notices through the durable effects queue, against a local HTTP receiver:
//! delivery, retries, Retry-After, crashes between commit and delivery, permanent failures,
//! and the running server's worker and graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use firebreak::effects::EffectState;
use firebreak::incident::EntryKind;
use firebreak::store::Store;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both!(
    notice_is_delivered_to_the_receiver,
    notice_survives_two_failures_and_lands_once,
    retry_after_is_honoured,
    restarted_worker_delivers_after_a_crash,
    permanent_failure_is_visible_and_retryable,
    server_worker_delivers_and_shutdown_waits_for_running_effects,
    http_endpoints_answer,
    effects_with_one_ordering_key_run_in_order,
    hostile_text_and_long_updates_reach_webhooks_inert_and_bounded,
);

async fn receiver() -> MockServer {
    MockServer::start().await
}

/// A receiver that accepts every notice posted to `/hook`.
async fn accepting_receiver() -> MockServer {
    let server = receiver().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn hook(server: &MockServer) -> String {
    format!("{}/hook", server.uri())
}

async fn posted_texts(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("JSON body");
            v["text"].as_str().expect("text field").to_string()
        })
        .collect()
}

async fn notice_is_delivered_to_the_receiver(backend: Backend) {
    let server = accepting_receiver().await;
    let t = service(
        backend,
        test_config(&webhook("general", &hook(&server), "SEV2")),
    )
    .await;

    let out = t.ok("declare sev1 Checkout API returns 502").await;
    assert_eq!(out.effects.len(), 1);
    let report = t
        .app
        .worker
        .drain(&out.effects, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 1);

    let texts = posted_texts(&server).await;
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("🚨 INC-1 [SEV1] declared: Checkout API returns 502"),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("Status: investigating · Commander: unassigned"));

    // Below the webhook's threshold: nothing is queued.
    let quiet = t.ok("declare sev3 Minor typo").await;
    assert!(quiet.effects.is_empty());
    // A drill is labelled.
    let drill = t.ok("declare sev2 Region failover --drill").await;
    t.app
        .worker
        .drain(&drill.effects, Duration::from_secs(5))
        .await
        .unwrap();
    let texts = posted_texts(&server).await;
    assert!(texts[1].starts_with("[DRILL] "), "{}", texts[1]);

    let (_, timeline) = incident_timeline(&t.app.store, 1).await;
    let outcome = timeline
        .iter()
        .find(|e| e.kind == EntryKind::EffectSucceeded)
        .expect("outcome on the timeline");
    assert_eq!(outcome.text, "Notice posted to webhook \"general\"");
}

async fn notice_survives_two_failures_and_lands_once(backend: Backend) {
    let server = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let t = service(
        backend,
        test_config(&webhook("general", &hook(&server), "SEV4")),
    )
    .await;

    let out = t.ok("declare sev2 Payments degraded").await;
    let report = t
        .app
        .worker
        .drain(&out.effects, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 1, "{report:?}");
    let effect = &report.delivered[0];
    assert_eq!(effect.attempts, 3);
    assert_eq!(
        posted_texts(&server).await.len(),
        3,
        "two failures, then one delivery"
    );
    // Running the worker again delivers nothing more.
    assert_eq!(t.app.worker.run_batch(None).await.unwrap(), 0);
    server.verify().await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let server = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let t = service(
        backend,
        test_config(&webhook("general", &hook(&server), "SEV4")),
    )
    .await;

    let started = std::time::Instant::now();
    let out = t.ok("declare sev2 Rate limited").await;
    let report = t
        .app
        .worker
        .drain(&out.effects, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 1);
    // The test backoff is at most 200ms, so only the hint explains a wait of a second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

async fn restarted_worker_delivers_after_a_crash(backend: Backend) {
    let server = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let config = || test_config(&webhook("general", &hook(&server), "SEV4"));
    let db = TestDb::new(backend).await;

    // Process 1 commits the declaration and its notice, then dies before delivering.
    let first =
        firebreak::app::App::with_store(config(), db.store().await, Default::default()).unwrap();
    let out = first
        .service
        .apply(parse("declare sev1 DNS failures"), &alice())
        .await
        .unwrap();
    first.store.close().await;
    drop(first);
    assert!(posted_texts(&server).await.is_empty());

    // Process 2 starts on the same database and delivers it.
    let second =
        firebreak::app::App::with_store(config(), db.store().await, Default::default()).unwrap();
    let report = second
        .worker
        .drain(&out.effects, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 1);
    assert_eq!(posted_texts(&server).await.len(), 1);

    // A crash mid-delivery: the effect is claimed (leased) and its worker vanishes. Once
    // the lease expires, another worker takes it over.
    let out = second
        .service
        .apply(parse("update INC-1 Still failing"), &alice())
        .await
        .unwrap();
    let claimed = second
        .store
        .claim_effects(
            chrono::Utc::now(),
            Duration::from_millis(300),
            10,
            Some(&out.effects),
            "a-worker-that-dies",
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        second.worker.run_batch(Some(&out.effects)).await.unwrap(),
        0,
        "leased elsewhere"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let report = second
        .worker
        .drain(&out.effects, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 1);
    assert_eq!(posted_texts(&server).await.len(), 2);
}

async fn permanent_failure_is_visible_and_retryable(backend: Backend) {
    let server = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let t = service(
        backend,
        test_config(&webhook("general", &hook(&server), "SEV4")),
    )
    .await;

    let out = t.ok("declare sev2 Webhook was deleted").await;
    let report = t
        .app
        .worker
        .drain(&out.effects, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 1, "a 404 is not retried");
    let failed = t.app.store.list_effects(true, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("webhook \"general\" answered HTTP 404")
    );
    let (_, timeline) = incident_timeline(&t.app.store, 1).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == EntryKind::EffectFailed && e.text.contains("HTTP 404"))
    );

    assert!(t.app.store.retry_effect(failed[0].id).await.unwrap());
    assert!(
        !t.app.store.retry_effect(failed[0].id).await.unwrap(),
        "only failed effects can be retried"
    );
    let report = t
        .app
        .worker
        .drain(&[failed[0].id], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.delivered.len(), 1);
    assert!(t.app.store.list_effects(true, 10).await.unwrap().is_empty());
}

async fn server_worker_delivers_and_shutdown_waits_for_running_effects(backend: Backend) {
    let server = receiver().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(700)))
        .mount(&server)
        .await;
    let t = spawn_app(
        backend,
        test_config(&webhook("general", &hook(&server), "SEV4")),
    )
    .await;
    let out = t
        .app
        .service
        .apply(parse("declare sev1 Everything is on fire"), &alice())
        .await
        .unwrap();
    // The worker is woken by the commit; wait until the receiver has the request in hand.
    assert!(
        eventually(5, || async {
            !server
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty()
        })
        .await
    );
    t.shutdown.cancel();
    t.handle.await.unwrap().unwrap();
    let store = Store::open(&t.db.url).await.unwrap();
    let effect = store.effect(out.effects[0]).await.unwrap().unwrap();
    assert_eq!(
        effect.state,
        EffectState::Done,
        "shutdown let the running effect finish"
    );
}

async fn http_endpoints_answer(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.app
        .service
        .apply(parse("declare sev2 Cache stampede"), &alice())
        .await
        .unwrap();
    let http = t.client();
    assert_eq!(
        http.get(t.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let ready = http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let list: Value = http
        .get(t.url("/api/incidents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["number"], 1);
    assert_eq!(list[0]["key"], "INC-1");
    assert_eq!(list[0]["severity"], "SEV2");
    let one: Value = http
        .get(t.url("/api/incidents/INC-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["timeline"][0]["offset"], "T+0s");
    assert_eq!(
        http.get(t.url("/api/incidents/INC-9"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let md = http
        .get(t.url("/incidents/INC-1/postmortem.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(md.status(), 200);
    assert!(
        md.text()
            .await
            .unwrap()
            .contains("\n# INC-1: Cache stampede")
    );
    let html = http
        .get(t.url("/incidents/1/postmortem.html"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<svg") && html.contains("<h2 id=\"timeline\">Timeline</h2>"));
    assert_eq!(
        http.get(t.url("/incidents/INC-7/postmortem.md"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let metrics = http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("firebreak_open_incidents{severity=\"SEV2\",drill=\"false\"} 1"),
        "{metrics}"
    );
    t.shutdown.cancel();
    t.handle.await.unwrap().unwrap();
}

fn parse(line: &str) -> firebreak::incident::Command {
    firebreak::incident::command::parse_line(line, Default::default()).unwrap()
}

async fn effects_with_one_ordering_key_run_in_order(backend: Backend) {
    use firebreak::effects::NewEffect;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let effect = |key: &str, ordering: Option<&str>| NewEffect {
        incident_id: None,
        kind: "test".into(),
        payload: serde_json::json!({}),
        idempotency_key: key.into(),
        ordering_key: ordering.map(str::to_string),
        audience: None,
        not_before: None,
        records: Vec::new(),
    };
    let mut tx = store.begin().await.unwrap();
    let first = tx
        .enqueue_effect(&effect("a", Some("inc-1")))
        .await
        .unwrap();
    let second = tx
        .enqueue_effect(&effect("b", Some("inc-1")))
        .await
        .unwrap();
    let free = tx.enqueue_effect(&effect("c", None)).await.unwrap();
    assert_eq!(
        tx.enqueue_effect(&effect("a", Some("inc-1")))
            .await
            .unwrap(),
        first,
        "idempotent"
    );
    tx.commit().await.unwrap();

    let now = chrono::Utc::now();
    let lease = Duration::from_secs(30);
    let ids = |v: Vec<firebreak::effects::Effect>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .claim_effects(now, lease, 10, None, "w")
            .await
            .unwrap()),
        vec![first, free]
    );
    // The first one fails and backs off: the second still waits behind it.
    store
        .reschedule_effect(
            first,
            now + chrono::Duration::seconds(1),
            Some("boom"),
            false,
            None,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_effects(now, lease, 10, None, "w")
            .await
            .unwrap()
            .is_empty()
    );
    let later = now + chrono::Duration::seconds(2);
    assert_eq!(
        ids(store
            .claim_effects(later, lease, 10, None, "w")
            .await
            .unwrap()),
        vec![first]
    );
    store.complete_effect(first, "ok", None).await.unwrap();
    assert_eq!(
        ids(store
            .claim_effects(later, lease, 10, None, "w")
            .await
            .unwrap()),
        vec![second]
    );
}

/// Issue 9, observed 1 and 7: a title or update with `<!channel>`, `<!here>`, a Slack link or
/// a bare `@here` reached every webhook live, and a huge update went out whole. Now the text
/// is escaped (no `<…>` from what people typed), every `@word` is broken with a word joiner,
/// and a notice is at most 4,000 characters.
async fn hostile_text_and_long_updates_reach_webhooks_inert_and_bounded(backend: Backend) {
    let server = accepting_receiver().await;
    let t = service(
        backend,
        test_config(&webhook("general", &hook(&server), "SEV2")),
    )
    .await;
    let hostile = "<!channel> <!here> <https://evil.example|click> @here @alice <@U0EVIL> R&D";
    let mut effects = t.ok(&format!("declare sev1 DB {hostile}")).await.effects;
    effects.extend(t.ok(&format!("update INC-1 {hostile}")).await.effects);
    let long = "<&>".repeat(1_333);
    effects.extend(t.ok(&format!("update INC-1 {long}")).await.effects);
    effects.extend(t.ok(&format!("resolve INC-1 {hostile}")).await.effects);
    let report = t
        .app
        .worker
        .drain(&effects, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let texts = posted_texts(&server).await;
    assert_eq!(texts.len(), 4, "{texts:#?}");
    for text in &texts {
        // The one mention the bot means: who declared it, from the stored identity.
        let unintended = text.replace("<@U_ALICE>", "");
        assert!(!unintended.contains('<'), "no live markup: {text}");
        assert!(
            !text.contains("@here") && !text.contains("@alice"),
            "{text}"
        );
        assert!(
            text.chars().count() <= firebreak::notify::WEBHOOK_TEXT,
            "{}",
            text.len()
        );
    }
    assert!(
        texts[0].contains("DB &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click&gt;")
    );
    assert!(
        texts[2].contains("(truncated; full text in `firebreak incident show INC-1`)"),
        "{}",
        texts[2]
    );
    assert!(texts[2].ends_with("Commander: unassigned"), "{}", texts[2]);
}
