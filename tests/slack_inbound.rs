//! What people type in Slack, taken as they meant it (issue 9): Slack's escaping undone,
//! people stored by their Slack ids (and named from `users.info` in documents and the CLI),
//! retried commands and double-submitted forms applied once, and `ssl_check` answered.
//! Signed requests into the real endpoints, Web API calls into the fake Slack, on SQLite
//! and Postgres.

mod common;

use common::fake_slack::FakeSlack;
use common::slack::{SLACK_CONFIG, SlackSender, integrations};
use common::*;
use firebreak::incident::clock::ManualClock;
use firebreak::incident::{EntryKind, Identity};
use serde_json::{Value, json};

on_both!(
    typed_text_is_stored_as_typed,
    a_slash_command_ack_records_the_slack_id,
    people_named_in_commands_are_taken_by_id,
    identical_form_submissions_declare_once,
    a_retried_slash_command_gets_the_first_answer,
    ssl_check_answers_200,
    users_info_names_people_in_the_cli_the_api_and_the_postmortem,
    the_served_binary_decodes_and_stores_ids,
    a_delivery_seen_outside_its_window_is_new,
    a_declarations_delivery_and_number_go_together_and_a_retry_takes_none,
    a_predicted_number_is_checked_in_the_transaction_that_uses_it,
    a_pin_goes_through_the_permission_gate,
    the_declarer_is_invited_and_names_from_slack_are_cleaned,
    malformed_ids_and_a_bad_description_are_refused_where_they_are,
);

const FORM: &str = "application/x-www-form-urlencoded";

struct SlackApp {
    app: TestApp,
    slack: FakeSlack,
    send: SlackSender,
    clock: ManualClock,
}

async fn slack_app(backend: Backend) -> SlackApp {
    slack_app_with(backend, "").await
}

/// [`slack_app`] with more config (`[permissions]`).
async fn slack_app_with(backend: Backend, extra: &str) -> SlackApp {
    let slack = FakeSlack::start().await;
    let clock = ManualClock::starting_at(chrono::Utc::now());
    let app = spawn_app_with(
        backend,
        test_config(&format!("{SLACK_CONFIG}{extra}")),
        integrations(&slack.url),
        Some(clock.clone()),
    )
    .await;
    let send = SlackSender::new(&app);
    SlackApp {
        app,
        slack,
        send,
        clock,
    }
}

impl SlackApp {
    async fn settle(&self) {
        assert!(
            queue_idle(&self.app.app.store, 15).await,
            "effects did not settle: {:?}",
            self.app.app.store.list_effects(false, 50).await.unwrap()
        );
    }

    /// The incident channel as (id, name, topic, members).
    fn incident_channel(&self) -> (String, String, Option<String>, Vec<String>) {
        self.slack
            .channels()
            .into_iter()
            .find(|c| c.1.starts_with("inc-1-"))
            .expect("incident channel created")
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.slack
            .successful_calls()
            .into_iter()
            .filter(|c| c.method == method)
            .map(|c| c.body)
            .collect()
    }

    async fn incident(&self) -> firebreak::incident::Incident {
        incident_timeline(&self.app.app.store, 1).await.0
    }
}

/// "R&D wiki <b> down" typed in Slack arrives as `R&amp;D wiki &lt;b&gt; down`: stored as
/// typed, with the channel named from what was typed; mention text is decoded too.
async fn typed_text_is_stored_as_typed(backend: Backend) {
    let t = slack_app(backend).await;
    let reply = t
        .send
        .command(
            "declare sev1 R&amp;D wiki &lt;b&gt; down",
            "C_ORIGIN",
            "U0ALICE",
        )
        .await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    t.settle().await;
    assert_eq!(t.incident().await.title, "R&D wiki <b> down");
    let (ch, name, _, _) = t.incident_channel();
    assert_eq!(name, "inc-1-r-d-wiki-b-down");

    let mention = json!({ "type": "app_mention", "user": "U0BOB", "channel": ch,
        "text": "<@U0BOT> note see <https://wiki.example/r&amp;d|the R&amp;D doc>, ask <@U0CAROL|carol> in <#C9|ops> &lt;3",
        "ts": "1700000300.000100", "event_ts": "1700000300.000100" });
    assert_eq!(t.send.event("Ev_NOTE", mention).await.status(), 200);
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let note = timeline.iter().find(|e| e.kind == EntryKind::Note).unwrap();
    assert_eq!(
        note.text,
        "see the R&D doc (https://wiki.example/r&d), ask @carol in #ops <3"
    );
    assert_eq!(note.actor, "slack:U0BOB");

    let update = t
        .send
        .command(
            "update <!here> 50% &amp; rising: <mailto:ops@x.example|ops@x.example>",
            &ch,
            "U0ALICE",
        )
        .await;
    assert!(update["text"].as_str().unwrap().contains("update posted"));
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let posted = timeline
        .iter()
        .find(|e| e.kind == EntryKind::Update)
        .unwrap();
    assert_eq!(posted.text, "@here 50% & rising: ops@x.example");
}

