//! The incident channel: created once, responders invited, topic and pinned card kept
//! current, plus plain posts and progress messages that are edited in place.

use crate::chat::records::ChatRecords;
use std::collections::BTreeSet;

use slack_morphism::prelude::*;

use super::types::{SlackEffect, notices_group};
use super::{Refs, SlackEffects, db_error, render_error};
use crate::chat::slack::blocks::{self, user_id};
use crate::chat::slack::mrkdwn::Mrkdwn;
use crate::effects::handler::EffectError;
use crate::incident::model::{Incident, IncidentId};

impl SlackEffects {
    pub(super) async fn sync_channel(
        &self,
        id: &IncidentId,
        invite: &[String],
    ) -> Result<Option<String>, EffectError> {
        let refs = self.refs(id).await?;
        if refs.channel().is_none() {
            // Under a storm channels wait for Slack's tier: find out before reading.
            self.api.ready("conversations.create", None)?;
        }
        let incident = self.incident(id).await?;
        let (channel, created) = match refs.channel() {
            Some(c) => (c, false),
            None => (self.create_channel(&incident).await?, true),
        };
        self.invite(&incident, &channel, &refs, invite).await?;
        self.set_topic(&incident, &channel, &refs).await?;
        let card_posted = self.upsert_card(&incident, &channel, &refs).await?;
        // The notices went out first (T+0); now that the channel is set up, link it. Also on
        // a retry after a later step failed: the link is queued once per incident (its key).
        self.link_notices(id).await?;
        Ok(match (created, card_posted) {
            (true, _) => Some(format!(
                "Slack channel {} created with the pinned incident card",
                Mrkdwn::channel(&channel)
            )),
            (false, true) => Some(format!(
                "Incident card posted and pinned in {}",
                Mrkdwn::channel(&channel)
            )),
            (false, false) => None,
        })
    }

    /// Queues a notice fan-out that edits every notice to link the new channel.
    async fn link_notices(&self, id: &IncidentId) -> Result<(), EffectError> {
        let effect = SlackEffect::SyncNotices {
            incident_id: id.clone(),
            channels: Vec::new(),
            reply: None,
        };
        let row = effect
            .queued(format!("{}:{id}:channel-link", super::types::SYNC_NOTICES))
            .ordered(notices_group(id));
        self.store.enqueue_one(&row).await.map_err(db_error)?;
        Ok(())
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
                    self.put_ref(&incident.id, "channel", &id, None).await?;
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
        // The people the incident names: its role holders and whoever declared it.
        for role in [&incident.commander, &incident.comms, &incident.scribe]
            .into_iter()
            .flatten()
            .chain([&incident.declared_by])
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
            Err(e) if !e.is_permanent() => return Err(e.into()),
            // A user who can't be invited (deactivated, a guest) must not block the card.
            Err(e) => tracing::warn!(code = ?e.code, "inviting responders failed; continuing"),
        }
        for u in wanted {
            self.put_ref(&incident.id, &format!("member:{u}"), channel, None)
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
        self.put_ref(&incident.id, "topic", channel, Some(&topic))
            .await
    }

    /// Posts and pins the card the first time, edits it afterwards. Returns whether it posted.
    async fn upsert_card(
        &self,
        incident: &Incident,
        channel: &str,
        refs: &Refs,
    ) -> Result<bool, EffectError> {
        let latest = self.latest_update(incident).await?;
        let (text, card) = blocks::card(incident, latest.as_deref(), self.public_url.as_deref())
            .map_err(render_error)?;
        let content = SlackMessageContent::new().with_text(text).with_blocks(card);
        let ts = match refs.message("card", channel) {
            Some(ts) => {
                self.update_message(channel, ts.clone(), content).await?;
                if refs.find("card-pinned").is_some() {
                    return Ok(false);
                }
                ts
            }
            None => {
                let ts = self.post(channel, content, None).await?;
                self.put_ref(&incident.id, "card", channel, Some(&ts))
                    .await?;
                ts
            }
        };
        self.pin(&incident.id, channel, ts).await?;
        Ok(true)
    }

    /// Pins the card; recorded, so a retry after a failed pin pins instead of skipping it.
    async fn pin(&self, id: &IncidentId, channel: &str, ts: String) -> Result<(), EffectError> {
        let req =
            SlackApiPinsAddRequest::new(SlackChannelId::new(channel.into()), SlackTs::new(ts));
        match self
            .api
            .call("pins.add", None, |s| async move { s.pins_add(&req).await })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is("already_pinned") => {}
            Err(e) => return Err(e.into()),
        }
        self.put_ref(id, "card-pinned", channel, None).await
    }

    pub(super) async fn channel_post(
        &self,
        id: &IncidentId,
        text: &str,
    ) -> Result<Option<String>, EffectError> {
        let channel = incident_channel(&self.refs(id).await?)?;
        let content = SlackMessageContent::new().with_text(self.text(id, text).await);
        self.post(&channel, content, None).await?;
        Ok(None)
    }

    /// Posts a progress message the first time and edits it in place afterwards.
    pub(super) async fn progress(
        &self,
        id: &IncidentId,
        key: &str,
        text: &str,
    ) -> Result<Option<String>, EffectError> {
        let refs = self.refs(id).await?;
        let channel = incident_channel(&refs)?;
        let role = format!("progress:{key}");
        let content = SlackMessageContent::new().with_text(self.text(id, text).await);
        match refs.message(&role, &channel) {
            Some(ts) => self.update_message(&channel, ts, content).await?,
            None => {
                let ts = self.post(&channel, content, None).await?;
                self.put_ref(id, &role, &channel, Some(&ts)).await?;
            }
        }
        Ok(None)
    }
}

fn incident_channel(refs: &Refs) -> Result<String, EffectError> {
    refs.channel().ok_or_else(|| {
        EffectError::permanent(
            "the incident has no Slack channel (creating it failed; see `firebreak effects list --failed`)",
        )
    })
}
