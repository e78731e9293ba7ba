//! `incident_runbooks` and `runbook_steps`: the runbook an incident got (as it was then) and
//! what happened to each step. Finishing and nudging a step are compare-and-sets on the open
//! row, so two replicas, a retried effect or two people pressing the same button record it
//! once.

use chrono::{DateTime, Utc};

use super::{Store, Tx, from_ms, opt_from_ms, to_ms};
use crate::incident::{IncidentId, IncidentNumber};
use crate::runbook::{Runbook, Step};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    Done,
    Skipped,
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "done" => Self::Done,
            "skipped" => Self::Skipped,
            "failed" => Self::Failed,
            other => anyhow::bail!("unknown step outcome {other:?}"),
        })
    }
}

/// One step of an attached runbook and what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub step: Step,
    pub target_at: DateTime<Utc>,
    /// When someone said they started it (`runbook start`), and who.
    pub started_at: Option<DateTime<Utc>>,
    pub started_by: Option<String>,
    pub outcome: Option<StepOutcome>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The identity that finished it (`slack:U…`, `cli:alice`, `system:firebreak`).
    pub finished_by: Option<String>,
    pub note: Option<String>,
    pub nudged_at: Option<DateTime<Utc>>,
}

/// The runbook an incident got, with its steps in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachedRunbook {
    pub runbook: Runbook,
    pub attached_at: DateTime<Utc>,
    pub steps: Vec<StepRecord>,
}

impl AttachedRunbook {
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.step.id == id)
    }
}

/// An open step with work due: fire it (automatic) or nudge its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueStep {
    pub incident: IncidentId,
    pub number: IncidentNumber,
    pub step_id: String,
    pub automatic: bool,
}

type StepRow = (
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const STEP_COLUMNS: &str = "step_id, target_at, started_at, started_by, outcome, finished_at, \
     finished_by, note, nudged_at";

impl Tx {
    /// Attaches `runbook` to `incident` declared at `declared_at`: two statements, whose
    /// answers nobody reads (on SQLite they go with the declaration's next statement).
    pub async fn attach_runbook(
        &mut self,
        incident: &IncidentId,
        runbook: &Runbook,
        declared_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let spec = serde_json::to_string(runbook)?;
        let head = sqlx::query(
            "INSERT INTO incident_runbooks (incident_id, runbook, spec, attached_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&incident.0)
        .bind(&runbook.name)
        .bind(spec)
        .bind(to_ms(declared_at));
        self.hold(head).await?;
        let rows: Vec<String> = (0..runbook.steps.len())
            .map(|i| {
                let p = |n: usize| format!("${}", i * 5 + n);
                format!("({}, {}, {}, {}, {})", p(1), p(2), p(3), p(4), p(5))
            })
            .collect();
        let sql = format!(
            "INSERT INTO runbook_steps (incident_id, step_id, position, automatic, target_at) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, step) in runbook.steps.iter().enumerate() {
            let target = declared_at + chrono::Duration::from_std(step.at)?;
            query = query
                .bind(&incident.0)
                .bind(&step.id)
                .bind(i as i64)
                .bind(i64::from(!step.action.is_manual()))
                .bind(to_ms(target));
        }
        self.hold(query).await
    }

    /// The incident's runbook, read inside the transaction.
    pub async fn runbook_of(
        &mut self,
        incident: &IncidentId,
    ) -> anyhow::Result<Option<AttachedRunbook>> {
        let head: Option<(String, i64)> = self
            .fetch_optional(
                sqlx::query(
                    "SELECT spec, attached_at FROM incident_runbooks WHERE incident_id = $1",
                )
                .bind(&incident.0),
            )
            .await?;
        let Some(head) = head else { return Ok(None) };
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM runbook_steps WHERE incident_id = $1 ORDER BY position"
        );
        let rows: Vec<StepRow> = self
            .fetch(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&incident.0))
            .await?;
        assemble(head, rows).map(Some)
    }

    /// Ends an open step; `false` if it had already ended (someone else was first).
    pub async fn finish_step(
        &mut self,
        incident: &IncidentId,
        step_id: &str,
        outcome: StepOutcome,
        at: DateTime<Utc>,
        by: &str,
        note: Option<&str>,
    ) -> anyhow::Result<bool> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE runbook_steps SET outcome = $1, finished_at = $2, finished_by = $3, note = $4 \
                     WHERE incident_id = $5 AND step_id = $6 AND outcome IS NULL",
                )
                .bind(outcome.as_str())
                .bind(to_ms(at))
                .bind(by)
                .bind(note)
                .bind(&incident.0)
                .bind(step_id),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `by` started an open step; `false` if it had started or ended already.
    pub async fn start_step(
        &mut self,
        incident: &IncidentId,
        step_id: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> anyhow::Result<bool> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE runbook_steps SET started_at = $1, started_by = $2 \
                     WHERE incident_id = $3 AND step_id = $4 AND outcome IS NULL AND started_at IS NULL",
                )
                .bind(to_ms(at))
                .bind(by)
                .bind(&incident.0)
                .bind(step_id),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks an open step's owner as nudged; `false` if it was nudged already or has ended.
    pub async fn mark_nudged(
        &mut self,
        incident: &IncidentId,
        step_id: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE runbook_steps SET nudged_at = $1 \
                     WHERE incident_id = $2 AND step_id = $3 AND outcome IS NULL AND nudged_at IS NULL",
                )
                .bind(to_ms(at))
                .bind(&incident.0)
                .bind(step_id),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Tx {
    /// Ends every step still open as skipped (the incident was resolved first).
    pub async fn skip_open_steps(
        &mut self,
        incident: &IncidentId,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let query = sqlx::query(
            "UPDATE runbook_steps SET outcome = 'skipped', finished_at = $1, finished_by = 'system:firebreak', \
             note = 'not reached: the incident was resolved' WHERE incident_id = $2 AND outcome IS NULL",
        )
        .bind(to_ms(at))
        .bind(&incident.0);
        self.hold(query).await
    }
}

