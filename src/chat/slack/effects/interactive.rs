//! Answers to a person: modals opened from a trigger, and ephemeral messages.

use chrono::Utc;
use slack_morphism::prelude::*;

use super::SlackEffects;
use crate::chat::slack::blocks;
use crate::chat::slack::mrkdwn::Mrkdwn;
use crate::effects::handler::EffectError;

impl SlackEffects {
    pub(super) async fn open_modal(
        &self,
        trigger_id: &str,
        view: serde_json::Value,
        expires_at_ms: i64,
    ) -> Result<Option<String>, EffectError> {
        // A trigger id is good for three seconds; after that, retrying is pointless.
        if Utc::now().timestamp_millis() > expires_at_ms {
            return Err(EffectError::permanent(
                "the form could not be opened in time; run the command again",
            ));
        }
        let view: SlackView = serde_json::from_value(view)
            .map_err(|e| EffectError::permanent(format!("malformed modal: {e}")))?;
        let req = SlackApiViewsOpenRequest::new(SlackTriggerId::new(trigger_id.into()), view);
        self.api
            .call(
                "views.open",
                None,
                |s| async move { s.views_open(&req).await },
            )
            .await?;
        Ok(None)
    }

    pub(super) async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<Option<String>, EffectError> {
        let req = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId::new(channel.into()),
            SlackUserId::new(user.into()),
            SlackMessageContent::new().with_text(blocks::message_text(
                Mrkdwn::trusted(text.to_string()),
                None,
            )),
        );
        self.api
            .call("chat.postEphemeral", None, |s| async move {
                s.chat_post_ephemeral(&req).await
            })
            .await?;
        Ok(None)
    }
}
