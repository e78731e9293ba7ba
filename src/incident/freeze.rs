//! Merge freezes in the core: commands write the wanted state per scope, stamped with a new
//! generation, in the same transaction as their timeline entry, and queue one reconcile.
//! What GitHub actually has is the reconciler's business (`github::reconcile`); it always
//! works from the newest wanted state, so racing commands end in the last one's state.
//!
//! The core never builds the enforcing adapter's effects itself: it states a neutral
//! [`FreezeRequest`] and the adapter's [`FreezePlanner`] (GitHub's, wired in `app`) turns it
//! into a typed effect whose key comes from the content given here.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::command::FreezeVerb;
use super::error::{ServiceError, UserError};
use super::model::{Incident, IncidentId, IncidentNumber, Severity};
use super::permissions::Actor;
use super::reply::{Reply, ReplyBody};
use super::service::{IncidentService, Outcome};
use super::timeline::{EntryKind, NewEntry};
use crate::effects::NewEffect;
use crate::store::{Exemption, FreezeScope, Tx};

/// The freeze-related parts of the config the core needs.
#[derive(Clone)]
pub struct FreezeSettings {
    /// The configured scopes (`owner/repo`, `owner/*`); the default for `freeze`.
    pub scopes: Vec<String>,
    pub auto_freeze: Vec<Severity>,
    pub auto_unfreeze: bool,
    /// Turns freeze requests into the enforcing adapter's effects.
    pub planner: Arc<dyn FreezePlanner>,
}

/// What the core asks of whatever enforces a freeze, in neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreezeRequest {
    /// Make the enforcer match the wanted state as of `generation` (or newer).
    Reconcile {
        generation: i64,
        incident: Option<IncidentId>,
    },
    /// Let `repo#pr` merge despite the freeze of `generation`.
    Exempt {
        repo: String,
        pr: u64,
        allowed_by: String,
        reason: Option<String>,
        generation: i64,
        incident: Option<IncidentId>,
    },
    /// List the changes merged shortly before `incident` was declared.
    RecentChanges { incident: IncidentId },
}

/// The enforcing adapter's side of [`FreezeRequest`]. Must be pure: it runs inside the
/// command's transaction, and the same request must always give the same idempotency key.
pub trait FreezePlanner: Send + Sync {
    fn plan(&self, request: &FreezeRequest) -> NewEffect;
}

/// Writes the wanted state of `scopes` under a new generation and queues a reconcile.
pub async fn request(
    tx: &mut Tx,
    scopes: &[String],
    frozen: bool,
    incident: Option<&Incident>,
    reason: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let generation = tx.next_freeze_generation().await?;
    for scope in scopes {
        tx.set_freeze_scope(&FreezeScope {
            scope: scope.clone(),
            frozen,
            generation,
            incident_id: incident.map(|i| i.id.clone()),
            reason: reason.map(str::to_string),
            drill: incident.is_some_and(|i| i.drill),
            requested_by: actor.identity().to_string(),
            updated_at: now,
        })
        .await?;
    }
    let verb = if frozen {
        "Merge freeze requested"
    } else {
        "Merge freeze lift requested"
    };
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    tx.append_timeline(&NewEntry {
        incident_id: incident.map(|i| i.id.clone()),
        occurred_at: now,
        actor: actor.identity().to_string(),
        source: actor.source,
        kind: if frozen {
            EntryKind::FreezeRequested
        } else {
            EntryKind::UnfreezeRequested
        },
        text: format!(
            "{verb} on {} (generation {generation}){why}",
            scopes.join(", ")
        ),
    })
    .await?;
    Ok(generation)
}

impl FreezeSettings {
    fn reconcile(&self, generation: i64, incident: Option<&Incident>) -> NewEffect {
        self.planner.plan(&FreezeRequest::Reconcile {
            generation,
            incident: incident.map(|i| i.id.clone()),
        })
    }
}

impl IncidentService {
    /// A freeze verb, already authorized and cleaned; `target` is the incident the freeze
    /// belongs to, if any.
    pub(super) async fn freeze_command(
        &self,
        verb: FreezeVerb,
        target: Option<IncidentNumber>,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let Some(settings) = self.policy().freeze.clone() else {
            return Err(UserError::invalid(
                "Merge freezes need GitHub: set GITHUB_TOKEN (or a GitHub App) and [github] repos in the config.",
            )
            .into());
        };
        if let FreezeVerb::Status = verb {
            return self.freeze_status().await;
        }
        let incident = match target {
            Some(n) => Some(
                self.store()
                    .incident_by_number(n)
                    .await?
                    .ok_or(UserError::NotFound(n))?,
            ),
            None => None,
        };
        let now = self.now();
        let mut tx = self.begin().await?;
        let (text, effect) = match verb {
            FreezeVerb::Freeze { scopes, reason } => {
                let scopes = if scopes.is_empty() {
                    settings.scopes.clone()
                } else {
                    scopes
                };
                if scopes.is_empty() {
                    return Err(UserError::invalid("Name the repositories (`freeze owner/repo …`) or list them under [github] repos.").into());
                }
                let generation = request(
                    &mut tx,
                    &scopes,
                    true,
                    incident.as_ref(),
                    reason.as_deref(),
                    actor,
                    now,
                )
                .await?;
                let effect = settings.reconcile(generation, incident.as_ref());
                (
                    format!(
                        "Freezing merges on {} (generation {generation}); GitHub rulesets go first, then PR statuses.",
                        scopes.join(", ")
                    ),
                    effect,
                )
            }
            FreezeVerb::Unfreeze { scopes } => {
                let scopes = if scopes.is_empty() {
                    frozen_scopes(&mut tx, None).await?
                } else {
                    scopes
                };
                if scopes.is_empty() {
                    return Ok(Outcome {
                        reply: Reply::private("Nothing is frozen."),
                        effects: Vec::new(),
                    });
                }
                let generation =
                    request(&mut tx, &scopes, false, incident.as_ref(), None, actor, now).await?;
                let effect = settings.reconcile(generation, incident.as_ref());
                (
                    format!(
                        "Lifting the merge freeze on {} (generation {generation}).",
                        scopes.join(", ")
                    ),
                    effect,
                )
            }
            FreezeVerb::Exempt { repo, pr, reason } => {
                let request = ExemptRequest { repo, pr, reason };
                self.exempt(&mut tx, &settings, request, actor, now).await?
            }
            FreezeVerb::Status => unreachable!("answered above"),
        };
        let id = tx.enqueue_effect(&effect).await?;
        tx.commit().await?;
        self.wake_worker(&[id]);
        Ok(Outcome {
            reply: Reply::public(text),
            effects: vec![id],
        })
    }

