//! The reconciler. A reconcile reads the wanted state from the database and GitHub's actual
//! rulesets just before acting, then:
//!
//! 1. puts every ruleset in place (create, update, delete), all targets in parallel under
//!    the pacer — enforcement first;
//! 2. only then writes the `firebreak/merge-freeze` statuses on open pull requests
//!    ([`super::statuses`]), so a huge PR backlog never delays the rulesets.
//!
//! One target never blocks another. A permanent failure on one (a 404 on a repository, a
//! 422 on its ruleset) is recorded on that target, reported once on the timeline and named
//! in the summary, and the others carry on. A transient one (5xx, 429, a rate limit) is
//! retried by failing the reconcile retryably once every other target is done; the retry
//! redoes nothing already in place.
//!
//! Reconciles share one FIFO group in the queue, so they never overlap; on Postgres an
//! advisory lock also keeps replicas' periodic runs apart. If a newer freeze or unfreeze is
//! requested mid-run, the run stops before its next write and leaves the newer one to act:
//! an older plan is never applied over a newer one.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::client::{GhError, RulesetScope};
use super::freeze::{self, RULESET_NAME, RulesetAction, Wanted};
use super::handler::{GitHubEffects, db_error};
use crate::effects::Effect;
use crate::effects::handler::EffectError;
use crate::incident::model::IncidentId;
use crate::incident::timeline::EntryKind;
use crate::store::{FreezeScope, FreezeTarget};

mod outcome;

pub(in crate::github) use outcome::{Applied, Leftovers, Outcome};
use outcome::{counts, describe, sort_org_failures, sort_target_failures, summary};

/// Targets worked on at once; the pacer and the client's semaphore bound the real rate.
const PARALLEL: usize = 16;

/// What one reconcile pass works from, read once at its start.
pub(super) struct Pass<'a> {
    pub effect: &'a Effect,
    pub generation: i64,
    /// The incident behind each wanted scope.
    pub incidents: BTreeMap<String, Option<IncidentId>>,
    /// Each target as last recorded.
    previous: BTreeMap<String, FreezeTarget>,
    /// Who holds each scope: an incident, or `None` for a person's manual hold.
    holders: BTreeMap<String, Vec<Option<IncidentId>>>,
    /// Whether this pass changed or newly reported anything: a periodic pass that did not
    /// records nothing (issue 10: the audit log holds changes only).
    changed: std::sync::atomic::AtomicBool,
    /// Set once this pass has said on the timeline that a drill enforces nothing.
    drill_told: std::sync::atomic::AtomicBool,
}

impl Pass<'_> {
    /// The newest generation GitHub confirmed on `label` before this pass.
    fn confirmed(&self, label: &str) -> i64 {
        self.previous.get(label).map_or(0, |p| p.applied_generation)
    }

    /// Where a repair of `scope` is recorded: the timeline of every incident holding it,
    /// and the audit log (`None`) when a person holds it too. With no hold left, the
    /// scope's own incident (or the audit log).
    fn repair_logs(&self, scope: &str) -> Vec<Option<IncidentId>> {
        match self.holders.get(scope) {
            Some(on) if !on.is_empty() => on.clone(),
            _ => vec![self.incidents.get(scope).cloned().flatten()],
        }
    }
}

impl GitHubEffects {
    pub(super) async fn reconcile(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let lock = self.store.reconcile_lock().await.map_err(db_error)?;
        let Some(lock) = lock else {
            return Err(EffectError::Retryable {
                reason: "another replica is reconciling".into(),
                retry_after: Some(Duration::from_secs(5)),
            });
        };
        let result = self.reconcile_locked(effect).await;
        lock.release().await;
        result
    }

