//! Company-wide notices, one effect per channel.
//!
//! A change queues one fan-out ([`SlackEffect::SyncNotices`]), which only touches the
//! database: when it runs it queues, in one transaction, a [`SlackEffect::Notice`] for
//! every channel that is announced to now or already has (or is owed) a notice, and a
//! thread reply under each if the change has one. Each channel has its own FIFO group, so
//! its post comes before its edits, and a channel that fails never holds up another. The
//! planner queues an announcement's notices with the change itself, under the keys the
//! fan-out gives them (so the CLI delivers them and reports their failures); the fan-out
//! queueing them again is a no-op.
//!
//! A notice renders from the database when it runs: it posts if the channel has no notice
//! yet (recording the `ts` at once, so a retry edits instead of posting again), else edits.
//! A post that can never succeed (`channel_not_found`, `not_in_channel`, …) is reported once
//! per incident and channel in the incident channel, naming the channel and the fix.

use slack_morphism::prelude::*;

use super::types::{SlackEffect, channel_group, notice_failed_key, notice_group};
use super::{SlackEffects, render_error};
use crate::chat::records::{
    ChatRecords, NOTICE, notice_channels, record_fan_out, report_notice_failure,
};
use crate::chat::slack::api::SlackCallError;
use crate::chat::slack::blocks;
use crate::chat::slack::mrkdwn::Mrkdwn;
use crate::effects::NewEffect;
use crate::effects::handler::EffectError;
use crate::incident::model::IncidentId;

/// What one fan-out asks for.
pub struct FanOut<'a> {
    /// The fan-out's own idempotency key; each child's key extends it.
    pub parent_key: &'a str,
    /// Channels to post in if they have no notice yet (this change's announcement list).
    pub announce: &'a [String],
    /// A thread reply under every notice.
    pub reply: Option<&'a str>,
    /// The incident is being declared: no channel has a notice yet (see
    /// [`SlackEffect::is_fresh`]).
    pub fresh: bool,
}

impl SlackEffects {
    pub(super) async fn fan_out(
        &self,
        id: &IncidentId,
        fan_out: FanOut<'_>,
    ) -> Result<Option<String>, EffectError> {
        let known = self.refs(id).await?.notice_channels();
        let children = plan_children(id, &fan_out, &known);
        record_fan_out(self, id, fan_out.announce, &children).await?;
        Ok(None)
    }

    /// The notice in one channel: edited if it exists, else posted when `announce`.
    pub(super) async fn notice(
        &self,
        id: &IncidentId,
        channel: &str,
        announce: bool,
    ) -> Result<Option<String>, EffectError> {
        let refs = self.refs(id).await?;
        let existing = refs.message(NOTICE, channel);
        if existing.is_none() && !refs.notice_due(channel, announce) {
            return Ok(None);
        }
        // Under a storm most notices wait for their channel's turn: find out before reading.
        match existing {
            Some(_) => self.api.ready("chat.update", None)?,
            None => self.api.ready("chat.postMessage", Some(channel))?,
        }
        let incident = self.incident(id).await?;
        let latest = self.latest_update(&incident).await?;
        let (text, notice) = blocks::notice(
            &incident,
            refs.channel().as_deref(),
            latest.as_deref(),
            self.public_url.as_deref(),
        )
        .map_err(render_error)?;
        let content = SlackMessageContent::new()
            .with_text(text)
            .with_blocks(notice);
        let editing = existing.is_some();
        let outcome = match existing {
            Some(ts) => self
                .update_message(channel, ts, content)
                .await
                .map(|()| None),
            None => self.post(channel, content, None).await.map(Some),
        };
        match outcome {
            Ok(None) => Ok(None),
            Ok(Some(ts)) => {
                self.put_ref(id, NOTICE, channel, Some(&ts)).await?;
                Ok(Some(format!("Company-wide notice posted in <#{channel}>")))
            }
            Err(e) if e.is_permanent() => Err(self.report(id, channel, &e, editing).await),
            Err(e) => Err(e.into()),
        }
    }

    /// A thread reply under the notice in `channel`; nothing if there is no notice there.
    pub(super) async fn notice_reply(
        &self,
        effect_id: i64,
        id: &IncidentId,
        channel: &str,
        text: &str,
    ) -> Result<Option<String>, EffectError> {
        let refs = self.refs(id).await?;
        let Some(notice_ts) = refs.message(NOTICE, channel) else {
            return Ok(None);
        };
        let role = format!("reply:{effect_id}");
        if refs.in_channel(&role, channel).is_some() {
            return Ok(None);
        }
        let content = SlackMessageContent::new().with_text(self.text(id, text).await);
        let ts = self.post(channel, content, Some(notice_ts)).await?;
        self.put_ref(id, &role, channel, Some(&ts)).await?;
        Ok(None)
    }

    /// Queues the one message about `channel` in the incident channel, and returns the
    /// effect's own error; both name the channel and the fix.
    async fn report(
        &self,
        id: &IncidentId,
        channel: &str,
        e: &SlackCallError,
        editing: bool,
    ) -> EffectError {
        let message = failure_message(channel, &e.error.to_string(), e.code.as_deref(), editing);
        let post = SlackEffect::ChannelPost {
            incident_id: id.clone(),
            text: format!("⚠️ {message}"),
        }
        .queued(notice_failed_key(id, channel))
        .ordered(channel_group(id));
        report_notice_failure(self, id, channel, &post, message).await
    }
}

