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

pub mod channel;
pub mod notices;
pub mod pins;
pub mod types;

use async_trait::async_trait;
use serenity::all::{ChannelId, MessageId};

pub use types::DiscordEffect;

use super::api::DiscordApi;
use super::config::DiscordConfig;
use crate::effects::Effect;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::timeline::EntryKind;
use crate::store::{ChatRef, Store};

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
        match effect.decode::<DiscordEffect>()? {
            DiscordEffect::SyncChannel { incident_id } => self.sync_channel(&incident_id).await,
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
            } => self.notice(&incident_id, &channel, announce).await,
            DiscordEffect::ChannelPost {
                incident_id,
                text,
                mention_role,
            } => {
                self.channel_post(&incident_id, &text, mention_role.as_deref())
                    .await
            }
            DiscordEffect::Progress {
                incident_id,
                key,
                text,
            } => self.progress(&incident_id, &key, &text).await,
            DiscordEffect::CapturePin {
                incident_id,
                guild,
                channel,
                message,
            } => {
                self.capture_pin(&incident_id, &guild, &channel, &message)
                    .await
            }
        }
    }
}

/// Which refs an incident already has on Discord.
pub(super) struct Refs(Vec<ChatRef>);

impl Refs {
    fn find(&self, role: &str) -> Option<&ChatRef> {
        self.0.iter().find(|r| r.role == role)
    }

    fn channel(&self) -> Option<String> {
        self.find("channel").map(|r| r.channel_id.clone())
    }

    /// The message recorded for `role` in `channel`, if any.
    fn message(&self, role: &str, channel: &str) -> Option<String> {
        self.0
            .iter()
            .find(|r| r.role == role && r.channel_id == channel)
            .and_then(|r| r.message_id.clone())
    }

    /// Channels with a ref of `role`, in the order they were recorded.
    fn channels_with(&self, role: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|r| r.role == role)
            .map(|r| r.channel_id.clone())
            .collect()
    }
}

impl DiscordEffects {
    pub(super) async fn incident(&self, id: &IncidentId) -> Result<Incident, EffectError> {
        self.store
            .incident_by_id(id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| EffectError::permanent("the incident no longer exists"))
    }

    pub(super) async fn refs(&self, incident: &IncidentId) -> Result<Refs, EffectError> {
        Ok(Refs(
            self.store
                .chat_refs(incident, PLATFORM)
                .await
                .map_err(db_error)?,
        ))
    }

    pub(super) async fn latest_update(
        &self,
        incident: &Incident,
    ) -> Result<Option<String>, EffectError> {
        let entry = self
            .store
            .latest_entry(&incident.id, EntryKind::Update)
            .await
            .map_err(db_error)?;
        Ok(entry.map(|e| e.text))
    }

    pub(super) async fn put_ref(
        &self,
        incident: &IncidentId,
        role: &str,
        channel: &str,
        message: Option<&str>,
    ) -> Result<(), EffectError> {
        self.store
            .put_chat_ref(&chat_ref(incident, role, channel, message))
            .await
            .map_err(db_error)
    }
}

pub(super) fn chat_ref(
    incident: &IncidentId,
    role: &str,
    channel: &str,
    message: Option<&str>,
) -> ChatRef {
    ChatRef {
        incident_id: incident.0.clone(),
        platform: PLATFORM.into(),
        role: role.into(),
        channel_id: channel.into(),
        message_id: message.map(str::to_string),
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

pub(super) fn db_error(e: anyhow::Error) -> EffectError {
    tracing::error!(error = %format!("{e:#}"), "database error in a Discord effect");
    EffectError::retryable("database unavailable")
}
