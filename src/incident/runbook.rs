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
use crate::effects::planner::{Destination, Intent};
use crate::runbook::{Action, Owner, Runbook, Runbooks, Step, checklist};
use crate::store::{AttachedRunbook, DueStep, StepOutcome, Tx};

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

/// What firing an automatic step came to.
struct Fired {
    outcome: StepOutcome,
    note: String,
    effects: Vec<NewEffect>,
}

impl Fired {
    fn done(note: impl Into<String>, effects: Vec<NewEffect>) -> Self {
        Self {
            outcome: StepOutcome::Done,
            note: note.into(),
            effects,
        }
    }

    fn failed(note: impl Into<String>) -> Self {
        Self {
            outcome: StepOutcome::Failed,
            note: note.into(),
            effects: Vec::new(),
        }
    }
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

    /// Fires one automatic step, unless something else ended it first.
    async fn fire_step(&self, due: &DueStep, now: DateTime<Utc>) -> Result<bool, ServiceError> {
        let mut tx = self.begin().await?;
        let Some((incident, runbook)) = locked_runbook(&mut tx, due.number).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let Some(record) = runbook.step(&due.step_id).filter(|r| r.outcome.is_none()) else {
            tx.rollback().await?;
            return Ok(false);
        };
        let step = record.step.clone();
        let fired = match incident.status.is_open() {
            true => self.fire(&mut tx, &incident, &step, now).await?,
            false => Fired {
                outcome: StepOutcome::Skipped,
                note: "the incident was resolved first".into(),
                effects: Vec::new(),
            },
        };
        let system = Actor::system();
        let ended = EndedStep {
            step: &step,
            outcome: fired.outcome,
            note: Some(&fired.note),
        };
        if !self
            .record_end(&mut tx, &incident, &runbook, ended, &system, now)
            .await?
        {
            tx.rollback().await?;
            return Ok(false);
        }
        let ids = tx.enqueue_effects(&fired.effects).await?;
        tx.commit().await?;
        self.wake_worker(&ids);
        Ok(true)
    }

