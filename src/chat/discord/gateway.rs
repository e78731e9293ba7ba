//! The Discord gateway client: 📌 reactions in incident channels go onto the timeline.
//!
//! Discord delivers reactions only over the gateway (a websocket), not to the interactions
//! endpoint, so `serve` runs a serenity client when `discord.gateway = true`. It asks for
//! the reactions intent and the message-content intent (to read the pinned message through
//! REST), nothing more, and serenity reconnects and resumes by itself; a start that fails
//! outright is retried with backoff. What a reaction means is decided by [`pin_reaction`], a
//! pure function; what is done about it is the [`PinSink`]'s business.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serenity::all::{Context, EventHandler, GatewayIntents, Http, Reaction, ReactionType};
use tokio_util::sync::CancellationToken;

/// The intents the bot asks for: reactions in guild channels, and message content so the
/// pinned message's text can be read. `MESSAGE_CONTENT` is privileged: switch it on in the
/// developer portal (Bot → Privileged Gateway Intents).
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILD_MESSAGE_REACTIONS | GatewayIntents::MESSAGE_CONTENT
}

/// The emoji that puts a message on the timeline.
pub const PIN: &str = "📌";

/// Someone reacted with 📌 to a message in a guild channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinReaction {
    pub guild_id: String,
    pub channel_id: String,
    pub message_id: String,
    /// Who reacted (a Discord user id).
    pub user_id: String,
    /// The reacting member's role ids, for permissions.
    pub roles: Vec<String>,
}

/// What to do with a pin: look up the incident, check permission, queue the capture.
#[async_trait]
pub trait PinSink: Send + Sync {
    async fn pinned(&self, pin: PinReaction);
}

/// The pin in `reaction`, if it is one worth recording: a 📌 (not a custom emoji that
/// happens to be named "pushpin"), in a guild, by a person rather than a bot.
pub fn pin_reaction(reaction: &Reaction) -> Option<PinReaction> {
    let ReactionType::Unicode(emoji) = &reaction.emoji else {
        return None;
    };
    if emoji.trim_end_matches('\u{fe0f}') != PIN {
        return None;
    }
    let guild_id = reaction.guild_id?;
    let user_id = reaction.user_id?;
    let member = reaction.member.as_ref();
    if member.is_some_and(|m| m.user.bot) {
        return None;
    }
    Some(PinReaction {
        guild_id: guild_id.to_string(),
        channel_id: reaction.channel_id.to_string(),
        message_id: reaction.message_id.to_string(),
        user_id: user_id.to_string(),
        roles: member
            .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default(),
    })
}

/// serenity's event handler: only reactions are listened to.
pub struct Handler {
    pub sink: Arc<dyn PinSink>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn reaction_add(&self, _ctx: Context, reaction: Reaction) {
        if let Some(pin) = pin_reaction(&reaction) {
            self.sink.pinned(pin).await;
        }
    }
}

