//! Both chat platforms at once (issue 11, item 6): one app with Slack and Discord both
//! configured, driven from Slack (signed slash commands), Discord (signed interactions) and
//! the CLI. One incident, one timeline, notices on both platforms edited in place; and when
//! one platform is down for longer than the retry budget the other keeps working and the
//! down one catches up exactly once. Observed through the fakes' recorded calls and the
//! store, on SQLite and Postgres.

mod common;

use std::time::{Duration, Instant};

use common::discord::{self as dc, DiscordSender, bob};
use common::fake_discord::{self, ANNOUNCE, FakeDiscord};
use common::fake_slack::FakeSlack;
use common::slack::{SLACK_CONFIG, SlackSender};
use common::*;
use firebreak::config::Config;
use firebreak::incident::{EntryKind, Source};
use serde_json::{Value, json};

on_both!(
    slack_declares_discord_updates_the_cli_resolves_on_one_timeline,
    slack_down_discord_keeps_working_and_slack_catches_up_once,
    discord_down_slack_keeps_working_and_discord_catches_up_once,
);

/// The Slack announcement channels for SEV1 ([`SLACK_CONFIG`]).
const SLACK_NOTICES: [&str; 2] = ["C_INCIDENTS", "C_GENERAL"];
/// The Discord announcement channels for SEV1 ([`fake_discord::config_toml`]).
const DISCORD_NOTICES: [&str; 2] = [ANNOUNCE[0], ANNOUNCE[1]];
/// A Discord channel commands are typed in (not an incident room).
const DISCORD_ORIGIN: &str = "1600000000000000001";
const UPDATE: &str = "Rolled back deploy 4512";
/// Both platforms give up on a reply after 3 s; the other platform being down must not
/// slow a reply towards that.
const REPLY_WITHIN: Duration = Duration::from_secs(2);
/// How soon the working platform shows everything, and the returning one catches up.
const DELIVERED_WITHIN: Duration = Duration::from_secs(5);

struct Both {
    app: TestApp,
    slack: FakeSlack,
    discord: FakeDiscord,
    to_slack: SlackSender,
    to_discord: DiscordSender,
    /// The config file the CLI reads (the same TOML the app was built from).
    dir: tempfile::TempDir,
}

async fn both(backend: Backend, toml: &str) -> Both {
    let slack = FakeSlack::start().await;
    let discord = FakeDiscord::start().await;
    let mut integrations = common::slack::integrations(&slack.url);
    integrations.discord = Some(dc::secrets(&discord.url));
    let config = Config::parse(toml).expect("config parses");
    let app = spawn_app_with(backend, config, integrations, None).await;
    let (to_slack, to_discord) = (SlackSender::new(&app), DiscordSender::new(&app));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("firebreak.toml"), toml).unwrap();
    Both {
        app,
        slack,
        discord,
        to_slack,
        to_discord,
        dir,
    }
}

/// Fast retries; both platforms announce SEV1 in two channels each.
fn config() -> String {
    let effects = "[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\n\
                   breaker_threshold = 50\ncli_wait = \"5s\"\n";
    format!("{effects}{SLACK_CONFIG}{}", fake_discord::config_toml())
}

/// Fast backoff and breakers, so an outage of a few seconds spans many former attempts.
fn outage_config() -> String {
    let effects = "[effects]\nbase_backoff = \"50ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\n\
                   breaker_threshold = 2\nbreaker_cooldown = \"150ms\"\ncli_wait = \"2s\"\n";
    format!("{effects}{SLACK_CONFIG}{}", fake_discord::config_toml())
}

impl Both {
    async fn settle(&self) {
        let idle = queue_idle(&self.app.app.store, 20).await;
        assert!(
            idle,
            "effects did not settle: {:#?}",
            self.app.app.store.list_effects(false, 80).await.unwrap()
        );
    }

