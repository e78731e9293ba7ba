//! 📌 reactions: the pinned message, with its author, its own time and a link, put on the
//! incident's timeline. The decision that a reaction is a pin is the gateway's
//! ([`pin_reaction`](crate::chat::discord::gateway::pin_reaction)); this runs the capture.
//! Mentions in the message (`<@id>`, `<#id>`, …) are stored as neutral text
//! ([`decode`](crate::chat::discord::decode)).

use crate::chat::records::ChatRecords;
use serenity::all::User;

use super::{DiscordEffects, channel_id, db_error, message_id};
use crate::chat::discord::decode::decode;
use crate::chat::discord::interactions::Resolved;
use crate::effects::handler::EffectError;
use crate::incident::identity::Identity;
use crate::incident::model::IncidentId;
use crate::incident::text::sanitize;
use crate::incident::timeline::{EntryKind, NewEntry, Source};

/// The link Discord's "Copy Message Link" gives.
pub fn message_link(guild: &str, channel: &str, message: &str) -> String {
    format!("https://discord.com/channels/{guild}/{channel}/{message}")
}

impl DiscordEffects {
    pub(super) async fn capture_pin(
        &self,
        id: &IncidentId,
        guild: &str,
        channel: &str,
        message: &str,
    ) -> Result<Option<String>, EffectError> {
        let incident = self.incident(id).await?;
        let pinned = self
            .api
            .message(channel_id(channel)?, message_id(message)?)
            .await?;
        let author = Identity::new("discord", &pinned.author.id.to_string())
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let content = decode(&pinned.content, &mentioned(&pinned.mentions));
        let text = pinned_text(&content, pinned.embeds.len());
        let entry = NewEntry {
            incident_id: Some(incident.id.clone()),
            occurred_at: *pinned.timestamp,
            actor: author,
            source: Source::Discord,
            kind: EntryKind::Pinned,
            text: format!("{text} ({})", message_link(guild, channel, message)),
        };
        self.store.append_timeline(&entry).await.map_err(db_error)?;
        Ok(Some(format!(
            "pinned message {message} put on the timeline of INC-{}",
            incident.number.0
        )))
    }
}

/// The names Discord sent for the users a message mentions, so `<@id>` reads `@name`.
fn mentioned(users: &[User]) -> Resolved {
    let mut names = Resolved::default();
    for u in users {
        let name = u.global_name.clone().unwrap_or_else(|| u.name.clone());
        names.users.insert(u.id.to_string(), name);
    }
    names
}

/// What the timeline shows for a pinned message: its text, or what it carries when it has
/// none (an embed, an attachment).
fn pinned_text(content: &str, embeds: usize) -> String {
    let content = sanitize(content, true).replace('\0', "");
    let content = content.trim();
    match (content.is_empty(), embeds) {
        (false, _) => content.to_string(),
        (true, 0) => "(a message with no text)".to_string(),
        (true, _) => "(an embed with no text)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_empty_messages_read_as_sentences() {
        assert_eq!(
            message_link("1", "2", "3"),
            "https://discord.com/channels/1/2/3"
        );
        assert_eq!(pinned_text("  db is back  ", 0), "db is back");
        assert_eq!(pinned_text("", 1), "(an embed with no text)");
        assert_eq!(pinned_text(" ", 0), "(a message with no text)");
        assert_eq!(pinned_text("\u{1b}[31mred\u{202e}", 0), "red");
    }
}