/// `/incident ack` by U0BOB: the commander is `slack:U0BOB`, the topic mentions them,
/// they are invited, and the overdue nudge pings them.
async fn a_slash_command_ack_records_the_slack_id(backend: Backend) {
    let t = slack_app(backend).await;
    t.send
        .command(
            "declare sev1 Checkout API returns 502",
            "C_ORIGIN",
            "U0ALICE",
        )
        .await;
    t.settle().await;
    let (ch, _, _, _) = t.incident_channel();
    let reply = t.send.command("ack", &ch, "U0BOB").await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("Acknowledged by <@U0BOB>"),
        "the sentence names the person by id, which Slack shows as their name: {reply}"
    );
    t.settle().await;

    let inc = t.incident().await;
    assert_eq!(inc.commander.as_deref(), Some("slack:U0BOB"));
    assert_eq!(inc.declared_by, "slack:U0ALICE");
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    assert!(
        timeline
            .iter()
            .filter(|e| e.kind != EntryKind::EffectSucceeded)
            .all(|e| e.actor.starts_with("slack:U0")),
        "{timeline:?}"
    );
    let (_, _, topic, members) = t.incident_channel();
    let topic = topic.unwrap();
    assert!(topic.ends_with("commander <@U0BOB>"), "{topic}");
    assert!(members.contains(&"U0BOB".to_string()), "{members:?}");

    t.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(t.app.app.service.remind_overdue().await.unwrap(), 1);
    t.settle().await;
    let nudge = t
        .calls("chat.postMessage")
        .into_iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_string())
        .find(|text| text.contains("overdue"))
        .expect("nudged");
    assert!(nudge.contains("<@U0BOB>, please post one"), "{nudge}");
}

/// `assign` and `action add --owner` store the id Slack sent for a mention; a name Slack
/// sent no id for is refused with how to pick the person.
async fn people_named_in_commands_are_taken_by_id(backend: Backend) {
    let t = slack_app(backend).await;
    t.send
        .command("declare sev2 Search is slow", "C_ORIGIN", "U0ALICE")
        .await;
    t.settle().await;
    let (ch, _, _, _) = t.incident_channel();

    let reply = t
        .send
        .command("assign commander <@U0CAROL|carol>", &ch, "U0ALICE")
        .await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    let reply = t
        .send
        .command("assign comms <@U0DAVE>", &ch, "U0ALICE")
        .await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    let refused = t.send.command("assign scribe @erin", &ch, "U0ALICE").await;
    assert_eq!(refused["response_type"], "ephemeral");
    let text = refused["text"].as_str().unwrap();
    assert!(
        text.contains("Slack did not say who \"@erin\" is") && text.contains("autocomplete"),
        "{text}"
    );
    let reply = t
        .send
        .command("assign scribe slack:U0ERIN", &ch, "U0ALICE")
        .await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    t.send
        .command(
            "action add Add a canary --owner <@U0CAROL|carol>",
            &ch,
            "U0ALICE",
        )
        .await;
    t.settle().await;

    let inc = t.incident().await;
    assert_eq!(
        (
            inc.commander.as_deref(),
            inc.comms.as_deref(),
            inc.scribe.as_deref()
        ),
        (
            Some("slack:U0CAROL"),
            Some("slack:U0DAVE"),
            Some("slack:U0ERIN")
        )
    );
    let actions = t.app.app.store.action_items(&inc.id).await.unwrap();
    assert_eq!(actions[0].owner.as_deref(), Some("slack:U0CAROL"));
    let (_, _, topic, members) = t.incident_channel();
    assert!(topic.unwrap().ends_with("commander <@U0CAROL>"));
    for u in ["U0CAROL", "U0DAVE", "U0ERIN"] {
        assert!(members.contains(&u.to_string()), "{u} invited: {members:?}");
    }
}

