//! Effect planners turn an incident change into the side effects it needs: webhook notices,
//! Slack channel posts and card edits, and so on. The service runs every planner inside the
//! command's transaction, so the effects are queued atomically with the change.

use super::NewEffect;
use crate::incident::model::Incident;
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;

pub trait EffectPlanner: Send + Sync {
    /// The effects for `event`, which `actor` caused; `incident` is the state after it.
    /// Must be pure: it runs inside the transaction and may be called again on retry.
    fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>>;
}
