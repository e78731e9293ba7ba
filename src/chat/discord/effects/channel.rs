//! The incident's room on Discord: a text channel under the configured category, or a
//! thread (forum post) in the configured forum channel; its pinned card, kept current by
//! editing; plain posts; progress messages edited in place.

use crate::chat::records::ChatRecords;
use serenity::all::{ChannelType, CreateChannel, CreateForumPost, GuildId};

use super::types::{DiscordEffect, SYNC_NOTICES, notices_group};
use super::{DiscordEffects, Nonces, PostOnce, Refs, channel_id, db_error, message_id};
use crate::chat::discord::api::UNKNOWN_MESSAGE;
use crate::chat::discord::embeds::{self, Embed};
use crate::chat::discord::text;
use crate::effects::handler::EffectError;
use crate::incident::model::{Incident, IncidentId};

/// `chat_refs` role recording the name a channel is about to be created with, before the
/// call: a retry after a crash adopts that channel instead of leaving it orphaned.
const CREATING: &str = "channel-creating";

/// Candidate names tried before giving up on a free one.
const NAME_ATTEMPTS: u32 = 5;

/// The room as it was found or made.
struct Room {
    channel: String,
    /// The name, when the room was created by this run.
    created: Option<String>,
    /// The card was posted with the room (a forum post's first message): it is current.
    card_posted: bool,
}

impl DiscordEffects {
    pub(super) async fn sync_channel(
        &self,
        id: &IncidentId,
        once: &Nonces,
    ) -> Result<Option<String>, EffectError> {
        let incident = self.incident(id).await?;
        let refs = self.refs(id).await?;
        let latest = self.latest_update(&incident).await?;
        let card = embeds::card(&incident, latest.as_deref());
        let room = match refs.channel() {
            Some(channel) => Room {
                channel,
                created: None,
                card_posted: false,
            },
            None => self.create_room(&incident, &card).await?,
        };
        let refs = self.refs(id).await?;
        let posted = if room.card_posted {
            // A forum post's first message is the card, with the thread's id.
            self.pin(id, &room.channel, &room.channel).await?;
            true
        } else {
            self.upsert_card(&incident, &room.channel, &refs, &card, once)
                .await?
        };
        if room.created.is_some() {
            self.link_notices(id).await?;
        }
        Ok(match (room.created, posted) {
            (Some(name), _) => Some(format!(
                "Discord channel #{name} created with the pinned incident card"
            )),
            (None, true) => Some("Incident card posted and pinned on Discord".into()),
            (None, false) => None,
        })
    }

    /// A forum post (whose first message is the card) or a text channel.
    async fn create_room(&self, incident: &Incident, card: &Embed) -> Result<Room, EffectError> {
        if let Some(forum) = self.config.forum_channel_id.as_deref() {
            return self.create_thread(incident, forum, card).await;
        }
        let guild = self.config.guild_id.as_deref().ok_or_else(|| {
            EffectError::permanent(
                "Set discord.guild_id (the server incidents run in), or discord.forum_channel_id.",
            )
        })?;
        let guild = GuildId::new(channel_id(guild)?.get());
        let existing = self.api.guild_channels(guild).await?;
        // An earlier attempt may have created the channel and died before recording it:
        // the name it was about to use, if a channel has it now, is that channel.
        let intended = self
            .refs(&incident.id)
            .await?
            .find(CREATING)
            .and_then(|r| r.message_id.clone());
        if let Some(made) = intended.and_then(|name| existing.iter().find(|c| c.name == name)) {
            let channel = made.id.to_string();
            self.put_ref(&incident.id, "channel", &channel, None)
                .await?;
            return Ok(Room {
                channel,
                created: Some(made.name.clone()),
                card_posted: false,
            });
        }
        let taken: Vec<String> = existing.into_iter().map(|c| c.name).collect();
        let name = (0..NAME_ATTEMPTS)
            .map(|attempt| embeds::channel_name(&self.config.channel_prefix, incident, attempt))
            .find(|name| !taken.contains(name))
            .ok_or_else(|| EffectError::permanent("every candidate channel name was taken"))?;
        self.put_ref(&incident.id, CREATING, &guild.to_string(), Some(&name))
            .await?;
        let mut create = CreateChannel::new(name.clone())
            .kind(ChannelType::Text)
            .topic(text::fit(&topic(incident), text::limit::CHANNEL_TOPIC));
        if let Some(category) = self.config.category_id.as_deref() {
            create = create.category(channel_id(category)?);
        }
        let channel = self.api.create_channel(guild, &create).await?;
        let channel = channel.id.to_string();
        self.put_ref(&incident.id, "channel", &channel, None)
            .await?;
        Ok(Room {
            channel,
            created: Some(name),
            card_posted: false,
        })
    }

    /// Opens the incident as a post in the forum: the thread is the room, and its starter
    /// message (which has the thread's id) is the card.
    async fn create_thread(
        &self,
        incident: &Incident,
        forum: &str,
        card: &Embed,
    ) -> Result<Room, EffectError> {
        let name = embeds::channel_name(&self.config.channel_prefix, incident, 0);
        let post = CreateForumPost::new(
            name.clone(),
            embeds::embed_message(card, embeds::card_buttons(incident)),
        );
        let thread = self
            .api
            .create_forum_post(channel_id(forum)?, &post)
            .await?;
        let thread = thread.id.to_string();
        let mut tx = self.store.begin_background().await.map_err(db_error)?;
        for (role, message) in [("channel", None), ("card", Some(thread.as_str()))] {
            tx.put_chat_ref(&super::chat_ref(&incident.id, role, &thread, message))
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Room {
            channel: thread,
            created: Some(name),
            card_posted: true,
        })
    }

