//! The `incidents` table: insert, look up, and compare-and-set on `version`.

use anyhow::Context;
use chrono::Utc;
use sqlx::FromRow;

use super::{Backend, Delivery, Store, Tx, from_ms, opt_from_ms, parse_column, to_ms};
use crate::incident::command::ListFilter;
use crate::incident::model::{Incident, IncidentId, IncidentNumber};

const COLUMNS: &str = "id, number, title, severity, status, drill, started_at, detected_at, \
    declared_at, acknowledged_at, mitigated_at, resolved_at, commander, comms, scribe, summary, \
    last_update_at, next_update_due, reminded_due, declared_by, version";

#[derive(FromRow)]
struct IncidentRow {
    id: String,
    number: i64,
    title: String,
    severity: String,
    status: String,
    drill: i64,
    started_at: Option<i64>,
    detected_at: Option<i64>,
    declared_at: i64,
    acknowledged_at: Option<i64>,
    mitigated_at: Option<i64>,
    resolved_at: Option<i64>,
    commander: Option<String>,
    comms: Option<String>,
    scribe: Option<String>,
    summary: Option<String>,
    last_update_at: Option<i64>,
    next_update_due: Option<i64>,
    reminded_due: Option<i64>,
    declared_by: String,
    version: i64,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = anyhow::Error;
    fn try_from(r: IncidentRow) -> anyhow::Result<Self> {
        Ok(Incident {
            id: IncidentId(r.id),
            number: IncidentNumber(r.number),
            title: r.title,
            severity: parse_column(&r.severity, "incidents.severity")?,
            status: parse_column(&r.status, "incidents.status")?,
            drill: r.drill != 0,
            started_at: opt_from_ms(r.started_at),
            detected_at: opt_from_ms(r.detected_at),
            declared_at: from_ms(r.declared_at),
            acknowledged_at: opt_from_ms(r.acknowledged_at),
            mitigated_at: opt_from_ms(r.mitigated_at),
            resolved_at: opt_from_ms(r.resolved_at),
            commander: r.commander,
            comms: r.comms,
            scribe: r.scribe,
            summary: r.summary,
            last_update_at: opt_from_ms(r.last_update_at),
            next_update_due: opt_from_ms(r.next_update_due),
            reminded_due: opt_from_ms(r.reminded_due),
            declared_by: r.declared_by,
            version: r.version,
        })
    }
}

/// How a declaration takes its `INC-n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// Read the counter: a round trip to the database before the rest can be written.
    Count,
    /// On SQLite, predict the number from the last one the writer handed out and check the
    /// prediction inside the transaction, so the whole declaration goes to the writer's
    /// thread in one hand-off. A wrong prediction (another process declared meanwhile, a
    /// transaction that took the number rolled back, or the delivery is a retry) fails the
    /// transaction with an error [`is_stale_incident_number`] recognises; declare again with
    /// [`Numbering::Count`]. Where there is nothing to predict from (Postgres, a writer that
    /// has handed out no number yet), it counts.
    Predict,
}

/// The number a declaration predicted was not the counter's next (see
/// [`Numbering::Predict`]): nothing was written, and the declaration should count instead.
pub fn is_stale_incident_number(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.to_string().contains(STALE_PREDICTION))
}

/// What SQLite says when [`CHECK_PREDICTION`] finds the prediction wrong.
const STALE_PREDICTION: &str = "UNIQUE constraint failed: counters.name";

/// Fails (inserting a second `incident_number` row, which the primary key refuses) unless
/// the counter, just moved, is at `$1`: the one way plain SQL outside a trigger can abort a
/// multi-statement query on a condition.
const CHECK_PREDICTION: &str = "INSERT INTO counters (name, value) SELECT 'incident_number', $1 \
    WHERE NOT EXISTS (SELECT 1 FROM counters WHERE name = 'incident_number' AND value = $1)";

const MOVE_COUNTER: &str = "UPDATE counters SET value = value + 1 WHERE name = 'incident_number'";

/// [`MOVE_COUNTER`] only if the statement just before it (the delivery's upsert) changed a row.
const MOVE_COUNTER_IF_NEW: &str = "UPDATE counters SET value = value + 1 \
    WHERE name = 'incident_number' AND changes() = 1";

