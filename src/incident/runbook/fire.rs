//! Firing an automatic step when it is due (its action as effects, a drill's in their dry-run
//! form) and nudging the owner of a late one, once.

use chrono::{DateTime, Utc};

use super::people::EndedStep;
use super::{locked_runbook, step_entry};
use crate::effects::NewEffect;
use crate::effects::planner::{Destination, Intent};
use crate::incident::error::ServiceError;
use crate::incident::model::Incident;
use crate::incident::permissions::Actor;
use crate::incident::service::IncidentService;
use crate::incident::timeline::format_offset;
use crate::runbook::{Action, Owner, Step};
use crate::store::{AttachedRunbook, DueStep, StepOutcome, StepRecord, Tx};

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
    /// Fires one automatic step, unless something else ended it first.
    pub(super) async fn fire_step(
        &self,
        due: &DueStep,
        now: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        let mut tx = self.begin().await?;
        let Some((incident, runbook, record)) = still_open(&mut tx, due).await? else {
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
        let generation = crate::incident::freeze::request(
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
    pub(super) async fn nudge_step(
        &self,
        due: &DueStep,
        now: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        let mut tx = self.begin().await?;
        let open = still_open(&mut tx, due).await?;
        let Some((incident, _, record)) = open.filter(|(i, ..)| i.status.is_open()) else {
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

/// The incident (row locked), its runbook and the due step, if the step is still open
/// (another replica, a retry or a person may have ended it since the sweep read it).
async fn still_open(
    tx: &mut Tx,
    due: &DueStep,
) -> anyhow::Result<Option<(Incident, AttachedRunbook, StepRecord)>> {
    let Some((incident, runbook)) = locked_runbook(tx, due.number).await? else {
        return Ok(None);
    };
    let record = runbook
        .step(&due.step_id)
        .filter(|r| r.outcome.is_none())
        .cloned();
    Ok(record.map(|r| (incident, runbook, r)))
}
