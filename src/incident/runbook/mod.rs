//! Running an incident's runbook. A declaration attaches one (named, or chosen by severity
//! and title) in its own transaction: a row per step, a wake-up effect at each target time,
//! and the checklist for the incident's room. From then on:
//!
//! - an automatic step fires when due ([`IncidentService::run_runbooks`], woken by its
//!   effect and swept periodically by `serve`): its action becomes effects through the
//!   planners (a drill's in their dry-run form), and it ends `done` or `failed`;
//! - a person ends a manual step with `runbook done` or `runbook skip`;
//! - a step still open `nudge_after` past its target nudges its owner, once.
//!
//! Every end is a compare-and-set on the open row and goes on the timeline with its T+ and
//! who did it, so retries, replicas and two people pressing one button record it once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::{ServiceError, UserError};
use super::model::{Incident, IncidentNumber};
use super::permissions::Actor;
use super::reply::Reply;
use super::service::{IncidentService, Outcome};
use super::timeline::{EntryKind, NewEntry, format_offset};
use crate::effects::NewEffect;
use crate::effects::planner::Intent;
use crate::runbook::{Runbook, Runbooks, Step, checklist};
use crate::store::{AttachedRunbook, Tx};

mod fire;
mod people;

/// The effect that wakes the sweep at a step's target time.
pub const DUE_EFFECT: &str = "runbook.due";

/// `[runbooks]` as the core needs it.
pub struct RunbookSettings {
    pub library: Runbooks,
    /// Where a drill's webhook posts go instead (none: a drill sends none).
    pub drill_webhook: Option<String>,
    /// Where a drill's Slack posts go instead (none: a drill sends none).
    pub drill_channel: Option<String>,
    pub nudge_after: Duration,
}

impl IncidentService {
    fn runbooks(&self) -> Option<&RunbookSettings> {
        self.policy().runbooks.as_ref()
    }

    /// The runbook a declaration gets: the one it names (which must exist), else the
    /// library's choice for its severity and title.
    pub(super) fn runbook_for(
        &self,
        incident: &Incident,
        named: Option<&str>,
    ) -> Result<Option<Arc<Runbook>>, UserError> {
        let library = self.runbooks().map(|s| &s.library);
        match (named, library) {
            (Some(name), Some(lib)) => lib.named(name).cloned().map(Some).ok_or_else(|| {
                UserError::invalid(format!(
                    "There is no runbook named \"{name}\"; the runbooks are: {}.",
                    lib.names()
                ))
            }),
            (Some(name), None) => Err(UserError::invalid(format!(
                "There is no runbook named \"{name}\": runbooks are off ([runbooks] dir is not set)."
            ))),
            (None, Some(lib)) => Ok(lib.choose(incident.severity, &incident.title).cloned()),
            (None, None) => Ok(None),
        }
    }

    /// In the declaration's transaction: the runbook's rows, a wake-up at each distinct
    /// time something is due (a target, or a nudge), and the checklist for the room.
    pub(super) async fn attach_runbook(
        &self,
        tx: &mut Tx,
        incident: &Incident,
        runbook: &Runbook,
    ) -> anyhow::Result<Vec<NewEffect>> {
        tx.attach_runbook(&incident.id, runbook, incident.declared_at)
            .await?;
        let nudge_after = self.runbooks().map_or(Duration::ZERO, |s| s.nudge_after);
        let mut effects = wake_ups(incident, &runbook.steps, nudge_after);
        let attached = fresh(runbook, incident.declared_at);
        effects.extend(self.checklist_effects(incident, &attached, "0"));
        Ok(effects)
    }

    /// The checklist message, kept current: a new version each time a step ends.
    fn checklist_effects(
        &self,
        incident: &Incident,
        runbook: &AttachedRunbook,
        version: &str,
    ) -> Vec<NewEffect> {
        let text = checklist::plain_text(runbook, incident.declared_at, self.now());
        let key = format!("checklist:{version}");
        self.policy()
            .planners
            .plan_intent(&incident.id, &Intent::Checklist { text }, &key)
    }