/// The same `view_submission` three times (one view, one content, a double click and a
/// retry): one incident, one channel, one notice per channel. The same view with the title
/// changed is a new submission; someone else's identical one too.
async fn identical_form_submissions_declare_once(backend: Backend) {
    let t = slack_app(backend).await;
    let submission = |user: &str, title: &str| {
        json!({
            "type": "view_submission", "trigger_id": "7.7.trigger",
            "user": { "id": user, "username": user.to_lowercase() }, "team": { "id": "T0" },
            "view": { "id": "V0DECLARE", "callback_id": "fb_declare", "private_metadata": "C_ORIGIN",
                      "state": { "values": {
                          "title": { "title": { "type": "plain_text_input", "value": title } },
                          "severity": { "severity": { "type": "static_select", "selected_option": { "value": "sev1" } } } } } }
        })
    };
    let (a, b, c) = tokio::join!(
        t.send.interaction(submission("U0ALICE", "Payments down")),
        t.send.interaction(submission("U0ALICE", "Payments down")),
        t.send.interaction(submission("U0ALICE", "Payments down")),
    );
    for resp in [a, b, c] {
        assert_eq!(resp.status(), 200);
    }
    t.settle().await;
    let incidents = t.app.app.store.list_incidents(false, 10).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(t.calls("conversations.create").len(), 1, "one channel");
    for notice in ["C_INCIDENTS", "C_GENERAL"] {
        let posted = t
            .calls("chat.postMessage")
            .into_iter()
            .filter(|b| b["channel"] == notice)
            .count();
        assert_eq!(posted, 1, "one notice in {notice}");
    }
    assert_eq!(
        t.calls("chat.postEphemeral").len(),
        1,
        "one answer to the submitter"
    );

    // Form text is not escaped by Slack, so it is not decoded: `&amp;` typed stays.
    let resp = t
        .send
        .interaction(submission("U0ALICE", "Payments &amp; <b>refunds</b> down"))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = t
        .send
        .interaction(submission("U0BOB", "Payments down"))
        .await;
    assert_eq!(resp.status(), 200);
    let mut titles: Vec<String> = t
        .app
        .app
        .store
        .list_incidents(false, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.title)
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Payments &amp; <b>refunds</b> down",
            "Payments down",
            "Payments down"
        ]
    );
}

/// Slack retries a slash command it thinks timed out with `X-Slack-Retry-Num: 1`, a fresh
/// timestamp and signature, and the same body: declared once, and the retry gets the first
/// answer. Two people sending the same text are two commands.
async fn a_retried_slash_command_gets_the_first_answer(backend: Backend) {
    let t = slack_app(backend).await;
    let body = SlackSender::command_body(
        "/incident",
        "declare sev2 Search is slow",
        "C_ORIGIN",
        "U0ALICE",
    );
    let now = chrono::Utc::now().timestamp();
    let first = t
        .send
        .post_with("/slack/commands", FORM, body.clone(), now - 2, None, &[])
        .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert!(first["text"].as_str().unwrap().contains("INC-1"), "{first}");
    let retry = t
        .send
        .post_with(
            "/slack/commands",
            FORM,
            body.clone(),
            now,
            None,
            &[
                ("x-slack-retry-num", "1"),
                ("x-slack-retry-reason", "http_timeout"),
            ],
        )
        .await;
    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first, "the retry gets the first answer");
    let incidents = t.app.app.store.list_incidents(false, 10).await.unwrap();
    assert_eq!(incidents.len(), 1, "declared once: {incidents:?}");

    // A query answered without writing is kept too: the retry sees the same list.
    let list = SlackSender::command_body("/incident", "list", "C_ORIGIN", "U0ALICE");
    let a: Value = t
        .send
        .post("/slack/commands", FORM, list.clone())
        .await
        .json()
        .await
        .unwrap();
    let b: Value = t
        .send
        .post_with(
            "/slack/commands",
            FORM,
            list,
            now + 1,
            None,
            &[("x-slack-retry-num", "1")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);

    let bob = SlackSender::command_body(
        "/incident",
        "declare sev2 Search is slow",
        "C_ORIGIN",
        "U0BOB",
    );
    let resp = t.send.post("/slack/commands", FORM, bob).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        t.app
            .app
            .store
            .list_incidents(false, 10)
            .await
            .unwrap()
            .len(),
        2,
        "someone else's identical command is their own"
    );
}

