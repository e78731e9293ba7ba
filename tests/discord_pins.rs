//! 📌 reactions from the Discord gateway onto the timeline (issue 11, item 5), on SQLite
//! and Postgres. Recorded `MESSAGE_REACTION_ADD` dispatches are deserialized into
//! serenity's `Reaction` and go through the gateway's decision (`pin_reaction`) into the
//! app's sink, exactly as `Handler::reaction_add` does; the pinned message is read from a
//! fake Discord REST API. `serve` runs with `[discord] gateway = true` against that fake
//! (which has no gateway), so every case also shows a failing gateway never stops it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::fake_discord::{FakeDiscord, GUILD, config_toml, integrations};
use common::fake_discord_gateway::FakeGateway;
use common::*;
use firebreak::chat::discord::gateway::{PinSink, pin_reaction};
use firebreak::config::Config;
use firebreak::incident::{EntryKind, TimelineEntry};
use serenity::all::Reaction;

on_both!(
    a_pin_puts_the_message_on_the_timeline_once_with_its_author_time_and_link,
    pins_outside_incident_channels_and_other_emoji_capture_nothing,
    a_reactor_without_respond_permission_is_refused_once_and_nothing_is_captured,
    a_failed_read_is_retried_and_the_message_captured_once,
    the_gateway_runs_only_when_configured_and_its_failure_never_stops_serve,
    a_pin_over_the_gateway_websocket_reaches_the_timeline,
);

/// Who wrote the pinned message.
const AUTHOR: &str = "80351110224678999";
const CAROL: &str = "80351110224678912";
const DAVE: &str = "80351110224678913";
const ROLE: &str = "41771983423143936";
const PIN: &str = "📌";

struct PinsApp {
    app: TestApp,
    discord: FakeDiscord,
}

/// `[discord]` with the gateway on (or off), after `extra`.
fn config(extra: &str, gateway: bool) -> Config {
    let discord = config_toml().replacen(
        "[discord]\n",
        &format!("[discord]\ngateway = {gateway}\n"),
        1,
    );
    test_config(&format!("{extra}{discord}"))
}

async fn pins_app(backend: Backend, config: Config) -> PinsApp {
    let discord = FakeDiscord::start().await;
    let app = spawn_app_with(backend, config, integrations(&discord.url), None).await;
    PinsApp { app, discord }
}

/// A `MESSAGE_REACTION_ADD` dispatch, as serenity's handler receives it.
fn dispatch(emoji: &str, user: &str, roles: &[&str], channel: &str, message: &str) -> Reaction {
    serde_json::from_value(payload(emoji, user, roles, channel, message))
        .expect("a recorded reaction deserializes")
}

/// A `MESSAGE_REACTION_ADD` dispatch's `d`, as Discord sends it.
fn payload(
    emoji: &str,
    user: &str,
    roles: &[&str],
    channel: &str,
    message: &str,
) -> serde_json::Value {
    serde_json::json!({
        "user_id": user,
        "type": 0,
        "message_id": message,
        "message_author_id": AUTHOR,
        "member": {
            "user": {
                "username": "someone", "public_flags": 0, "id": user,
                "global_name": null, "discriminator": "0", "avatar": null
            },
            "roles": roles,
            "premium_since": null, "pending": false, "nick": null, "mute": false,
            "joined_at": "2024-01-01T00:00:00.000000+00:00", "flags": 0, "deaf": false,
            "communication_disabled_until": null, "avatar": null
        },
        "emoji": {"id": null, "name": emoji},
        "channel_id": channel,
        "burst": false,
        "guild_id": GUILD
    })
}

impl PinsApp {
    /// Declares INC-1 and waits for its Discord channel; the channel's id.
    async fn declare(&self) -> String {
        self.app.ok("declare sev2 Checkout API returns 502").await;
        self.settle().await;
        self.discord
            .channels()
            .into_iter()
            .find(|c| c.name.starts_with("inc-1-"))
            .expect("incident channel created")
            .id
    }

    async fn settle(&self) {
        assert!(
            queue_idle(&self.app.app.store, 20).await,
            "effects did not settle"
        );
    }

    /// What `Handler::reaction_add` does with a reaction: decide, then hand it to the sink.
    async fn react(&self, reaction: Reaction) {
        let sink: Arc<dyn PinSink> = self.app.app.discord.clone().expect("Discord is on");
        if let Some(pin) = pin_reaction(&reaction) {
            sink.pinned(pin).await;
        }
    }

