//! `chat_refs`: where an incident lives in chat (channel, card, notices).
//!
//! A reference is written right after the API call that created the thing succeeds, so a
//! retried effect finds it and edits or skips instead of creating a second one.

use chrono::Utc;
use sqlx::FromRow;

use super::{Store, Tx, to_ms};
use crate::incident::model::{IncidentId, IncidentNumber};

/// One thing an incident owns on a chat platform.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ChatRef {
    pub incident_id: String,
    pub platform: String,
    /// `channel`, `card`, `notice`, … (meaning is up to the platform adapter).
    pub role: String,
    pub channel_id: String,
    /// The message id (a Slack `ts`), for roles that are messages.
    pub message_id: Option<String>,
}

impl Tx {
    /// Records (or replaces) a reference in this transaction. Nobody reads its answer, so on
    /// SQLite it goes with the transaction's next statement (or its `COMMIT`).
    pub async fn put_chat_ref(&mut self, r: &ChatRef) -> anyhow::Result<()> {
        let put = sqlx::query(
            "INSERT INTO chat_refs (incident_id, platform, role, channel_id, message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (incident_id, platform, role, channel_id) DO UPDATE SET message_id = excluded.message_id",
        )
        .bind(&r.incident_id)
        .bind(&r.platform)
        .bind(&r.role)
        .bind(&r.channel_id)
        .bind(&r.message_id)
        .bind(to_ms(Utc::now()));
        self.hold(put).await
    }
}

impl Store {
    pub async fn chat_refs(
        &self,
        incident: &IncidentId,
        platform: &str,
    ) -> anyhow::Result<Vec<ChatRef>> {
        Ok(sqlx::query_as(
            "SELECT incident_id, platform, role, channel_id, message_id FROM chat_refs \
             WHERE incident_id = $1 AND platform = $2 ORDER BY created_at, role, channel_id",
        )
        .bind(&incident.0)
        .bind(platform)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// Records (or replaces) a reference.
    pub async fn put_chat_ref(&self, r: &ChatRef) -> anyhow::Result<()> {
        let mut tx = self.begin_background().await?;
        tx.put_chat_ref(r).await?;
        tx.commit().await
    }

    /// The incident whose channel this is, if any.
    pub async fn incident_for_channel(
        &self,
        platform: &str,
        channel_id: &str,
    ) -> anyhow::Result<Option<IncidentNumber>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT i.number FROM chat_refs r JOIN incidents i ON i.id = r.incident_id \
             WHERE r.platform = $1 AND r.channel_id = $2 AND r.role = 'channel' ORDER BY i.number DESC LIMIT 1",
        )
        .bind(platform)
        .bind(channel_id)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(row.map(|(n,)| IncidentNumber(n)))
    }
}
