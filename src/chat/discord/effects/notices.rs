//! Company-wide notices on Discord, one effect per announcement channel, as on Slack.
//!
//! A change queues one fan-out ([`DiscordEffect::SyncNotices`]) that only touches the
//! database: it queues a [`DiscordEffect::Notice`] for every channel announced to now or
//! already holding (or owed) a notice. Each channel has its own FIFO group and breaker
//! target, so its post comes before its edits and a channel that fails never holds up
//! another. A notice posts if its channel has none yet (recording the message id at once,
//! so a retry edits), else edits. A post that can never succeed (403 Missing Access, 404
//! Unknown Channel) is reported once per incident and channel in the incident channel.

use super::types::{DiscordEffect, channel_group, notice_failed_key, notice_group};
use super::{DiscordEffects, Nonces, PostOnce, channel_id, message_id};
use crate::chat::discord::api::{CallError, UNKNOWN_MESSAGE};
use crate::chat::discord::embeds;
use crate::chat::records::{
    ChatRecords, NOTICE, notice_channels, record_fan_out, report_notice_failure,
};
use crate::effects::NewEffect;
use crate::effects::handler::EffectError;
use crate::incident::model::IncidentId;

impl DiscordEffects {
    pub(super) async fn fan_out(
        &self,
        id: &IncidentId,
        parent_key: &str,
        announce: &[String],
    ) -> Result<Option<String>, EffectError> {
        let known = self.refs(id).await?.notice_channels();
        let children = plan_children(id, parent_key, announce, &known);
        record_fan_out(self, id, announce, &children).await?;
        Ok(None)
    }

    /// The notice in one channel: edited if it exists, else posted when `announce`.
    pub(super) async fn notice(
        &self,
        id: &IncidentId,
        channel: &str,
        announce: bool,
        once: &Nonces,
    ) -> Result<Option<String>, EffectError> {
        let refs = self.refs(id).await?;
        let existing = refs.message(NOTICE, channel);
        if existing.is_none() && !refs.notice_due(channel, announce) {
            return Ok(None);
        }
        let incident = self.incident(id).await?;
        let latest = self.latest_update(&incident).await?;
        let embed = embeds::notice(&incident, refs.channel().as_deref(), latest.as_deref());
        let target = channel_id(channel)?;
        let editing = existing.is_some();
        let edited = match existing {
            Some(message) => {
                let edit = embeds::embed_edit(&embed, Vec::new());
                match self
                    .api
                    .edit_message(target, message_id(&message)?, &edit)
                    .await
                {
                    // Someone deleted the notice: post it again.
                    Err(e) if e.is_code(UNKNOWN_MESSAGE) => None,
                    other => Some(other.map(|_| None)),
                }
            }
            None => None,
        };
        let outcome = match edited {
            Some(outcome) => outcome,
            None => {
                let post = embeds::embed_message(&embed, Vec::new());
                self.api
                    .send_message(target, &post.once(once, 'n'))
                    .await
                    .map(|m| Some(m.id.to_string()))
            }
        };
        match outcome {
            Ok(None) => Ok(None),
            Ok(Some(message)) => {
                self.put_ref(id, NOTICE, channel, Some(&message)).await?;
                Ok(Some(format!(
                    "Company-wide notice posted in Discord channel {channel}"
                )))
            }
            Err(e) if e.is_permanent() => Err(self.report(id, channel, &e, editing).await),
            Err(e) => Err(e.into()),
        }
    }

    /// Queues the one message about `channel` in the incident channel, and returns the
    /// effect's own error; both name the channel and the fix.
    async fn report(
        &self,
        id: &IncidentId,
        channel: &str,
        e: &CallError,
        editing: bool,
    ) -> EffectError {
        let message = failure_message(channel, &e.error.to_string(), e.status, editing);
        let post = DiscordEffect::ChannelPost {
            incident_id: id.clone(),
            text: format!("⚠️ {message}"),
            mention_role: None,
            mention_user: None,
        }
        .queued(notice_failed_key(id, channel))
        .ordered(channel_group(id));
        report_notice_failure(self, id, channel, &post, message).await
    }
}

/// The per-channel notices of a fan-out (pure): announced channels first, then every other
/// channel already `known`; each edits its notice, and posts one if announced.
pub fn plan_children(
    id: &IncidentId,
    parent_key: &str,
    announce: &[String],
    known: &[String],
) -> Vec<NewEffect> {
    notice_channels(announce, known)
        .into_iter()
        .map(|channel| {
            DiscordEffect::Notice {
                incident_id: id.clone(),
                channel: channel.clone(),
                announce: announce.contains(channel),
            }
            .queued(format!("{parent_key}:{channel}"))
            .ordered(notice_group(id, channel))
        })
        .collect()
}

/// What to say when the notice cannot go out in `channel` (pure): what failed and the fix.
pub fn failure_message(channel: &str, reason: &str, status: Option<u16>, editing: bool) -> String {
    let verb = if editing { "update" } else { "post" };
    let fix = match status {
        Some(403) => {
            "Give the bot View Channel, Send Messages and Embed Links there, or fix `[discord.announce]`."
        }
        Some(404) => "The channel (or the notice) no longer exists; fix `[discord.announce]`.",
        Some(401) => "Check `DISCORD_BOT_TOKEN`.",
        _ => "Check the channel and `[discord.announce]`.",
    };
    format!("Could not {verb} the company-wide notice in <#{channel}>: {reason}. {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_notice_per_channel_each_in_its_own_group() {
        let id = IncidentId("i1".into());
        let announce = vec!["1".to_string(), "2".into()];
        let known = vec!["2".to_string(), "3".into()];
        let children = plan_children(&id, "p", &announce, &known);
        let summary: Vec<(&str, &str)> = children
            .iter()
            .map(|c| {
                (
                    c.idempotency_key.as_str(),
                    c.ordering_key.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("p:1", "discord:i1:notice:1"),
                ("p:2", "discord:i1:notice:2"),
                ("p:3", "discord:i1:notice:3")
            ]
        );
        let last: DiscordEffect = serde_json::from_value(children[2].payload.clone()).unwrap();
        assert_eq!(
            last,
            DiscordEffect::Notice {
                incident_id: id,
                channel: "3".into(),
                announce: false
            },
            "a channel not announced to now is only edited"
        );
    }

    #[test]
    fn failures_name_the_channel_and_the_fix() {
        let m = failure_message(
            "42",
            "Discord refused to post a message: HTTP 403",
            Some(403),
            false,
        );
        assert_eq!(
            m,
            "Could not post the company-wide notice in <#42>: Discord refused to post a message: HTTP 403. Give the bot View Channel, Send Messages and Embed Links there, or fix `[discord.announce]`."
        );
    }
}
