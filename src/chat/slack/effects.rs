//! Runs the Slack effects planned in [`planner`](super::planner). Each one is idempotent:
//! whatever it creates (the channel, the card, a notice, a thread reply) is recorded in
//! `chat_refs` right after Slack confirms it, so a retry edits or skips instead of creating a
//! second copy. Cards and notices are rendered from the database when the effect runs.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use slack_morphism::prelude::*;

use super::api::SlackApi;
use super::blocks::{self, user_id};
use super::config::SlackConfig;
use super::planner::{self, ALL_KINDS};
use crate::effects::handler::{EffectError, EffectHandler};
use crate::effects::{Effect, NewEffect};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::timeline::EntryKind;
use crate::store::{ChatRef, Store};

const PLATFORM: &str = "slack";

pub struct SlackEffects {
    pub api: SlackApi,
    pub store: Store,
    pub config: SlackConfig,
}

#[async_trait]
impl EffectHandler for SlackEffects {
    fn kinds(&self) -> &'static [&'static str] {
        ALL_KINDS
    }

    fn target(&self, _effect: &Effect) -> String {
        "slack".into()
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        match effect.kind.as_str() {
            planner::SYNC_CHANNEL => self.sync_channel(effect).await,
            planner::SYNC_NOTICES => self.sync_notices(effect).await,
            planner::CHANNEL_POST => self.channel_post(effect).await,
            planner::NOTICE_REPLY => self.notice_reply(effect).await,
            planner::OPEN_MODAL => self.open_modal(effect).await,
            planner::EPHEMERAL => self.ephemeral(effect).await,
            planner::CAPTURE_PIN => self.capture_pin(effect).await,
            planner::PROGRESS => self.progress(effect).await,
            other => Err(EffectError::permanent(format!(
                "unknown Slack effect {other}"
            ))),
        }
    }
}

/// Which refs an incident already has on Slack.
struct Refs(Vec<ChatRef>);

impl Refs {
    fn find(&self, role: &str) -> Option<&ChatRef> {
        self.0.iter().find(|r| r.role == role)
    }

    fn channel(&self) -> Option<String> {
        self.find("channel").map(|r| r.channel_id.clone())
    }

    fn in_channel(&self, role: &str, channel: &str) -> Option<&ChatRef> {
        self.0
            .iter()
            .find(|r| r.role == role && r.channel_id == channel)
    }

    fn notices(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|r| r.role == "notice")
            .filter_map(|r| Some((r.channel_id.clone(), r.message_id.clone()?)))
            .collect()
    }
}

impl SlackEffects {
    async fn sync_channel(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let incident = self.incident(effect).await?;
        let refs = self.refs(&incident).await?;
        let (channel, created) = match refs.channel() {
            Some(c) => (c, false),
            None => (self.create_channel(&incident).await?, true),
        };
        self.invite(&incident, &channel, &refs, &payload_list(effect, "invite"))
            .await?;
        self.set_topic(&incident, &channel, &refs).await?;
        let card_posted = self.upsert_card(&incident, &channel, &refs).await?;
        if created {
            // The notices went out first (T+0); now that the channel exists, link it.
            self.enqueue_follow_up(&incident, planner::SYNC_NOTICES, "channel-link")
                .await?;
        }
        Ok(match (created, card_posted) {
            (true, _) => Some(format!(
                "Slack channel <#{channel}> created with the pinned incident card"
            )),
            (false, true) => Some(format!("Incident card posted and pinned in <#{channel}>")),
            (false, false) => None,
        })
    }

