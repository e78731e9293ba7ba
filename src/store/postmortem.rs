//! Post-mortem material: update promises, written sections, action items.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::{Store, Tx, from_ms, to_ms};
use crate::incident::model::IncidentId;

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ActionItem {
    pub number: i64,
    pub text: String,
    pub owner: Option<String>,
    /// `immediate`, `medium` or `long`.
    pub term: String,
    #[sqlx(try_from = "i64")]
    pub done: Flag,
}

/// A 0/1 column as a bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl From<i64> for Flag {
    fn from(v: i64) -> Self {
        Self(v != 0)
    }
}

/// What ticking an action item came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionDone {
    Done,
    AlreadyDone,
    Missing,
}

impl Tx {
    pub async fn add_promise(
        &mut self,
        incident: &IncidentId,
        set_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.hold(
            sqlx::query(
                "INSERT INTO update_promises (incident_id, set_at, due_at) VALUES ($1, $2, $3)",
            )
            .bind(&incident.0)
            .bind(to_ms(set_at))
            .bind(to_ms(due_at)),
        )
        .await
    }

    /// Moves the document to `status` (draft, in-review, final).
    pub async fn set_postmortem_status(
        &mut self,
        incident: &IncidentId,
        status: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.execute(sqlx::query(
            "INSERT INTO postmortem_docs (incident_id, status, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (incident_id) DO UPDATE SET status = excluded.status, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(&incident.0)
        .bind(status)
        .bind(by)
        .bind(to_ms(at))
        )
        .await?;
        Ok(())
    }

    /// The document's status (`draft`, `in-review`, `final`), read in this transaction;
    /// `None` while nobody has set one.
    pub async fn postmortem_status(
        &mut self,
        incident: &IncidentId,
    ) -> anyhow::Result<Option<String>> {
        let status: Option<(String,)> = self
            .fetch_optional(
                sqlx::query("SELECT status FROM postmortem_docs WHERE incident_id = $1")
                    .bind(&incident.0),
            )
            .await?;
        Ok(status.map(|(s,)| s))
    }

    /// Names a reviewer; `false` if they were named already.
    pub async fn add_reviewer(
        &mut self,
        incident: &IncidentId,
        reviewer: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let done = self.execute(sqlx::query(
            "INSERT INTO postmortem_reviewers (incident_id, reviewer, added_by, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (incident_id, reviewer) DO NOTHING",
        )
        .bind(&incident.0)
        .bind(reviewer)
        .bind(by)
        .bind(to_ms(at))
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_postmortem_field(
        &mut self,
        incident: &IncidentId,
        field: &str,
        text: &str,
        by: &str,
    ) -> anyhow::Result<()> {
        self.execute(sqlx::query(
            "INSERT INTO postmortem_fields (incident_id, field, text, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (incident_id, field) DO UPDATE SET text = excluded.text, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(&incident.0)
        .bind(field)
        .bind(text)
        .bind(by)
        .bind(to_ms(Utc::now()))
        )
        .await?;
        self.execute(sqlx::query(
            "INSERT INTO postmortem_authors (incident_id, author, first_at) VALUES ($1, $2, $3) \
             ON CONFLICT (incident_id, author) DO NOTHING",
        )
        .bind(&incident.0)
        .bind(by)
        .bind(to_ms(Utc::now()))
        )
        .await?;
        Ok(())
    }

    /// Adds an action item and returns its number within the incident.
    pub async fn add_action(
        &mut self,
        incident: &IncidentId,
        text: &str,
        owner: Option<&str>,
        term: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let (n,): (i64,) = self.fetch_one(sqlx::query("SELECT CAST(COALESCE(MAX(number), 0) + 1 AS BIGINT) FROM action_items WHERE incident_id = $1")
            .bind(&incident.0)
            )
            .await?;
        self.execute(sqlx::query("INSERT INTO action_items (incident_id, number, text, owner, term, done, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)")
            .bind(&incident.0)
            .bind(n)
            .bind(text)
            .bind(owner)
            .bind(term)
            .bind(to_ms(now))
            )
            .await?;
        Ok(n)
    }

    /// Marks an action item done; `false` if there is no such item.
    pub async fn complete_action(
        &mut self,
        incident: &IncidentId,
        number: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ActionDone> {
        let done = self.execute(sqlx::query(
            "UPDATE action_items SET done = 1, done_at = $1 WHERE incident_id = $2 AND number = $3 AND done = 0",
        )
        .bind(to_ms(now))
        .bind(&incident.0)
        .bind(number)
        )
        .await?;
        if done.rows_affected() == 1 {
            return Ok(ActionDone::Done);
        }
        let exists: Option<(i64,)> = self
            .fetch_optional(
                sqlx::query(
                    "SELECT number FROM action_items WHERE incident_id = $1 AND number = $2",
                )
                .bind(&incident.0)
                .bind(number),
            )
            .await?;
        Ok(match exists {
            Some(_) => ActionDone::AlreadyDone,
            None => ActionDone::Missing,
        })
    }
}

impl Store {
    /// (set at, due at) for every promise, oldest first.
    pub async fn promises(
        &self,
        incident: &IncidentId,
    ) -> anyhow::Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT set_at, due_at FROM update_promises WHERE incident_id = $1 ORDER BY set_at",
        )
        .bind(&incident.0)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(s, d)| (from_ms(s), from_ms(d)))
            .collect())
    }

    pub async fn postmortem_fields(
        &self,
        incident: &IncidentId,
    ) -> anyhow::Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT field, text FROM postmortem_fields WHERE incident_id = $1 ORDER BY field",
        )
        .bind(&incident.0)
        .fetch_all(&mut *self.reader().await?)
        .await?)
    }

    /// The document's status (`None` until someone sets one: a draft) and its reviewers
    /// (identities, in the order they were named).
    pub async fn postmortem_review(
        &self,
        incident: &IncidentId,
    ) -> anyhow::Result<(Option<String>, Vec<String>)> {
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status FROM postmortem_docs WHERE incident_id = $1")
                .bind(&incident.0)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        let reviewers: Vec<(String,)> = sqlx::query_as(
            "SELECT reviewer FROM postmortem_reviewers WHERE incident_id = $1 ORDER BY added_at, reviewer",
        )
        .bind(&incident.0)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok((
            status.map(|(s,)| s),
            reviewers.into_iter().map(|(r,)| r).collect(),
        ))
    }

    /// Who wrote the post-mortem's sections (identities), in the order they first wrote.
    pub async fn postmortem_authors(&self, incident: &IncidentId) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT author FROM postmortem_authors WHERE incident_id = $1 ORDER BY first_at, author",
        )
        .bind(&incident.0)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows.into_iter().map(|(who,)| who).collect())
    }

    pub async fn action_items(&self, incident: &IncidentId) -> anyhow::Result<Vec<ActionItem>> {
        Ok(sqlx::query_as("SELECT number, text, owner, term, done FROM action_items WHERE incident_id = $1 ORDER BY number")
            .bind(&incident.0)
            .fetch_all(&mut *self.reader().await?)
            .await?)
    }
}
