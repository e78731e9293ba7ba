//! `IncidentService`: the one place commands are applied. Every edge (Slack, Discord, CLI)
//! calls [`IncidentService::apply`] (or `apply_checked`), the front door: it checks the
//! permission the verb needs, cleans every piece of free text, and hands the command to its
//! verb group (`command::{declare, change, freeze, postmortem, query}`). A change then, in a
//! single transaction, locks and re-reads the incident, decides with the pure
//! [`rules`](super::rules), writes the new state with a compare-and-set on `version`, appends
//! the timeline, and enqueues every side effect. The caller gets a neutral [`Reply`] as soon
//! as that transaction commits.

mod declare;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use tokio::sync::Notify;

use super::clock::{Clock, SystemClock};
use super::command::{Change, Command, Verb};
use super::error::{ServiceError, UserError};
use super::model::{Incident, IncidentId, IncidentNumber, Status};
use super::permissions::{Action, Actor, Permissions};
use super::queued::Queued;
use super::reply::{Reply, ReplyBody};
use super::rules::{self, Decision, UpdateCadence};
use super::timeline::{EntryKind, NewEntry};
use crate::effects::NewEffect;
use crate::effects::planner::Planners;
use crate::store::{Delivery, Store, Tx};

/// Everything the service needs to know from the config.
pub struct Policy {
    pub permissions: Permissions,
    /// Turn each change into side effects (webhook notices, chat posts, …).
    pub planners: Planners,
    /// Present when GitHub is configured.
    pub freeze: Option<super::freeze::FreezeSettings>,
    /// `server.public_url`, for links to post-mortem pages.
    pub public_url: Option<String>,
    /// `[postmortem] templates_dir`.
    pub postmortem_templates: Option<std::path::PathBuf>,
    /// Whether post-mortems are published as pull requests (`[postmortem.github]`).
    pub publish_postmortems: bool,
    pub cadence: Box<dyn UpdateCadence + Send + Sync>,
    /// Present when `[runbooks] dir` is set.
    pub runbooks: Option<super::runbook::RunbookSettings>,
}

/// The result of a command: the reply, and the effects it enqueued (for the CLI to drain).
#[derive(Debug)]
pub struct Outcome {
    pub reply: Reply,
    pub effects: Vec<i64>,
}

