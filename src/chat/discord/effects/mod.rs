//! Runs the Discord effects planned in [`planner`](super::planner). Each one is idempotent:
//! whatever it creates (the channel or thread, the card, a notice, a progress message) is
//! recorded in `chat_refs` (platform `discord`) right after Discord confirms it, so a retry
//! edits or skips instead of creating a second copy. Cards and notices are rendered from
//! the database when the effect runs.
//!
//! - [`types`]: the [`DiscordEffect`] enum, its kinds, ordering groups and keys.
//! - [`channel`]: the incident channel or thread, its card, posts and progress messages.
//! - [`notices`]: the fan-out to announcement channels and one notice per channel.
//! - [`pins`]: 📌 reactions, the pinned message put on the timeline.
//! - [`checklist`]: the runbook checklist, its pages edited in place.

pub mod channel;
pub mod checklist;
pub mod notices;
pub mod pins;
pub mod types;

use async_trait::async_trait;
use serenity::all::{ChannelId, CreateMessage, MessageId, Nonce};

pub use types::DiscordEffect;

use super::api::DiscordApi;
use super::config::DiscordConfig;
pub(super) use crate::chat::records::{ChatRecords, Refs};
use crate::effects::Effect;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::incident::model::IncidentId;
use crate::store::Store;

/// The `chat_refs` platform of everything here.
pub const PLATFORM: &str = "discord";

/// The breaker target of effects in the incident channel: one outage, one circuit.
pub const TARGET: &str = "discord";
/// The target of the notice fan-out, which only writes to the database.
pub const LOCAL_TARGET: &str = "discord.fan-out";

/// The breaker target of the notice in one announcement channel, so a channel that keeps
/// failing never holds back the others.
pub fn notice_target(channel: &str) -> String {
    format!("discord.notice:{channel}")
}

pub struct DiscordEffects {
    pub api: DiscordApi,
    pub store: Store,
    pub config: DiscordConfig,
}

#[async_trait]
impl EffectHandler for DiscordEffects {
    fn kinds(&self) -> &'static [&'static str] {
        types::ALL_KINDS
    }

    fn target(&self, effect: &Effect) -> String {
        match effect.decode::<DiscordEffect>() {
            Ok(DiscordEffect::SyncNotices { .. }) => LOCAL_TARGET.into(),
            Ok(DiscordEffect::Notice { channel, .. }) => notice_target(&channel),
            _ => TARGET.into(),
        }
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let once = Nonces::of(effect);
        match effect.decode::<DiscordEffect>()? {
            DiscordEffect::SyncChannel { incident_id } => {
                self.sync_channel(&incident_id, &once).await
            }
            DiscordEffect::SyncNotices {
                incident_id,
                channels,
            } => {
                self.fan_out(&incident_id, &effect.idempotency_key, &channels)
                    .await
            }
            DiscordEffect::Notice {
                incident_id,
                channel,
                announce,
            } => self.notice(&incident_id, &channel, announce, &once).await,
            DiscordEffect::ChannelPost {
                incident_id,
                text,
                mention_role,
                mention_user,
            } => {
                let tag = channel::Tag::of(mention_role, mention_user);
                self.channel_post(&incident_id, &text, tag, &once).await
            }
            DiscordEffect::Progress {
                incident_id,
                key,
                text,
            } => self.progress(&incident_id, &key, &text, &once).await,
            DiscordEffect::CapturePin {
                incident_id,
                guild,
                channel,
                message,
            } => {
                self.capture_pin(&incident_id, &guild, &channel, &message)
                    .await
            }
            DiscordEffect::Checklist { incident_id } => self.checklist(&incident_id, &once).await,
        }
    }
}

/// Discord's `nonce` for the messages one effect posts, the same on every attempt: with
/// `enforce_nonce`, a post whose answer was lost (a timeout, a crash) and is made again
/// returns the first message instead of posting a second. Built from the effect's id and
/// a hash of its idempotency key, so two databases sharing a bot do not collide.
pub(super) struct Nonces(String);

impl Nonces {
    fn of(effect: &Effect) -> Self {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(effect.idempotency_key.as_bytes());
        Self(format!("{}{}", effect.id, hex::encode(&hash[..2])))
    }

    /// The nonce of the message `what` (`'c'` the card, `'p'` a post, …) of this effect;
    /// at most 24 characters (Discord allows 25).
    pub(super) fn message(&self, what: char) -> Nonce {
        Nonce::String(format!("{}{what}", self.0))
    }
}

/// A message posted at most once per effect (see [`Nonces`]).
pub(super) trait PostOnce {
    fn once(self, nonces: &Nonces, what: char) -> Self;
}

impl PostOnce for CreateMessage {
    fn once(self, nonces: &Nonces, what: char) -> Self {
        self.nonce(nonces.message(what)).enforce_nonce(true)
    }
}

/// A configured or recorded channel id as serenity's type; a value that is not a snowflake
/// is a config mistake, named in the error.
pub(super) fn channel_id(raw: &str) -> Result<ChannelId, EffectError> {
    snowflake(raw)
        .map(ChannelId::new)
        .ok_or_else(|| EffectError::permanent(format!("\"{raw}\" is not a Discord channel id")))
}

pub(super) fn message_id(raw: &str) -> Result<MessageId, EffectError> {
    snowflake(raw)
        .map(MessageId::new)
        .ok_or_else(|| EffectError::permanent(format!("\"{raw}\" is not a Discord message id")))
}

fn snowflake(raw: &str) -> Option<u64> {
    raw.trim().parse::<u64>().ok().filter(|n| *n != 0)
}

/// [`records::chat_ref`](crate::chat::records::chat_ref) on this platform.
pub(super) fn chat_ref(
    incident: &IncidentId,
    role: &str,
    channel: &str,
    message: Option<&str>,
) -> crate::store::ChatRef {
    crate::chat::records::chat_ref(PLATFORM, incident, role, channel, message)
}

pub(super) fn db_error(e: anyhow::Error) -> EffectError {
    crate::chat::records::db_error::<DiscordEffects>(e)
}

impl ChatRecords for DiscordEffects {
    const PLATFORM: &'static str = PLATFORM;

    fn store(&self) -> &Store {
        &self.store
    }
}