    async fn slack_declare(&self) {
        let started = Instant::now();
        let reply = self
            .to_slack
            .command(
                "declare sev1 Checkout API returns 502",
                "C_ORIGIN",
                "U0ALICE",
            )
            .await;
        assert_eq!(reply["response_type"], "in_channel", "{reply}");
        replied_quickly(started, "Slack");
    }

    async fn slack_update(&self) {
        let started = Instant::now();
        let reply = self
            .to_slack
            .command(&format!("update INC-1 {UPDATE}"), "C_ORIGIN", "U0ALICE")
            .await;
        assert_eq!(reply["response_type"], "in_channel", "{reply}");
        replied_quickly(started, "Slack");
    }

    async fn discord_declare(&self) {
        let started = Instant::now();
        let options = [
            ("title", 3, json!("Checkout API returns 502")),
            ("severity", 3, json!("sev1")),
        ];
        let payload = dc::incident("declare", &options, DISCORD_ORIGIN, &bob());
        let resp = self.to_discord.ok(&payload).await;
        assert!(dc::content(&resp).contains("INC-1"), "{resp}");
        replied_quickly(started, "Discord");
    }

    async fn discord_update(&self) {
        let started = Instant::now();
        let options = [("text", 3, json!(UPDATE)), ("incident", 4, json!(1))];
        let payload = dc::incident("update", &options, DISCORD_ORIGIN, &bob());
        let resp = self.to_discord.ok(&payload).await;
        assert!(
            resp["data"].get("flags").is_none(),
            "a public reply: {resp}"
        );
        replied_quickly(started, "Discord");
    }

    /// `firebreak incident resolve INC-1 …` run as a process with the same config, database
    /// and secrets as the server; it delivers what it can within `cli_wait` and exits.
    fn cli_resolve(&self) -> tokio::task::JoinHandle<std::process::Output> {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"));
        cmd.args([
            "incident", "resolve", "INC-1", "Fixed", "by", "the", "rollback",
        ])
        .current_dir(self.dir.path())
        .env("FIREBREAK_DATABASE_URL", &self.app.db.url)
        .env("FIREBREAK_CONFIG", self.dir.path().join("firebreak.toml"))
        .env("SLACK_SIGNING_SECRET", common::slack::SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", "xoxb-test-token")
        .env("SLACK_API_URL", &self.slack.url)
        .env("DISCORD_PUBLIC_KEY", dc::public_key_hex())
        .env("DISCORD_BOT_TOKEN", dc::BOT_TOKEN)
        .env("DISCORD_APPLICATION_ID", dc::APPLICATION_ID)
        .env("DISCORD_API_URL", &self.discord.url)
        .env_remove("RUST_LOG");
        tokio::task::spawn_blocking(move || cmd.output().expect("run firebreak"))
    }

    /// The human entries of INC-1's timeline as (kind, source), effects left out.
    async fn timeline(&self) -> Vec<(EntryKind, Source)> {
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        timeline
            .iter()
            .filter(|e| !matches!(e.kind, EntryKind::EffectSucceeded | EntryKind::EffectFailed))
            .map(|e| (e.kind, e.source))
            .collect()
    }

    async fn assert_nothing_failed(&self) {
        let failed = self.app.app.store.list_effects(true, 50).await.unwrap();
        assert!(failed.is_empty(), "no effect gave up: {failed:#?}");
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        let gave_up: Vec<_> = timeline
            .iter()
            .filter(|e| e.kind == EntryKind::EffectFailed)
            .collect();
        assert!(gave_up.is_empty(), "{gave_up:#?}");
    }

    async fn assert_one_incident(&self) {
        let all = self.app.app.store.list_incidents(false, 10).await.unwrap();
        assert_eq!(all.len(), 1, "one incident: {all:#?}");
    }
}

fn cli_ok(out: std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("CLI stderr: {stderr}");
    assert!(out.status.success(), "the CLI resolves: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("INC-1"), "{stdout}");
}

fn delivered_soon(since: Instant, what: &str) {
    let took = since.elapsed();
    println!("{what} took {took:?}");
    assert!(took < DELIVERED_WITHIN, "{what} took {took:?}");
}

fn replied_quickly(started: Instant, platform: &str) {
    let took = started.elapsed();
    println!("{platform} reply took {took:?}");
    assert!(took < REPLY_WITHIN, "{platform} replied after {took:?}");
}

// --- Slack, as the fake saw it ---

fn slack_room(slack: &FakeSlack) -> String {
    let rooms: Vec<_> = slack
        .channels()
        .into_iter()
        .filter(|c| c.1.starts_with("inc-1-"))
        .collect();
    assert_eq!(rooms.len(), 1, "one Slack channel: {rooms:?}");
    rooms[0].0.clone()
}

fn slack_top_level(slack: &FakeSlack, channel: &str) -> Vec<common::fake_slack::Message> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == channel && m.thread_ts.is_none())
        .collect()
}