    async fn reconcile_locked(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let generation = self.store.freeze_generation().await.map_err(db_error)?;
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        if scopes.is_empty() {
            return Ok(None);
        }
        let pass = self.pass(effect, generation, &scopes).await?;
        let (mut later, mut failed) = (Leftovers::default(), Vec::new());
        // With org rulesets the org's repositories are for statuses only: listed (once per
        // pass) after the rulesets are in place, so enforcement never waits for them.
        let expand = freeze::orgs_to_expand(&scopes);
        let org_rulesets = self.config.org_rulesets;
        let before = if org_rulesets { &[][..] } else { &expand[..] };
        let mut orgs = self.org_repos(before).await;
        let targets = freeze::targets(&scopes, &self.config, &orgs.repos);
        let done = self.apply_rulesets(&pass, targets).await?;
        if self.superseded(generation).await? {
            return Ok(Some(format!(
                "Reconcile for generation {generation} stopped: a newer freeze request takes over"
            )));
        }
        if org_rulesets {
            orgs = self.org_repos(&expand).await;
        }
        sort_org_failures(&orgs.failed, &mut later, &mut failed);
        sort_target_failures(&done, &mut later, &mut failed);
        let counts = counts(&done);
        let step = counts.replace(' ', "");
        self.progress(
            effect,
            &format!("applied:{step}"),
            format!("🧊 Merge freeze: {counts}; writing PR statuses…"),
        )
        .await?;
        let statuses = self
            .write_statuses(&pass, &done, &orgs.repos, &mut later, &mut failed)
            .await?;
        if !later.is_empty() {
            let text =
                format!("🧊 Merge freeze: {counts}; GitHub did not answer for some, retrying…");
            self.progress(effect, &format!("retrying:{step}"), text)
                .await?;
            return Err(later.into_error());
        }
        let summary = summary(generation, &counts, statuses, &failed);
        self.progress(effect, "done", format!("🧊 {summary}."))
            .await?;
        let changed = statuses > 0 || pass.changed.load(std::sync::atomic::Ordering::Relaxed);
        Ok(changed.then_some(summary))
    }