impl Outcome {
    pub(crate) fn reply(reply: Reply) -> Self {
        Self {
            reply,
            effects: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub struct IncidentService {
    store: Store,
    policy: Arc<Policy>,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
    /// The inbound delivery being handled, recorded in the same transaction as its effects.
    delivery: Option<Delivery>,
}

impl IncidentService {
    /// `wake` is notified after a commit that enqueued effects, so an in-process worker
    /// starts on them at once instead of at its next poll.
    pub fn new(store: Store, policy: Policy, wake: Arc<Notify>) -> Self {
        Self {
            store,
            policy: Arc::new(policy),
            wake,
            clock: Arc::new(SystemClock),
            delivery: None,
        }
    }

    /// This service, handling `delivery`: whatever it writes records the delivery in the same
    /// transaction, and a delivery seen before fails with [`ServiceError::Duplicate`].
    pub fn for_delivery(&self, delivery: Delivery) -> Self {
        Self {
            delivery: Some(delivery),
            ..self.clone()
        }
    }

    /// Starts a write transaction, recording the delivery being handled, if any. (`declare`
    /// records its delivery with the incident it declares: see `Tx::declaration_number`.)
    pub(super) async fn begin(&self) -> Result<Tx, ServiceError> {
        let mut tx = self.store.begin().await?;
        if let Some(delivery) = &self.delivery {
            if !tx.record_delivery(delivery).await? {
                tx.rollback().await?;
                return Err(ServiceError::Duplicate);
            }
        }
        Ok(tx)
    }

    /// Replaces the clock (tests put events at exact offsets with a manual clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn apply(&self, cmd: Command, actor: &Actor) -> Result<Outcome, ServiceError> {
        self.apply_checked(cmd, actor, None).await
    }

    /// Like [`apply`](Self::apply), but fails with a conflict unless the incident is still at
    /// `expected_version`: for buttons and forms that were rendered from an earlier read.
    ///
    /// This is the front door every surface comes through, so what is checked here is
    /// checked for all of them, once: the permission the verb needs (a refusal is recorded
    /// on the incident's timeline, or the audit log), then every piece of free text through
    /// the text pipeline and the times against the clock ([`Command::prepare`]). Only then
    /// is the command handed to its verb group's `apply`. Every command that gets here is
    /// counted in `firebreak_commands_total`, by platform, verb and outcome.
    pub async fn apply_checked(
        &self,
        cmd: Command,
        actor: &Actor,
        expected_version: Option<i64>,
    ) -> Result<Outcome, ServiceError> {
        let (platform, verb) = (actor.source.as_str(), cmd.name());
        let result = self.check_and_apply(cmd, actor, expected_version).await;
        crate::telemetry::command(platform, verb, &result);
        result
    }

    /// [`apply_checked`](Self::apply_checked), uncounted.
    async fn check_and_apply(
        &self,
        cmd: Command,
        actor: &Actor,
        expected_version: Option<i64>,
    ) -> Result<Outcome, ServiceError> {
        if let Some(action) = cmd.permission() {
            if !self.policy.permissions.allows(actor, action) {
                let incident = match cmd.target {
                    Some(n) => self.store.incident_by_number(n).await?.map(|i| i.id),
                    None => None,
                };
                self.authorize(action, actor, incident.as_ref(), cmd.name())
                    .await?;
            }
        }
        let name = cmd.name();
        let Command { target, verb } = cmd.prepare(self.clock.now())?;
        match verb {
            Verb::Query(query) => query.apply(self, target).await,
            Verb::Declare(declare) => declare.apply(self, actor).await,
            Verb::Change(change) => {
                let number = require_target(target, name)?;
                change.apply(self, number, actor, expected_version).await
            }
            Verb::Freeze(freeze) => freeze.apply(self, target, actor).await,
            Verb::Postmortem(pm) => {
                let number = require_target(target, name)?;
                pm.apply(self, number, actor).await
            }
            Verb::Runbook(rb) => {
                let number = require_target(target, name)?;
                rb.apply(self, number, actor).await
            }
        }
    }

    /// A change to an open incident, already authorized and cleaned.
    pub(super) async fn change(
        &self,
        number: IncidentNumber,
        change: Change,
        actor: &Actor,
        expected_version: Option<i64>,
    ) -> Result<Outcome, ServiceError> {
        let now = self.clock.now();
        let mut tx = self.begin().await?;
        let current = tx
            .incident_for_update(number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        if let Some(seen) = expected_version.filter(|v| *v != current.version) {
            return Err(UserError::Conflict {
                number,
                seen,
                current: current.version,
            }
            .into());
        }
        let decision = rules::decide(&current, &change, actor, now, self.policy.cadence.as_ref())?;
        let (after, queued) = self
            .write_decision(tx, &current, decision.clone(), actor, now)
            .await?;
        let text = format!("{}{}", decision.reply, queued.notice_summary());
        Ok(Outcome {
            reply: incident_reply(text, after),
            effects: queued.ids,
        })
    }

    /// Queues an effect that is not part of a state change (opening a form, an ephemeral
    /// answer, capturing a pinned message) and wakes the worker.
    pub async fn enqueue(&self, effect: &NewEffect) -> Result<i64, ServiceError> {
        let ids = self.enqueue_all(std::slice::from_ref(effect)).await?;
        Ok(ids[0])
    }

    /// Queues several effects in one transaction (with the delivery that caused them).
    pub async fn enqueue_all(&self, effects: &[NewEffect]) -> Result<Vec<i64>, ServiceError> {
        let mut tx = self.begin().await?;
        let mut ids = Vec::with_capacity(effects.len());
        for effect in effects {
            ids.push(tx.enqueue_effect(effect).await?);
        }
        tx.commit().await?;
        self.wake_worker(&ids);
        Ok(ids)
    }

    /// Nudges every incident whose promised status update is late, once per promise.
    /// Safe to run on several replicas at once: each incident is re-checked under its row
    /// lock and the reminder is a compare-and-set, so only one replica sends it.
    pub async fn remind_overdue(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let mut sent = 0;
        for candidate in self.store.overdue_incidents(now).await? {
            let mut tx = self.begin().await?;
            let Some(current) = tx.incident_for_update(candidate.number).await? else {
                continue;
            };
            let Some(decision) = rules::overdue(&current, now) else {
                tx.rollback().await?;
                continue;
            };
            self.write_decision(tx, &current, decision, &Actor::system(), now)
                .await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Writes a decision in `tx`: compare-and-set, effects from every planner, timeline
    /// entries, commit. Returns the incident as it now is and the queued effect ids.
    async fn write_decision(
        &self,
        mut tx: Tx,
        current: &Incident,
        decision: Decision,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(Incident, Queued), ServiceError> {
        let mut effects = Vec::new();
        let mut after = current.clone();
        if let Some(mut next) = decision.incident {
            if !tx.compare_and_set_incident(&next, current.version).await? {
                let stored = self.store.incident_by_number(current.number).await?;
                return Err(UserError::Conflict {
                    number: current.number,
                    seen: current.version,
                    current: stored.map_or(current.version, |i| i.version),
                }
                .into());
            }
            next.version = current.version + 1;
            if let Some(due) = next
                .next_update_due
                .filter(|d| Some(*d) != current.next_update_due)
            {
                tx.add_promise(&next.id, now, due).await?;
            }
            if let Some(event) = &decision.event {
                effects = self.policy.planners.plan(&next, event, actor)?;
            }
            if next.status == Status::Resolved && current.status != Status::Resolved {
                tx.skip_open_steps(&next.id, now).await?;
                effects.extend(self.auto_unfreeze(&mut tx, &next, actor).await?);
            }
            after = next;
        }
        for (kind, text) in decision.entries {
            tx.append_timeline(&entry(&after, actor, now, kind, text))
                .await?;
        }
        // Queued with the commit: on SQLite one hand-off.
        let queued = Queued {
            ids: tx.commit_enqueuing(&effects).await?,
            audiences: effects.iter().filter_map(|e| e.audience).collect(),
        };
        self.wake_worker(&queued.ids);
        Ok((after, queued))
    }

    /// The front door's gate, for what an edge does outside a command (a :pushpin: reaction
    /// captures a message into the timeline): allowed, or refused and recorded.
    pub async fn authorize(
        &self,
        action: Action,
        actor: &Actor,
        incident: Option<&IncidentId>,
        what: &str,
    ) -> Result<(), ServiceError> {
        if self.policy.permissions.allows(actor, action) {
            return Ok(());
        }
        Err(self.refuse(action, actor, incident, what).await)
    }

    /// Records a refusal on the timeline (or the audit log, outside an incident) and returns
    /// the error to show. The refusal is recorded even though the command changed nothing:
    /// who tried what during an incident is part of its story.
    pub(super) async fn refuse(
        &self,
        action: Action,
        actor: &Actor,
        incident: Option<&IncidentId>,
        verb: &str,
    ) -> ServiceError {
        let e = NewEntry {
            incident_id: incident.cloned(),
            occurred_at: self.clock.now(),
            actor: actor.identity().to_string(),
            source: actor.source,
            kind: EntryKind::Refused,
            text: format!(
                "Refused `{verb}` for {} (not on [permissions] {})",
                actor.identity(),
                action.as_str()
            ),
        };
        if let Err(err) = self.store.append_timeline(&e).await {
            tracing::error!(error = %format!("{err:#}"), "recording a refused command failed");
        }
        UserError::Forbidden {
            action: action.describe(),
            list: action.as_str(),
        }
        .into()
    }

    pub(super) fn wake_worker(&self, effects: &[i64]) {
        if !effects.is_empty() {
            self.wake.notify_one();
        }
    }
}

fn require_target(target: Option<IncidentNumber>, verb: &str) -> Result<IncidentNumber, UserError> {
    target.ok_or_else(|| UserError::NeedsIncident(verb.to_string()))
}

fn entry(
    incident: &Incident,
    actor: &Actor,
    at: DateTime<Utc>,
    kind: EntryKind,
    text: String,
) -> NewEntry {
    NewEntry {
        incident_id: Some(incident.id.clone()),
        occurred_at: at,
        actor: actor.identity().to_string(),
        source: actor.source,
        kind,
        text,
    }
}

fn incident_reply(text: String, incident: Incident) -> Reply {
    Reply::public(text).with_body(ReplyBody::Incident {
        incident: Box::new(incident),
        timeline: Vec::new(),
    })
}