/// Successful top-level `chat.postMessage` calls in `channel` (thread replies left out).
fn slack_posts(slack: &FakeSlack, channel: &str) -> usize {
    slack
        .successful_calls()
        .iter()
        .filter(|c| c.method == "chat.postMessage" && slack_channel(&c.body) == channel)
        .filter(|c| c.body.get("thread_ts").is_none())
        .count()
}

fn slack_channel(body: &Value) -> &str {
    body.get("channel").and_then(Value::as_str).unwrap_or("")
}

/// Slack has one room with one card and one copy of the update, both SEV1 notices posted
/// once and edited to resolved, and the card resolved without buttons.
fn assert_slack_complete(slack: &FakeSlack) {
    let room = slack_room(slack);
    let creates = slack
        .successful_calls()
        .iter()
        .filter(|c| c.method == "conversations.create")
        .count();
    assert_eq!(creates, 1, "one Slack channel created");
    let in_room = slack_top_level(slack, &room);
    let cards: Vec<_> = in_room
        .iter()
        .filter(|m| m.text.contains("INC-1 · SEV1"))
        .collect();
    assert_eq!(cards.len(), 1, "one Slack card: {in_room:#?}");
    assert!(cards[0].text.starts_with("✅"), "card: {}", cards[0].text);
    let blocks = cards[0].blocks.clone().unwrap_or_default().to_string();
    assert!(!blocks.contains("fb_resolve"), "no buttons once resolved");
    let updates = in_room.iter().filter(|m| m.text.contains(UPDATE)).count();
    assert_eq!(
        updates, 1,
        "the update once in the Slack room: {in_room:#?}"
    );
    let resolutions = in_room
        .iter()
        .filter(|m| m.text.starts_with("✅ INC-1 resolved"))
        .count();
    assert_eq!(
        resolutions, 1,
        "the resolution once in the Slack room: {in_room:#?}"
    );
    for notice in SLACK_NOTICES {
        let top = slack_top_level(slack, notice);
        assert_eq!(top.len(), 1, "{notice}: one notice: {top:#?}");
        assert_eq!(slack_posts(slack, notice), 1, "{notice}: posted once");
        assert!(top[0].edits >= 1, "{notice}: edited in place");
        let replies = slack
            .messages()
            .into_iter()
            .filter(|m| m.channel == notice && m.thread_ts.as_deref() == Some(top[0].ts.as_str()))
            .filter(|m| m.text.contains(UPDATE))
            .count();
        assert_eq!(
            replies, 1,
            "{notice}: the update once in the notice's thread"
        );
        assert!(
            top[0].text.starts_with("✅"),
            "{notice} shows resolved: {}",
            top[0].text
        );
    }
}

// --- Discord, as the fake saw it ---

fn discord_room(discord: &FakeDiscord) -> String {
    let rooms: Vec<_> = discord
        .channels()
        .into_iter()
        .filter(|c| c.name.starts_with("inc-1-"))
        .collect();
    assert_eq!(rooms.len(), 1, "one Discord room: {rooms:?}");
    rooms[0].id.clone()
}

