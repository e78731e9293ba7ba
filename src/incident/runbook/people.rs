//! What people do to a step: `runbook start`, `runbook done`, `runbook skip`, each a
//! compare-and-set on the step's open row, timed on the timeline.

use chrono::{DateTime, Utc};

use super::{locked_runbook, step_entry, timing};
use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::{Incident, IncidentNumber};
use crate::incident::permissions::Actor;
use crate::incident::reply::Reply;
use crate::incident::service::{IncidentService, Outcome};
use crate::incident::timeline::format_offset;
use crate::runbook::Step;
use crate::store::{AttachedRunbook, StepOutcome, StepRecord, Tx};

impl IncidentService {
    /// `runbook done|skip <step>`: a person ends a step.
    pub(crate) async fn end_step(
        &self,
        number: IncidentNumber,
        step_id: &str,
        outcome: StepOutcome,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let (incident, runbook, record) = open_step(&mut tx, number, step_id).await?;
        let step = record.step.clone();
        let ended = EndedStep {
            step: &step,
            outcome,
            note,
        };
        if !self
            .record_end(&mut tx, &incident, &runbook, ended, actor, now)
            .await?
        {
            return Err(UserError::invalid(format!(
                "Runbook step `{step_id}` was ended by someone else just now."
            ))
            .into());
        }
        tx.commit().await?;
        let text = format!(
            "Runbook step `{}` ({}) {} at {}.",
            step.id,
            step.title,
            outcome.as_str(),
            timing(incident.declared_at, record.target_at, now)
        );
        Ok(Outcome::reply(Reply::public(text)))
    }

    /// `runbook start <step>`: a person takes an open step on; its start goes on the
    /// timeline and the checklist shows it in progress.
    pub(crate) async fn start_step(
        &self,
        number: IncidentNumber,
        step_id: &str,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let (incident, runbook, record) = open_step(&mut tx, number, step_id).await?;
        let by = actor.identity().to_string();
        if !tx.start_step(&incident.id, step_id, now, &by).await? {
            let at = record.started_at.map_or(String::new(), |t| {
                format!(" at {}", format_offset(t - incident.declared_at))
            });
            return Err(UserError::invalid(format!(
                "Runbook step `{step_id}` was already started{at}."
            ))
            .into());
        }
        let when = timing(incident.declared_at, record.target_at, now);
        let step = &record.step;
        let text = format!(
            "Runbook step `{}` ({}) started at {when}",
            step.id, step.title
        );
        tx.append_timeline(&step_entry(&incident, actor, now, text.clone()))
            .await?;
        let mut after = runbook.clone();
        if let Some(r) = after.steps.iter_mut().find(|r| r.step.id == step_id) {
            r.started_at = Some(now);
            r.started_by = Some(by);
        }
        let ended = after.steps.iter().filter(|r| r.outcome.is_some()).count();
        let key = format!("{ended}:started:{step_id}");
        let refresh = self.checklist_effects(&incident, &after, &key);
        let ids = tx.enqueue_effects(&refresh).await?;
        tx.commit().await?;
        self.wake_worker(&ids);
        Ok(Outcome::reply(Reply::public(format!("{text}."))))
    }

    /// Ends a step with a compare-and-set, puts it on the timeline and refreshes the
    /// checklist. `false` if it had already ended.
    pub(super) async fn record_end(
        &self,
        tx: &mut Tx,
        incident: &Incident,
        runbook: &AttachedRunbook,
        ended: EndedStep<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let step = ended.step;
        let by = actor.identity().to_string();
        if !tx
            .finish_step(&incident.id, &step.id, ended.outcome, now, &by, ended.note)
            .await?
        {
            return Ok(false);
        }
        let target = runbook
            .step(&step.id)
            .map_or(incident.declared_at, |r| r.target_at);
        let mut text = format!(
            "Runbook step `{}` ({}) {} at {}",
            step.id,
            step.title,
            ended.outcome.as_str(),
            timing(incident.declared_at, target, now)
        );
        if let Some(note) = ended.note.filter(|n| !n.is_empty()) {
            text.push_str(&format!(": {note}"));
        }
        tx.append_timeline(&step_entry(incident, actor, now, text))
            .await?;
        let mut after = runbook.clone();
        if let Some(r) = after.steps.iter_mut().find(|r| r.step.id == step.id) {
            r.outcome = Some(ended.outcome);
            r.finished_at = Some(now);
        }
        let count = after.steps.iter().filter(|r| r.outcome.is_some()).count();
        let refresh = self.checklist_effects(incident, &after, &count.to_string());
        tx.enqueue_effects(&refresh).await?;
        Ok(true)
    }
}

/// A step ending, with how and why.
pub(super) struct EndedStep<'a> {
    pub(super) step: &'a Step,
    pub(super) outcome: StepOutcome,
    pub(super) note: Option<&'a str>,
}

/// The open incident `number` (row locked), its runbook and its step `step_id`, still open;
/// otherwise the sentence that says why not.
async fn open_step(
    tx: &mut Tx,
    number: IncidentNumber,
    step_id: &str,
) -> Result<(Incident, AttachedRunbook, StepRecord), ServiceError> {
    let (incident, runbook) = locked_runbook(tx, number)
        .await?
        .ok_or(UserError::NotFound(number))?;
    if !incident.status.is_open() {
        return Err(UserError::AlreadyResolved.into());
    }
    let record = runbook
        .step(step_id)
        .cloned()
        .ok_or_else(|| unknown_step(number, step_id, &runbook))?;
    if let (Some(outcome), Some(at)) = (record.outcome, record.finished_at) {
        return Err(already_ended(step_id, outcome, at - incident.declared_at).into());
    }
    Ok((incident, runbook, record))
}

fn unknown_step(number: IncidentNumber, step: &str, runbook: &AttachedRunbook) -> UserError {
    let ids: Vec<&str> = runbook.steps.iter().map(|r| r.step.id.as_str()).collect();
    UserError::invalid(format!(
        "{number}'s runbook has no step \"{step}\"; its steps are: {}.",
        ids.join(", ")
    ))
}

fn already_ended(step: &str, outcome: StepOutcome, after: chrono::Duration) -> UserError {
    UserError::invalid(format!(
        "Runbook step `{step}` already ended: {} at {}.",
        outcome.as_str(),
        format_offset(after)
    ))
}