/// Slack checks a slash command's certificate with `ssl_check=1`: an empty 200.
async fn ssl_check_answers_200(backend: Backend) {
    let t = slack_app(backend).await;
    let resp = reqwest::Client::new()
        .post(t.app.url("/slack/commands"))
        .header("content-type", FORM)
        .body("ssl_check=1&token=verification-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    // A command still needs its signature.
    let unsigned = reqwest::Client::new()
        .post(t.app.url("/slack/commands"))
        .header("content-type", FORM)
        .body(SlackSender::command_body(
            "/incident",
            "declare sev1 ssl_check=1",
            "C1",
            "U0EVE",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
}

/// Whoever acts in Slack gets their display name looked up once (`users.info`), and the
/// CLI, the JSON API and the post-mortem show it; someone never looked up shows as their id.
async fn users_info_names_people_in_the_cli_the_api_and_the_postmortem(backend: Backend) {
    let t = slack_app(backend).await;
    t.slack
        .set_user("U0ALICE", "Alice Liddell", "Alice P. Liddell");
    t.send
        .command("declare sev2 Search is slow", "C_ORIGIN", "U0ALICE")
        .await;
    t.settle().await;
    let (ch, _, _, _) = t.incident_channel();
    t.send.command("ack", &ch, "U0ALICE").await;
    t.send.command("note Reindexing", &ch, "U0ALICE").await;
    t.send
        .command("assign comms slack:U0NOBODY", &ch, "U0ALICE")
        .await;
    t.settle().await;
    assert_eq!(
        t.calls("users.info").len(),
        1,
        "looked up once, not on every command"
    );
    let alice = Identity::slack("U0ALICE").unwrap();
    let cached = t.app.app.store.person(&alice).await.unwrap().unwrap();
    assert_eq!(cached.display_name, "Alice Liddell");
    assert!(cached.fetched_at.is_some());

    // The CLI, on the same database.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("firebreak.toml"), "").unwrap();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"));
    cli.args(["incident", "show", "1"])
        .current_dir(dir.path())
        .env("FIREBREAK_DATABASE_URL", &t.app.db.url)
        .env("FIREBREAK_CONFIG", dir.path().join("firebreak.toml"))
        .env("USER", "carol")
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("SLACK_SIGNING_SECRET")
        .env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || cli.output().unwrap())
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("commander Alice Liddell · comms slack:U0NOBODY"),
        "{shown}"
    );
    assert!(
        shown.contains("note Alice Liddell (slack): Reindexing"),
        "{shown}"
    );

    // The JSON API: identities, each with its name.
    let list: Value = t
        .app
        .get("/api/incidents")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["commander"], "slack:U0ALICE");
    assert_eq!(list[0]["commander_name"], "Alice Liddell");
    assert_eq!(list[0]["declared_by_name"], "Alice Liddell");

    // The post-mortem.
    let view =
        firebreak::postmortem::load(&t.app.app.store, firebreak::incident::IncidentNumber(1))
            .await
            .unwrap()
            .unwrap();
    let md = firebreak::postmortem::render::markdown(&view).unwrap();
    assert!(md.contains("Commander: Alice Liddell"), "{md}");
    assert!(md.contains("slack:U0NOBODY became comms"), "{md}");
    assert!(!md.contains("slack:U0ALICE"), "{md}");
}