    async fn entries(&self, kind: EntryKind) -> Vec<TimelineEntry> {
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        timeline.into_iter().filter(|e| e.kind == kind).collect()
    }

    /// How many times the fake was asked for `message`.
    fn reads(&self, message: &str) -> usize {
        self.discord
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path.ends_with(&format!("/messages/{message}")))
            .count()
    }

    async fn captures_queued(&self) -> usize {
        let effects = self.app.app.store.list_effects(false, 200).await.unwrap();
        effects
            .iter()
            .filter(|e| e.kind == "discord.capture_pin")
            .count()
    }
}

async fn a_pin_puts_the_message_on_the_timeline_once_with_its_author_time_and_link(
    backend: Backend,
) {
    let t = pins_app(backend, config("", true)).await;
    let room = t.declare().await;
    let message = t.discord.add_user_message(
        &room,
        AUTHOR,
        "db is back after <@42> restarted it, see <#777> and <@43>",
        "2026-03-01T10:00:00.000000+00:00",
        &[("42", "bob")],
    );
    t.react(dispatch(PIN, CAROL, &[ROLE], &room, &message))
        .await;
    t.settle().await;
    let pinned = t.entries(EntryKind::Pinned).await;
    assert_eq!(pinned.len(), 1, "{pinned:#?}");
    let entry = &pinned[0];
    assert_eq!(entry.actor, format!("discord:{AUTHOR}"));
    let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
    assert_eq!(entry.occurred_at, at, "the message's own time, not now");
    assert_eq!(
        entry.text,
        format!(
            "db is back after @bob restarted it, see #777 and discord:43 \
             (https://discord.com/channels/{GUILD}/{room}/{message})"
        )
    );
    // A second 📌 by someone else, and the gateway replaying the first: still one entry.
    t.react(dispatch(PIN, DAVE, &[ROLE], &room, &message)).await;
    t.react(dispatch(PIN, CAROL, &[ROLE], &room, &message))
        .await;
    t.settle().await;
    assert_eq!(t.entries(EntryKind::Pinned).await.len(), 1);
    assert_eq!(t.reads(&message), 1, "the message is read once");
    assert_eq!(t.captures_queued().await, 1);
}

async fn pins_outside_incident_channels_and_other_emoji_capture_nothing(backend: Backend) {
    let t = pins_app(backend, config("", true)).await;
    let room = t.declare().await;
    let general = t.discord.add_channel("general");
    let elsewhere = t.discord.add_user_message(
        &general,
        AUTHOR,
        "lunch?",
        "2026-03-01T10:00:00.000000+00:00",
        &[],
    );
    let here = t.discord.add_user_message(
        &room,
        AUTHOR,
        "db is back",
        "2026-03-01T10:00:00.000000+00:00",
        &[],
    );
    t.react(dispatch(PIN, CAROL, &[ROLE], &general, &elsewhere))
        .await;
    t.react(dispatch("👍", CAROL, &[ROLE], &room, &here)).await;
    t.settle().await;
    assert_eq!(t.captures_queued().await, 0);
    assert!(t.entries(EntryKind::Pinned).await.is_empty());
    assert_eq!(t.reads(&elsewhere) + t.reads(&here), 0);
    // The same 📌 in the incident channel is captured: the two above were not by accident.
    t.react(dispatch(PIN, CAROL, &[ROLE], &room, &here)).await;
    t.settle().await;
    assert_eq!(t.entries(EntryKind::Pinned).await.len(), 1);
}

async fn a_reactor_without_respond_permission_is_refused_once_and_nothing_is_captured(
    backend: Backend,
) {
    let t = pins_app(
        backend,
        config("[permissions]\nrespond = [\"discord-role:999\"]\n", true),
    )
    .await;
    let room = t.declare().await;
    let message = t.discord.add_user_message(
        &room,
        AUTHOR,
        "db is back",
        "2026-03-01T10:00:00.000000+00:00",
        &[],
    );
    // Refused; the gateway replaying the event does not record a second refusal.
    t.react(dispatch(PIN, CAROL, &[ROLE], &room, &message))
        .await;
    t.react(dispatch(PIN, CAROL, &[ROLE], &room, &message))
        .await;
    t.settle().await;
    assert_eq!(t.captures_queued().await, 0);
    assert!(t.entries(EntryKind::Pinned).await.is_empty());
    let refused = t.entries(EntryKind::Refused).await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0].actor, format!("discord:{CAROL}"));
    assert!(refused[0].text.contains("`pin`"), "{}", refused[0].text);
    // Someone with the role may.
    t.react(dispatch(PIN, DAVE, &["999"], &room, &message))
        .await;
    t.settle().await;
    assert_eq!(t.entries(EntryKind::Pinned).await.len(), 1);
}