    async fn pass<'a>(
        &self,
        effect: &'a Effect,
        generation: i64,
        scopes: &[FreezeScope],
    ) -> Result<Pass<'a>, EffectError> {
        let previous = self.store.freeze_targets().await.map_err(db_error)?;
        let mut holders: BTreeMap<String, Vec<Option<IncidentId>>> = BTreeMap::new();
        for h in self.store.freeze_holds().await.map_err(db_error)? {
            let on = holders.entry(h.scope).or_default();
            if !on.contains(&h.incident_id) {
                on.push(h.incident_id);
            }
        }
        Ok(Pass {
            effect,
            generation,
            incidents: scopes
                .iter()
                .map(|s| (s.scope.clone(), s.incident_id.clone()))
                .collect(),
            previous: previous
                .into_iter()
                .map(|t| (t.target.clone(), t))
                .collect(),
            holders,
            changed: Default::default(),
            drill_told: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Phase 1: every target's ruleset, in parallel, with progress reported as they finish.
    /// Only database errors end it early.
    async fn apply_rulesets(
        &self,
        pass: &Pass<'_>,
        targets: BTreeMap<RulesetScope, Wanted>,
    ) -> Result<Vec<Applied>, EffectError> {
        let total = targets.len();
        let step = (total / 4).max(1);
        let mut applying = stream::iter(targets)
            .map(|(target, wanted)| self.apply_ruleset(pass, target, wanted).boxed())
            .buffer_unordered(PARALLEL);
        let mut done = Vec::new();
        while let Some(applied) = applying.next().await {
            done.push(applied?);
            if done.len() % step == 0 && done.len() < total {
                // Not awaited here: while this loop waits, the stream's other futures are
                // not polled, and one of them may hold the SQLite writer this post needs.
                self.progress_in_background(
                    pass.effect,
                    &format!("applying:{}/{total}", done.len()),
                    format!(
                        "🧊 Merge freeze: {} ({}/{total} targets done)…",
                        counts(&done),
                        done.len()
                    ),
                );
            }
        }
        Ok(done)
    }

    async fn apply_ruleset(
        &self,
        pass: &Pass<'_>,
        target: RulesetScope,
        wanted: Wanted,
    ) -> Result<Applied, EffectError> {
        let own = freeze::own_actor(&self.config, self.client.app_id());
        let body = freeze::ruleset_body(&target, &wanted, &self.config, own.as_ref());
        // Check at the moment of use: read what GitHub has right now.
        let existing = match self.client.rulesets(&target).await {
            Ok(list) => {
                let known = pass
                    .previous
                    .get(&target.label())
                    .and_then(|p| p.ruleset_id);
                freeze::our_ruleset(list, known).map(|r| (r.id, r.enforcement))
            }
            Err(e) => return self.target_failed(pass, target, wanted, e).await,
        };
        if wanted.frozen && wanted.drill && !self.client.evaluate_available() {
            return self
                .drill_without_evaluate(pass, target, wanted, existing)
                .await;
        }
        // The summary has no rules or conditions: compare the whole ruleset.
        let drifted = match &existing {
            Some((id, _)) if wanted.frozen => match self.client.ruleset(&target, *id).await {
                Ok(actual) => super::drift::drift(&body, &actual),
                Err(e) => return self.target_failed(pass, target, wanted, e).await,
            },
            _ => Vec::new(),
        };
        let action = freeze::ruleset_action(
            &wanted,
            existing.as_ref().map(|(id, e)| (*id, e.as_deref())),
            &body,
            &drifted,
        );
        if !drifted.is_empty() {
            // `freeze status` shows it drifted until the repair below goes through.
            let id = existing.as_ref().map(|(id, _)| *id);
            let note = format!("drifted: {}", drifted.join("; "));
            let label = target.label();
            let confirmed = pass.confirmed(&label);
            self.record(&label, &wanted, "drifted", id, confirmed, Some(note))
                .await?;
        }
        if action != RulesetAction::Nothing && self.superseded(pass.generation).await? {
            return Ok(Applied {
                target,
                wanted,
                outcome: Outcome::Done,
            });
        }
        match self.perform(&target, &action, &body).await {
            Ok((status, id)) => {
                let id = id.or(existing.map(|(id, _)| id));
                self.target_applied(pass, &target, &wanted, &action, status, id, &drifted)
                    .await?;
                Ok(Applied {
                    target,
                    wanted,
                    outcome: Outcome::Done,
                })
            }
            Err(e)
                if wanted.drill && e.status() == Some(422) && body["enforcement"] == "evaluate" =>
            {
                // The probe: GitHub has no `evaluate` here (it needs Enterprise).
                tracing::info!(error = %e, "GitHub refused evaluate enforcement; drills post statuses only");
                self.client.evaluate_unavailable();
                // A real freeze's ruleset this drill took over must come off: a drill
                // blocks nothing.
                self.drill_without_evaluate(pass, target, wanted, existing)
                    .await
            }
            Err(e) => {
                let applied = self.target_failed(pass, target, wanted, e).await?;
                if let (false, Outcome::Later(e)) = (drifted.is_empty(), &applied.outcome) {
                    let note = format!("drifted: {}", drifted.join("; "));
                    let label = applied.target.label();
                    self.record_failure(&label, &applied.wanted, e, Some(&note))
                        .await?;
                }
                Ok(applied)
            }
        }
    }

    /// A drill where GitHub has no `evaluate` enforcement: no ruleset at all (one left over
    /// is removed), DRILL-labelled statuses only, and the timeline says so once per pass.
    async fn drill_without_evaluate(
        &self,
        pass: &Pass<'_>,
        target: RulesetScope,
        wanted: Wanted,
        existing: Option<(u64, Option<String>)>,
    ) -> Result<Applied, EffectError> {
        let label = target.label();
        if let Some((id, _)) = existing {
            if let Err(e) = self.client.delete_ruleset(&target, id).await {
                return self.target_failed(pass, target, wanted, e).await;
            }
        }
        let was = pass.previous.get(&label).map(|p| p.actual.as_str());
        self.record(
            &label,
            &wanted,
            "statuses-only",
            None,
            wanted.generation,
            None,
        )
        .await?;
        let first = !pass
            .drill_told
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if first && was != Some("statuses-only") {
            let incident = pass.incidents.get(&wanted.scope).cloned().flatten();
            let text = "Drill: GitHub does not offer `evaluate` rulesets here (GitHub Enterprise only), so this drill enforces nothing; pull requests get DRILL-labelled statuses only".to_string();
            self.timeline(incident, EntryKind::FreezeApplied, text)
                .await?;
        }
        Ok(Applied {
            target,
            wanted,
            outcome: Outcome::Done,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn target_applied(
        &self,
        pass: &Pass<'_>,
        target: &RulesetScope,
        wanted: &Wanted,
        action: &RulesetAction,
        status: u16,
        id: Option<u64>,
        drifted: &[String],
    ) -> Result<(), EffectError> {
        let label = target.label();
        let actual = if wanted.frozen {
            freeze::enforcement(wanted)
        } else {
            "absent"
        };
        let was_active = pass
            .previous
            .get(&label)
            .is_some_and(|p| p.desired == "frozen" && p.actual != "absent" && p.actual != "error");
        self.record(&label, wanted, actual, id, wanted.generation, None)
            .await?;
        let restored = wanted.frozen && was_active && *action == RulesetAction::Create;
        let described = if drifted.is_empty() {
            describe(&label, action, status, wanted.frozen && was_active)
        } else {
            Some(format!(
                "{label}: ruleset {RULESET_NAME} was changed by hand and was repaired (GitHub {status}): {}",
                drifted.join("; ")
            ))
        };
        if let Some(text) = described {
            pass.changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            // A repair concerns every holder: each incident's timeline and, for a person's
            // hold, the audit log.
            let logs = if restored || !drifted.is_empty() {
                pass.repair_logs(&wanted.scope)
            } else {
                vec![pass.incidents.get(&wanted.scope).cloned().flatten()]
            };
            for incident in logs {
                self.timeline(incident, EntryKind::FreezeApplied, text.clone())
                    .await?;
            }
        }
        Ok(())
    }

    /// Records a target GitHub refused. A permanent failure is reported on the timeline,
    /// unless the target already shows the same error (a periodic reconcile meeting it
    /// again); a transient one keeps what was last verified and notes the error.
    async fn target_failed(
        &self,
        pass: &Pass<'_>,
        target: RulesetScope,
        wanted: Wanted,
        e: GhError,
    ) -> Result<Applied, EffectError> {
        let label = target.label();
        let previous = pass.previous.get(&label);
        self.record_failure(&label, &wanted, &e, None).await?;
        if e.is_retryable() {
            return Ok(Applied {
                target,
                wanted,
                outcome: Outcome::Later(e),
            });
        }
        let error = e.to_string();
        let reported = previous
            .is_some_and(|p| p.actual == "error" && p.last_error.as_deref() == Some(&error));
        if !reported {
            pass.changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let incident = pass.incidents.get(&wanted.scope).cloned().flatten();
            let text = format!("{label}: could not apply the freeze: {e}");
            self.timeline(incident, EntryKind::FreezeApplied, text)
                .await?;
        }
        Ok(Applied {
            target,
            wanted,
            outcome: Outcome::Failed,
        })
    }

    async fn perform(
        &self,
        target: &RulesetScope,
        action: &RulesetAction,
        body: &Value,
    ) -> Result<(u16, Option<u64>), GhError> {
        match action {
            RulesetAction::Create => self
                .client
                .create_ruleset(target, body)
                .await
                .map(|(s, id)| (s, Some(id))),
            RulesetAction::Update(id) => self
                .client
                .update_ruleset(target, *id, body)
                .await
                .map(|s| (s, Some(*id))),
            RulesetAction::Delete(id) => self
                .client
                .delete_ruleset(target, *id)
                .await
                .map(|s| (s, None)),
            RulesetAction::Nothing => Ok((200, None)),
        }
    }
}

/// The wanted scope covering `repo` (exact, or its org's `owner/*`) that decides its
/// status: the newest, except that a drill never outranks a real freeze
/// ([`freeze::overrides`]).
pub fn covering_scope<'a>(scopes: &'a [FreezeScope], repo: &str) -> Option<&'a FreezeScope> {
    // GitHub's owner and repository names are case-insensitive: `Acme/API` is `acme/api`.
    let owner = repo.split('/').next().unwrap_or_default();
    let wildcard = format!("{owner}/*");
    scopes
        .iter()
        .filter(|s| s.scope.eq_ignore_ascii_case(repo) || s.scope.eq_ignore_ascii_case(&wildcard))
        .fold(None, |best: Option<&FreezeScope>, s| match best {
            Some(b) if !freeze::scope_overrides(s, b) => Some(b),
            _ => Some(s),
        })
}