/// `firebreak serve` as a process, with Slack pointed at the fake: what was typed is stored
/// and shown as typed, and the person who acked by slash command is commander by id.
async fn the_served_binary_decodes_and_stores_ids(backend: Backend) {
    use common::process::{free_port, terminate};

    let slack = FakeSlack::start().await;
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"500ms\"\n\
         [effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"100ms\"\npoll_interval = \"20ms\"\n{SLACK_CONFIG}"
    );
    std::fs::write(dir.path().join("firebreak.toml"), config).unwrap();
    let token = {
        let store = db.store().await;
        let token = common::create_token(&store, "tests", "read").await;
        store.close().await;
        token
    };
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .arg("serve")
        .current_dir(dir.path())
        .env("FIREBREAK_DATABASE_URL", &db.url)
        .env("FIREBREAK_CONFIG", dir.path().join("firebreak.toml"))
        .env("SLACK_SIGNING_SECRET", common::slack::SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", "xoxb-serve")
        .env("SLACK_API_URL", &slack.url)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = common::process::answers_health(&http, &base).await;
    let send = SlackSender::at(base.clone());
    let result = async move {
        assert!(up, "serve answers");
        let reply = send
            .command(
                "declare sev1 R&amp;D wiki &lt;b&gt; down",
                "C_ORIGIN",
                "U0ALICE",
            )
            .await;
        assert_eq!(reply["response_type"], "in_channel", "{reply}");
        let channel = || {
            slack
                .channels()
                .into_iter()
                .find(|c| c.1.starts_with("inc-1-"))
        };
        // Set up: created, its people invited, its topic set (the channel is on record).
        assert!(eventually(10, || async { channel().is_some_and(|c| c.2.is_some()) }).await);
        let (ch, name, _, _) = channel().unwrap();
        assert_eq!(name, "inc-1-r-d-wiki-b-down");
        let reply = send.command("ack", &ch, "U0BOB").await;
        assert_eq!(reply["response_type"], "in_channel", "{reply}");
        let acked = eventually(10, || async {
            let (_, _, topic, members) = channel().unwrap();
            topic.is_some_and(|t| t.ends_with("commander <@U0BOB>"))
                && members.contains(&"U0BOB".to_string())
        })
        .await;
        assert!(acked, "topic and invite: {:?}", channel());
        let list: Value = http
            .get(format!("{base}/api/incidents"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list[0]["title"], "R&D wiki <b> down");
        assert_eq!(list[0]["commander"], "slack:U0BOB");
        assert_eq!(list[0]["declared_by"], "slack:U0ALICE");
    };
    // Stop the server whatever the outcome, then report.
    let outcome = tokio::spawn(result).await;
    terminate(&mut serve);
    let _ = tokio::task::spawn_blocking(move || serve.wait()).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// A content-keyed delivery counts as seen only within its window; after it, the same
/// content is a new delivery (and its old answer is forgotten).
async fn a_delivery_seen_outside_its_window_is_new(backend: Backend) {
    use firebreak::store::{Delivery, Seen};
    use std::time::Duration;

    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let record = |d: Delivery| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let new = tx.record_delivery(&d).await.unwrap();
            tx.commit().await.unwrap();
            new
        }
    };
    let within = Delivery::within("slack-command", "abc", Duration::from_secs(600));
    assert!(record(within.clone()).await);
    assert!(!record(within.clone()).await, "a retry within the window");
    store
        .save_delivery_reply(&within, "{\"text\":\"first\"}")
        .await
        .unwrap();
    store
        .save_delivery_reply(&within, "{\"text\":\"second\"}")
        .await
        .unwrap();
    assert_eq!(
        store.delivery_reply(&within).await.unwrap(),
        Seen::Answered("{\"text\":\"first\"}".into()),
        "the first answer stays"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = Delivery::within("slack-command", "abc", Duration::from_millis(10));
    assert_eq!(store.delivery_reply(&expired).await.unwrap(), Seen::No);
    assert!(record(expired.clone()).await, "outside the window: new");
    assert_eq!(store.delivery_reply(&within).await.unwrap(), Seen::Yes);
    let forever = Delivery::new("slack", "Ev1");
    assert!(record(forever.clone()).await);
    assert!(!record(forever).await);
}

/// A :pushpin: writes to the timeline, so it needs what `note` needs: someone not on
/// `[permissions] respond` is refused, told so once, and the refusal recorded.
async fn a_pin_goes_through_the_permission_gate(backend: Backend) {
    let t = slack_app_with(backend, "[permissions]\nrespond = [\"slack:U0ALICE\"]\n").await;
    t.send
        .command(
            "declare sev1 Checkout API returns 502",
            "C_ORIGIN",
            "U0ALICE",
        )
        .await;
    t.settle().await;
    let (ch, _, _, _) = t.incident_channel();
    t.slack
        .put_message(&ch, "1700000000.000100", "U0BAD", "the root cause");
    let pin = |user: &str, id: &str| {
        json!({ "type": "reaction_added", "user": user, "reaction": "pushpin", "event_ts": id,
                "item": { "type": "message", "channel": ch, "ts": "1700000000.000100" } })
    };
    for _ in 0..2 {
        let resp = t.send.event("EvPinBad", pin("U0BAD", "1")).await;
        assert_eq!(resp.status(), 200);
    }
    t.settle().await;
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    assert!(
        !timeline.iter().any(|e| e.kind == EntryKind::Pinned),
        "{timeline:?}"
    );
    let refused: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Refused && e.actor == "slack:U0BAD")
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "recorded once for a retried event: {timeline:?}"
    );
    let told: Vec<Value> = t
        .calls("chat.postEphemeral")
        .into_iter()
        .filter(|b| b["user"] == "U0BAD")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]["text"].as_str().unwrap().contains("not allowed"),
        "{told:?}"
    );

    t.send.event("EvPinOk", pin("U0ALICE", "2")).await;
    t.settle().await;
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    assert!(
        timeline.iter().any(|e| e.kind == EntryKind::Pinned),
        "{timeline:?}"
    );
}

