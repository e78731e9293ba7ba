//! Effect planners turn what the core decided into each adapter's own effects. The core
//! speaks only in neutral terms: an [`IncidentEvent`] (declared, updated, resolved, …) or an
//! [`Intent`] raised outside a state change (report a freeze's progress). Each adapter that
//! is switched on (webhook notices, Slack, later Discord) registers a planner; the service
//! runs every planner inside the command's transaction, so effects are queued atomically
//! with the change, and no adapter needs to know another exists.

use std::sync::Arc;

use super::NewEffect;
use crate::incident::model::{Incident, IncidentId};
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;
pub use crate::runbook::Destination;

/// Something to say in an incident's room, outside a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// A message that is edited in place as work progresses; one per `key` per incident.
    Progress { key: String, text: String },
    /// A plain message in the incident's room.
    RoomPost { text: String },
    /// Publish the post-mortem where post-mortems are kept, at this `revision` of its
    /// written material (a content digest, so a double submit publishes once).
    PublishPostmortem { revision: String },
    /// The runbook's checklist in the incident's room, edited in place as steps end. `text`
    /// is its plain form, for platforms that show it without buttons.
    Checklist { text: String },
    /// A word to a person in the incident's room: `owner` (a stored identity such as
    /// `slack:U024BE7LH`) is mentioned where the platform can, then `text`.
    Nudge { owner: Option<String>, text: String },
    /// A post outside the incident's room (a customer notice, a page, a report), to a named
    /// webhook or a chat channel. Only the adapter that has the destination plans it.
    External { to: Destination, text: String },
}

pub trait EffectPlanner: Send + Sync {
    /// The effects for `event`, which `actor` caused; `incident` is the state after it.
    /// Runs inside the transaction and may be called again on retry, so the only thing it
    /// may change outside is keyed by the effects' idempotency keys (a booked rate slot,
    /// which planning again finds), and given back by [`discard`](Self::discard).
    fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>>;

    /// The effects for `intent` about `incident`. `key` identifies this occurrence (built
    /// from content by the caller), so planning it twice queues one effect per adapter.
    fn plan_intent(&self, _incident: &IncidentId, _intent: &Intent, _key: &str) -> Vec<NewEffect> {
        Vec::new()
    }

    /// A post to `to` about no incident (a stale-runbook report): the adapter that has the
    /// destination plans it, once per `key`.
    fn plan_external(&self, _to: &Destination, _text: &str, _key: &str) -> Vec<NewEffect> {
        Vec::new()
    }

    /// `plan` was planned but will not be queued (the transaction failed, or the command
    /// turned out a duplicate): give back whatever planning it booked.
    fn discard(&self, _plan: &[NewEffect]) {}
}

/// Every planner that is switched on.
#[derive(Clone, Default)]
pub struct Planners(pub Vec<Arc<dyn EffectPlanner>>);

impl Planners {
    pub fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        let mut all = Vec::new();
        for planner in &self.0 {
            all.extend(planner.plan(incident, event, actor)?);
        }
        Ok(all)
    }

    pub fn plan_intent(&self, incident: &IncidentId, intent: &Intent, key: &str) -> Vec<NewEffect> {
        self.0
            .iter()
            .flat_map(|p| p.plan_intent(incident, intent, key))
            .collect()
    }

    /// See [`EffectPlanner::discard`].
    pub fn discard(&self, plan: &[NewEffect]) {
        for planner in &self.0 {
            planner.discard(plan);
        }
    }

    pub fn plan_external(&self, to: &Destination, text: &str, key: &str) -> Vec<NewEffect> {
        self.0
            .iter()
            .flat_map(|p| p.plan_external(to, text, key))
            .collect()
    }
}
