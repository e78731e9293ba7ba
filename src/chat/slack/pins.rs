//! `:pushpin:` reactions: the pinned message, with its author, its own time and a
//! permalink, put on the incident's timeline.

use crate::chat::records::ChatRecords;
use chrono::{DateTime, TimeZone, Utc};
use slack_morphism::prelude::*;

use super::blocks::mention;
use super::decode::decode_text;
use super::effects::{SlackEffects, db_error};
use crate::effects::handler::EffectError;
use crate::incident::identity::Identity;
use crate::incident::model::IncidentId;
use crate::incident::timeline::{EntryKind, NewEntry, Source};

impl SlackEffects {
    /// A :pushpin: reaction: fetch the message and its permalink, and put it on the timeline
    /// with its author and original time.
    pub(crate) async fn capture_pin(
        &self,
        id: &IncidentId,
        channel: &str,
        ts: &str,
        reactor: &str,
    ) -> Result<Option<String>, EffectError> {
        let incident = self.incident(id).await?;
        let (author, text) = self.fetch_message(channel, ts).await?;
        let req = SlackApiChatGetPermalinkRequest::new(
            SlackChannelId::new(channel.into()),
            SlackTs::new(ts.into()),
        );
        let link = self
            .api
            .call("chat.getPermalink", None, |s| async move {
                s.chat_get_permalink(&req).await
            })
            .await?;
        let entry = NewEntry {
            incident_id: Some(incident.id.clone()),
            occurred_at: ts_to_time(ts).unwrap_or_else(Utc::now),
            actor: author
                .as_deref()
                .and_then(Identity::slack)
                .map_or("unknown".into(), |a| a.to_string()),
            source: Source::Slack,
            kind: EntryKind::Pinned,
            text: format!("{} ({})", decode_text(&text), link.permalink),
        };
        self.store.append_timeline(&entry).await.map_err(db_error)?;
        Ok(Some(format!(
            "{} pinned a message into the timeline",
            mention(reactor)
        )))
    }

    async fn fetch_message(
        &self,
        channel: &str,
        ts: &str,
    ) -> Result<(Option<String>, String), EffectError> {
        let ch = SlackChannelId::new(channel.into());
        let req = SlackApiConversationsHistoryRequest::new()
            .with_channel(ch.clone())
            .with_latest(SlackTs::new(ts.into()))
            .with_oldest(SlackTs::new(ts.into()))
            .with_inclusive(true)
            .with_limit(1);
        let history = self
            .api
            .call("conversations.history", None, |s| async move {
                s.conversations_history(&req).await
            })
            .await?;
        let mut messages = history.messages;
        if !messages.iter().any(|m| m.origin.ts.0 == ts) {
            // Thread replies are not in the channel history; ask for the thread.
            let req = SlackApiConversationsRepliesRequest::new(ch, SlackTs::new(ts.into()));
            messages = self
                .api
                .call("conversations.replies", None, |s| async move {
                    s.conversations_replies(&req).await
                })
                .await?
                .messages;
        }
        let message = messages
            .into_iter()
            .find(|m| m.origin.ts.0 == ts)
            .ok_or_else(|| EffectError::permanent("the pinned message is gone"))?;
        let author = message.sender.user.map(|u| u.to_string());
        Ok((author, message.content.text.unwrap_or_default()))
    }
}

/// A Slack `ts` ("1700000000.000100") as a time, to the millisecond.
fn ts_to_time(ts: &str) -> Option<DateTime<Utc>> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let micros: i64 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    Utc.timestamp_millis_opt(secs * 1000 + micros / 1000)
        .single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_timestamps_keep_milliseconds() {
        let t = ts_to_time("1700000000.123456").unwrap();
        assert_eq!(t.timestamp_millis(), 1_700_000_000_123);
        assert!(ts_to_time("nope").is_none());
    }
}