/// Whoever declares is invited to the channel; a display name from `users.info` is stored
/// cleaned (no escape sequences, no bidi overrides, one line); "Acknowledged by" is written
/// with the id, so the CLI shows the cached name, not the payload's legacy `user_name`.
async fn the_declarer_is_invited_and_names_from_slack_are_cleaned(backend: Backend) {
    let t = slack_app(backend).await;
    t.slack
        .set_user("U0ALICE", "\u{1b}[2JAl\u{202e}ice\nL.", "Alice Liddell");
    t.send
        .command(
            "declare sev1 Checkout API returns 502",
            "C_ORIGIN",
            "U0ALICE",
        )
        .await;
    t.settle().await;
    let (ch, _, _, members) = t.incident_channel();
    assert!(members.contains(&"U0ALICE".to_string()), "{members:?}");
    t.send.command("ack", &ch, "U0ALICE").await;
    t.settle().await;
    let alice = Identity::slack("U0ALICE").unwrap();
    let cached = t.app.app.store.person(&alice).await.unwrap().unwrap();
    assert_eq!(cached.display_name, "Alice L.");
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let ack = timeline
        .iter()
        .find(|e| e.kind == EntryKind::Acknowledged)
        .unwrap();
    assert!(
        ack.text.starts_with("Acknowledged by slack:U0ALICE"),
        "{}",
        ack.text
    );
    let api: Value = t
        .app
        .get("/api/incidents/1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["declared_by_name"], "Alice L.", "{api}");
}

/// A Slack id with anything but letters and digits in it is a malformed payload (400),
/// never a stored identity; the declare form's description error sits under the
/// description and names it.
async fn malformed_ids_and_a_bad_description_are_refused_where_they_are(backend: Backend) {
    let t = slack_app(backend).await;
    for (user, channel) in [("U\0X", "C_ORIGIN"), ("U0ALICE", "C\0X"), ("<!here>", "C1")] {
        let body = SlackSender::command_body("/incident", "list", channel, user);
        let resp = t.send.post("/slack/commands", FORM, body).await;
        assert_eq!(resp.status(), 400, "{user:?} {channel:?}");
    }
    let payload = json!({
        "type": "view_submission", "user": { "id": "U0ALICE", "username": "alice" },
        "team": { "id": "T0" }, "trigger_id": "t.1",
        "view": { "id": "VDESC", "callback_id": "fb_declare", "private_metadata": "C_ORIGIN",
                  "state": { "values": {
                      "title": { "title": { "type": "plain_text_input", "value": "DB down" } },
                      "description": { "description": { "type": "plain_text_input", "value": "x\u{0}y" } } } } }
    });
    let body: Value = t.send.interaction(payload).await.json().await.unwrap();
    let error = body["errors"]["description"].as_str().unwrap_or_default();
    assert!(error.contains("The description contains a NUL"), "{body}");
    assert!(
        t.app
            .app
            .store
            .incident_by_number(firebreak::incident::IncidentNumber(1))
            .await
            .unwrap()
            .is_none(),
        "nothing declared"
    );
}

/// A declaration records its delivery and takes its `INC-n` together (one round trip on
/// SQLite): a retry of the delivery gets no number and moves no counter, so the next new
/// declaration takes the next number; a declaration without a delivery (the CLI) numbers too.
async fn a_declarations_delivery_and_number_go_together_and_a_retry_takes_none(backend: Backend) {
    use firebreak::incident::model::IncidentId;
    use firebreak::store::{Delivery, Numbering};

    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let number = |d: Option<Delivery>| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let id = IncidentId::new();
            let n = tx
                .declaration_number(d.as_ref(), &id, Numbering::Count)
                .await
                .unwrap();
            match n {
                Some(_) => tx.commit().await.unwrap(),
                None => tx.rollback().await.unwrap(),
            }
            n.map(|n| n.0)
        }
    };
    let first = Delivery::new("slack-command", "first");
    assert_eq!(number(Some(first.clone())).await, Some(1));
    assert_eq!(number(Some(first.clone())).await, None, "a retry");
    assert_eq!(
        number(Some(Delivery::new("slack-command", "second"))).await,
        Some(2)
    );
    assert_eq!(number(None).await, Some(3), "the CLI carries no delivery");
    assert_eq!(number(Some(first)).await, None, "still a retry");
    assert_eq!(
        number(Some(Delivery::new("slack-command", "third"))).await,
        Some(4)
    );
}