async fn a_failed_read_is_retried_and_the_message_captured_once(backend: Backend) {
    let t = pins_app(backend, config("", true)).await;
    let room = t.declare().await;
    let message = t.discord.add_user_message(
        &room,
        AUTHOR,
        "db is back",
        "2026-03-01T10:00:00.000000+00:00",
        &[],
    );
    t.discord.set_down(true);
    t.react(dispatch(PIN, CAROL, &[ROLE], &room, &message))
        .await;
    let failed = eventually(10, || async {
        t.discord
            .calls()
            .iter()
            .any(|c| c.status == 503 && c.path.ends_with(&format!("/messages/{message}")))
    })
    .await;
    assert!(failed, "the read was tried while Discord was down");
    assert!(t.entries(EntryKind::Pinned).await.is_empty());
    t.discord.set_down(false);
    t.settle().await;
    let pinned = t.entries(EntryKind::Pinned).await;
    assert_eq!(pinned.len(), 1, "{pinned:#?}");
    assert!(pinned[0].text.starts_with("db is back ("));
}

async fn the_gateway_runs_only_when_configured_and_its_failure_never_stops_serve(backend: Backend) {
    let on = pins_app(backend, config("", true)).await;
    let off = pins_app(backend, config("", false)).await;
    let asks = |d: &FakeDiscord| {
        d.calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path == "/gateway/bot")
            .count()
    };
    assert!(
        eventually(5, || async { asks(&on.discord) > 0 }).await,
        "the gateway client asked for the gateway"
    );
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    // Backing off from 1 s: asked at 0 s, 1 s and 3 s, no more.
    let n = asks(&on.discord);
    assert!((2..=3).contains(&n), "asked {n} times in 3.5 s");
    assert_eq!(asks(&off.discord), 0, "gateway = false starts nothing");
    for t in [&on, &off] {
        assert!(!t.app.handle.is_finished(), "serve is still running");
        let health = reqwest::get(t.app.url("/healthz")).await.unwrap();
        assert!(health.status().is_success());
        t.declare().await;
    }
    on.app.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), on.app.handle)
        .await
        .expect("serve stops on shutdown with the gateway running");
    stopped.unwrap().unwrap();
}

/// The whole way: `serve` connects to a (fake) gateway, identifies with the two intents, and
/// a `MESSAGE_REACTION_ADD` sent down the websocket puts the message on the timeline.
async fn a_pin_over_the_gateway_websocket_reaches_the_timeline(backend: Backend) {
    let discord = FakeDiscord::start().await;
    let gateway = FakeGateway::start().await;
    discord.serve_gateway(&gateway.url);
    let app = spawn_app_with(backend, config("", true), integrations(&discord.url), None).await;
    let t = PinsApp { app, discord };
    assert!(
        eventually(10, || async { !gateway.identified().is_empty() }).await,
        "serve identified on the gateway"
    );
    let identify = &gateway.identified()[0];
    let wanted = (1u64 << 10) | (1 << 15); // GUILD_MESSAGE_REACTIONS | MESSAGE_CONTENT
    assert_eq!(identify["intents"].as_u64(), Some(wanted), "{identify}");
    assert_eq!(identify["token"], "Bot test-bot-token");
    let room = t.declare().await;
    let message = t.discord.add_user_message(
        &room,
        AUTHOR,
        "db is back",
        "2026-03-01T10:00:00.000000+00:00",
        &[],
    );
    let pin = payload(PIN, CAROL, &[ROLE], &room, &message);
    gateway.dispatch("MESSAGE_REACTION_ADD", pin);
    let captured = eventually(10, || async {
        t.entries(EntryKind::Pinned).await.len() == 1
    })
    .await;
    assert!(captured, "the pin sent over the gateway was captured");
    t.app.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), t.app.handle)
        .await
        .expect("serve stops on shutdown with the gateway connected");
    stopped.unwrap().unwrap();
}
