//! Contract test: the declare → update → status → resolve flow with the bot's Slack Web API
//! calls pointed at the validating mock built from Slack's published OpenAPI description
//! (`tests/contracts/mock-api slack PORT`, serving the vendored
//! `tests/contracts/slack-web.openapi.json`). Any call the real Slack would reject comes
//! back as a 4xx, which fails the effect for good and this test with it; a second test
//! checks that the mock does reject such calls.
//!
//! Run by `scripts/contract-tests`, which starts the mock and sets
//! `FIREBREAK_CONTRACT_SLACK_URL`. Ignored in the plain `cargo test` run, which has no mock.

mod common;

use common::slack::{SLACK_CONFIG, SlackSender, integrations};
use common::*;
use firebreak::incident::EntryKind;
use serde_json::json;

fn contract_url() -> String {
    std::env::var("FIREBREAK_CONTRACT_SLACK_URL")
        .expect("FIREBREAK_CONTRACT_SLACK_URL (scripts/contract-tests sets it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the Slack contract mock; run scripts/contract-tests"]
async fn slack_calls_match_the_published_contract() {
    let url = contract_url();
    let config = test_config(&format!("max_attempts = 2\n{SLACK_CONFIG}"));
    let app = spawn_app_with(Backend::Sqlite, config, integrations(&url), None).await;
    let send = SlackSender::new(&app);

    // The longest title and update the core accepts (200 and 4,000 characters): every card,
    // notice and edit must still be within Block Kit's limits (issue 9).
    let title: String = format!("Checkout API returns 502 <!here> & 🚀 {}", "x".repeat(200))
        .chars()
        .take(200)
        .collect();
    let long_update: String = "Rolled back deploy <b>4512</b> & 👍🏽 "
        .repeat(200)
        .chars()
        .take(3_990)
        .collect();
    let reply = send
        .command(&format!("declare sev1 {title}"), "C_ORIGIN", "U0ALICE")
        .await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    settle(&app).await;
    // The mock answers every conversations.create with its example channel; commands typed
    // there apply to the incident.
    let channel = app
        .app
        .store
        .chat_refs(&incident_id(&app).await, "slack")
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.role == "channel")
        .expect("channel recorded")
        .channel_id;
    for line in [
        "update Rolled back deploy --next 30m".to_string(),
        format!("update {} --next 30m", long_update.trim_end()),
        "assign comms <@U012AB3CD|carol>".into(),
        "status mitigated".into(),
        format!("resolve {}", long_update.trim_end()),
    ] {
        send.command(&line, &channel, "U0ALICE").await;
        settle(&app).await;
    }

    let failed = app.app.store.list_effects(true, 50).await.unwrap();
    assert!(
        failed.is_empty(),
        "Slack rejected calls: {:#?}",
        failed
            .iter()
            .map(|e| (&e.kind, &e.last_error))
            .collect::<Vec<_>>()
    );
    let all = app.app.store.list_effects(false, 100).await.unwrap();
    assert!(
        all.len() >= 10,
        "the flow exercised the Slack effects: {}",
        all.len()
    );
    let timeline = app
        .app
        .store
        .timeline(&incident_id(&app).await)
        .await
        .unwrap();
    assert!(!timeline.iter().any(|e| e.kind == EntryKind::EffectFailed));
}

/// The mock is no pushover: calls shaped like firebreak's, each broken in one place real
/// Slack checks (no token, a missing required argument, a wrong type), are rejected, naming
/// what is wrong. This is what makes the test above mean something, and it shows the
/// vendored, trimmed description kept what validation needs.
#[tokio::test]
#[ignore = "needs the Slack contract mock; run scripts/contract-tests"]
async fn the_mock_rejects_what_slack_would_reject() {
    let url = contract_url();
    let http = reqwest::Client::new();
    let cases = [
        (
            "chat.postMessage",
            None,
            json!({ "channel": "C1", "text": "hi" }),
            401,
            "security",
        ),
        (
            "chat.postMessage",
            Some("xoxb-test-token"),
            json!({ "text": "hi" }),
            422,
            "'channel'",
        ),
        (
            "chat.update",
            Some("xoxb-test-token"),
            json!({ "channel": "C1", "text": "hi" }),
            422,
            "'ts'",
        ),
        (
            "conversations.create",
            Some("xoxb-test-token"),
            json!({ "name": 5 }),
            422,
            "name",
        ),
        (
            "conversations.invite",
            Some("xoxb-test-token"),
            json!({ "channel": "C1", "users": 5 }),
            422,
            "users",
        ),
        (
            "views.open",
            Some("xoxb-test-token"),
            json!({ "view": {} }),
            422,
            "'trigger_id'",
        ),
    ];
    for (method, token, body, want, named) in cases {
        let mut req = http.post(format!("{url}/{method}")).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("the mock answers");
        let (status, violations) = mock_verdict(&resp);
        assert_eq!(
            status, want,
            "{method} with {body} was not rejected: {violations}"
        );
        assert!(
            violations.contains(named),
            "{method}: the rejection names {named}: {violations}"
        );
    }
}

async fn incident_id(app: &TestApp) -> firebreak::incident::IncidentId {
    app.app
        .store
        .incident_by_number(firebreak::incident::IncidentNumber(1))
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn settle(app: &TestApp) {
    let idle = queue_idle(&app.app.store, 30).await;
    assert!(idle, "effects did not settle");
}