/// The per-channel effects of a fan-out (pure). Announced channels come first, then every
/// other channel already `known` to have or be owed a notice; each gets a notice (edit, or
/// post if announced) and, with a reply, a thread reply after it.
pub fn plan_children(id: &IncidentId, fan_out: &FanOut<'_>, known: &[String]) -> Vec<NewEffect> {
    let mut children = Vec::new();
    for channel in notice_channels(fan_out.announce, known) {
        let group = notice_group(id, channel);
        let notice = SlackEffect::Notice {
            incident_id: id.clone(),
            channel: channel.clone(),
            announce: fan_out.announce.contains(channel),
            fresh: fan_out.fresh,
        };
        let key = format!("{}:{channel}", fan_out.parent_key);
        children.push(notice.queued(key).ordered(group.clone()));
        if let Some(text) = fan_out.reply {
            let reply = SlackEffect::NoticeReply {
                incident_id: id.clone(),
                channel: Some(channel.clone()),
                text: text.to_string(),
            };
            let key = format!("{}:reply:{channel}", fan_out.parent_key);
            children.push(reply.queued(key).ordered(group));
        }
    }
    children
}

/// What to say when the notice cannot go out in `channel` (pure): what failed and the fix,
/// as mrkdwn (the reason is escaped; it can quote anything).
pub fn failure_message(channel: &str, reason: &str, code: Option<&str>, editing: bool) -> String {
    let verb = if editing { "update" } else { "post" };
    let fix = match code {
        Some("channel_not_found" | "not_in_channel") => {
            "Invite the bot with `/invite @firebreak` in that channel, or fix `[slack.announce]`."
        }
        Some("is_archived") => "Unarchive the channel, or remove it from `[slack.announce]`.",
        Some("message_not_found") => {
            "The notice was deleted there; the next severity or status change posts a new one."
        }
        Some(
            "restricted_action"
            | "restricted_action_read_only_channel"
            | "restricted_action_thread_only_channel"
            | "ekm_access_denied",
        ) => "Allow the bot to post in that channel, or remove it from `[slack.announce]`.",
        Some(
            "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" | "missing_scope",
        ) => "Check `SLACK_BOT_TOKEN` and that the app has the `chat:write` scope.",
        _ => "Check the channel and `[slack.announce]`.",
    };
    let what = code.unwrap_or(reason);
    format!(
        "Could not {verb} the company-wide notice in {}: {}. {fix}",
        Mrkdwn::channel(channel),
        Mrkdwn::text(what)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::TypedEffect;

    fn decoded(e: &NewEffect) -> SlackEffect {
        serde_json::from_value(e.payload.clone()).unwrap()
    }

    #[test]
    fn one_child_per_channel_each_in_its_own_group() {
        let id = IncidentId("i1".into());
        let announce = vec!["C_BAD".to_string(), "C_A".into(), "C_B".into()];
        let fan_out = FanOut {
            parent_key: "p",
            announce: &announce,
            reply: Some("📣 Rolled back"),
            fresh: false,
        };
        let known = vec!["C_A".to_string(), "C_OLD".into()];
        let children = plan_children(&id, &fan_out, &known);
        let summary: Vec<(&str, &str, &str)> = children
            .iter()
            .map(|c| {
                (
                    c.kind.as_str(),
                    c.idempotency_key.as_str(),
                    c.ordering_key.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("slack.notice", "p:C_BAD", "slack:i1:notice:C_BAD"),
                (
                    "slack.notice_reply",
                    "p:reply:C_BAD",
                    "slack:i1:notice:C_BAD"
                ),
                ("slack.notice", "p:C_A", "slack:i1:notice:C_A"),
                ("slack.notice_reply", "p:reply:C_A", "slack:i1:notice:C_A"),
                ("slack.notice", "p:C_B", "slack:i1:notice:C_B"),
                ("slack.notice_reply", "p:reply:C_B", "slack:i1:notice:C_B"),
                ("slack.notice", "p:C_OLD", "slack:i1:notice:C_OLD"),
                (
                    "slack.notice_reply",
                    "p:reply:C_OLD",
                    "slack:i1:notice:C_OLD"
                ),
            ]
        );
        assert_eq!(
            decoded(&children[6]),
            SlackEffect::Notice {
                incident_id: id.clone(),
                channel: "C_OLD".into(),
                announce: false,
                fresh: false
            },
            "a channel not announced to now is only edited"
        );
        assert_eq!(decoded(&children[0]).kind(), "slack.notice");
    }

    #[test]
    fn failures_name_the_channel_and_the_fix() {
        let m = failure_message(
            "C0MISSING",
            "Slack chat.postMessage failed: channel_not_found",
            Some("channel_not_found"),
            false,
        );
        assert_eq!(
            m,
            "Could not post the company-wide notice in <#C0MISSING>: channel_not_found. Invite the bot with `/invite @firebreak` in that channel, or fix `[slack.announce]`."
        );
        let m = failure_message("C1", "Slack chat.update answered HTTP 403", None, true);
        assert!(m.starts_with("Could not update the company-wide notice in <#C1>: Slack chat.update answered HTTP 403."), "{m}");
        assert!(failure_message("C1", "", Some("is_archived"), false).contains("Unarchive"));
    }
}