    async fn exempt(
        &self,
        tx: &mut Tx,
        settings: &FreezeSettings,
        ExemptRequest { repo, pr, reason }: ExemptRequest,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, NewEffect)> {
        let pr_number = i64::try_from(pr).unwrap_or(i64::MAX);
        tx.add_exemption(&Exemption {
            repo: repo.clone(),
            pr_number,
            allowed_by: actor.identity().to_string(),
            reason: reason.clone(),
        })
        .await?;
        let why = reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let text = format!(
            "{repo}#{pr} exempted from the merge freeze by {}{why}",
            actor.name
        );
        let covering = covering_freeze(tx, &repo).await?;
        let incident = covering.as_ref().and_then(|s| s.incident_id.clone());
        tx.append_timeline(&NewEntry {
            incident_id: incident.clone(),
            occurred_at: now,
            actor: actor.identity().to_string(),
            source: actor.source,
            kind: EntryKind::FreezeExempted,
            text: text.clone(),
        })
        .await?;
        let effect = settings.planner.plan(&FreezeRequest::Exempt {
            repo,
            pr,
            allowed_by: actor.identity().to_string(),
            reason,
            generation: covering.map_or(0, |s| s.generation),
            incident,
        });
        Ok((format!("{text}."), effect))
    }

    async fn freeze_status(&self) -> Result<Outcome, ServiceError> {
        let scopes = self.store().freeze_scopes().await?;
        let targets = self.store().freeze_targets().await?;
        // The summary line and the per-target wording live with the reconciler that
        // records them.
        let text = crate::github::freeze::status_summary(&scopes, &targets);
        Ok(Outcome {
            reply: Reply::private(text).with_body(ReplyBody::Freeze { scopes, targets }),
            effects: Vec::new(),
        })
    }

    /// On declare: freeze the configured scopes if the severity calls for it.
    pub(super) async fn auto_freeze(
        &self,
        tx: &mut Tx,
        incident: &Incident,
        actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        let Some(settings) = &self.policy().freeze else {
            return Ok(Vec::new());
        };
        if !settings.auto_freeze.contains(&incident.severity) || settings.scopes.is_empty() {
            return Ok(Vec::new());
        }
        let reason = format!("{} declared", incident.headline());
        let generation = request(
            tx,
            &settings.scopes,
            true,
            Some(incident),
            Some(&reason),
            actor,
            self.now(),
        )
        .await?;
        let recent = settings.planner.plan(&FreezeRequest::RecentChanges {
            incident: incident.id.clone(),
        });
        Ok(vec![settings.reconcile(generation, Some(incident)), recent])
    }

    /// On resolve: lift what this incident froze, if configured to.
    pub(super) async fn auto_unfreeze(
        &self,
        tx: &mut Tx,
        incident: &Incident,
        actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        let Some(settings) = &self.policy().freeze else {
            return Ok(Vec::new());
        };
        if !settings.auto_unfreeze {
            return Ok(Vec::new());
        }
        let scopes = frozen_scopes(tx, Some(&incident.id)).await?;
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let generation = request(
            tx,
            &scopes,
            false,
            Some(incident),
            Some("incident resolved"),
            actor,
            self.now(),
        )
        .await?;
        Ok(vec![settings.reconcile(generation, Some(incident))])
    }
}

/// Scopes frozen now (by `incident`, if given).
async fn frozen_scopes(tx: &mut Tx, incident: Option<&IncidentId>) -> anyhow::Result<Vec<String>> {
    Ok(tx
        .freeze_scopes()
        .await?
        .into_iter()
        .filter(|s| s.frozen && incident.is_none_or(|i| s.incident_id.as_ref() == Some(i)))
        .map(|s| s.scope)
        .collect())
}

/// The newest freeze covering `repo` (exactly, or through `owner/*`): the incident that
/// timeline entries about it belong to, and the generation an exemption is from.
async fn covering_freeze(tx: &mut Tx, repo: &str) -> anyhow::Result<Option<FreezeScope>> {
    let owner = repo.split('/').next().unwrap_or_default();
    let wildcard = format!("{owner}/*");
    Ok(tx
        .freeze_scopes()
        .await?
        .into_iter()
        .filter(|s| s.frozen && (s.scope == repo || s.scope == wildcard))
        .max_by_key(|s| (s.incident_id.is_some(), s.generation)))
}

/// `freeze exempt <repo>#<pr> [--reason …]`, as parsed.
struct ExemptRequest {
    repo: String,
    pr: u64,
    reason: Option<String>,
}
