//! `declare`'s transaction: the incident, its first promise and timeline entries, the runbook
//! and the automatic freeze, and every effect, written together under one `INC-n`.

use super::{IncidentService, Outcome, entry, incident_reply};
use crate::effects::NewEffect;
use crate::incident::command::Declare;
use crate::incident::error::ServiceError;
use crate::incident::model::{Incident, IncidentId, Status};
use crate::incident::permissions::Actor;
use crate::incident::queued::Queued;
use crate::incident::rules::{IncidentEvent, due_text};
use crate::incident::timeline::EntryKind;
use crate::runbook::Runbook;
use crate::store::{Numbering, Tx, is_stale_incident_number};

impl IncidentService {
    /// `declare`, already authorized and cleaned. On SQLite it predicts its `INC-n`, so the
    /// whole declaration is one hand-off to the writer; when the prediction was wrong (another
    /// process declared, or this delivery is a retry) nothing was written, and it declares
    /// again, counting (see [`Numbering`]), under the same incident ID (the first try wrote
    /// nothing), so its effects are planned again under the same keys.
    pub(in crate::incident) async fn declare(
        &self,
        declare: Declare,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let id = IncidentId::new();
        match self
            .declare_numbered(declare.clone(), actor, id.clone(), Numbering::Predict)
            .await
        {
            Err(ServiceError::Internal(e)) if is_stale_incident_number(&e) => {
                tracing::debug!("a predicted incident number was stale; declaring again");
                self.declare_numbered(declare, actor, id, Numbering::Count)
                    .await
            }
            outcome => outcome,
        }
    }

    async fn declare_numbered(
        &self,
        declare: Declare,
        actor: &Actor,
        id: IncidentId,
        numbering: Numbering,
    ) -> Result<Outcome, ServiceError> {
        let Declare {
            severity,
            title,
            drill,
            started_at,
            detected_at,
            description,
            runbook,
        } = declare;
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let number = tx
            .declaration_number(self.delivery.as_ref(), &id, numbering)
            .await?;
        let Some(number) = number else {
            tx.rollback().await?;
            return Err(ServiceError::Duplicate);
        };
        let due = now
            + chrono::Duration::from_std(self.policy.cadence.cadence(severity)).unwrap_or_default();
        let incident = Incident {
            id,
            number,
            title,
            severity,
            status: Status::Investigating,
            drill,
            started_at,
            detected_at,
            declared_at: now,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            commander: None,
            comms: None,
            scribe: None,
            summary: None,
            last_update_at: None,
            next_update_due: Some(due),
            reminded_due: None,
            declared_by: actor.identity().to_string(),
            version: 1,
        };
        let runbook = self.runbook_for(&incident, runbook.as_deref())?;
        tx.insert_incident(&incident).await?;
        tx.add_promise(&incident.id, now, due).await?;
        let drill_note = if drill { " (drill)" } else { "" };
        let text = format!("Declared {severity}{drill_note}: {}", incident.title);
        tx.append_timeline(&entry(&incident, actor, now, EntryKind::Declared, text))
            .await?;
        if let Some(note) = description {
            tx.append_timeline(&entry(&incident, actor, now, EntryKind::Note, note))
                .await?;
        }
        let mut effects = self
            .policy
            .planners
            .plan(&incident, &IncidentEvent::Declared, actor)?;
        let committed = self
            .queue_with_commit(tx, &incident, actor, runbook.as_deref(), &mut effects)
            .await;
        let ids = committed.inspect_err(|_| self.policy.planners.discard(&effects))?;
        let queued = Queued::of(&effects, ids);
        self.wake_worker(&queued.ids);
        let attached = runbook.map_or_else(String::new, |rb| {
            format!(" Runbook {} attached ({} steps).", rb.name, rb.steps.len())
        });
        let reply = format!(
            "{} is declared. Status investigating; commander unassigned (`ack` to take it). Next update due by {}.{}{attached}",
            incident.headline(),
            due_text(due, incident.declared_at),
            queued.notice_summary(),
        );
        Ok(Outcome {
            reply: incident_reply(reply, incident),
            effects: queued.ids,
        })
    }

    /// The runbook and the automatic freeze, then the commit with every effect queued: the
    /// notices first, then the freeze, with the runbook's wake-ups and its checklist. On
    /// failure nothing was queued, and the caller gives back what planning booked.
    async fn queue_with_commit(
        &self,
        mut tx: Tx,
        incident: &Incident,
        actor: &Actor,
        runbook: Option<&Runbook>,
        effects: &mut Vec<NewEffect>,
    ) -> anyhow::Result<Vec<i64>> {
        if let Some(rb) = runbook {
            effects.extend(self.attach_runbook(&mut tx, incident, rb).await?);
        }
        effects.extend(self.auto_freeze(&mut tx, incident, actor).await?);
        tx.commit_enqueuing(effects).await
    }
}