/// Runs the gateway client until `shutdown`. serenity resumes dropped sessions itself; when
/// the client stops with an error (Discord unreachable, a bad token), it is started again
/// after a backoff that grows to a minute, and the error is logged without the token.
///
/// Each start first asks `GET /gateway/bot` itself and connects to the URL it names:
/// serenity would fall back to Discord's public gateway when its own ask fails (wrong for a
/// test origin), and once started it retries a
/// websocket that never opens every 5 s with a warning and no way to stop it. Asking first
/// means an origin without a gateway (a fake, the contract mock) is only retried on the
/// backoff, and a bad token is found before any websocket.
pub async fn run(
    http: impl Fn() -> Http + Send,
    sink: Arc<dyn PinSink>,
    shutdown: CancellationToken,
) {
    let mut wait = Duration::from_secs(1);
    loop {
        let http = http();
        let outcome = tokio::select! {
            found = http.get_bot_gateway() => match found {
                Ok(found) => start(http, found.url, &sink, &shutdown).await,
                Err(e) => Some(e),
            },
            () = shutdown.cancelled() => return,
        };
        if shutdown.is_cancelled() {
            return;
        }
        match outcome {
            Some(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "the Discord gateway stopped; starting it again")
            }
            None => {
                tracing::info!(retry_in = ?wait, "the Discord gateway closed; starting it again")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// One run of serenity's client on the websocket at `url`, until it stops (its error, if
/// any) or `shutdown`.
async fn start(
    http: Http,
    url: String,
    sink: &Arc<dyn PinSink>,
    shutdown: &CancellationToken,
) -> Option<serenity::Error> {
    let handler = Arc::new(Handler {
        sink: Arc::clone(sink),
    });
    let client = serenity::client::ClientBuilder::new_with_http(http, intents())
        .event_handler_arc(handler)
        .await;
    let mut client = match client {
        Ok(client) => client,
        Err(e) => return Some(e),
    };
    // The URL just asked for, not serenity's own guess (Discord's public gateway).
    *client.ws_url.lock().await = url;
    let shards = client.shard_manager.clone();
    tokio::select! {
        result = client.start() => result.err(),
        () = shutdown.cancelled() => {
            shards.shutdown_all().await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `MESSAGE_REACTION_ADD` dispatch's `d`, as Discord sends it.
    fn dispatch(emoji: serde_json::Value, bot: bool) -> serde_json::Value {
        serde_json::json!({
            "user_id": "80351110224678912",
            "type": 0,
            "message_id": "1200000000000000002",
            "message_author_id": "80351110224678999",
            "member": {
                "user": {
                    "username": "carol", "public_flags": 0, "id": "80351110224678912",
                    "global_name": "Carol", "discriminator": "0", "bot": bot,
                    "avatar": null
                },
                "roles": ["41771983423143936"],
                "premium_since": null, "pending": false, "nick": null, "mute": false,
                "joined_at": "2024-01-01T00:00:00.000000+00:00", "flags": 0, "deaf": false,
                "communication_disabled_until": null, "avatar": null
            },
            "emoji": emoji,
            "channel_id": "1200000000000000001",
            "burst": false,
            "guild_id": "1100000000000000000"
        })
    }

    fn reaction(value: serde_json::Value) -> Reaction {
        serde_json::from_value(value).expect("a recorded reaction deserializes")
    }

    #[test]
    fn a_pushpin_by_a_person_is_a_pin() {
        let r = reaction(dispatch(
            serde_json::json!({"id": null, "name": "📌"}),
            false,
        ));
        assert_eq!(
            pin_reaction(&r),
            Some(PinReaction {
                guild_id: "1100000000000000000".into(),
                channel_id: "1200000000000000001".into(),
                message_id: "1200000000000000002".into(),
                user_id: "80351110224678912".into(),
                roles: vec!["41771983423143936".into()],
            })
        );
    }

    #[test]
    fn other_emoji_custom_pushpins_and_bots_are_not_pins() {
        let thumbs = reaction(dispatch(
            serde_json::json!({"id": null, "name": "👍"}),
            false,
        ));
        assert_eq!(pin_reaction(&thumbs), None);
        let custom = reaction(dispatch(
            serde_json::json!({"id": "41771983429993937", "name": "pushpin", "animated": false}),
            false,
        ));
        assert_eq!(pin_reaction(&custom), None);
        let by_bot = reaction(dispatch(
            serde_json::json!({"id": null, "name": "📌"}),
            true,
        ));
        assert_eq!(pin_reaction(&by_bot), None);
    }

    #[test]
    fn a_pin_outside_a_guild_is_ignored() {
        let mut d = dispatch(serde_json::json!({"id": null, "name": "📌"}), false);
        d.as_object_mut().unwrap().remove("guild_id");
        d.as_object_mut().unwrap().remove("member");
        assert_eq!(pin_reaction(&reaction(d)), None);
    }

    #[test]
    fn asks_for_reactions_and_content_only() {
        let i = intents();
        assert!(i.contains(GatewayIntents::GUILD_MESSAGE_REACTIONS));
        assert!(i.contains(GatewayIntents::MESSAGE_CONTENT));
        assert!(!i.contains(GatewayIntents::GUILD_MESSAGES));
        assert!(!i.contains(GatewayIntents::GUILD_MEMBERS));
    }
}