fn discord_posts(discord: &FakeDiscord, channel: &str) -> usize {
    let post = format!("POST /channels/{channel}/messages");
    discord.successful().iter().filter(|c| **c == post).count()
}

/// Whether Discord shows the whole story yet: room, resolved card, the update, resolved
/// notices (pure over the fake's state; used to wait while the other platform is down).
fn discord_is_complete(discord: &FakeDiscord) -> bool {
    let Some(room) = discord
        .channels()
        .into_iter()
        .find(|c| c.name.starts_with("inc-1-"))
    else {
        return false;
    };
    let in_room = discord.messages_in(&room.id);
    let card_resolved = in_room.first().is_some_and(|m| m.title().starts_with("✅"));
    let updated = in_room.iter().any(|m| m.content.contains(UPDATE));
    let told = in_room
        .iter()
        .any(|m| m.content.contains("✅ INC-1 resolved"));
    let notices = DISCORD_NOTICES.iter().all(|n| {
        discord
            .messages_in(n)
            .first()
            .is_some_and(|m| m.title().starts_with("✅"))
    });
    card_resolved && updated && told && notices
}

/// Discord has one room with one card (pinned once) and one copy of the update, and both
/// SEV1 notices posted once and edited to resolved.
fn assert_discord_complete(discord: &FakeDiscord) {
    let room = discord_room(discord);
    let in_room = discord.messages_in(&room);
    assert!(!in_room.is_empty(), "the card was posted");
    let card = &in_room[0];
    assert!(card.title().starts_with("✅"), "card: {}", card.title());
    assert!(card.edits >= 1, "the card was edited in place");
    let cards = in_room
        .iter()
        .filter(|m| m.title().contains("INC-1"))
        .count();
    assert_eq!(cards, 1, "one Discord card: {in_room:#?}");
    assert_eq!(discord.pins().len(), 1, "pinned once");
    let updates = in_room
        .iter()
        .filter(|m| m.content.contains(UPDATE))
        .count();
    assert_eq!(
        updates, 1,
        "the update once in the Discord room: {in_room:#?}"
    );
    let resolutions = in_room
        .iter()
        .filter(|m| m.content.contains("✅ INC-1 resolved"))
        .count();
    assert_eq!(
        resolutions, 1,
        "the resolution once in the Discord room: {in_room:#?}"
    );
    for notice in DISCORD_NOTICES {
        let msgs = discord.messages_in(notice);
        assert_eq!(msgs.len(), 1, "{notice}: one notice: {msgs:#?}");
        assert_eq!(discord_posts(discord, notice), 1, "{notice}: posted once");
        assert!(msgs[0].edits >= 1, "{notice}: edited in place");
        assert!(
            msgs[0].title().starts_with("✅"),
            "{notice} shows resolved: {}",
            msgs[0].title()
        );
    }
}