    /// Queues a notice fan-out that edits every notice to link the new room.
    async fn link_notices(&self, id: &IncidentId) -> Result<(), EffectError> {
        let effect = DiscordEffect::SyncNotices {
            incident_id: id.clone(),
            channels: Vec::new(),
        };
        let row = effect
            .queued(format!("{SYNC_NOTICES}:{id}:channel-link"))
            .ordered(notices_group(id));
        self.store.enqueue_one(&row).await.map_err(db_error)?;
        Ok(())
    }

    /// Posts and pins the card the first time, edits it afterwards (and posts it again if
    /// someone deleted it). Returns whether it posted or pinned.
    async fn upsert_card(
        &self,
        incident: &Incident,
        channel: &str,
        refs: &Refs,
        card: &Embed,
        once: &Nonces,
    ) -> Result<bool, EffectError> {
        let buttons = embeds::card_buttons(incident);
        let room = channel_id(channel)?;
        let existing = refs.message("card", channel);
        if let Some(message) = &existing {
            let edit = embeds::embed_edit(card, buttons.clone());
            match self
                .api
                .edit_message(room, message_id(message)?, &edit)
                .await
            {
                Ok(_) if refs.find("card-pinned").is_some() => return Ok(false),
                Ok(_) => {
                    return self
                        .pin(&incident.id, channel, message)
                        .await
                        .map(|()| true);
                }
                Err(e) if e.is_code(UNKNOWN_MESSAGE) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let message = self
            .api
            .send_message(room, &embeds::embed_message(card, buttons).once(once, 'c'))
            .await?;
        let message = message.id.to_string();
        self.put_ref(&incident.id, "card", channel, Some(&message))
            .await?;
        self.pin(&incident.id, channel, &message).await?;
        Ok(true)
    }

    /// Pins the card; recorded, so a retry after a failed pin pins instead of skipping it.
    async fn pin(&self, id: &IncidentId, channel: &str, message: &str) -> Result<(), EffectError> {
        self.api
            .pin(channel_id(channel)?, message_id(message)?)
            .await?;
        self.put_ref(id, "card-pinned", channel, Some(message))
            .await
    }

    pub(super) async fn channel_post(
        &self,
        id: &IncidentId,
        text: &str,
        tag: Tag,
        once: &Nonces,
    ) -> Result<Option<String>, EffectError> {
        let channel = self.room_for_post(id, once).await?;
        let message = match tag {
            Tag::Role(role) => embeds::text_message(text::role_content(&role, text), &[role]),
            Tag::User(user) => {
                embeds::text_message_to(text::user_content(&user, text), &[], &[user])
            }
            Tag::Nobody => embeds::text_message(text::content(text), &[]),
        };
        self.api
            .send_message(channel_id(&channel)?, &message.once(once, 'p'))
            .await?;
        Ok(None)
    }

    /// Posts a progress message the first time and edits it in place afterwards.
    pub(super) async fn progress(
        &self,
        id: &IncidentId,
        key: &str,
        text: &str,
        once: &Nonces,
    ) -> Result<Option<String>, EffectError> {
        let channel = self.room_for_post(id, once).await?;
        let refs = self.refs(id).await?;
        let room = channel_id(&channel)?;
        let role = format!("progress:{key}");
        let shown = text::content(text);
        match refs.message(&role, &channel) {
            Some(message) => {
                self.api
                    .edit_message(room, message_id(&message)?, &embeds::text_edit(shown))
                    .await?;
            }
            None => {
                let message = self
                    .api
                    .send_message(room, &embeds::text_message(shown, &[]).once(once, 'g'))
                    .await?;
                self.put_ref(id, &role, &channel, Some(&message.id.to_string()))
                    .await?;
            }
        }
        Ok(None)
    }
}

impl DiscordEffects {
    /// The incident's room for a post. If it was never made (creating it failed for good
    /// earlier, say while the bot lacked Manage Channels), it is made now, card first, so
    /// the post is not lost.
    pub(super) async fn room_for_post(
        &self,
        id: &IncidentId,
        once: &Nonces,
    ) -> Result<String, EffectError> {
        if let Some(channel) = self.refs(id).await?.channel() {
            return Ok(channel);
        }
        self.sync_channel(id, once).await?;
        incident_channel(&self.refs(id).await?)
    }
}

/// Who a channel post tags in front of its text: the only mention in it that pings.
pub(super) enum Tag {
    /// A stored role id (the comms role, for overdue reminders).
    Role(String),
    /// A Discord user id (a late step's owner).
    User(String),
    Nobody,
}

impl Tag {
    /// A role wins over a user; a post queued with neither tags nobody.
    pub(super) fn of(role: Option<String>, user: Option<String>) -> Self {
        match (role, user) {
            (Some(role), _) => Self::Role(role),
            (None, Some(user)) => Self::User(user),
            (None, None) => Self::Nobody,
        }
    }
}

/// The channel topic: severity, status and title (escaped).
fn topic(incident: &Incident) -> String {
    format!(
        "{} · {} · {}",
        incident.severity,
        incident.status,
        text::escape(&incident.title)
    )
}

fn incident_channel(refs: &Refs) -> Result<String, EffectError> {
    refs.channel().ok_or_else(|| {
        EffectError::permanent(
            "the incident has no Discord channel (creating it failed; see `firebreak effects list --failed`)",
        )
    })
}
