//! Merge freezes in the core: commands write the wanted state per scope, stamped with a new
//! generation, in the same transaction as their timeline entry, and queue one reconcile.
//! What GitHub actually has is the reconciler's business (`github::reconcile`); it always
//! works from the newest wanted state, so racing commands end in the last one's state.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::command::Command;
use super::error::{ServiceError, UserError};
use super::model::{Incident, IncidentId, Severity};
use super::permissions::{Action, Actor};
use super::reply::{Reply, ReplyBody};
use super::service::{IncidentService, Outcome};
use super::timeline::{EntryKind, NewEntry};
use crate::effects::NewEffect;
use crate::store::{Exemption, FreezeScope, Tx};

pub const RECONCILE_EFFECT: &str = "github.reconcile";
pub const RECENT_CHANGES_EFFECT: &str = "github.recent_changes";
pub const EXEMPT_EFFECT: &str = "github.exempt";

/// The freeze-related parts of the config the core needs.
#[derive(Debug, Clone, Default)]
pub struct FreezeSettings {
    /// The configured scopes (`owner/repo`, `owner/*`); the default for `freeze`.
    pub scopes: Vec<String>,
    pub auto_freeze: Vec<Severity>,
    pub auto_unfreeze: bool,
}

/// The effect that makes GitHub match the wanted state. All reconciles share one FIFO
/// group, so they never run at the same time, here or on another replica.
pub fn reconcile_effect(generation: i64, incident: Option<&IncidentId>) -> NewEffect {
    NewEffect {
        incident_id: incident.cloned(),
        kind: RECONCILE_EFFECT.into(),
        payload: json!({ "generation": generation }),
        idempotency_key: format!("{RECONCILE_EFFECT}:gen{generation}"),
        ordering_key: Some("github:reconcile".into()),
        audience: None,
    }
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
) -> anyhow::Result<(i64, NewEffect)> {
    let generation = tx.next_freeze_generation().await?;
    for scope in scopes {
        tx.set_freeze_scope(&FreezeScope {
            scope: scope.clone(),
            frozen,
            generation,
            incident_id: incident.map(|i| i.id.clone()),
            reason: reason.map(str::to_string),
            drill: incident.is_some_and(|i| i.drill),
            requested_by: actor.name.clone(),
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
        actor: actor.name.clone(),
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
    Ok((
        generation,
        reconcile_effect(generation, incident.map(|i| &i.id)),
    ))
}

impl IncidentService {
    pub(super) async fn freeze_command(
        &self,
        cmd: Command,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let Some(settings) = self.policy().freeze.clone() else {
            return Err(UserError::invalid(
                "Merge freezes need GitHub: set GITHUB_TOKEN (or a GitHub App) and [github] repos in the config.",
            )
            .into());
        };
        if let Command::FreezeStatus = cmd {
            return self.freeze_status().await;
        }
        if !self.policy().permissions.allows(actor, Action::Freeze) {
            let incident = match cmd.target() {
                Some(n) => self.store().incident_by_number(n).await?.map(|i| i.id),
                None => None,
            };
            return Err(self
                .refuse(Action::Freeze, actor, incident.as_ref(), cmd.verb())
                .await);
        }
        let incident = match cmd.target() {
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
        let (text, effect) = match cmd {
            Command::Freeze { scopes, reason, .. } => {
                let scopes = if scopes.is_empty() {
                    settings.scopes.clone()
                } else {
                    scopes
                };
                if scopes.is_empty() {
                    return Err(UserError::invalid("Name the repositories (`freeze owner/repo …`) or list them under [github] repos.").into());
                }
                let (generation, effect) = request(
                    &mut tx,
                    &scopes,
                    true,
                    incident.as_ref(),
                    reason.as_deref(),
                    actor,
                    now,
                )
                .await?;
                (
                    format!(
                        "Freezing merges on {} (generation {generation}); GitHub rulesets go first, then PR statuses.",
                        scopes.join(", ")
                    ),
                    effect,
                )
            }
            Command::Unfreeze { scopes, .. } => {
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
                let (generation, effect) =
                    request(&mut tx, &scopes, false, incident.as_ref(), None, actor, now).await?;
                (
                    format!(
                        "Lifting the merge freeze on {} (generation {generation}).",
                        scopes.join(", ")
                    ),
                    effect,
                )
            }
            Command::FreezeExempt { repo, pr, reason } => {
                self.exempt(&mut tx, repo, pr, reason, actor, now).await?
            }
            other => {
                return Err(UserError::invalid(format!(
                    "`{}` is not a freeze command.",
                    other.verb()
                ))
                .into());
            }
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
        repo: String,
        pr: u64,
        reason: Option<String>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, NewEffect)> {
        let pr_number = i64::try_from(pr).unwrap_or(i64::MAX);
        tx.add_exemption(&Exemption {
            repo: repo.clone(),
            pr_number,
            allowed_by: actor.name.clone(),
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
        let incident = frozen_by_incident(tx, &repo).await?;
        tx.append_timeline(&NewEntry {
            incident_id: incident.clone(),
            occurred_at: now,
            actor: actor.name.clone(),
            source: actor.source,
            kind: EntryKind::FreezeExempted,
            text: text.clone(),
        })
        .await?;
        let effect = NewEffect {
            incident_id: incident,
            kind: EXEMPT_EFFECT.into(),
            payload: json!({ "repo": repo, "pr": pr, "allowed_by": actor.name, "reason": reason }),
            idempotency_key: format!("{EXEMPT_EFFECT}:{repo}#{pr}:{}", uuid::Uuid::new_v4()),
            ordering_key: Some("github:reconcile".into()),
            audience: None,
        };
        Ok((format!("{text}."), effect))
    }

    async fn freeze_status(&self) -> Result<Outcome, ServiceError> {
        let scopes = self.store().freeze_scopes().await?;
        let targets = self.store().freeze_targets().await?;
        let frozen: Vec<&str> = scopes
            .iter()
            .filter(|s| s.frozen)
            .map(|s| s.scope.as_str())
            .collect();
        let active = targets
            .iter()
            .filter(|t| t.desired == "frozen" && (t.actual == "active" || t.actual == "evaluate"))
            .count();
        let wanted = targets.iter().filter(|t| t.desired == "frozen").count();
        let text = if frozen.is_empty() {
            "No merge freeze is wanted.".to_string()
        } else {
            format!(
                "Frozen: {}. Ruleset in place on {active}/{wanted} targets.",
                frozen.join(", ")
            )
        };
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
        let (_, reconcile) = request(
            tx,
            &settings.scopes,
            true,
            Some(incident),
            Some(&reason),
            actor,
            self.now(),
        )
        .await?;
        let recent = NewEffect {
            incident_id: Some(incident.id.clone()),
            kind: RECENT_CHANGES_EFFECT.into(),
            payload: json!({ "incident_id": incident.id.0 }),
            idempotency_key: format!("{RECENT_CHANGES_EFFECT}:{}", incident.id),
            ordering_key: None,
            audience: None,
        };
        Ok(vec![reconcile, recent])
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
        let (_, reconcile) = request(
            tx,
            &scopes,
            false,
            Some(incident),
            Some("incident resolved"),
            actor,
            self.now(),
        )
        .await?;
        Ok(vec![reconcile])
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

/// The incident whose freeze covers `repo`, for timeline entries about it.
async fn frozen_by_incident(tx: &mut Tx, repo: &str) -> anyhow::Result<Option<IncidentId>> {
    let owner = repo.split('/').next().unwrap_or_default();
    Ok(tx
        .freeze_scopes()
        .await?
        .into_iter()
        .filter(|s| s.frozen && (s.scope == repo || s.scope == format!("{owner}/*")))
        .find_map(|s| s.incident_id))
}