impl Tx {
    /// Hands out the next `INC-n`. The counter row is updated in this transaction, so two
    /// concurrent declarations can never get the same number.
    pub async fn next_incident_number(&mut self) -> anyhow::Result<IncidentNumber> {
        let rows: Vec<(i64,)> = self
            .fetch(sqlx::query(
                "UPDATE counters SET value = value + 1 WHERE name = 'incident_number' RETURNING value",
            ))
            .await?;
        let (n,) = rows
            .first()
            .context("the incident number counter is missing")?;
        Ok(self.handed_out(*n))
    }

    /// Records the delivery that declares `incident` (if one carried it) and hands out the
    /// incident's `INC-n`; `None` when the delivery was recorded before (a retry).
    ///
    /// On SQLite both go in one round trip: the delivery's upsert is held, and the counter
    /// moves only if that upsert, the statement just before it, changed a row
    /// (`changes()`). With [`Numbering::Predict`] not even that: the number is predicted,
    /// everything is held, and a retry shows only when the transaction fails as stale.
    pub async fn declaration_number(
        &mut self,
        delivery: Option<&Delivery>,
        incident: &IncidentId,
        numbering: Numbering,
    ) -> anyhow::Result<Option<IncidentNumber>> {
        let predicted = self
            .writer()
            .and_then(|w| w.last_incident_number)
            .filter(|_| numbering == Numbering::Predict);
        if let Some(last) = predicted {
            return self
                .predict_number(delivery, incident, last + 1)
                .await
                .map(Some);
        }
        let Some(delivery) = delivery else {
            return self.next_incident_number().await.map(Some);
        };
        if self.backend == Backend::Postgres {
            return match self.record_delivery_of(delivery, Some(incident)).await? {
                true => self.next_incident_number().await.map(Some),
                false => Ok(None),
            };
        }
        self.hold(super::inbound::record_query(delivery, Some(incident)))
            .await?;
        let rows: Vec<(i64,)> = self
            .fetch(sqlx::query(
                "UPDATE counters SET value = value + 1 WHERE name = 'incident_number' AND changes() = 1 RETURNING value",
            ))
            .await?;
        if let Some((n,)) = rows.first() {
            return Ok(Some(self.handed_out(*n)));
        }
        // A retry; or no counter at all, which is an error rather than a retry.
        let counter: Option<(i64,)> = self
            .fetch_optional(sqlx::query(
                "SELECT value FROM counters WHERE name = 'incident_number'",
            ))
            .await?;
        counter.context("the incident number counter is missing")?;
        Ok(None)
    }

    /// Holds the delivery's upsert, the counter's move and the check that it moved to `next`.
    async fn predict_number(
        &mut self,
        delivery: Option<&Delivery>,
        incident: &IncidentId,
        next: i64,
    ) -> anyhow::Result<IncidentNumber> {
        let move_counter = match delivery {
            Some(delivery) => {
                self.hold(super::inbound::record_query(delivery, Some(incident)))
                    .await?;
                MOVE_COUNTER_IF_NEW
            }
            None => MOVE_COUNTER,
        };
        self.hold(sqlx::query(move_counter)).await?;
        self.hold(sqlx::query(CHECK_PREDICTION).bind(next)).await?;
        Ok(self.handed_out(next))
    }

    /// Remembers `n` as the writer's last handed-out number (SQLite), for the next prediction.
    fn handed_out(&mut self, n: i64) -> IncidentNumber {
        if let Some(writer) = self.writer() {
            writer.last_incident_number = Some(n);
        }
        IncidentNumber(n)
    }

