//! Merge freezes in the core: commands write the wanted state per scope, stamped with a new
//! generation, in the same transaction as their timeline entry, and queue one reconcile.
//! What GitHub actually has is the reconciler's business (`github::reconcile`); it always
//! works from the newest wanted state, so racing commands end in the last one's state.
//!
//! Whether a scope is wanted frozen is decided by its **holds** (issue 10): one per holder
//! (an incident, or a person for a manual freeze), each with a reason, a start and an
//! optional expiry. `freeze` places the holder's hold, `unfreeze` removes it (`--all`: every
//! hold), resolving an incident removes its own, and [`IncidentService::expire_holds`] ends
//! expired ones; each then rewrites the touched scopes' wanted state (frozen while any hold
//! remains) under a new generation. Every such transaction takes the generation counter's
//! row lock before it reads the holds, so concurrent ones never lose a hold.
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
use super::reply::Reply;
use super::service::{IncidentService, Outcome};
use super::timeline::{EntryKind, NewEntry};
use crate::effects::NewEffect;
use crate::store::{FreezeHold, FreezeScope, NewHold, Tx};

mod expiry;
mod release;
mod status;

use release::{release, remaining};

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
    /// Let `repo#pr` merge despite the freeze: the exemption's attempt `attempt` (a new
    /// one only once the previous ended, so its key tells a retry from a new request).
    Exempt {
        repo: String,
        pr: u64,
        allowed_by: String,
        reason: Option<String>,
        attempt: i64,
        incident: Option<IncidentId>,
    },
    /// List the changes merged shortly before `incident` was declared.
    RecentChanges { incident: IncidentId },
}

/// The enforcing adapter's side of [`FreezeRequest`]. Must be pure: it runs inside the
/// command's transaction, and the same request must always give the same idempotency key.
pub trait FreezePlanner: Send + Sync {
    fn plan(&self, request: &FreezeRequest) -> NewEffect;

    /// The effect kind a [`FreezeRequest::Reconcile`] becomes: a pending one's due time is
    /// when failing targets are tried next (`freeze status`).
    fn reconcile_kind(&self) -> &'static str;
}

/// The key a hold is stored under: the incident's id, or the person's identity.
fn holder_key(incident: Option<&Incident>, actor: &Actor) -> String {
    incident.map_or_else(|| actor.identity().to_string(), |i| i.id.0.clone())
}

/// `INC-3` or `alice`: who a hold belongs to, in a sentence.
fn holder_name(incident: Option<&Incident>, actor: &Actor) -> String {
    incident.map_or_else(|| actor.name.clone(), |i| i.number.to_string())
}