/// How often the busiest (method, target) was refused: more than the former budget of
/// 8 attempts means the outage outlasted it.
fn most_refused(targets: impl Iterator<Item = String>) -> usize {
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for t in targets {
        *counts.entry(t).or_default() += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

async fn slack_declares_discord_updates_the_cli_resolves_on_one_timeline(backend: Backend) {
    let t = both(backend, &config()).await;
    t.slack_declare().await;
    t.settle().await;
    t.discord_update().await;
    t.settle().await;
    cli_ok(t.cli_resolve().await.unwrap());
    t.settle().await;

    t.assert_one_incident().await;
    assert_eq!(
        t.timeline().await,
        vec![
            (EntryKind::Declared, Source::Slack),
            (EntryKind::Update, Source::Discord),
            (EntryKind::Resolved, Source::Cli),
        ]
    );
    assert_slack_complete(&t.slack);
    assert_discord_complete(&t.discord);
    t.assert_nothing_failed().await;
}

async fn slack_down_discord_keeps_working_and_slack_catches_up_once(backend: Backend) {
    let t = both(backend, &outage_config()).await;
    t.slack.set_down(true);
    t.discord_declare().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.slack_update().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resolved = Instant::now();
    let cli = t.cli_resolve();
    let discord_done = eventually(10, || async { discord_is_complete(&t.discord) }).await;
    assert!(discord_done, "Discord got everything while Slack was down");
    delivered_soon(resolved, "Discord, with Slack down, after the resolve");
    cli_ok(cli.await.unwrap());
    assert_discord_complete(&t.discord);
    assert!(t.slack.successful_calls().is_empty(), "Slack is down");

    // Keep Slack down past the former attempt budget.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = most_refused(
        t.slack
            .calls()
            .into_iter()
            .map(|c| format!("{} {}", c.method, slack_channel(&c.body))),
    );
    assert!(refused > 8, "the outage outlasted the budget: {refused}");
    assert!(
        t.app
            .app
            .store
            .list_effects(true, 50)
            .await
            .unwrap()
            .is_empty(),
        "nothing gave up during the outage"
    );

    t.slack.set_down(false);
    let back = Instant::now();
    t.settle().await;
    delivered_soon(back, "Slack's catch-up");
    t.assert_one_incident().await;
    assert_eq!(
        t.timeline().await,
        vec![
            (EntryKind::Declared, Source::Discord),
            (EntryKind::Update, Source::Slack),
            (EntryKind::Resolved, Source::Cli),
        ]
    );
    assert_slack_complete(&t.slack);
    assert_discord_complete(&t.discord);
    t.assert_nothing_failed().await;
}

async fn discord_down_slack_keeps_working_and_discord_catches_up_once(backend: Backend) {
    let t = both(backend, &outage_config()).await;
    t.discord.set_down(true);
    t.slack_declare().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.discord_update().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resolved = Instant::now();
    let cli = t.cli_resolve();
    let slack_done = eventually(10, || async {
        let Some(room) = t
            .slack
            .channels()
            .into_iter()
            .find(|c| c.1.starts_with("inc-1-"))
        else {
            return false;
        };
        let in_room = slack_top_level(&t.slack, &room.0);
        let resolved = in_room
            .iter()
            .any(|m| m.text.starts_with("✅ INC-1 · SEV1"));
        let updated = in_room.iter().any(|m| m.text.contains(UPDATE));
        let told = in_room
            .iter()
            .any(|m| m.text.starts_with("✅ INC-1 resolved"));
        let notices = SLACK_NOTICES.iter().all(|n| {
            slack_top_level(&t.slack, n)
                .first()
                .is_some_and(|m| m.text.starts_with("✅"))
        });
        resolved && updated && told && notices
    })
    .await;
    assert!(slack_done, "Slack got everything while Discord was down");
    delivered_soon(resolved, "Slack, with Discord down, after the resolve");
    cli_ok(cli.await.unwrap());
    assert_slack_complete(&t.slack);
    assert!(
        t.discord.successful().is_empty(),
        "Discord is down: {:?}",
        t.discord.successful()
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = most_refused(
        t.discord
            .calls()
            .into_iter()
            .map(|c| format!("{} {}", c.method, c.path)),
    );
    assert!(refused > 8, "the outage outlasted the budget: {refused}");
    assert!(
        t.app
            .app
            .store
            .list_effects(true, 50)
            .await
            .unwrap()
            .is_empty(),
        "nothing gave up during the outage"
    );

    t.discord.set_down(false);
    let back = Instant::now();
    t.settle().await;
    delivered_soon(back, "Discord's catch-up");
    t.assert_one_incident().await;
    assert_eq!(
        t.timeline().await,
        vec![
            (EntryKind::Declared, Source::Slack),
            (EntryKind::Update, Source::Discord),
            (EntryKind::Resolved, Source::Cli),
        ]
    );
    assert_discord_complete(&t.discord);
    assert_slack_complete(&t.slack);
    t.assert_nothing_failed().await;
}
