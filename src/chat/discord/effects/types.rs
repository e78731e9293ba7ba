//! [`DiscordEffect`]: everything firebreak asks Discord to do, one variant per kind of call.
//! The queue stores it as JSON tagged with its kind (`{"type": "discord.notice", …}`), which
//! is also the `kind` column. Ordering groups and failure-report keys are built here, from
//! content only.

use serde::{Deserialize, Serialize};

use crate::effects::{NewEffect, TypedEffect};
use crate::incident::model::IncidentId;

pub const SYNC_CHANNEL: &str = "discord.sync_channel";
pub const SYNC_NOTICES: &str = "discord.sync_notices";
pub const NOTICE: &str = "discord.notice";
pub const CHANNEL_POST: &str = "discord.channel_post";
pub const PROGRESS: &str = "discord.progress";
pub const CAPTURE_PIN: &str = "discord.capture_pin";
pub const CHECKLIST: &str = "discord.checklist";

pub const ALL_KINDS: &[&str] = &[
    SYNC_CHANNEL,
    SYNC_NOTICES,
    NOTICE,
    CHANNEL_POST,
    PROGRESS,
    CAPTURE_PIN,
    CHECKLIST,
];

/// One thing to do on Discord. Variants that render incident state (`SyncChannel`,
/// `Notice`) carry no text: they read the incident when they run, so they are always
/// current. Texts the others carry are what people typed, plain; they are escaped and
/// fitted when the message is built ([`super::super::embeds`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DiscordEffect {
    /// Create the incident channel (or forum thread) if needed, post and pin the card, or
    /// edit it.
    #[serde(rename = "discord.sync_channel")]
    SyncChannel { incident_id: IncidentId },
    /// Fan-out, database only: one [`DiscordEffect::Notice`] per channel (these `channels`,
    /// plus every channel that has or is owed a notice).
    #[serde(rename = "discord.sync_notices")]
    SyncNotices {
        incident_id: IncidentId,
        #[serde(default)]
        channels: Vec<String>,
    },
    /// The company-wide notice in one channel: edited if it exists, else posted when
    /// `announce`.
    #[serde(rename = "discord.notice")]
    Notice {
        incident_id: IncidentId,
        channel: String,
        #[serde(default)]
        announce: bool,
    },
    /// A message in the incident channel; `mention_role` (a stored role id) or
    /// `mention_user` (a Discord user id) is tagged in front and is the only mention allowed.
    #[serde(rename = "discord.channel_post")]
    ChannelPost {
        incident_id: IncidentId,
        text: String,
        #[serde(default)]
        mention_role: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mention_user: Option<String>,
    },
    /// A message in the incident channel, posted once per `key` and edited afterwards.
    #[serde(rename = "discord.progress")]
    Progress {
        incident_id: IncidentId,
        key: String,
        text: String,
    },
    /// A 📌 reaction: read the message and put it on the timeline with its author, its own
    /// time and a link.
    #[serde(rename = "discord.capture_pin")]
    CapturePin {
        incident_id: IncidentId,
        guild: String,
        channel: String,
        message: String,
    },
    /// The runbook's checklist in the incident channel, rendered from the database when it
    /// runs: posted once, edited in place, with a Done button per open manual step.
    #[serde(rename = "discord.checklist")]
    Checklist { incident_id: IncidentId },
}

impl TypedEffect for DiscordEffect {
    fn kind(&self) -> &'static str {
        match self {
            Self::SyncChannel { .. } => SYNC_CHANNEL,
            Self::SyncNotices { .. } => SYNC_NOTICES,
            Self::Notice { .. } => NOTICE,
            Self::ChannelPost { .. } => CHANNEL_POST,
            Self::Progress { .. } => PROGRESS,
            Self::CapturePin { .. } => CAPTURE_PIN,
            Self::Checklist { .. } => CHECKLIST,
        }
    }
}

impl DiscordEffect {
    pub fn incident_id(&self) -> &IncidentId {
        match self {
            Self::SyncChannel { incident_id }
            | Self::SyncNotices { incident_id, .. }
            | Self::Notice { incident_id, .. }
            | Self::ChannelPost { incident_id, .. }
            | Self::Progress { incident_id, .. }
            | Self::CapturePin { incident_id, .. }
            | Self::Checklist { incident_id } => incident_id,
        }
    }

    /// The row to enqueue, under `key`.
    pub fn queued(&self, key: String) -> NewEffect {
        NewEffect::typed(Some(self.incident_id().clone()), self, key)
    }
}

/// FIFO group for everything in the incident channel (create, card, posts).
pub fn channel_group(incident: &IncidentId) -> String {
    format!("discord:{incident}:channel")
}

/// FIFO group for the notice fan-outs, so they see each other's channels in order.
pub fn notices_group(incident: &IncidentId) -> String {
    format!("discord:{incident}:notices")
}

/// FIFO group for one announcement channel: its post, then its edits.
pub fn notice_group(incident: &IncidentId, channel: &str) -> String {
    format!("discord:{incident}:notice:{channel}")
}

/// The key of the one message reporting that `channel` could not get the notice.
pub fn notice_failed_key(incident: &IncidentId, channel: &str) -> String {
    format!("discord.notice_failed:{incident}:{channel}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;

    #[test]
    fn round_trips_through_the_queue_with_kind_as_tag() {
        let effect = DiscordEffect::ChannelPost {
            incident_id: IncidentId("i1".into()),
            text: "⏰ overdue".into(),
            mention_role: Some("77".into()),
            mention_user: None,
        };
        let row = effect.queued("k".into());
        assert_eq!(row.kind, CHANNEL_POST);
        assert_eq!(row.payload["type"], CHANNEL_POST);
        let back: DiscordEffect = Effect::as_claimed(&row).decode().unwrap();
        assert_eq!(back, effect);
    }

    #[test]
    fn a_post_queued_before_user_mentions_existed_still_decodes() {
        let row = serde_json::json!({"type": CHANNEL_POST, "incident_id": "i1", "text": "hi"});
        let back: DiscordEffect = serde_json::from_value(row).unwrap();
        assert!(matches!(
            back,
            DiscordEffect::ChannelPost {
                mention_user: None,
                mention_role: None,
                ..
            }
        ));
        let checklist = DiscordEffect::Checklist {
            incident_id: IncidentId("i1".into()),
        };
        assert_eq!(checklist.queued("k".into()).kind, CHECKLIST);
    }
}