    pub async fn insert_incident(&mut self, i: &Incident) -> anyhow::Result<()> {
        let query = sqlx::query(
            "INSERT INTO incidents (id, number, title, severity, status, drill, started_at, \
             detected_at, declared_at, acknowledged_at, mitigated_at, resolved_at, commander, \
             comms, scribe, summary, last_update_at, next_update_due, declared_by, version, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(&i.id.0)
        .bind(i.number.0)
        .bind(&i.title)
        .bind(i.severity.as_str())
        .bind(i.status.as_str())
        .bind(i64::from(i.drill))
        .bind(i.started_at.map(to_ms))
        .bind(i.detected_at.map(to_ms))
        .bind(to_ms(i.declared_at))
        .bind(i.acknowledged_at.map(to_ms))
        .bind(i.mitigated_at.map(to_ms))
        .bind(i.resolved_at.map(to_ms))
        .bind(&i.commander)
        .bind(&i.comms)
        .bind(&i.scribe)
        .bind(&i.summary)
        .bind(i.last_update_at.map(to_ms))
        .bind(i.next_update_due.map(to_ms))
        .bind(&i.declared_by)
        .bind(i.version)
        .bind(to_ms(Utc::now()));
        self.hold(query).await
    }

    /// Reads an incident and locks its row until the transaction ends.
    pub async fn incident_for_update(
        &mut self,
        number: IncidentNumber,
    ) -> anyhow::Result<Option<Incident>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE number = $1{}",
            self.lock_clause()
        );
        let row: Option<IncidentRow> = self
            .fetch_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number.0))
            .await?;
        row.map(Incident::try_from).transpose()
    }

    /// Writes `new` only if the stored version is still `expected`; bumps the version.
    /// Returns `false` when someone else wrote first.
    pub async fn compare_and_set_incident(
        &mut self,
        new: &Incident,
        expected: i64,
    ) -> anyhow::Result<bool> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE incidents SET title = $1, severity = $2, status = $3, started_at = $4, \
             detected_at = $5, acknowledged_at = $6, mitigated_at = $7, resolved_at = $8, \
             commander = $9, comms = $10, scribe = $11, summary = $12, last_update_at = $13, \
             next_update_due = $14, reminded_due = $18, version = version + 1, updated_at = $15 \
             WHERE id = $16 AND version = $17",
                )
                .bind(&new.title)
                .bind(new.severity.as_str())
                .bind(new.status.as_str())
                .bind(new.started_at.map(to_ms))
                .bind(new.detected_at.map(to_ms))
                .bind(new.acknowledged_at.map(to_ms))
                .bind(new.mitigated_at.map(to_ms))
                .bind(new.resolved_at.map(to_ms))
                .bind(&new.commander)
                .bind(&new.comms)
                .bind(&new.scribe)
                .bind(&new.summary)
                .bind(new.last_update_at.map(to_ms))
                .bind(new.next_update_due.map(to_ms))
                .bind(to_ms(Utc::now()))
                .bind(&new.id.0)
                .bind(expected)
                .bind(new.reminded_due.map(to_ms)),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    pub async fn incident_by_id(&self, id: &IncidentId) -> anyhow::Result<Option<Incident>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&id.0)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.map(Incident::try_from).transpose()
    }

    pub async fn incident_by_number(
        &self,
        number: IncidentNumber,
    ) -> anyhow::Result<Option<Incident>> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE number = $1");
        let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(number.0)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.map(Incident::try_from).transpose()
    }

    /// Open incidents whose promised update is due by `now` and not yet reminded about.
    pub async fn overdue_incidents(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Vec<Incident>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE status <> 'resolved' AND next_update_due <= $1 \
             AND (reminded_due IS NULL OR reminded_due <> next_update_due) ORDER BY number"
        );
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(to_ms(now))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// Incidents, newest first. With `open_only`, resolved ones are left out.
    pub async fn list_incidents(
        &self,
        open_only: bool,
        limit: i64,
    ) -> anyhow::Result<Vec<Incident>> {
        let filter = if open_only {
            "WHERE status <> 'resolved'"
        } else {
            ""
        };
        let sql = format!("SELECT {COLUMNS} FROM incidents {filter} ORDER BY number DESC LIMIT $1");
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// Up to `limit` incidents for people to scan, those `filter` lets through: open ones
    /// first, most severe first, newest first within a severity; then the most recently
    /// declared resolved ones.
    pub async fn incidents_open_first(
        &self,
        filter: &ListFilter,
        limit: i64,
    ) -> anyhow::Result<Vec<Incident>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE {} \
             ORDER BY CASE WHEN status = 'resolved' THEN 1 ELSE 0 END, \
             CASE WHEN status = 'resolved' THEN '' ELSE severity END, number DESC LIMIT $1",
            filter.sql()
        );
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// How many incidents `filter` lets through, and how many of them are open.
    pub async fn incident_counts(&self, filter: &ListFilter) -> anyhow::Result<(i64, i64)> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status <> 'resolved' THEN 1 ELSE 0 END), 0) \
             FROM incidents WHERE {}",
            filter.sql()
        );
        let (total, open): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *self.reader().await?)
            .await?;
        Ok((total, open))
    }
}