impl Store {
    /// The incident's runbook, if it has one.
    pub async fn runbook(&self, incident: &IncidentId) -> anyhow::Result<Option<AttachedRunbook>> {
        let mut conn = self.reader().await?;
        let head: Option<(String, i64)> = sqlx::query_as(
            "SELECT spec, attached_at FROM incident_runbooks WHERE incident_id = $1",
        )
        .bind(&incident.0)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(head) = head else { return Ok(None) };
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM runbook_steps WHERE incident_id = $1 ORDER BY position"
        );
        let rows: Vec<StepRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&incident.0)
            .fetch_all(&mut *conn)
            .await?;
        assemble(head, rows).map(Some)
    }

    /// Open steps with work due at `now`: automatic steps whose target has come, and steps
    /// `nudge_after` past their target whose owner was not nudged yet. Oldest first.
    pub async fn due_runbook_steps(
        &self,
        now: DateTime<Utc>,
        nudge_after: std::time::Duration,
    ) -> anyhow::Result<Vec<DueStep>> {
        let nudge_before = now - chrono::Duration::from_std(nudge_after)?;
        let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT s.incident_id, i.number, s.step_id, s.automatic FROM runbook_steps s \
             JOIN incidents i ON i.id = s.incident_id WHERE s.outcome IS NULL \
             AND ((s.automatic = 1 AND s.target_at <= $1) OR (s.nudged_at IS NULL AND s.target_at <= $2)) \
             ORDER BY s.target_at, s.incident_id, s.position LIMIT 500",
        )
        .bind(to_ms(now))
        .bind(to_ms(nudge_before))
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(incident, number, step_id, automatic)| DueStep {
                incident: IncidentId(incident),
                number: IncidentNumber(number),
                step_id,
                automatic: automatic != 0,
            })
            .collect())
    }
}

fn assemble(
    (spec, attached_at): (String, i64),
    rows: Vec<StepRow>,
) -> anyhow::Result<AttachedRunbook> {
    let runbook: Runbook = serde_json::from_str(&spec)?;
    let steps = rows
        .into_iter()
        .filter_map(
            |(id, target, started, started_by, outcome, finished, by, note, nudged)| {
                let step = runbook.steps.iter().find(|s| s.id == id)?.clone();
                let start = (opt_from_ms(started), started_by);
                Some((step, target, start, outcome, finished, by, note, nudged))
            },
        )
        .map(
            |(step, target, (started_at, started_by), outcome, finished, by, note, nudged)| {
                Ok(StepRecord {
                    step,
                    target_at: from_ms(target),
                    started_at,
                    started_by,
                    outcome: outcome.as_deref().map(StepOutcome::parse).transpose()?,
                    finished_at: opt_from_ms(finished),
                    finished_by: by,
                    note,
                    nudged_at: opt_from_ms(nudged),
                })
            },
        )
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AttachedRunbook {
        runbook,
        attached_at: from_ms(attached_at),
        steps,
    })
}
