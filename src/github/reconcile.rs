//! The reconciler and the other GitHub effects. A reconcile reads the wanted state from the
//! database and GitHub's actual rulesets just before acting, then:
//!
//! 1. puts every ruleset in place (create, update, delete), all targets in parallel under
//!    the pacer — enforcement first;
//! 2. only then writes the `firebreak/merge-freeze` statuses on open pull requests, so a
//!    huge PR backlog never delays the rulesets.
//!
//! Reconciles share one FIFO group in the queue, so they never overlap; on Postgres an
//! advisory lock also keeps replicas' periodic runs apart. If a newer freeze or unfreeze is
//! requested mid-run, the run stops before its next write and leaves the newer one to act:
//! an older plan is never applied over a newer one.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use futures::FutureExt;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::client::{GhError, GitHubClient, RulesetScope};
use super::config::GitHubConfig;
use super::freeze::{self, RULESET_NAME, RulesetAction, STATUS_CONTEXT, Wanted};
use crate::effects::handler::{EffectError, EffectHandler};
use crate::effects::{Effect, NewEffect};
use crate::incident::freeze::{EXEMPT_EFFECT, RECENT_CHANGES_EFFECT, RECONCILE_EFFECT};
use crate::incident::model::IncidentId;
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::store::{FreezeScope, FreezeTarget, Store};

pub const PR_STATUS_EFFECT: &str = "github.pr_status";
const KINDS: &[&str] = &[
    RECONCILE_EFFECT,
    RECENT_CHANGES_EFFECT,
    EXEMPT_EFFECT,
    PR_STATUS_EFFECT,
];
/// Targets worked on at once; the pacer and the client's semaphore bound the real rate.
const PARALLEL: usize = 16;

pub struct GitHubEffects {
    pub client: Arc<GitHubClient>,
    pub store: Store,
    pub config: GitHubConfig,
    /// Whether to echo summaries into incident channels on Slack.
    pub slack: bool,
}

#[async_trait]
impl EffectHandler for GitHubEffects {
    fn kinds(&self) -> &'static [&'static str] {
        KINDS
    }

    fn target(&self, _effect: &Effect) -> String {
        "github".into()
    }

    /// A freeze of hundreds of repositories is paced over minutes by design.
    fn max_duration(&self, _effect: &Effect) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(3600))
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        match effect.kind.as_str() {
            RECONCILE_EFFECT => self.reconcile(effect).await,
            RECENT_CHANGES_EFFECT => self.recent_changes(effect).await,
            EXEMPT_EFFECT => self.exempt(effect).await,
            PR_STATUS_EFFECT => self.pr_status(effect).await,
            other => Err(EffectError::permanent(format!(
                "unknown GitHub effect {other}"
            ))),
        }
    }
}

/// How one target's ruleset step went.
struct Applied {
    target: RulesetScope,
    wanted: Wanted,
    ok: bool,
}

