//! [`SlackEffect`]: everything firebreak asks Slack to do, one variant per kind of call. The
//! queue stores it as JSON tagged with its kind (`{"type": "slack.notice", …}`), which is
//! also the `kind` column, so the two can never disagree.
//!
//! Ordering keys and idempotency keys are built here too, from content only: the incident,
//! the intent, the target channel and the version or delivery that caused it.

use serde::{Deserialize, Serialize};

use crate::effects::handler::EffectError;
use crate::effects::{Effect, NewEffect, TypedEffect};
use crate::incident::model::IncidentId;

pub const SYNC_CHANNEL: &str = "slack.sync_channel";
pub const SYNC_NOTICES: &str = "slack.sync_notices";
pub const NOTICE: &str = "slack.notice";
pub const NOTICE_REPLY: &str = "slack.notice_reply";
pub const CHANNEL_POST: &str = "slack.channel_post";
pub const PROGRESS: &str = "slack.progress";
pub const OPEN_MODAL: &str = "slack.open_modal";
pub const EPHEMERAL: &str = "slack.ephemeral";
pub const CAPTURE_PIN: &str = "slack.capture_pin";
pub const LOOKUP_USER: &str = "slack.lookup_user";
pub const CHECKLIST: &str = "slack.checklist";
pub const POST: &str = "slack.post";

pub const ALL_KINDS: &[&str] = &[
    SYNC_CHANNEL,
    SYNC_NOTICES,
    NOTICE,
    NOTICE_REPLY,
    CHANNEL_POST,
    PROGRESS,
    OPEN_MODAL,
    EPHEMERAL,
    CAPTURE_PIN,
    LOOKUP_USER,
    CHECKLIST,
    POST,
];

/// One thing to do on Slack. Variants that render incident state (`SyncChannel`, `Notice`)
/// carry no text: they read the incident when they run, so they are always current. The
/// texts the others carry are Slack mrkdwn, escaped when they were planned
/// ([`crate::chat::slack::mrkdwn::Mrkdwn`]); they are sent as they are, within Slack's
/// 40,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SlackEffect {
    /// Create the incident channel if needed, invite responders, set the topic, post and pin
    /// the card (or edit it).
    #[serde(rename = "slack.sync_channel")]
    SyncChannel {
        incident_id: IncidentId,
        #[serde(default)]
        invite: Vec<String>,
        /// Planned by the declaration: see [`SlackEffect::is_fresh`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
    },
    /// Fan-out, database only: queue one [`SlackEffect::Notice`] per channel (these
    /// `channels`, plus every channel that has or is owed a notice) and, with `reply`, one
    /// [`SlackEffect::NoticeReply`] under each notice.
    #[serde(rename = "slack.sync_notices")]
    SyncNotices {
        incident_id: IncidentId,
        #[serde(default)]
        channels: Vec<String>,
        #[serde(default)]
        reply: Option<String>,
    },
    /// The company-wide notice in one channel: edited if it exists, else posted when
    /// `announce` (an edit-only notice for a channel whose post failed does nothing).
    #[serde(rename = "slack.notice")]
    Notice {
        incident_id: IncidentId,
        channel: String,
        #[serde(default)]
        announce: bool,
        /// Planned by the declaration: see [`SlackEffect::is_fresh`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
    },
    /// A thread reply under the notice in `channel`. Without a channel (effects queued by
    /// an earlier version) it fans out to one reply per notice.
    #[serde(rename = "slack.notice_reply")]
    NoticeReply {
        incident_id: IncidentId,
        #[serde(default)]
        channel: Option<String>,
        text: String,
    },
    /// A plain message in the incident channel.
    #[serde(rename = "slack.channel_post")]
    ChannelPost {
        incident_id: IncidentId,
        text: String,
    },
    /// A message in the incident channel, posted once per `key` and edited afterwards.
    #[serde(rename = "slack.progress")]
    Progress {
        incident_id: IncidentId,
        key: String,
        text: String,
    },
    /// A modal; the trigger id is good until `expires_at_ms`.
    #[serde(rename = "slack.open_modal")]
    OpenModal {
        trigger_id: String,
        view: serde_json::Value,
        expires_at_ms: i64,
    },
    /// A message only `user` sees.
    #[serde(rename = "slack.ephemeral")]
    Ephemeral {
        channel: String,
        user: String,
        text: String,
    },
    /// A `:pushpin:` reaction: the message onto the timeline.
    #[serde(rename = "slack.capture_pin")]
    CapturePin {
        incident_id: IncidentId,
        channel: String,
        ts: String,
        #[serde(default)]
        reactor: String,
    },
    /// Cache a user's display name (`users.info`) for documents and the CLI.
    #[serde(rename = "slack.lookup_user")]
    LookupUser { user: String },
    /// The runbook checklist in the incident channel, read when it runs: posted once, then
    /// edited, with a Done button on each open manual step.
    #[serde(rename = "slack.checklist")]
    Checklist { incident_id: IncidentId },
    /// A message in a channel outside the incident (a runbook's customer notice).
    #[serde(rename = "slack.post")]
    Post { channel: String, text: String },
}

