//! Both chat platforms at once (issue 11, item 6): one app with Slack and Discord both
//! configured, driven from Slack (signed slash commands), Discord (signed interactions) and
//! the CLI. One incident, one timeline, notices on both platforms edited in place; and when
//! one platform is down for longer than the retry budget the other keeps working and the
//! down one catches up exactly once. Observed through the fakes' recorded calls and the
//! store, on SQLite and Postgres.

mod common;

use std::time::Duration;

use common::discord::{self as dc, DiscordSender, bob};
use common::fake_discord::{self, ANNOUNCE, FakeDiscord};
use common::fake_slack::FakeSlack;
use common::slack::{SLACK_CONFIG, SlackSender};
use common::*;
use firebreak::config::Config;
use firebreak::incident::{Actor, EntryKind, ParseOptions, Source, command};
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

struct Both {
    app: TestApp,
    slack: FakeSlack,
    discord: FakeDiscord,
    to_slack: SlackSender,
    to_discord: DiscordSender,
}

async fn both(backend: Backend, config: Config) -> Both {
    let slack = FakeSlack::start().await;
    let discord = FakeDiscord::start().await;
    let mut integrations = common::slack::integrations(&slack.url);
    integrations.discord = Some(dc::secrets(&discord.url));
    let app = spawn_app_with(backend, config, integrations, None).await;
    let (to_slack, to_discord) = (SlackSender::new(&app), DiscordSender::new(&app));
    Both {
        app,
        slack,
        discord,
        to_slack,
        to_discord,
    }
}

fn config() -> Config {
    test_config(&format!("{SLACK_CONFIG}{}", fake_discord::config_toml()))
}

/// Fast backoff and breakers, so an outage of a few seconds spans many former attempts.
fn outage_config() -> Config {
    let effects = "[effects]\nbase_backoff = \"50ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\n\
                   lease = \"5s\"\nbreaker_threshold = 2\nbreaker_cooldown = \"150ms\"\ncli_wait = \"5s\"\n";
    let chat = format!("{SLACK_CONFIG}{}", fake_discord::config_toml());
    Config::parse(&format!("{effects}{chat}")).expect("config parses")
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
        let reply = self
            .to_slack
            .command(
                "declare sev1 Checkout API returns 502",
                "C_ORIGIN",
                "U0ALICE",
            )
            .await;
        assert_eq!(reply["response_type"], "in_channel", "{reply}");
    }

    async fn slack_update(&self) {
        let reply = self
            .to_slack
            .command(&format!("update INC-1 {UPDATE}"), "C_ORIGIN", "U0ALICE")
            .await;
        assert_eq!(reply["response_type"], "in_channel", "{reply}");
    }

    async fn discord_declare(&self) {
        let options = [
            ("title", 3, json!("Checkout API returns 502")),
            ("severity", 3, json!("sev1")),
        ];
        let payload = dc::incident("declare", &options, DISCORD_ORIGIN, &bob());
        let resp = self.to_discord.ok(&payload).await;
        assert!(dc::content(&resp).contains("INC-1"), "{resp}");
    }

    async fn discord_update(&self) {
        let options = [("text", 3, json!(UPDATE)), ("incident", 4, json!(1))];
        let payload = dc::incident("update", &options, DISCORD_ORIGIN, &bob());
        let resp = self.to_discord.ok(&payload).await;
        assert!(
            resp["data"].get("flags").is_none(),
            "a public reply: {resp}"
        );
    }

    async fn cli_resolve(&self) {
        let cmd = command::parse_line(
            "resolve INC-1 Fixed by the rollback",
            ParseOptions::default(),
        )
        .expect("parses");
        let ops = Actor::new(Source::Cli, "ops", "ops");
        self.app
            .app
            .service
            .apply(cmd, &ops)
            .await
            .expect("the CLI resolves");
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
    for notice in SLACK_NOTICES {
        let top = slack_top_level(slack, notice);
        assert_eq!(top.len(), 1, "{notice}: one notice: {top:#?}");
        assert_eq!(slack_posts(slack, notice), 1, "{notice}: posted once");
        assert!(top[0].edits >= 1, "{notice}: edited in place");
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
    let notices = DISCORD_NOTICES.iter().all(|n| {
        discord
            .messages_in(n)
            .first()
            .is_some_and(|m| m.title().starts_with("✅"))
    });
    card_resolved && updated && notices
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
    let t = both(backend, config()).await;
    t.slack_declare().await;
    t.settle().await;
    t.discord_update().await;
    t.settle().await;
    t.cli_resolve().await;
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
    let t = both(backend, outage_config()).await;
    t.slack.set_down(true);
    t.discord_declare().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.slack_update().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.cli_resolve().await;
    let discord_done = eventually(10, || async { discord_is_complete(&t.discord) }).await;
    assert!(discord_done, "Discord got everything while Slack was down");
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
    t.settle().await;
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
    let t = both(backend, outage_config()).await;
    t.discord.set_down(true);
    t.slack_declare().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.discord_update().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.cli_resolve().await;
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
        let notices = SLACK_NOTICES.iter().all(|n| {
            slack_top_level(&t.slack, n)
                .first()
                .is_some_and(|m| m.text.starts_with("✅"))
        });
        resolved && updated && notices
    })
    .await;
    assert!(slack_done, "Slack got everything while Discord was down");
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
    assert_discord_complete(&t.discord);
    assert_slack_complete(&t.slack);
    t.assert_nothing_failed().await;
}