impl GitHubEffects {
    async fn reconcile(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let lock = self.store.reconcile_lock().await.map_err(db_error)?;
        let Some(lock) = lock else {
            return Err(EffectError::Retryable {
                reason: "another replica is reconciling".into(),
                retry_after: Some(std::time::Duration::from_secs(5)),
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
        let org_repos = self
            .org_repos(&freeze::orgs_to_expand(&scopes, &self.config))
            .await?;
        let targets = freeze::targets(&scopes, &self.config, &org_repos);
        let incidents: BTreeMap<String, Option<IncidentId>> = scopes
            .iter()
            .map(|s| (s.scope.clone(), s.incident_id.clone()))
            .collect();
        let previous: BTreeMap<String, FreezeTarget> = self
            .store
            .freeze_targets()
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|t| (t.target.clone(), t))
            .collect();

        // Phase 1: rulesets everywhere, before any status.
        let total = targets.len();
        let step = (total / 4).max(1);
        let mut applying = stream::iter(targets.clone())
            .map(|(target, wanted)| {
                self.apply_ruleset(target, wanted, generation, &incidents, &previous)
                    .boxed()
            })
            .buffer_unordered(PARALLEL);
        let mut done = Vec::new();
        while let Some(applied) = applying.next().await {
            done.push(applied?);
            if done.len() % step == 0 && done.len() < total {
                let active = done.iter().filter(|a| a.ok && a.wanted.frozen).count();
                // Not awaited here: while this loop waits, the stream's other futures are
                // not polled, and one of them may hold the SQLite writer this post needs.
                self.progress_in_background(
                    effect,
                    format!("🧊 Merge freeze: ruleset active on {active}/{total} targets…"),
                );
            }
        }
        let in_place = done.iter().filter(|a| a.ok && a.wanted.frozen).count();
        let frozen_total = done.iter().filter(|a| a.wanted.frozen).count();
        if self.superseded(generation).await? {
            return Ok(Some(format!(
                "Reconcile for generation {generation} stopped: a newer freeze request takes over"
            )));
        }
        self.progress(effect, &format!("🧊 Merge freeze: ruleset active on {in_place}/{frozen_total} targets; writing PR statuses…")).await?;

        // Phase 2: statuses on open pull requests.
        let repos = self.status_repos(&done, &org_repos);
        let written: Vec<Result<usize, EffectError>> = stream::iter(repos)
            .map(|(repo, wanted)| {
                self.sync_statuses(repo, wanted, generation, &incidents)
                    .boxed()
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let mut statuses = 0;
        for w in written {
            statuses += w?;
        }
        let failed = done.iter().filter(|a| !a.ok).count();
        let mut summary = format!(
            "Merge freeze reconciled (generation {generation}): ruleset active on {in_place}/{frozen_total} targets, {statuses} PR statuses written"
        );
        if failed > 0 {
            let names: Vec<String> = done
                .iter()
                .filter(|a| !a.ok)
                .map(|a| a.target.label())
                .collect();
            summary.push_str(&format!("; {failed} failed: {}", names.join(", ")));
        }
        self.progress(effect, &format!("🧊 {summary}.")).await?;
        Ok(Some(summary))
    }

    async fn apply_ruleset(
        &self,
        target: RulesetScope,
        wanted: Wanted,
        generation: i64,
        incidents: &BTreeMap<String, Option<IncidentId>>,
        previous: &BTreeMap<String, FreezeTarget>,
    ) -> Result<Applied, EffectError> {
        let label = target.label();
        let body = freeze::ruleset_body(&target, &wanted, &self.config);
        // Check at the moment of use: read what GitHub has right now.
        let result = match self.client.rulesets(&target).await {
            Ok(list) => {
                let existing = list.iter().find(|r| r.name == RULESET_NAME);
                let action = freeze::ruleset_action(
                    &wanted,
                    existing.map(|r| (r.id, r.enforcement.as_deref())),
                    &body,
                );
                if action != RulesetAction::Nothing && self.superseded(generation).await? {
                    return Ok(Applied {
                        target,
                        wanted,
                        ok: true,
                    });
                }
                self.perform(&target, &action, &body)
                    .await
                    .map(|(status, id)| (action, status, id.or(existing.map(|r| r.id))))
            }
            Err(e) => Err(e),
        };
        let incident = incidents.get(&wanted.scope).cloned().flatten();
        let was_active = previous
            .get(&label)
            .is_some_and(|p| p.desired == "frozen" && p.actual != "absent" && p.actual != "error");
        match result {
            Ok((action, status, id)) => {
                let actual = if wanted.frozen {
                    freeze::enforcement(&wanted)
                } else {
                    "absent"
                };
                self.record(&label, &wanted, actual, id, None).await?;
                if let Some(text) = describe(&label, &action, status, wanted.frozen && was_active) {
                    self.timeline(incident, EntryKind::FreezeApplied, text)
                        .await?;
                }
                Ok(Applied {
                    target,
                    wanted,
                    ok: true,
                })
            }
            Err(e) if is_retryable(&e) => Err(e.into()),
            Err(e) => {
                self.record(&label, &wanted, "error", None, Some(e.to_string()))
                    .await?;
                self.timeline(
                    incident,
                    EntryKind::FreezeApplied,
                    format!("{label}: could not apply the freeze: {e}"),
                )
                .await?;
                Ok(Applied {
                    target,
                    wanted,
                    ok: false,
                })
            }
        }
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

    /// The repositories whose pull requests need statuses, with what they should show.
    fn status_repos(
        &self,
        done: &[Applied],
        org_repos: &BTreeMap<String, Vec<String>>,
    ) -> Vec<(String, Wanted)> {
        let mut out = Vec::new();
        for a in done.iter().filter(|a| a.ok) {
            match &a.target {
                RulesetScope::Repo(r) => out.push((r.clone(), a.wanted.clone())),
                RulesetScope::Org(o) => {
                    out.extend(
                        org_repos
                            .get(o)
                            .into_iter()
                            .flatten()
                            .map(|r| (r.clone(), a.wanted.clone())),
                    );
                }
            }
        }
        out
    }

    async fn sync_statuses(
        &self,
        repo: String,
        wanted: Wanted,
        generation: i64,
        incidents: &BTreeMap<String, Option<IncidentId>>,
    ) -> Result<usize, EffectError> {
        let exemptions = self.store.exemptions(&repo).await.map_err(db_error)?;
        let incident = match incidents.get(&wanted.scope).cloned().flatten() {
            Some(id) => self
                .store
                .incident_by_id(&id)
                .await
                .map_err(db_error)?
                .map(|i| i.number.to_string()),
            None => None,
        };
        let mut jobs: Vec<(String, u64, String, String)> = Vec::new();
        if wanted.frozen {
            for branch in self.branches(&repo).await? {
                for pr in self
                    .client
                    .open_pulls(&repo, &branch)
                    .await
                    .map_err(EffectError::from)?
                {
                    let exempt = exemptions.iter().find(|e| e.pr_number == pr.number as i64);
                    let state = freeze::pr_status(true, exempt.is_some());
                    let text = freeze::status_description(
                        &wanted,
                        incident.as_deref(),
                        exempt.map(|e| e.allowed_by.as_str()),
                    );
                    jobs.push((pr.head.sha, pr.number, state.to_string(), text));
                }
            }
        } else {
            for (sha, pr) in self
                .store
                .pr_statuses_in_state(&repo, "failure")
                .await
                .map_err(db_error)?
            {
                jobs.push((
                    sha,
                    pr as u64,
                    "success".to_string(),
                    freeze::status_description(&wanted, None, None),
                ));
            }
        }
        let results: Vec<Result<bool, EffectError>> = stream::iter(jobs)
            .map(|(sha, pr, state, text)| {
                self.set_status(&repo, sha, pr, state, text, generation)
                    .boxed()
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut written = 0;
        for r in results {
            written += usize::from(r?);
        }
        Ok(written)
    }

    /// Writes one status unless the commit already shows it. Returns whether it wrote.
    pub(super) async fn set_status(
        &self,
        repo: &str,
        sha: String,
        pr: u64,
        state: String,
        text: String,
        generation: i64,
    ) -> Result<bool, EffectError> {
        let state = state.as_str();
        let current = self.store.pr_status(repo, &sha).await.map_err(db_error)?;
        if current.as_ref().is_some_and(|(s, _)| s == state) {
            return Ok(false);
        }
        if self.superseded(generation).await? {
            return Ok(false);
        }
        self.client
            .create_status(repo, &sha, state, &text, STATUS_CONTEXT)
            .await?;
        self.store
            .set_pr_status(repo, &sha, pr, state, generation)
            .await
            .map_err(db_error)?;
        Ok(true)
    }

    async fn branches(&self, repo: &str) -> Result<Vec<String>, EffectError> {
        if !self.config.branches.is_empty() {
            return Ok(self.config.branches.clone());
        }
        Ok(vec![self.client.repo(repo).await?.default_branch])
    }

    pub(super) async fn org_repos(
        &self,
        orgs: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, EffectError> {
        let mut out = BTreeMap::new();
        for org in orgs {
            let repos = self.client.org_repos(org).await?;
            out.insert(
                org.clone(),
                repos
                    .into_iter()
                    .filter(|r| !r.archived)
                    .map(|r| r.full_name)
                    .collect(),
            );
        }
        Ok(out)
    }

    /// True when a newer freeze or unfreeze was requested after this run started.
    async fn superseded(&self, generation: i64) -> Result<bool, EffectError> {
        Ok(self.store.freeze_generation().await.map_err(db_error)? > generation)
    }

    async fn record(
        &self,
        label: &str,
        wanted: &Wanted,
        actual: &str,
        id: Option<u64>,
        error: Option<String>,
    ) -> Result<(), EffectError> {
        let target = FreezeTarget {
            target: label.to_string(),
            scope: wanted.scope.clone(),
            desired: if wanted.frozen { "frozen" } else { "unfrozen" }.into(),
            actual: actual.into(),
            ruleset_id: id.and_then(|i| i64::try_from(i).ok()),
            applied_generation: wanted.generation,
            verified_at: Utc::now().timestamp_millis(),
            last_error: error,
        };
        self.store.record_target(&target).await.map_err(db_error)?;
        Ok(())
    }

    async fn timeline(
        &self,
        incident: Option<IncidentId>,
        kind: EntryKind,
        text: String,
    ) -> Result<(), EffectError> {
        let entry = NewEntry {
            incident_id: incident,
            occurred_at: Utc::now(),
            actor: "firebreak".into(),
            source: Source::Github,
            kind,
            text,
        };
        self.store.append_timeline(&entry).await.map_err(db_error)
    }

    /// Posts a line in the incident's chat channels (through their own queued effects).
    pub(super) async fn tell_incidents(
        &self,
        effect: &Effect,
        text: &str,
    ) -> Result<(), EffectError> {
        self.to_chat(
            effect,
            crate::chat::slack::planner::CHANNEL_POST,
            json!({ "text": text }),
        )
        .await
    }

    fn progress_in_background(&self, effect: &Effect, text: String) {
        let Some(post) = self.chat_effect(
            effect,
            crate::chat::slack::planner::PROGRESS,
            json!({ "text": text, "key": "freeze" }),
        ) else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.enqueue_one(&post).await {
                tracing::warn!(error = %format!("{e:#}"), "queueing a freeze progress update failed");
            }
        });
    }

    /// Updates the incident channel's freeze progress message (posted once, then edited).
    async fn progress(&self, effect: &Effect, text: &str) -> Result<(), EffectError> {
        self.to_chat(
            effect,
            crate::chat::slack::planner::PROGRESS,
            json!({ "text": text, "key": "freeze" }),
        )
        .await
    }

    async fn to_chat(
        &self,
        effect: &Effect,
        kind: &str,
        payload: Value,
    ) -> Result<(), EffectError> {
        if let Some(post) = self.chat_effect(effect, kind, payload) {
            self.store.enqueue_one(&post).await.map_err(db_error)?;
        }
        Ok(())
    }

    /// A message for the incident's Slack channel, queued behind the channel's creation.
    fn chat_effect(&self, effect: &Effect, kind: &str, mut payload: Value) -> Option<NewEffect> {
        let id = effect.incident_id.as_ref().filter(|_| self.slack)?;
        payload["incident_id"] = json!(id.0);
        Some(NewEffect {
            incident_id: Some(id.clone()),
            kind: kind.into(),
            payload,
            idempotency_key: format!("{kind}:{}:{}", effect.id, uuid::Uuid::new_v4()),
            ordering_key: Some(format!("slack:{id}:channel")),
            audience: None,
        })
    }
}

/// The newest wanted scope covering `repo` (exact, or its org's `owner/*`).
pub fn covering_scope<'a>(scopes: &'a [FreezeScope], repo: &str) -> Option<&'a FreezeScope> {
    let owner = repo.split('/').next().unwrap_or_default();
    let wildcard = format!("{owner}/*");
    scopes
        .iter()
        .filter(|s| s.scope == repo || s.scope == wildcard)
        .max_by_key(|s| s.generation)
}

fn describe(label: &str, action: &RulesetAction, status: u16, repaired: bool) -> Option<String> {
    Some(match action {
        RulesetAction::Create if repaired => format!(
            "{label}: ruleset {RULESET_NAME} was missing (deleted by hand?) and was restored (GitHub {status})"
        ),
        RulesetAction::Create => {
            format!("{label}: ruleset {RULESET_NAME} created, merges blocked (GitHub {status})")
        }
        RulesetAction::Update(id) => format!("{label}: ruleset {id} updated (GitHub {status})"),
        RulesetAction::Delete(id) => {
            format!("{label}: ruleset {id} removed, merges allowed again (GitHub {status})")
        }
        RulesetAction::Nothing => return None,
    })
}

fn is_retryable(e: &GhError) -> bool {
    matches!(EffectError::from(e.clone()), EffectError::Retryable { .. })
}

pub(super) fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

pub(super) fn db_error(e: anyhow::Error) -> EffectError {
    tracing::error!(error = %format!("{e:#}"), "database error in a GitHub effect");
    EffectError::retryable("database unavailable")
}