/// On SQLite a declaration predicts its number from the writer's last and checks it in the
/// same transaction: a prediction made stale by another process, or by a retried delivery,
/// fails the commit recognisably and writes nothing; counting then gives the right answer.
/// (On Postgres `Predict` counts.)
async fn a_predicted_number_is_checked_in_the_transaction_that_uses_it(backend: Backend) {
    use firebreak::incident::model::IncidentId;
    use firebreak::store::{Delivery, Numbering, Store, is_stale_incident_number};

    let db = TestDb::new(backend).await;
    let (here, elsewhere) = (db.store().await, db.store().await);
    // The number taken, or the commit's error.
    let declare = |store: &Store, delivery: Option<&str>, numbering: Numbering| {
        let store = store.clone();
        let delivery = delivery.map(|id| Delivery::new("slack-command", id));
        async move {
            let mut tx = store.begin().await.unwrap();
            let id = IncidentId::new();
            let n = tx
                .declaration_number(delivery.as_ref(), &id, numbering)
                .await
                .unwrap();
            match n {
                Some(n) => tx.commit().await.map(|()| Some(n.0)),
                None => tx.rollback().await.map(|()| None),
            }
        }
    };
    let stale = |result: anyhow::Result<Option<i64>>| match result {
        Err(e) => assert!(is_stale_incident_number(&e), "{e:#}"),
        Ok(n) => assert_eq!(backend, Backend::Postgres, "not stale on SQLite: {n:?}"),
    };
    let url = db.url.clone();
    let counter = |_: &Store| {
        let url = url.clone();
        async move {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            let (n,): (i64,) =
                sqlx::query_as("SELECT value FROM counters WHERE name = 'incident_number'")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            n
        }
    };

    assert_eq!(
        declare(&here, Some("a"), Numbering::Predict).await.unwrap(),
        Some(1),
        "nothing to predict from: counts"
    );
    assert_eq!(
        declare(&here, Some("b"), Numbering::Predict).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        declare(&here, None, Numbering::Predict).await.unwrap(),
        Some(3),
        "the CLI"
    );

    // A retried delivery: the prediction fails at commit and nothing moves.
    let retry = declare(&here, Some("b"), Numbering::Predict).await;
    match backend {
        Backend::Sqlite => stale(retry),
        Backend::Postgres => assert_eq!(retry.unwrap(), None),
    }
    assert_eq!(counter(&here).await, 3);
    assert_eq!(
        declare(&here, Some("b"), Numbering::Count).await.unwrap(),
        None,
        "a retry"
    );

    // The failed retry left this writer's guess at 4. Another process declares twice, so
    // the guess (5) is stale: the attempt fails and writes nothing, and counting catches up.
    for (id, n) in [("c", 4), ("c2", 5)] {
        let taken = declare(&elsewhere, Some(id), Numbering::Count).await;
        assert_eq!(taken.unwrap(), Some(n));
    }
    let behind = declare(&here, Some("d"), Numbering::Predict).await;
    if backend == Backend::Sqlite {
        stale(behind);
        assert_eq!(counter(&here).await, 5, "the stale attempt wrote nothing");
        assert_eq!(
            declare(&here, Some("d"), Numbering::Count).await.unwrap(),
            Some(6),
            "not a retry: the stale attempt kept no delivery"
        );
    } else {
        assert_eq!(behind.unwrap(), Some(6));
    }
    assert_eq!(
        declare(&here, Some("e"), Numbering::Predict).await.unwrap(),
        Some(7),
        "predicting again from the number counted"
    );
    assert_eq!(counter(&elsewhere).await, 7);
}