impl TypedEffect for SlackEffect {
    fn kind(&self) -> &'static str {
        match self {
            Self::SyncChannel { .. } => SYNC_CHANNEL,
            Self::SyncNotices { .. } => SYNC_NOTICES,
            Self::Notice { .. } => NOTICE,
            Self::NoticeReply { .. } => NOTICE_REPLY,
            Self::ChannelPost { .. } => CHANNEL_POST,
            Self::Progress { .. } => PROGRESS,
            Self::OpenModal { .. } => OPEN_MODAL,
            Self::Ephemeral { .. } => EPHEMERAL,
            Self::CapturePin { .. } => CAPTURE_PIN,
            Self::LookupUser { .. } => LOOKUP_USER,
            Self::Checklist { .. } => CHECKLIST,
            Self::Post { .. } => POST,
        }
    }
}

impl SlackEffect {
    /// Decodes a queued effect. Payloads queued before effects were tagged (by an earlier
    /// version, or by an adapter still building them by hand) take their tag from `kind`.
    pub fn decode(effect: &Effect) -> Result<Self, EffectError> {
        if effect.payload.get("type").is_some() {
            return effect.decode();
        }
        let mut tagged = effect.clone();
        if let serde_json::Value::Object(map) = &mut tagged.payload {
            map.insert("type".into(), effect.kind.clone().into());
        }
        tagged.decode()
    }

    /// Whether the planner knew the incident was new (it has no channel and no notice
    /// anywhere yet) and the effect has not reached Slack before. Such an effect asks
    /// Slack's rate tier for the call it will make before it reads the incident's chat
    /// records: under a storm of declarations most of them wait for their slot, and a
    /// deferred attempt then costs no read. A guess that turns out wrong (a retry after a
    /// crash found the channel made) only leaves one slot of the tier unused.
    pub fn is_fresh(&self, effect: &Effect) -> bool {
        let fresh = matches!(
            self,
            Self::SyncChannel { fresh: true, .. } | Self::Notice { fresh: true, .. }
        );
        fresh && effect.attempts <= 1
    }

    /// The call a declaration's effect makes first (method, and channel for posts): what a
    /// [fresh](Self::is_fresh) attempt asks the tier for before reading, and what the
    /// planner books a slot for. `None` for effects not planned as new.
    pub fn first_call(&self) -> Option<(&'static str, Option<&str>)> {
        match self {
            Self::SyncChannel { fresh: true, .. } => Some(("conversations.create", None)),
            Self::Notice {
                fresh: true,
                channel,
                ..
            } => Some(("chat.postMessage", Some(channel))),
            _ => None,
        }
    }