    async fn create_channel(&self, incident: &Incident) -> Result<String, EffectError> {
        for attempt in 0..5 {
            let name = blocks::channel_name(&self.config.channel_prefix, incident, attempt);
            let req = SlackApiConversationsCreateRequest::new(name)
                .with_is_private(self.config.private_channels);
            match self
                .api
                .call("conversations.create", None, |s| async move {
                    s.conversations_create(&req).await
                })
                .await
            {
                Ok(resp) => {
                    let id = resp.channel.id.to_string();
                    self.put_ref(incident, "channel", &id, None).await?;
                    return Ok(id);
                }
                Err(e) if e.is("name_taken") => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EffectError::permanent(
            "every candidate channel name was taken",
        ))
    }

    async fn invite(
        &self,
        incident: &Incident,
        channel: &str,
        refs: &Refs,
        extra: &[String],
    ) -> Result<(), EffectError> {
        let mut wanted: BTreeSet<String> = extra
            .iter()
            .chain(&self.config.invite)
            .filter_map(|u| user_id(u))
            .collect();
        for role in [&incident.commander, &incident.comms, &incident.scribe]
            .into_iter()
            .flatten()
        {
            wanted.extend(user_id(role));
        }
        wanted.retain(|u| refs.in_channel(&format!("member:{u}"), channel).is_none());
        if wanted.is_empty() {
            return Ok(());
        }
        let users: Vec<SlackUserId> = wanted.iter().map(|u| SlackUserId::new(u.clone())).collect();
        let req =
            SlackApiConversationsInviteRequest::new(SlackChannelId::new(channel.into()), users);
        match self
            .api
            .call("conversations.invite", None, |s| async move {
                s.conversations_invite(&req).await
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is("already_in_channel") || e.is("cant_invite_self") => {}
            Err(e) if matches!(e.error, EffectError::Retryable { .. }) => return Err(e.into()),
            // A user who can't be invited (deactivated, a guest) must not block the card.
            Err(e) => tracing::warn!(code = ?e.code, "inviting responders failed; continuing"),
        }
        for u in wanted {
            self.put_ref(incident, &format!("member:{u}"), channel, None)
                .await?;
        }
        Ok(())
    }

    async fn set_topic(
        &self,
        incident: &Incident,
        channel: &str,
        refs: &Refs,
    ) -> Result<(), EffectError> {
        let topic = blocks::topic(incident);
        if refs.find("topic").and_then(|r| r.message_id.as_deref()) == Some(topic.as_str()) {
            return Ok(());
        }
        let req = SlackApiConversationsSetTopicRequest::new(
            SlackChannelId::new(channel.into()),
            topic.clone(),
        );
        self.api
            .call("conversations.setTopic", None, |s| async move {
                s.conversations_set_topic(&req).await
            })
            .await?;
        self.put_ref(incident, "topic", channel, Some(&topic)).await
    }

    /// Posts and pins the card the first time, edits it afterwards. Returns whether it posted.
    async fn upsert_card(
        &self,
        incident: &Incident,
        channel: &str,
        refs: &Refs,
    ) -> Result<bool, EffectError> {
        let latest = self.latest_update(incident).await?;
        let (text, card) = blocks::card(incident, latest.as_deref()).map_err(render_error)?;
        let content = SlackMessageContent::new().with_text(text).with_blocks(card);
        let channel_id = SlackChannelId::new(channel.into());
        if let Some(ts) = refs.find("card").and_then(|r| r.message_id.clone()) {
            self.update_message(channel_id, ts, content).await?;
            return Ok(false);
        }
        let ts = self.post(channel_id.clone(), content, None).await?;
        self.put_ref(incident, "card", channel, Some(&ts)).await?;
        let req = SlackApiPinsAddRequest::new(channel_id, SlackTs::new(ts));
        match self
            .api
            .call("pins.add", None, |s| async move { s.pins_add(&req).await })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is("already_pinned") => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    async fn sync_notices(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let incident = self.incident(effect).await?;
        let refs = self.refs(&incident).await?;
        let latest = self.latest_update(&incident).await?;
        let (text, notice) =
            blocks::notice(&incident, refs.channel().as_deref(), latest.as_deref())
                .map_err(render_error)?;
        let content = SlackMessageContent::new()
            .with_text(text)
            .with_blocks(notice);
        let mut posted = Vec::new();
        for channel in payload_list(effect, "channels") {
            if refs.in_channel("notice", &channel).is_some() || posted.contains(&channel) {
                continue;
            }
            let ts = self
                .post(SlackChannelId::new(channel.clone()), content.clone(), None)
                .await?;
            self.put_ref(&incident, "notice", &channel, Some(&ts))
                .await?;
            posted.push(channel);
        }
        for (channel, ts) in refs.notices() {
            self.update_message(SlackChannelId::new(channel), ts, content.clone())
                .await?;
        }
        Ok((!posted.is_empty()).then(|| {
            let list: Vec<String> = posted.iter().map(|c| format!("<#{c}>")).collect();
            format!("Company-wide notice posted in {}", list.join(", "))
        }))
    }

    async fn channel_post(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let incident = self.incident(effect).await?;
        let channel = self.refs(&incident).await?.channel().ok_or_else(|| {
            EffectError::permanent(format!(
                "{} has no Slack channel (creating it failed; see the effects list)",
                incident.number
            ))
        })?;
        let content = SlackMessageContent::new().with_text(payload_str(effect, "text")?);
        self.post(SlackChannelId::new(channel), content, None)
            .await?;
        Ok(None)
    }

    /// Posts a progress message the first time and edits it in place afterwards.
    async fn progress(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let incident = self.incident(effect).await?;
        let refs = self.refs(&incident).await?;
        let channel = refs.channel().ok_or_else(|| {
            EffectError::permanent(format!("{} has no Slack channel", incident.number))
        })?;
        let role = format!("progress:{}", payload_str(effect, "key")?);
        let content = SlackMessageContent::new().with_text(payload_str(effect, "text")?);
        match refs
            .in_channel(&role, &channel)
            .and_then(|r| r.message_id.clone())
        {
            Some(ts) => {
                self.update_message(SlackChannelId::new(channel), ts, content)
                    .await?
            }
            None => {
                let ts = self
                    .post(SlackChannelId::new(channel.clone()), content, None)
                    .await?;
                self.put_ref(&incident, &role, &channel, Some(&ts)).await?;
            }
        }
        Ok(None)
    }

    async fn notice_reply(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let incident = self.incident(effect).await?;
        let refs = self.refs(&incident).await?;
        let text = payload_str(effect, "text")?;
        let role = format!("reply:{}", effect.id);
        for (channel, ts) in refs.notices() {
            if refs.in_channel(&role, &channel).is_some() {
                continue;
            }
            let content = SlackMessageContent::new().with_text(text.clone());
            let reply_ts = self
                .post(SlackChannelId::new(channel.clone()), content, Some(ts))
                .await?;
            self.put_ref(&incident, &role, &channel, Some(&reply_ts))
                .await?;
        }
        Ok(None)
    }

    async fn open_modal(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        // A trigger id is good for three seconds; after that, retrying is pointless.
        let expires = effect
            .payload
            .get("expires_at_ms")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        if Utc::now().timestamp_millis() > expires {
            return Err(EffectError::permanent(
                "the form could not be opened in time; run the command again",
            ));
        }
        let view: SlackView = serde_json::from_value(effect.payload["view"].clone())
            .map_err(|e| EffectError::permanent(format!("malformed modal: {e}")))?;
        let req = SlackApiViewsOpenRequest::new(
            SlackTriggerId::new(payload_str(effect, "trigger_id")?),
            view,
        );
        self.api
            .call(
                "views.open",
                None,
                |s| async move { s.views_open(&req).await },
            )
            .await?;
        Ok(None)
    }

    async fn ephemeral(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let req = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId::new(payload_str(effect, "channel")?),
            SlackUserId::new(payload_str(effect, "user")?),
            SlackMessageContent::new().with_text(payload_str(effect, "text")?),
        );
        self.api
            .call("chat.postEphemeral", None, |s| async move {
                s.chat_post_ephemeral(&req).await
            })
            .await?;
        Ok(None)
    }

    pub(super) async fn post(
        &self,
        channel: SlackChannelId,
        content: SlackMessageContent,
        thread: Option<String>,
    ) -> Result<String, EffectError> {
        let key = channel.to_string();
        let mut req = SlackApiChatPostMessageRequest::new(channel, content);
        if let Some(ts) = thread {
            req = req.with_thread_ts(SlackTs::new(ts));
        }
        let resp = self
            .api
            .call("chat.postMessage", Some(&key), |s| async move {
                s.chat_post_message(&req).await
            })
            .await?;
        Ok(resp.ts.to_string())
    }

    pub(super) async fn update_message(
        &self,
        channel: SlackChannelId,
        ts: String,
        content: SlackMessageContent,
    ) -> Result<(), EffectError> {
        let req = SlackApiChatUpdateRequest::new(channel, content, SlackTs::new(ts));
        self.api
            .call(
                "chat.update",
                None,
                |s| async move { s.chat_update(&req).await },
            )
            .await?;
        Ok(())
    }

    pub(super) async fn incident(&self, effect: &Effect) -> Result<Incident, EffectError> {
        let id = IncidentId(payload_str(effect, "incident_id")?);
        self.store
            .incident_by_id(&id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| EffectError::permanent("the incident no longer exists"))
    }

    async fn refs(&self, incident: &Incident) -> Result<Refs, EffectError> {
        Ok(Refs(
            self.store
                .chat_refs(&incident.id, PLATFORM)
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
        incident: &Incident,
        role: &str,
        channel: &str,
        message: Option<&str>,
    ) -> Result<(), EffectError> {
        let r = ChatRef {
            incident_id: incident.id.0.clone(),
            platform: PLATFORM.into(),
            role: role.into(),
            channel_id: channel.into(),
            message_id: message.map(str::to_string),
        };
        self.store.put_chat_ref(&r).await.map_err(db_error)
    }

    async fn enqueue_follow_up(
        &self,
        incident: &Incident,
        kind: &str,
        tag: &str,
    ) -> Result<(), EffectError> {
        let effect = NewEffect {
            incident_id: Some(incident.id.clone()),
            kind: kind.into(),
            payload: serde_json::json!({ "incident_id": incident.id.0, "channels": [] }),
            idempotency_key: format!("{kind}:{}:{tag}", incident.id),
            ordering_key: Some(format!("slack:{}:notices", incident.id)),
            audience: None,
        };
        self.store.enqueue_one(&effect).await.map_err(db_error)?;
        Ok(())
    }
}

pub(super) fn payload_str(effect: &Effect, key: &str) -> Result<String, EffectError> {
    effect
        .payload
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| EffectError::permanent(format!("effect payload lacks {key}")))
}

fn payload_list(effect: &Effect, key: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct List(Vec<String>);
    effect
        .payload
        .get(key)
        .cloned()
        .and_then(|v| serde_json::from_value::<List>(v).ok())
        .map_or_else(Vec::new, |l| l.0)
}

pub(super) fn db_error(e: anyhow::Error) -> EffectError {
    tracing::error!(error = %format!("{e:#}"), "database error in a Slack effect");
    EffectError::retryable("database unavailable")
}

fn render_error(e: anyhow::Error) -> EffectError {
    EffectError::permanent(format!("could not render Block Kit: {e}"))
}
