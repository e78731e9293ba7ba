//! Runs the Slack effects planned in [`planner`](super::planner). Each one is idempotent:
//! whatever it creates (the channel, the card, a notice, a thread reply) is recorded in
//! `chat_refs` right after Slack confirms it, so a retry edits or skips instead of creating a
//! second copy. Cards and notices are rendered from the database when the effect runs.
//!
//! - [`types`]: the [`SlackEffect`] enum, its kinds, ordering groups and keys.
//! - [`channel`]: the incident channel, its card, posts and progress messages.
//! - [`checklist`]: the runbook checklist with its Done buttons.
//! - [`notices`]: the fan-out to announcement channels and one notice per channel.
//! - [`interactive`]: modals and ephemeral answers.
//! - [`people`]: display names from `users.info` into the people cache.

pub mod channel;
pub mod checklist;
pub mod interactive;
pub mod notices;
pub mod people;
pub mod types;

use async_trait::async_trait;
use slack_morphism::prelude::*;

pub use types::SlackEffect;

use super::api::{SlackApi, SlackCallError};
use super::blocks::{self, FullText};
use super::config::SlackConfig;
use super::mrkdwn::{Mrkdwn, limit};
pub(super) use crate::chat::records::{ChatRecords, Refs};
use crate::effects::Effect;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::incident::model::IncidentId;
use crate::store::Store;

const PLATFORM: &str = "slack";

/// The breaker target of every effect that calls the Slack API: one outage, one circuit,
/// and one release of everything held back when Slack answers again.
pub const TARGET: &str = "slack";
/// The target of effects that only write to the database (the notice fan-out), so they
/// never probe Slack's circuit and always run during an outage.
pub const LOCAL_TARGET: &str = "slack.fan-out";
/// The target of display-name lookups: background bookkeeping with its own circuit, so a
/// lookup answering never counts as Slack recovering for the incident's effects (which
/// would release them before a `Retry-After`) and never takes their share of the worker.
pub const PEOPLE_TARGET: &str = "slack.people";

pub struct SlackEffects {
    pub api: SlackApi,
    pub store: Store,
    pub config: SlackConfig,
    /// `server.public_url`: where a text shortened to fit Slack is linked in full.
    pub public_url: Option<String>,
}

#[async_trait]
impl EffectHandler for SlackEffects {
    fn kinds(&self) -> &'static [&'static str] {
        types::ALL_KINDS
    }

    fn target(&self, effect: &Effect) -> String {
        match SlackEffect::decode(effect) {
            Ok(e) if e.is_local() => LOCAL_TARGET.into(),
            Ok(SlackEffect::LookupUser { .. }) => PEOPLE_TARGET.into(),
            _ => TARGET.into(),
        }
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let decoded = SlackEffect::decode(effect)?;
        if decoded.is_fresh(effect) {
            // A new incident has no channel or notice yet: wait for Slack's tier before
            // reading anything (under a storm most such attempts wait).
            if let Some((method, channel)) = decoded.first_call() {
                self.api.ready(method, channel)?;
            }
        }
        match decoded {
            SlackEffect::SyncChannel {
                incident_id,
                invite,
                ..
            } => self.sync_channel(&incident_id, &invite).await,
            SlackEffect::SyncNotices {
                incident_id,
                channels,
                reply,
            } => {
                let fan_out = notices::FanOut {
                    parent_key: &effect.idempotency_key,
                    announce: &channels,
                    reply: reply.as_deref(),
                    fresh: false,
                };
                self.fan_out(&incident_id, fan_out).await
            }
            SlackEffect::Notice {
                incident_id,
                channel,
                announce,
                ..
            } => self.notice(&incident_id, &channel, announce).await,
            SlackEffect::NoticeReply {
                incident_id,
                channel: Some(channel),
                text,
            } => {
                self.notice_reply(effect.id, &incident_id, &channel, &text)
                    .await
            }
            SlackEffect::NoticeReply {
                incident_id,
                channel: None,
                text,
            } => {
                let fan_out = notices::FanOut {
                    parent_key: &effect.idempotency_key,
                    announce: &[],
                    reply: Some(&text),
                    fresh: false,
                };
                self.fan_out(&incident_id, fan_out).await
            }
            SlackEffect::ChannelPost { incident_id, text } => {
                self.channel_post(&incident_id, &text).await
            }
            SlackEffect::Progress {
                incident_id,
                key,
                text,
            } => self.progress(&incident_id, &key, &text).await,
            SlackEffect::OpenModal {
                trigger_id,
                view,
                expires_at_ms,
            } => self.open_modal(&trigger_id, view, expires_at_ms).await,
            SlackEffect::Ephemeral {
                channel,
                user,
                text,
            } => self.ephemeral(&channel, &user, &text).await,
            SlackEffect::CapturePin {
                incident_id,
                channel,
                ts,
                reactor,
            } => {
                self.capture_pin(&incident_id, &channel, &ts, &reactor)
                    .await
            }
            SlackEffect::LookupUser { user } => self.lookup_user(&user).await,
            SlackEffect::Checklist { incident_id } => self.checklist(&incident_id).await,
            SlackEffect::Post { channel, text } => {
                let content = SlackMessageContent::new().with_text(text);
                self.post(&channel, content, None).await?;
                Ok(Some(format!("Posted to Slack channel {channel}")))
            }
        }
    }
}

impl SlackEffects {
    /// Posts a message (in `thread`, if given); returns its `ts`.
    pub(super) async fn post(
        &self,
        channel: &str,
        content: SlackMessageContent,
        thread: Option<String>,
    ) -> Result<String, SlackCallError> {
        let mut req =
            SlackApiChatPostMessageRequest::new(SlackChannelId::new(channel.into()), content);
        if let Some(ts) = thread {
            req = req.with_thread_ts(SlackTs::new(ts));
        }
        let resp = self
            .api
            .call("chat.postMessage", Some(channel), |s| async move {
                s.chat_post_message(&req).await
            })
            .await?;
        Ok(resp.ts.to_string())
    }

    pub(super) async fn update_message(
        &self,
        channel: &str,
        ts: String,
        content: SlackMessageContent,
    ) -> Result<(), SlackCallError> {
        let req = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.into()),
            content,
            SlackTs::new(ts),
        );
        self.api
            .call(
                "chat.update",
                None,
                |s| async move { s.chat_update(&req).await },
            )
            .await?;
        Ok(())
    }

    /// A message text the planner queued (mrkdwn, escaped when it was planned), within
    /// Slack's 40,000 characters; a longer one is cut and says where the full text is.
    pub(super) async fn text(&self, id: &IncidentId, text: &str) -> String {
        let text = Mrkdwn::trusted(text.to_string());
        if text.char_count() <= limit::MESSAGE_TEXT {
            return text.into_string();
        }
        let number = self.store.incident_by_id(id).await.ok().flatten();
        let full = number.map(|i| FullText::new(i.number, self.public_url.as_deref()));
        blocks::message_text(text, full.as_ref())
    }
}

pub(super) fn db_error(e: anyhow::Error) -> EffectError {
    crate::chat::records::db_error::<SlackEffects>(e)
}

fn render_error(e: anyhow::Error) -> EffectError {
    EffectError::permanent(format!("could not render Block Kit: {e}"))
}

impl ChatRecords for SlackEffects {
    const PLATFORM: &'static str = PLATFORM;

    fn store(&self) -> &Store {
        &self.store
    }
}
