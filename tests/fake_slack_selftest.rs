//! Proves the fake Slack Web API in `common/fake_slack.rs` speaks well enough for a real
//! slack-morphism client: every method firebreak uses is called through slack-morphism and
//! its answer parsed into slack-morphism's response types.

#[path = "common/fake_slack.rs"]
mod fake_slack;

use std::time::{Duration, Instant};

use fake_slack::{BOT_USER, Failure, FakeSlack};
use serde_json::json;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

/// A client built the way the product builds it, pointed at the fake.
fn client(fake: &FakeSlack) -> SlackClient<impl SlackClientHttpConnector + Send + Sync> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .unwrap()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(&fake.url);
    SlackClient::new(connector)
}

fn token() -> SlackApiToken {
    SlackApiToken::new(SlackApiTokenValue::new("xoxb-test".into()))
}

fn api_code(e: SlackClientError) -> String {
    match e {
        SlackClientError::ApiError(e) => e.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn slack_morphism_can_call_and_parse_every_method() {
    let fake = FakeSlack::start().await;
    let client = client(&fake);
    let token = token();
    let session = client.open_session(&token);

    // conversations.create, then name_taken for the same name.
    let create =
        SlackApiConversationsCreateRequest::new("inc-42-db-down".into()).with_is_private(false);
    let created = session.conversations_create(&create).await.unwrap();
    let channel = created.channel.id.clone();
    assert_eq!(channel.0, "C0001");
    assert_eq!(created.channel.name.as_deref(), Some("inc-42-db-down"));
    assert_eq!(created.channel.flags.is_private, Some(false));
    let err = session.conversations_create(&create).await.unwrap_err();
    assert!(
        matches!(&err, SlackClientError::ApiError(e) if e.code == "name_taken"),
        "{err:?}"
    );
    let bad = SlackApiConversationsCreateRequest::new("Has Spaces".into());
    assert_eq!(
        api_code(session.conversations_create(&bad).await.unwrap_err()),
        "invalid_name_specials"
    );

    // conversations.invite and conversations.setTopic.
    let users = vec![SlackUserId::new("U1".into()), SlackUserId::new("U2".into())];
    let invite = SlackApiConversationsInviteRequest::new(channel.clone(), users);
    let invited = session.conversations_invite(&invite).await.unwrap();
    assert_eq!(invited.channel.id, channel);
    assert_eq!(invited.channel.num_members, Some(3));
    let err = session.conversations_invite(&invite).await.unwrap_err();
    assert_eq!(api_code(err), "already_in_channel");
    let topic = SlackApiConversationsSetTopicRequest::new(channel.clone(), "SEV1: db down".into());
    let set = session.conversations_set_topic(&topic).await.unwrap();
    assert_eq!(set.topic.as_deref(), Some("SEV1: db down"));
    let (_, name, topic, members) = fake.channels().remove(0);
    assert_eq!(
        (name.as_str(), topic.as_deref()),
        ("inc-42-db-down", Some("SEV1: db down"))
    );
    assert_eq!(members, [BOT_USER, "U1", "U2"]);

    // chat.postMessage with Block Kit blocks.
    let blocks: Vec<SlackBlock> = serde_json::from_value(json!([
        {"type": "header", "text": {"type": "plain_text", "text": "Incident 42"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* db down"}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "ack", "text": {"type": "plain_text", "text": "Ack"}, "value": "42"}
        ]}
    ]))
    .unwrap();
    let content = SlackMessageContent::new()
        .with_text("Incident 42".into())
        .with_blocks(blocks.clone());
    let post = SlackApiChatPostMessageRequest::new(channel.clone(), content);
    let posted = session.chat_post_message(&post).await.unwrap();
    let card_ts = posted.ts.clone();
    assert_eq!(card_ts.0, "1700000000.000200");
    assert_eq!(posted.channel, channel);
    assert_eq!(posted.message.content.text.as_deref(), Some("Incident 42"));
    assert_eq!(
        posted.message.content.blocks.as_ref().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        posted.message.sender.user.as_ref().map(|u| u.0.as_str()),
        Some(BOT_USER)
    );

    // chat.update, and message_not_found for an unknown ts.
    let content = SlackMessageContent::new()
        .with_text("Incident 42 (mitigated)".into())
        .with_blocks(blocks);
    let update = SlackApiChatUpdateRequest::new(channel.clone(), content.clone(), card_ts.clone());
    let updated = session.chat_update(&update).await.unwrap();
    assert_eq!((&updated.channel, &updated.ts), (&channel, &card_ts));
    assert_eq!(
        updated.message.content.text.as_deref(),
        Some("Incident 42 (mitigated)")
    );
    let missing =
        SlackApiChatUpdateRequest::new(channel.clone(), content, SlackTs::new("1.000000".into()));
    assert_eq!(
        api_code(session.chat_update(&missing).await.unwrap_err()),
        "message_not_found"
    );

    // pins.add, twice.
    let pin = SlackApiPinsAddRequest::new(channel.clone(), card_ts.clone());
    session.pins_add(&pin).await.unwrap();
    assert_eq!(
        api_code(session.pins_add(&pin).await.unwrap_err()),
        "already_pinned"
    );
    assert_eq!(fake.pins(), [(channel.0.clone(), card_ts.0.clone())]);

    // chat.postMessage in a thread.
    let content = SlackMessageContent::new().with_text("timeline: paged db on-call".into());
    let reply = SlackApiChatPostMessageRequest::new(channel.clone(), content)
        .with_thread_ts(card_ts.clone());
    let reply = session.chat_post_message(&reply).await.unwrap();
    assert_eq!(reply.message.origin.thread_ts.as_ref(), Some(&card_ts));
    assert!(reply.ts.0 > card_ts.0);

    // chat.postEphemeral.
    let content = SlackMessageContent::new().with_text("only you can see this".into());
    let eph = SlackApiChatPostEphemeralRequest::new(
        channel.clone(),
        SlackUserId::new("U1".into()),
        content,
    );
    session.chat_post_ephemeral(&eph).await.unwrap();

    // views.open with a modal.
    let view: SlackView = serde_json::from_value(json!({
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "blocks": [{
            "type": "input", "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "title"}
        }]
    }))
    .unwrap();
    let open = SlackApiViewsOpenRequest::new(SlackTriggerId::new("trig-1".into()), view);
    let opened = session.views_open(&open).await.unwrap();
    assert!(opened.view.state_params.id.0.starts_with('V'));
    match &opened.view.view {
        SlackView::Modal(m) => assert_eq!(
            m.callback_id.as_ref().map(|c| c.0.as_str()),
            Some("declare")
        ),
        other => panic!("expected a modal, got {other:?}"),
    }

    // chat.getPermalink.
    let link = SlackApiChatGetPermalinkRequest::new(channel.clone(), card_ts.clone());
    let link = session.chat_get_permalink(&link).await.unwrap();
    assert_eq!(
        link.permalink.as_str(),
        "https://example.slack.com/archives/C0001/p1700000000000200"
    );

    // conversations.history for a message put by the test, the way the product fetches one.
    fake.put_message("C0001", "1700000001.000001", "U7", "the replica is lagging");
    let ts = SlackTs::new("1700000001.000001".into());
    let history = SlackApiConversationsHistoryRequest::new()
        .with_channel(channel.clone())
        .with_latest(ts.clone())
        .with_oldest(ts.clone())
        .with_inclusive(true)
        .with_limit(1);
    let history = session.conversations_history(&history).await.unwrap();
    assert_eq!(history.messages.len(), 1);
    let m = &history.messages[0];
    assert_eq!(
        (m.origin.ts.0.as_str(), m.content.text.as_deref()),
        ("1700000001.000001", Some("the replica is lagging"))
    );
    assert_eq!(m.sender.user.as_ref().map(|u| u.0.as_str()), Some("U7"));
    let all = SlackApiConversationsHistoryRequest::new().with_channel(channel.clone());
    let all = session.conversations_history(&all).await.unwrap();
    let order: Vec<_> = all
        .messages
        .iter()
        .map(|m| m.origin.ts.0.as_str())
        .collect();
    assert_eq!(
        order,
        ["1700000001.000001", "1700000000.000200"],
        "newest first, no thread replies"
    );
    assert!(all.messages[1].edited.is_some());

    // conversations.replies for a thread reply returns the whole thread.
    let replies = SlackApiConversationsRepliesRequest::new(channel.clone(), reply.ts.clone());
    let replies = session.conversations_replies(&replies).await.unwrap();
    let thread: Vec<_> = replies
        .messages
        .iter()
        .map(|m| m.origin.ts.clone())
        .collect();
    assert_eq!(thread, [card_ts.clone(), reply.ts.clone()]);

    // users.info.
    let user = session
        .users_info(&SlackApiUsersInfoRequest::new(SlackUserId::new(
            "U7".into(),
        )))
        .await
        .unwrap();
    assert_eq!(user.user.id.0, "U7");

    // State and call log.
    let messages = fake.messages();
    let card = messages.iter().find(|m| m.ts == card_ts.0).unwrap();
    assert_eq!(
        (card.text.as_str(), card.edits),
        ("Incident 42 (mitigated)", 1)
    );
    assert_eq!(card.blocks.as_ref().unwrap()[0]["type"], "header");
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.thread_ts.as_ref() == Some(&card_ts.0))
            .count(),
        1
    );
    assert!(
        fake.calls()
            .iter()
            .all(|c| c.auth.as_deref() == Some("Bearer xoxb-test"))
    );
    let history_call = fake
        .calls()
        .into_iter()
        .find(|c| c.method == "conversations.history")
        .unwrap();
    assert_eq!(history_call.body["latest"], "1700000001.000001");
    assert_eq!(
        fake.methods(),
        [
            "conversations.create",
            "conversations.invite",
            "conversations.setTopic",
            "chat.postMessage",
            "chat.update",
            "pins.add",
            "chat.postMessage",
            "chat.postEphemeral",
            "views.open",
            "chat.getPermalink",
            "conversations.history",
            "conversations.history",
            "conversations.replies",
            "users.info",
        ]
    );
    assert_eq!(
        fake.calls().len(),
        fake.methods().len() + 5,
        "five failed calls"
    );
}

