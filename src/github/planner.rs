//! The GitHub adapter's planners: [`FreezeRequests`] turns the core's neutral freeze requests
//! into [`GitHubEffect`](super::effect::GitHubEffect)s, and [`PublishPlanner`] publishes the
//! post-mortem when an incident is resolved. Both are pure, as planners must be.

use super::effect;
use crate::effects::NewEffect;
use crate::effects::planner::{EffectPlanner, Intent};
use crate::incident::freeze::{FreezePlanner, FreezeRequest};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;

/// GitHub enforces merge freezes.
pub struct FreezeRequests;

impl FreezePlanner for FreezeRequests {
    fn plan(&self, request: &FreezeRequest) -> NewEffect {
        match request {
            FreezeRequest::Reconcile {
                generation,
                incident,
            } => effect::reconcile(*generation, incident.as_ref()),
            FreezeRequest::Exempt {
                repo,
                pr,
                allowed_by,
                reason,
                attempt,
                incident,
            } => effect::exempt(
                incident.as_ref(),
                repo,
                *pr,
                allowed_by,
                reason.as_deref(),
                *attempt,
            ),
            FreezeRequest::RecentChanges { incident } => effect::recent_changes(incident),
        }
    }

    fn reconcile_kind(&self) -> &'static str {
        effect::RECONCILE
    }
}

/// Publishes the post-mortem on resolve, once per incident version.
pub struct PublishPlanner;

impl EffectPlanner for PublishPlanner {
    fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        _actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        Ok(match event {
            IncidentEvent::Resolved => vec![effect::publish_postmortem(
                &incident.id,
                &format!("v{}", incident.version),
            )],
            _ => Vec::new(),
        })
    }

    fn plan_intent(&self, incident: &IncidentId, intent: &Intent, _key: &str) -> Vec<NewEffect> {
        match intent {
            Intent::PublishPostmortem { revision } => {
                vec![effect::publish_postmortem(incident, revision)]
            }
            _ => Vec::new(),
        }
    }
}