    /// Fires every automatic step that is due and nudges the owner of every step that is
    /// late, each in its own transaction. Returns how many steps it acted on.
    pub async fn run_runbooks(&self) -> Result<usize, ServiceError> {
        let Some(settings) = self.runbooks() else {
            return Ok(0);
        };
        let now = self.now();
        let mut acted = 0;
        let mut failed = None;
        let due_steps = self.store().due_runbook_steps(now, settings.nudge_after);
        for due in due_steps.await? {
            let did = match due.automatic {
                true => self.fire_step(&due, now).await,
                false => self.nudge_step(&due, now).await,
            };
            // One step that cannot be run must not hold up the others: the rest run, and
            // the sweep reports the failure (its wake-up effect retries).
            match did {
                Ok(did) => acted += usize::from(did),
                Err(e) => {
                    tracing::error!(incident = %due.number, step = %due.step_id, error = %e, "running a runbook step failed");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) if acted == 0 => Err(e),
            _ => Ok(acted),
        }
    }

    /// The checklist of incident `number`, for `runbook` with no step.
    pub(super) async fn show_runbook(
        &self,
        number: IncidentNumber,
    ) -> Result<Outcome, ServiceError> {
        let incident = self
            .store()
            .incident_by_number(number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        let text = match self.store().runbook(&incident.id).await? {
            Some(rb) => checklist::plain_text(&rb, incident.declared_at, self.now()),
            None => format!("{number} has no runbook."),
        };
        Ok(Outcome::reply(Reply::private(text)))
    }
}

/// A runbook entry on the incident's timeline, by `actor` at `at`.
fn step_entry(incident: &Incident, actor: &Actor, at: DateTime<Utc>, text: String) -> NewEntry {
    NewEntry {
        incident_id: Some(incident.id.clone()),
        occurred_at: at,
        actor: actor.identity().to_string(),
        source: actor.source,
        kind: EntryKind::RunbookStep,
        text,
    }
}

/// The incident (row locked) and its runbook, if it has one.
async fn locked_runbook(
    tx: &mut Tx,
    number: IncidentNumber,
) -> anyhow::Result<Option<(Incident, AttachedRunbook)>> {
    let Some(incident) = tx.incident_for_update(number).await? else {
        return Ok(None);
    };
    Ok(tx.runbook_of(&incident.id).await?.map(|rb| (incident, rb)))
}

/// The runbook as attached, before anything happened (for the first checklist).
fn fresh(runbook: &Runbook, declared_at: DateTime<Utc>) -> AttachedRunbook {
    AttachedRunbook {
        runbook: runbook.clone(),
        attached_at: declared_at,
        steps: runbook
            .steps
            .iter()
            .map(|s| crate::store::StepRecord {
                step: s.clone(),
                target_at: declared_at + chrono::Duration::from_std(s.at).unwrap_or_default(),
                started_at: None,
                started_by: None,
                outcome: None,
                finished_at: None,
                finished_by: None,
                note: None,
                nudged_at: None,
            })
            .collect(),
    }
}

/// One wake-up effect per distinct time something is due: each automatic step's target,
/// and each step's nudge time (pure). Keyed by incident and time, so it is queued once.
fn wake_ups(incident: &Incident, steps: &[Step], nudge_after: Duration) -> Vec<NewEffect> {
    let mut times: Vec<Duration> = steps
        .iter()
        .filter(|s| !s.action.is_manual())
        .map(|s| s.at)
        .chain(steps.iter().map(|s| s.at + nudge_after))
        .collect();
    times.sort();
    times.dedup();
    times
        .into_iter()
        .map(|offset| {
            let at = incident.declared_at + chrono::Duration::from_std(offset).unwrap_or_default();
            NewEffect {
                incident_id: Some(incident.id.clone()),
                kind: DUE_EFFECT.into(),
                payload: serde_json::json!({ "incident_id": incident.id, "at_ms": offset.as_millis() as u64 }),
                idempotency_key: format!("{DUE_EFFECT}:{}:{}", incident.id, offset.as_millis()),
                ordering_key: None,
                audience: None,
                not_before: None,
                records: Vec::new(),
            }
            .not_before(at)
        })
        .collect()
}

/// `T+4m (target T+3m, 1m late)`, `T+2m (on target)` (pure).
pub fn timing(declared: DateTime<Utc>, target: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let actual = format_offset(at - declared);
    let planned = format_offset(target - declared);
    let late = at - target;
    if late > chrono::Duration::seconds(59) {
        let by = format_offset(late);
        let by = by.trim_start_matches("T+");
        format!("{actual} (target {planned}, {by} late)")
    } else {
        format!("{actual} (target {planned})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timing_says_late_only_past_a_minute() {
        let d = Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap();
        let target = d + chrono::Duration::minutes(3);
        assert_eq!(timing(d, target, target), "T+3m (target T+3m)");
        assert_eq!(
            timing(d, target, d + chrono::Duration::minutes(5)),
            "T+5m (target T+3m, 2m late)"
        );
    }
}
