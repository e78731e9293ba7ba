//! The runbook checklist in the incident channel: one message per page
//! ([`checklist::pages`](crate::chat::discord::checklist::pages)), each posted the first time
//! (with the effect's nonce, so a lost answer never makes two) and edited in place
//! afterwards, rendered from the database when the effect runs, so a late edit never shows
//! an older state. A page someone deleted is posted again.

use serenity::all::{CreateMessage, EditMessage};

use super::{DiscordEffects, Nonces, PostOnce, Refs, channel_id, db_error, message_id};
use crate::chat::discord::api::UNKNOWN_MESSAGE;
use crate::chat::discord::checklist::{self, Page};
use crate::chat::discord::embeds::allowed_mentions;
use crate::chat::records::ChatRecords;
use crate::effects::handler::EffectError;
use crate::incident::model::{IncidentId, IncidentNumber};

/// `chat_refs` role of the checklist's first message; later pages add `:<page>`.
const ROLE: &str = "runbook-checklist";

/// Where one page goes.
struct Slot<'a> {
    incident: &'a IncidentId,
    number: IncidentNumber,
    channel: &'a str,
    index: usize,
}

impl DiscordEffects {
    pub(super) async fn checklist(
        &self,
        id: &IncidentId,
        once: &Nonces,
    ) -> Result<Option<String>, EffectError> {
        let Some(runbook) = self.store.runbook(id).await.map_err(db_error)? else {
            return Ok(None);
        };
        let incident = self.incident(id).await?;
        let channel = self.room_for_post(id, once).await?;
        let refs = self.refs(id).await?;
        let pages = checklist::pages(&incident, &runbook, chrono::Utc::now());
        for (index, page) in pages.iter().enumerate() {
            let slot = Slot {
                incident: id,
                number: incident.number,
                channel: &channel,
                index,
            };
            self.upsert_page(&slot, page, &refs, once).await?;
        }
        Ok(None)
    }

    /// Edits the page's message, or posts it when there is none (or it was deleted).
    async fn upsert_page(
        &self,
        slot: &Slot<'_>,
        page: &Page,
        refs: &Refs,
        once: &Nonces,
    ) -> Result<(), EffectError> {
        let room = channel_id(slot.channel)?;
        let role = role(slot.index);
        let rows = checklist::buttons(slot.number, &page.open);
        if let Some(message) = refs.message(&role, slot.channel) {
            let edit = EditMessage::new()
                .content(page.content.clone())
                .components(rows.clone())
                .allowed_mentions(allowed_mentions(&[]));
            match self
                .api
                .edit_message(room, message_id(&message)?, &edit)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_code(UNKNOWN_MESSAGE) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let post = CreateMessage::new()
            .content(page.content.clone())
            .components(rows)
            .allowed_mentions(allowed_mentions(&[]))
            .once(once, nonce_char(slot.index));
        let message = self.api.send_message(room, &post).await?;
        self.put_ref(
            slot.incident,
            &role,
            slot.channel,
            Some(&message.id.to_string()),
        )
        .await
    }
}

/// `runbook-checklist`, then `runbook-checklist:2`, `:3`, … for later pages.
fn role(index: usize) -> String {
    match index {
        0 => ROLE.to_string(),
        i => format!("{ROLE}:{}", i + 1),
    }
}

/// The nonce's last character for page `index`: a digit, never a letter other posts of
/// the same effect use (`c`, the card, when the room is made first).
fn nonce_char(index: usize) -> char {
    char::from_digit((index % 10) as u32, 10).unwrap_or('0')
}

const _: () = assert!(checklist::MAX_PAGES <= 10, "one digit per page's nonce");
