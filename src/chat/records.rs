//! What every chat adapter's effects read and record about an incident on its platform:
//! the incident itself, the things it owns there (`chat_refs`: its channel, card, notices,
//! progress messages) and its latest update. One implementation, shared through
//! [`ChatRecords`], which an adapter's effect handler gets by naming its store and platform.

use async_trait::async_trait;

use crate::effects::handler::EffectError;
use crate::incident::model::{Incident, IncidentId};
use crate::incident::timeline::EntryKind;
use crate::store::{ChatRef, Store};

/// An incident's refs on one platform.
pub struct Refs(pub Vec<ChatRef>);

impl Refs {
    pub fn find(&self, role: &str) -> Option<&ChatRef> {
        self.0.iter().find(|r| r.role == role)
    }

    /// The incident's own channel (or thread).
    pub fn channel(&self) -> Option<String> {
        self.find("channel").map(|r| r.channel_id.clone())
    }

    pub fn in_channel(&self, role: &str, channel: &str) -> Option<&ChatRef> {
        self.0
            .iter()
            .find(|r| r.role == role && r.channel_id == channel)
    }

    /// The message recorded for `role` in `channel`, if any.
    pub fn message(&self, role: &str, channel: &str) -> Option<String> {
        self.in_channel(role, channel)
            .and_then(|r| r.message_id.clone())
    }

    /// Channels with a ref of `role`, in the order they were recorded.
    pub fn channels_with(&self, role: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|r| r.role == role)
            .map(|r| r.channel_id.clone())
            .collect()
    }
}

/// The database side of a chat adapter's effects. A failing database is retryable: the
/// effect runs again once it answers.
#[async_trait]
pub trait ChatRecords: Send + Sync {
    /// The `chat_refs` platform (`slack`, `discord`).
    const PLATFORM: &'static str;

    fn store(&self) -> &Store;

    async fn incident(&self, id: &IncidentId) -> Result<Incident, EffectError> {
        self.store()
            .incident_by_id(id)
            .await
            .map_err(db_error::<Self>)?
            .ok_or_else(|| EffectError::permanent("the incident no longer exists"))
    }

    async fn refs(&self, incident: &IncidentId) -> Result<Refs, EffectError> {
        let refs = self.store().chat_refs(incident, Self::PLATFORM).await;
        Ok(Refs(refs.map_err(db_error::<Self>)?))
    }

    async fn latest_update(&self, incident: &Incident) -> Result<Option<String>, EffectError> {
        let entry = self
            .store()
            .latest_entry(&incident.id, EntryKind::Update)
            .await
            .map_err(db_error::<Self>)?;
        Ok(entry.map(|e| e.text))
    }

    /// Records (or replaces) what the incident owns as `role` in `channel`.
    async fn put_ref(
        &self,
        incident: &IncidentId,
        role: &str,
        channel: &str,
        message: Option<&str>,
    ) -> Result<(), EffectError> {
        self.store()
            .put_chat_ref(&chat_ref(Self::PLATFORM, incident, role, channel, message))
            .await
            .map_err(db_error::<Self>)
    }
}

/// The row saying `incident` owns `role` (with `message`) in `channel` on `platform`.
pub fn chat_ref(
    platform: &str,
    incident: &IncidentId,
    role: &str,
    channel: &str,
    message: Option<&str>,
) -> ChatRef {
    ChatRef {
        incident_id: incident.0.clone(),
        platform: platform.into(),
        role: role.into(),
        channel_id: channel.into(),
        message_id: message.map(str::to_string),
    }
}

/// A database error in a chat effect: logged with its platform, retried.
pub fn db_error<R: ChatRecords + ?Sized>(e: anyhow::Error) -> EffectError {
    tracing::error!(error = %format!("{e:#}"), platform = R::PLATFORM, "database error in a chat effect");
    EffectError::retryable("database unavailable")
}
