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

on_both!(
    a_retried_mention_is_applied_and_answered_once,
    a_replayed_slash_command_is_applied_once,
    a_form_submitted_twice_declares_once
);

/// A running app with Slack pointed at a fresh fake, and a signed sender for it.
async fn slack_app(backend: Backend) -> (FakeSlack, TestApp, SlackSender) {
    let slack = FakeSlack::start().await;
    let app = spawn_app_with(
        backend,
        test_config(SLACK_CONFIG),
        integrations(&slack.url),
        None,
    )
    .await;
    let send = SlackSender::new(&app);
    (slack, app, send)
}

/// The same signed request sent three times (a replay within the five minutes the
/// timestamp check allows): one update, and the replays get the first answer again.
async fn a_replayed_slash_command_is_applied_once(backend: Backend) {
    let (_slack, app, send) = slack_app(backend).await;
    send.command("declare sev2 Search is slow", "C_ORIGIN", "U0ALICE")
        .await;
    let body = SlackSender::command_body(
        "/incident",
        "update INC-1 Reindexing",
        "C_ORIGIN",
        "U0ALICE",
    );
    let ts = chrono::Utc::now().timestamp();
    let mut replies = Vec::new();
    for _ in 0..3 {
        let resp = send
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                body.clone(),
                ts,
                None,
            )
            .await;
        assert_eq!(resp.status(), 200);
        replies.push(resp.text().await.unwrap());
    }
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    let updates = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Update)
        .count();
    assert_eq!(updates, 1, "{timeline:?}");
    assert!(replies[0].contains("update posted"), "{}", replies[0]);
    assert!(
        replies.iter().all(|r| *r == replies[0]),
        "the first answer, again: {replies:?}"
    );
}

/// A double-clicked "Declare" on the form: three submissions of one view, at once.
async fn a_form_submitted_twice_declares_once(backend: Backend) {
    let (_slack, app, send) = slack_app(backend).await;
    let submission = |trigger: &str| {
        json!({
            "type": "view_submission", "trigger_id": trigger,
            "user": { "id": "U0ALICE", "username": "alice" }, "team": { "id": "T0" },
            "view": { "id": "V0FORM1", "callback_id": "fb_declare", "private_metadata": "C_ORIGIN", "state": { "values": {
                "title": { "title": { "type": "plain_text_input", "value": "Payments API timing out" } },
                "severity": { "severity": { "type": "static_select", "selected_option": { "value": "sev2" } } }
            } } }
        })
    };
    let sends = ["1.1.a", "1.1.b", "1.1.c"].map(|t| send.interaction(submission(t)));
    for resp in futures::future::join_all(sends).await {
        assert_eq!(resp.status(), 200);
    }
    let incidents = app.app.store.list_incidents(false, 10).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
}

async fn a_retried_mention_is_applied_and_answered_once(backend: Backend) {
    let (slack, app, send) = slack_app(backend).await;
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
        let delivery = Delivery::new("slack", id);
        assert!(
            app.app.store.delivery_seen(&delivery).await.unwrap(),
            "{id}"
        );
    }
}
