//! Slack's retried deliveries (issue 8): an event id is recorded in the same transaction as
//! what the event causes, so a retry is answered 200 and changes nothing, and the answer to
//! a mention is keyed by the event, so it is sent once. On SQLite and Postgres.

mod common;

use common::fake_slack::FakeSlack;
use common::slack::{SLACK_CONFIG, SlackSender, integrations};
use common::*;
use firebreak::incident::EntryKind;
use firebreak::store::Delivery;
use serde_json::json;

on_both!(a_retried_mention_is_applied_and_answered_once);

async fn a_retried_mention_is_applied_and_answered_once(backend: Backend) {
    let slack = FakeSlack::start().await;
    let app = spawn_app_with(
        backend,
        test_config(SLACK_CONFIG),
        integrations(&slack.url),
        None,
    )
    .await;
    let send = SlackSender::new(&app);
    send.command("declare sev2 Search is slow", "C_ORIGIN", "U0ALICE")
        .await;
    assert!(queue_idle(&app.app.store, 15).await);
    let mention = |text: &str| {
        json!({ "type": "app_mention", "user": "U0BOB", "channel": "C_ORIGIN", "text": text,
                "ts": "1700000300.000100", "event_ts": "1700000300.000100" })
    };
    for _ in 0..3 {
        let note = mention("<@U0BOT> note INC-1 index rebuilt at 03:10");
        assert_eq!(send.event("Ev_NOTE", note).await.status(), 200);
        let help = mention("<@U0BOT> help");
        assert_eq!(send.event("Ev_HELP", help).await.status(), 200);
    }
    assert!(queue_idle(&app.app.store, 15).await);

    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    let notes: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Note)
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let answers: Vec<String> = slack
        .successful_calls()
        .into_iter()
        .filter(|c| c.method == "chat.postEphemeral")
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(answers.len(), 2, "one answer per event: {answers:?}");
    for id in ["Ev_NOTE", "Ev_HELP"] {
        let delivery = Delivery {
            source: "slack",
            id: id.into(),
        };
        assert!(
            app.app.store.delivery_seen(&delivery).await.unwrap(),
            "{id}"
        );
    }
}