#[tokio::test]
async fn injected_failures_surface_as_slack_morphism_errors() {
    let fake = FakeSlack::start().await;
    let client = client(&fake);
    let token = token();
    let session = client.open_session(&token);
    let post = SlackApiChatPostMessageRequest::new(
        SlackChannelId::new("C0ANNOUNCE".into()),
        SlackMessageContent::new().with_text("hello".into()),
    );
    fake.fail_next(
        "chat.postMessage",
        vec![
            Failure::RateLimited {
                retry_after_secs: 1,
            },
            Failure::ServerError,
            Failure::ApiError("channel_not_found".into()),
        ],
    );

    match session.chat_post_message(&post).await.unwrap_err() {
        SlackClientError::RateLimitError(e) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    match session.chat_post_message(&post).await.unwrap_err() {
        SlackClientError::HttpError(e) => assert_eq!(e.status_code.as_u16(), 500),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert_eq!(
        api_code(session.chat_post_message(&post).await.unwrap_err()),
        "channel_not_found"
    );
    let posted = session.chat_post_message(&post).await.unwrap();
    assert_eq!(posted.channel.0, "C0ANNOUNCE");
    assert_eq!(fake.calls().len(), 4);
    assert_eq!(fake.methods(), ["chat.postMessage"]);

    // Latency is added before every answer.
    fake.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    session.chat_post_message(&post).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    fake.set_latency(Duration::ZERO);

    // Missing token and unknown methods.
    let anonymous = reqwest::Client::new();
    let answer: serde_json::Value = anonymous
        .post(format!("{}/chat.postMessage", fake.url))
        .form(&[("channel", "C1"), ("text", "hi")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"ok": false, "error": "not_authed"}));
    let form = fake.calls().pop().unwrap();
    assert_eq!(
        (form.body["channel"].as_str(), form.auth),
        (Some("C1"), None)
    );
    let unknown = anonymous
        .get(format!("{}/files.upload?channel=C1", fake.url))
        .bearer_auth("xoxb-test")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let answer: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(answer["error"], "unknown_method");
    assert_eq!(fake.methods(), ["chat.postMessage", "chat.postMessage"]);
}

#[tokio::test]
async fn outages_and_broken_channels_are_switched_on_and_off() {
    let fake = FakeSlack::start().await;
    let client = client(&fake);
    let token = token();
    let session = client.open_session(&token);
    let post = |channel: &str| {
        SlackApiChatPostMessageRequest::new(
            SlackChannelId::new(channel.into()),
            SlackMessageContent::new().with_text("hello".into()),
        )
    };
    fake.set_down(true);
    for _ in 0..3 {
        match session.chat_post_message(&post("C1")).await.unwrap_err() {
            SlackClientError::HttpError(e) => assert_eq!(e.status_code.as_u16(), 503),
            other => panic!("expected HTTP 503 while down, got {other:?}"),
        }
    }
    assert!(fake.messages().is_empty(), "nothing is posted while down");
    fake.set_down(false);
    session.chat_post_message(&post("C1")).await.unwrap();

    fake.break_channel("C0MISSING", "channel_not_found");
    for _ in 0..2 {
        assert_eq!(
            api_code(
                session
                    .chat_post_message(&post("C0MISSING"))
                    .await
                    .unwrap_err()
            ),
            "channel_not_found",
            "a broken channel stays broken"
        );
    }
    session.chat_post_message(&post("C2")).await.unwrap();
    assert_eq!(fake.calls().len(), 7);
    assert_eq!(fake.methods(), ["chat.postMessage", "chat.postMessage"]);
}