/// Places a hold on each of `scopes` (for `incident`, else for `actor` personally), then
/// writes the scopes' wanted state under a new generation with its timeline entry. Placing
/// a hold again renews its reason and expiry.
#[allow(clippy::too_many_arguments)]
pub async fn request(
    tx: &mut Tx,
    scopes: &[String],
    incident: Option<&Incident>,
    reason: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    // The counter's row lock comes first: freeze transactions take turns from here, so each
    // one reads the holds every earlier one committed.
    let generation = tx.next_freeze_generation().await?;
    let key = holder_key(incident, actor);
    let requested_by = actor.identity().to_string();
    for scope in scopes {
        tx.add_hold(&NewHold {
            scope,
            holder_key: &key,
            incident_id: incident.map(|i| &i.id),
            reason,
            drill: incident.is_some_and(|i| i.drill),
            requested_by: &requested_by,
            started_at: now,
            expires_at,
        })
        .await?;
    }
    write_wanted(tx, generation, scopes, incident, actor, now).await?;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    let until = expires_at
        .map(|t| format!(" until {}", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    tx.append_timeline(&NewEntry {
        incident_id: incident.map(|i| i.id.clone()),
        occurred_at: now,
        actor: actor.identity().to_string(),
        source: actor.source,
        kind: EntryKind::FreezeRequested,
        text: format!(
            "Merge freeze requested on {} (generation {generation}), held by {}{until}{why}",
            scopes.join(", "),
            holder_name(incident, actor),
        ),
    })
    .await?;
    Ok(generation)
}

/// Writes each scope's wanted state from its holds under a new generation: frozen while any
/// hold remains; the incident timeline entries about it belong to is the newest holding
/// incident's (or `acting`'s, once nothing holds it); a drill only while every hold is.
async fn write_wanted(
    tx: &mut Tx,
    generation: i64,
    scopes: &[String],
    acting: Option<&Incident>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let holds = tx.freeze_holds().await?;
    for scope in scopes {
        let on: Vec<&FreezeHold> = holds.iter().filter(|h| &h.scope == scope).collect();
        let newest_incident = on.iter().rev().find_map(|h| h.incident_id.clone());
        let frozen = !on.is_empty();
        tx.set_freeze_scope(&FreezeScope {
            scope: scope.clone(),
            frozen,
            generation,
            incident_id: if frozen {
                newest_incident
            } else {
                acting.map(|i| i.id.clone())
            },
            reason: on.last().and_then(|h| h.reason.clone()),
            drill: if frozen {
                on.iter().all(|h| h.drill)
            } else {
                acting.is_some_and(|i| i.drill)
            },
            requested_by: actor.identity().to_string(),
            updated_at: now,
            frozen_since: None,
        })
        .await?;
    }
    Ok(())
}

/// Every scope spelling already in use: the configured ones, then those with a stored state.
async fn known_scopes(tx: &mut Tx, settings: &FreezeSettings) -> anyhow::Result<Vec<String>> {
    let stored = tx.freeze_scopes().await?.into_iter().map(|s| s.scope);
    Ok(settings.scopes.iter().cloned().chain(stored).collect())
}

/// GitHub's names are case-insensitive, so `ACME/Web` and `acme/web` are one scope: each
/// name takes the spelling already in use (`known`, configured first), or lower case, and
/// a name given twice counts once. Without this, one repository could carry two scopes
/// whose reconcile passes undo each other.
pub fn canonical_scopes(scopes: &[String], known: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        let spelled = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(scope))
            .cloned()
            .unwrap_or_else(|| scope.to_ascii_lowercase());
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&spelled)) {
            out.push(spelled);
        }
    }
    out
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl FreezeSettings {
    pub(super) fn reconcile(&self, generation: i64, incident: Option<&Incident>) -> NewEffect {
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
            // A hold past its expiry ends now, even when no `serve` has swept it yet: the
            // status never shows an expired hold as holding.
            self.expire_holds().await?;
            return self.freeze_status(&settings).await;
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
            FreezeVerb::Freeze {
                scopes,
                reason,
                expires,
            } => {
                let scopes = if scopes.is_empty() {
                    settings.scopes.clone()
                } else {
                    let known = known_scopes(&mut tx, &settings).await?;
                    canonical_scopes(&scopes, &known)
                };
                if scopes.is_empty() {
                    return Err(UserError::invalid("Name the repositories (`freeze owner/repo …`) or list them under [github] repos.").into());
                }
                let expires_at = expires
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| now + d);
                let generation = request(
                    &mut tx,
                    &scopes,
                    incident.as_ref(),
                    reason.as_deref(),
                    expires_at,
                    actor,
                    now,
                )
                .await?;
                let effect = settings.reconcile(generation, incident.as_ref());
                let until = expires_at
                    .map(|t| format!(" until {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default();
                (
                    format!(
                        "Freezing merges on {} (generation {generation}), held by {}{until}; GitHub rulesets go first, then PR statuses.",
                        scopes.join(", "),
                        holder_name(incident.as_ref(), actor),
                    ),
                    effect,
                )
            }
            FreezeVerb::Unfreeze { scopes, all } => {
                let key = holder_key(incident.as_ref(), actor);
                let holder = (!all).then_some(key.as_str());
                let scopes = if scopes.is_empty() {
                    held_scopes(&mut tx, holder).await?
                } else {
                    let known = known_scopes(&mut tx, &settings).await?;
                    canonical_scopes(&scopes, &known)
                };
                if scopes.is_empty() {
                    let text = if all || tx.freeze_holds().await?.is_empty() {
                        "Nothing is frozen.".to_string()
                    } else {
                        let whose = format!("{}'s hold", holder_name(incident.as_ref(), actor));
                        let held = held_scopes(&mut tx, None).await?;
                        let holds = tx.freeze_holds().await?;
                        format!(
                            "{whose} is on nothing; {}. `unfreeze --all` lifts every hold.",
                            remaining(&holds, &held)
                        )
                    };
                    return Ok(Outcome {
                        reply: Reply::private(text),
                        effects: Vec::new(),
                    });
                }
                let whose = if all {
                    "Every hold".to_string()
                } else {
                    format!("{}'s hold", holder_name(incident.as_ref(), actor))
                };
                let released = release(
                    &mut tx,
                    &scopes,
                    holder,
                    &whose,
                    "",
                    incident.as_ref(),
                    actor,
                    now,
                )
                .await?;
                let Some(generation) = released.generation else {
                    tx.rollback().await?;
                    return Ok(Outcome {
                        reply: Reply::private(released.text),
                        effects: Vec::new(),
                    });
                };
                let effect = settings.reconcile(generation, incident.as_ref());
                (released.text, effect)
            }
            FreezeVerb::Exempt { repo, pr, reason } => {
                let request = super::exemption::ExemptRequest { repo, pr, reason };
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
            Some(incident),
            Some(&reason),
            None,
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
        let key = holder_key(Some(incident), actor);
        let scopes = held_scopes(tx, Some(&key)).await?;
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let whose = format!("{}'s hold", incident.number);
        let released = release(
            tx,
            &scopes,
            Some(&key),
            &whose,
            " (incident resolved)",
            Some(incident),
            actor,
            self.now(),
        )
        .await?;
        Ok(released
            .generation
            .map(|g| settings.reconcile(g, Some(incident)))
            .into_iter()
            .collect())
    }
}

/// Scopes with a hold (by `holder`, if given).
async fn held_scopes(tx: &mut Tx, holder: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut scopes: Vec<String> = tx
        .freeze_holds()
        .await?
        .into_iter()
        .filter(|h| holder.is_none_or(|k| h.holder_key == k))
        .map(|h| h.scope)
        .collect();
    scopes.dedup();
    Ok(scopes)
}