    /// The effects of an automatic step's action, in their drill form for a drill.
    async fn fire(
        &self,
        tx: &mut Tx,
        incident: &Incident,
        step: &Step,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Fired> {
        let drill = incident.drill;
        let key = format!("runbook:{}:{}", incident.id, step.id);
        Ok(match &step.action {
            Action::Manual => Fired::failed("a manual step does not fire"),
            Action::Announce => Fired::done(
                match drill {
                    true => "the DRILL notice was queued with the declaration",
                    false => "the company-wide notice was queued with the declaration",
                },
                Vec::new(),
            ),
            Action::Freeze { repos } => self.fire_freeze(tx, incident, step, repos, now).await?,
            Action::Notify { to, text } => self.fire_external(incident, to.clone(), text, &key),
            Action::Page { webhook, text } => {
                self.fire_external(incident, Destination::Webhook(webhook.clone()), text, &key)
            }
            Action::Link { url } => {
                let text = format!("🔗 {}: {url}", step.title);
                let effects = self.policy().planners.plan_intent(
                    &incident.id,
                    &Intent::RoomPost { text },
                    &key,
                );
                Fired::done(format!("posted {url}"), effects)
            }
        })
    }

    async fn fire_freeze(
        &self,
        tx: &mut Tx,
        incident: &Incident,
        step: &Step,
        repos: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Fired> {
        let Some(settings) = self.policy().freeze.clone() else {
            return Ok(Fired::failed(
                "merge freezes need GitHub, which is not configured",
            ));
        };
        let scopes = match repos.is_empty() {
            true => settings.scopes.clone(),
            false => repos.to_vec(),
        };
        if scopes.is_empty() {
            return Ok(Fired::failed(
                "no repositories to freeze (the step names none and [github] repos is empty)",
            ));
        }
        let reason = format!("{} (runbook step {})", incident.headline(), step.id);
        let generation = super::freeze::request(
            tx,
            &scopes,
            Some(incident),
            Some(&reason),
            None,
            &Actor::system(),
            now,
        )
        .await?;
        let mode = match incident.drill {
            true => "DRILL freeze (evaluate mode, nothing blocked) requested for",
            false => "freeze requested for",
        };
        Ok(Fired::done(
            format!("{mode} {}", scopes.join(", ")),
            vec![settings.reconcile(generation, Some(incident))],
        ))
    }

    /// A post outside the room: to the drill route for a drill, and only where an adapter
    /// has the destination.
    fn fire_external(&self, incident: &Incident, to: Destination, text: &str, key: &str) -> Fired {
        let settings = self.runbooks();
        let to = match (incident.drill, to) {
            (false, to) => to,
            (true, Destination::Webhook(_)) => {
                match settings.and_then(|s| s.drill_webhook.clone()) {
                    Some(w) => Destination::Webhook(w),
                    None => {
                        return Fired::done(
                            "DRILL: not sent (no runbooks.drill_webhook)",
                            Vec::new(),
                        );
                    }
                }
            }
            (true, Destination::SlackChannel(_)) => {
                match settings.and_then(|s| s.drill_channel.clone()) {
                    Some(c) => Destination::SlackChannel(c),
                    None => {
                        return Fired::done(
                            "DRILL: not sent (no runbooks.drill_channel)",
                            Vec::new(),
                        );
                    }
                }
            }
        };
        let label = if incident.drill { "[DRILL] " } else { "" };
        let text = format!("{label}{}: {text}", incident.headline());
        let intent = Intent::External {
            to: to.clone(),
            text,
        };
        let effects = self
            .policy()
            .planners
            .plan_intent(&incident.id, &intent, key);
        let name = match &to {
            Destination::Webhook(w) => format!("webhook {w}"),
            Destination::SlackChannel(c) => format!("Slack channel {c}"),
        };
        match effects.is_empty() {
            true => Fired::failed(format!("{name} is not configured here")),
            false => Fired::done(format!("queued to {name}"), effects),
        }
    }

    /// Nudges a late step's owner, once.
    async fn nudge_step(&self, due: &DueStep, now: DateTime<Utc>) -> Result<bool, ServiceError> {
        let mut tx = self.begin().await?;
        let Some((incident, runbook)) = locked_runbook(&mut tx, due.number).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let open = runbook.step(&due.step_id).filter(|r| r.outcome.is_none());
        let Some(record) = open.filter(|_| incident.status.is_open()) else {
            tx.rollback().await?;
            return Ok(false);
        };
        if !tx.mark_nudged(&incident.id, &due.step_id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let step = &record.step;
        let target = format_offset(record.target_at - incident.declared_at);
        let (owner, who) = owner_of(&incident, &step.owner);
        let text = format!(
            "⏰ {who}: runbook step `{}` ({}) was due at {target} and is still open. Tick it with `/incident runbook done {}`, or `/incident runbook skip {} <why>`.",
            step.id, step.title, step.id, step.id
        );
        let key = format!("runbook-nudge:{}", step.id);
        let effects = self.policy().planners.plan_intent(
            &incident.id,
            &Intent::Nudge {
                owner,
                text: text.clone(),
            },
            &key,
        );
        let late = format!(
            "Runbook step `{}` ({}) is late (target {target}); nudged {who}",
            step.id, step.title
        );
        tx.append_timeline(&step_entry(&incident, &Actor::system(), now, late))
            .await?;
        let ids = tx.enqueue_effects(&effects).await?;
        tx.commit().await?;
        self.wake_worker(&ids);
        Ok(true)
    }

    /// `runbook done|skip <step>`: a person ends a step.
    pub(super) async fn end_step(
        &self,
        number: IncidentNumber,
        step_id: &str,
        outcome: StepOutcome,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let (incident, runbook) = locked_runbook(&mut tx, number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        if !incident.status.is_open() {
            return Err(UserError::AlreadyResolved.into());
        }
        let record = runbook
            .step(step_id)
            .ok_or_else(|| unknown_step(number, step_id, &runbook))?;
        if let (Some(outcome), Some(at)) = (record.outcome, record.finished_at) {
            return Err(already_ended(step_id, outcome, at - incident.declared_at).into());
        }
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
    pub(super) async fn start_step(
        &self,
        number: IncidentNumber,
        step_id: &str,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let (incident, runbook) = locked_runbook(&mut tx, number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        if !incident.status.is_open() {
            return Err(UserError::AlreadyResolved.into());
        }
        let record = runbook
            .step(step_id)
            .ok_or_else(|| unknown_step(number, step_id, &runbook))?;
        if let (Some(outcome), Some(at)) = (record.outcome, record.finished_at) {
            return Err(already_ended(step_id, outcome, at - incident.declared_at).into());
        }
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
    async fn record_end(
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

/// A step ending, with how and why.
struct EndedStep<'a> {
    step: &'a Step,
    outcome: StepOutcome,
    note: Option<&'a str>,
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
            }
            .not_before(at)
        })
        .collect()
}

/// Who a step's owner is on this incident: the role holder's identity (to mention), and
/// how to name them in words.
fn owner_of(incident: &Incident, owner: &Owner) -> (Option<String>, String) {
    let holder = match owner {
        Owner::Commander => incident.commander.clone(),
        Owner::Comms => incident
            .comms
            .clone()
            .or_else(|| incident.commander.clone()),
        Owner::Scribe => incident
            .scribe
            .clone()
            .or_else(|| incident.commander.clone()),
        Owner::Team(_) => None,
    };
    let words = match (&holder, owner) {
        (Some(_), o) => o.label(),
        (None, Owner::Team(_)) => owner.label(),
        (None, o) => format!("{} (unassigned)", o.label()),
    };
    (holder, words)
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
