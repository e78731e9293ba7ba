//! The `timeline_entries` table: append and read, never update or delete (triggers in the
//! migrations enforce that at the database too).

use chrono::Utc;
use sqlx::FromRow;

use super::{Store, Tx, from_ms, parse_column, to_ms};
use crate::incident::model::IncidentId;
use crate::incident::timeline::{EntryKind, NewEntry, TimelineEntry};

#[derive(FromRow)]
struct EntryRow {
    id: i64,
    incident_id: Option<String>,
    occurred_at: i64,
    recorded_at: i64,
    actor: String,
    source: String,
    kind: String,
    text: String,
}

impl TryFrom<EntryRow> for TimelineEntry {
    type Error = anyhow::Error;
    fn try_from(r: EntryRow) -> anyhow::Result<Self> {
        Ok(TimelineEntry {
            id: r.id,
            incident_id: r.incident_id.map(IncidentId),
            occurred_at: from_ms(r.occurred_at),
            recorded_at: from_ms(r.recorded_at),
            actor: r.actor,
            source: parse_column(&r.source, "timeline_entries.source")?,
            kind: parse_column(&r.kind, "timeline_entries.kind")?,
            text: r.text,
        })
    }
}

/// An entry as the incident page shows it: what happened, when, who and what kind, without
/// the columns a page never shows (incident, recorded time, source). Read with
/// [`Store::timeline_shown`], a narrower and cheaper query than [`Store::timeline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownEntry {
    pub id: i64,
    /// Epoch milliseconds, as stored.
    pub occurred_ms: i64,
    pub actor: String,
    pub kind: EntryKind,
    pub text: String,
}

impl Tx {
    pub async fn append_timeline(&mut self, e: &NewEntry) -> anyhow::Result<()> {
        let query = sqlx::query(
            "INSERT INTO timeline_entries (incident_id, occurred_at, recorded_at, actor, source, kind, text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.incident_id.as_ref().map(|i| i.0.clone()))
        .bind(to_ms(e.occurred_at))
        .bind(to_ms(Utc::now()))
        .bind(&e.actor)
        .bind(e.source.as_str())
        .bind(e.kind.as_str())
        .bind(&e.text);
        self.hold(query).await
    }
}

impl Store {
    /// An incident's entries in the order they happened (ties keep recording order).
    pub async fn timeline(&self, incident: &IncidentId) -> anyhow::Result<Vec<TimelineEntry>> {
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT id, incident_id, occurred_at, recorded_at, actor, source, kind, text \
             FROM timeline_entries WHERE incident_id = $1 ORDER BY occurred_at, id",
        )
        .bind(&incident.0)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.into_iter().map(TimelineEntry::try_from).collect()
    }

    /// An incident's entries as its page shows them ([`ShownEntry`]), in the order of
    /// [`Store::timeline`]. Five columns read by position instead of eight by name: the
    /// incident page reads every entry of a long incident on each load.
    pub async fn timeline_shown(&self, incident: &IncidentId) -> anyhow::Result<Vec<ShownEntry>> {
        let rows: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
            "SELECT id, occurred_at, actor, kind, text \
             FROM timeline_entries WHERE incident_id = $1 ORDER BY occurred_at, id",
        )
        .bind(&incident.0)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.into_iter()
            .map(|(id, occurred_ms, actor, kind, text)| {
                Ok(ShownEntry {
                    id,
                    occurred_ms,
                    actor,
                    kind: parse_column(&kind, "timeline_entries.kind")?,
                    text,
                })
            })
            .collect()
    }

    /// The most recent entry of one kind (the latest status update, say).
    pub async fn latest_entry(
        &self,
        incident: &IncidentId,
        kind: crate::incident::timeline::EntryKind,
    ) -> anyhow::Result<Option<TimelineEntry>> {
        let row: Option<EntryRow> = sqlx::query_as(
            "SELECT id, incident_id, occurred_at, recorded_at, actor, source, kind, text \
             FROM timeline_entries WHERE incident_id = $1 AND kind = $2 ORDER BY occurred_at DESC, id DESC LIMIT 1",
        )
        .bind(&incident.0)
        .bind(kind.as_str())
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.map(TimelineEntry::try_from).transpose()
    }

    /// Entries outside any incident (refused declarations, standalone actions), newest first.
    pub async fn audit_log(&self, limit: i64) -> anyhow::Result<Vec<TimelineEntry>> {
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT id, incident_id, occurred_at, recorded_at, actor, source, kind, text \
             FROM timeline_entries WHERE incident_id IS NULL ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.into_iter().map(TimelineEntry::try_from).collect()
    }

    /// Up to `limit` entries of any incident (or none) recorded with an id above `after`, in
    /// id order: the primary key's range, so it is cheap however long the timelines are.
    /// The live timeline (`http::pages::live`) polls it and keeps one incident's entries.
    pub async fn timeline_after(
        &self,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<TimelineEntry>> {
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT id, incident_id, occurred_at, recorded_at, actor, source, kind, text \
             FROM timeline_entries WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.into_iter().map(TimelineEntry::try_from).collect()
    }

    /// The highest entry id so far (0 for none): where a live timeline starts when it is
    /// given no place to start from.
    pub async fn last_timeline_id(&self) -> anyhow::Result<i64> {
        let row: (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM timeline_entries")
            .fetch_one(&mut *self.reader().await?)
            .await?;
        Ok(row.0.unwrap_or(0))
    }

    /// Appends one entry in its own transaction (effect outcomes, system events).
    pub async fn append_timeline(&self, e: &NewEntry) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        tx.append_timeline(e).await?;
        tx.commit().await
    }
}
