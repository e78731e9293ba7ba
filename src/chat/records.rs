//! What every chat adapter's effects read and record about an incident on its platform:
//! the incident itself, the things it owns there (`chat_refs`: its channel, card, notices,
//! progress messages) and its latest update. One implementation, shared through
//! [`ChatRecords`], which an adapter's effect handler gets by naming its store and platform.

use async_trait::async_trait;

use crate::effects::handler::EffectError;
use crate::effects::{Audience, NewEffect};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::timeline::EntryKind;
use crate::store::{ChatRef, Store};

/// `chat_refs` role of a channel a company-wide notice was planned for (posted or not yet),
/// so edits queued before the post lands still reach it.
pub const NOTICE_OWED: &str = "notice-owed";
/// `chat_refs` role of a posted company-wide notice; its message id is the platform's.
pub const NOTICE: &str = "notice";
/// `chat_refs` role of a channel that refused the notice for good (not found, no access):
/// later changes do not try it again by themselves (`firebreak effects retry` does).
pub const NOTICE_REFUSED: &str = "notice-refused";

/// The channels a notice fan-out touches (pure): those announced to now first, then every
/// other channel already `known` to have or be owed a notice, each once.
pub fn notice_channels<'a>(announce: &'a [String], known: &'a [String]) -> Vec<&'a String> {
    let mut channels: Vec<&String> = Vec::new();
    for c in announce.iter().chain(known) {
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    channels
}

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

    /// Whether to post a notice in `channel`, which has none: it is announced to now, or an
    /// earlier announcement's post never landed there (it gave up, say, after an outage
    /// longer than the retry budget), so the next change posts it, unless the channel
    /// itself refused it for good.
    pub fn notice_due(&self, channel: &str, announce: bool) -> bool {
        let owed = self.in_channel(NOTICE_OWED, channel).is_some();
        let refused = self.in_channel(NOTICE_REFUSED, channel).is_some();
        announce || (owed && !refused)
    }

    /// Channels that have, or are owed, a company-wide notice.
    pub fn notice_channels(&self) -> Vec<String> {
        let mut known = self.channels_with(NOTICE_OWED);
        known.extend(self.channels_with(NOTICE));
        known
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

/// What a notice fan-out does once it has planned its `children`, in one transaction:
/// records every `announce` channel as owed a notice, and queues the children.
pub async fn record_fan_out<R: ChatRecords + ?Sized>(
    records: &R,
    incident: &IncidentId,
    announce: &[String],
    children: &[NewEffect],
) -> Result<(), EffectError> {
    let mut tx = records
        .store()
        .begin_background()
        .await
        .map_err(db_error::<R>)?;
    for channel in announce {
        let owed = notice_owed::<R>(incident, channel);
        tx.put_chat_ref(&owed).await.map_err(db_error::<R>)?;
    }
    tx.queue_effects(children).await.map_err(db_error::<R>)?;
    tx.commit().await.map_err(db_error::<R>)
}

/// Records that `channel` refused the notice for good, queues `report` (the one message in
/// the incident channel about it) and returns the notice effect's own permanent error,
/// `message`.
pub async fn report_notice_failure<R: ChatRecords + ?Sized>(
    records: &R,
    incident: &IncidentId,
    channel: &str,
    report: &NewEffect,
    message: String,
) -> EffectError {
    if let Err(e) = records
        .put_ref(incident, NOTICE_REFUSED, channel, None)
        .await
    {
        return e;
    }
    match records.store().enqueue_one(report).await {
        Ok(_) => EffectError::permanent(message),
        Err(e) => db_error::<R>(e),
    }
}

/// The row saying `channel` is owed a company-wide notice from `incident` on `R`'s platform.
pub fn notice_owed<R: ChatRecords + ?Sized>(incident: &IncidentId, channel: &str) -> ChatRef {
    chat_ref(R::PLATFORM, incident, NOTICE_OWED, channel, None)
}

/// An announcement's own notices (`notices`, one per channel of `channels`, in order): each
/// records its channel as owed a notice on `R`'s platform, in the transaction that queues
/// it, and the first carries `audience`, the reply's count of them all.
pub fn owed_notices<R: ChatRecords + ?Sized>(
    incident: &IncidentId,
    notices: Vec<NewEffect>,
    channels: &[String],
    audience: Option<Audience>,
) -> Vec<NewEffect> {
    let mut owed: Vec<NewEffect> = notices
        .into_iter()
        .zip(channels)
        .map(|(notice, channel)| notice.recording(notice_owed::<R>(incident, channel)))
        .collect();
    if let Some(first) = owed.first_mut() {
        first.audience = audience;
    }
    owed
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