    /// Whether running it only writes to the database (no Slack call).
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Self::SyncNotices { .. } | Self::NoticeReply { channel: None, .. }
        )
    }

    pub fn incident_id(&self) -> Option<&IncidentId> {
        match self {
            Self::SyncChannel { incident_id, .. }
            | Self::SyncNotices { incident_id, .. }
            | Self::Notice { incident_id, .. }
            | Self::NoticeReply { incident_id, .. }
            | Self::ChannelPost { incident_id, .. }
            | Self::Progress { incident_id, .. }
            | Self::CapturePin { incident_id, .. }
            | Self::Checklist { incident_id } => Some(incident_id),
            Self::OpenModal { .. }
            | Self::Ephemeral { .. }
            | Self::LookupUser { .. }
            | Self::Post { .. } => None,
        }
    }

    /// The row to enqueue, under `key`.
    pub fn queued(&self, key: String) -> NewEffect {
        NewEffect::typed(self.incident_id().cloned(), self, key)
    }
}

/// FIFO group for everything in the incident channel (create, invite, topic, card, posts).
pub fn channel_group(incident: &IncidentId) -> String {
    format!("slack:{incident}:channel")
}

/// FIFO group for the notice fan-outs, so they see each other's channels in order.
pub fn notices_group(incident: &IncidentId) -> String {
    format!("slack:{incident}:notices")
}

/// FIFO group for one announcement channel: its post, then its edits and thread replies.
pub fn notice_group(incident: &IncidentId, channel: &str) -> String {
    format!("slack:{incident}:notice:{channel}")
}

/// The key of the one message reporting that `channel` could not get the notice.
pub fn notice_failed_key(incident: &IncidentId, channel: &str) -> String {
    format!("slack.notice_failed:{incident}:{channel}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(kind: &str, payload: serde_json::Value) -> Effect {
        let row = crate::effects::NewEffect {
            incident_id: None,
            kind: kind.into(),
            payload,
            idempotency_key: "k".into(),
            ordering_key: None,
            audience: None,
            not_before: None,
            records: Vec::new(),
        };
        Effect::as_claimed(&row)
    }

    #[test]
    fn round_trips_through_the_queue_with_kind_as_tag() {
        let effect = SlackEffect::Notice {
            incident_id: IncidentId("i1".into()),
            channel: "C1".into(),
            announce: true,
            fresh: false,
        };
        let row = effect.queued("k".into());
        assert_eq!(row.kind, NOTICE);
        assert_eq!(row.payload["type"], NOTICE);
        assert_eq!(
            SlackEffect::decode(&stored(&row.kind, row.payload)).unwrap(),
            effect
        );
    }

    #[test]
    fn untagged_payloads_take_their_tag_from_the_kind() {
        let legacy = stored(
            PROGRESS,
            json!({ "incident_id": "i1", "key": "freeze", "text": "3/8" }),
        );
        assert_eq!(
            SlackEffect::decode(&legacy).unwrap(),
            SlackEffect::Progress {
                incident_id: IncidentId("i1".into()),
                key: "freeze".into(),
                text: "3/8".into()
            }
        );
        let broken = stored(CHANNEL_POST, json!({ "incident_id": "i1" }));
        assert!(matches!(
            SlackEffect::decode(&broken),
            Err(EffectError::Permanent { .. })
        ));
    }

    #[test]
    fn only_a_declarations_first_attempt_asks_the_tier_before_reading() {
        let notice = |fresh| SlackEffect::Notice {
            incident_id: IncidentId("i1".into()),
            channel: "C1".into(),
            announce: true,
            fresh,
        };
        let row = notice(true).queued("k".into());
        let mut claimed = stored(&row.kind, row.payload);
        assert!(notice(true).is_fresh(&claimed), "first attempt");
        claimed.attempts = 2;
        assert!(
            !notice(true).is_fresh(&claimed),
            "a retry reads first: the earlier attempt may have posted"
        );
        claimed.attempts = 1;
        assert!(!notice(false).is_fresh(&claimed), "not planned as new");

        // Effects not planned as new are stored as before, and earlier payloads decode.
        let plain = notice(false).queued("k".into());
        assert!(plain.payload.get("fresh").is_none(), "{}", plain.payload);
        let earlier = stored(
            SYNC_CHANNEL,
            json!({ "incident_id": "i1", "invite": ["U1"] }),
        );
        let decoded = SlackEffect::decode(&earlier).unwrap();
        assert!(!decoded.is_fresh(&earlier), "{decoded:?}");
    }
}
