//! [`GitHubEffects`] runs the freeze effects (reconcile, recent changes, exemptions and
//! webhook-driven statuses) and holds what they share: the store writes for targets and the
//! timeline, and reports to the incident's room. Reports are neutral intents handed to every
//! chat adapter's planner, keyed by the effect's own idempotency key plus the step, so a
//! retried effect plans the same messages again and the queue keeps one of each.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;

use super::client::{GhError, GitHubClient};
use super::config::GitHubConfig;
use super::effect::{EXEMPT, GitHubEffect, MERGE_EXEMPT, PR_STATUS, RECENT_CHANGES, RECONCILE};
use super::exempt::Attempt;
use super::freeze::Wanted;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::effects::planner::{Intent, Planners};
use crate::effects::{Effect, NewEffect, TypedEffect};
use crate::incident::model::IncidentId;
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::store::{FreezeTarget, Store, TargetFailure};

const KINDS: &[&str] = &[RECONCILE, RECENT_CHANGES, EXEMPT, MERGE_EXEMPT, PR_STATUS];
/// The progress message a freeze edits in place in the incident's room.
pub const FREEZE_PROGRESS: &str = "freeze";

pub struct GitHubEffects {
    pub client: Arc<GitHubClient>,
    pub store: Store,
    pub config: GitHubConfig,
    /// Every chat adapter's planner, for progress and messages in incident rooms.
    pub chat: Planners,
    /// `server.public_url`: freeze statuses link to the incident's page under it.
    pub public_url: Option<String>,
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
        match effect.decode::<GitHubEffect>()? {
            GitHubEffect::Reconcile { .. } => self.reconcile(effect).await,
            GitHubEffect::RecentChanges { incident_id } => {
                self.recent_changes(effect, &incident_id).await
            }
            GitHubEffect::Exempt {
                repo,
                pr,
                allowed_by,
                attempt,
                ..
            } => {
                let a = Attempt {
                    repo: &repo,
                    number: pr,
                    by: &allowed_by,
                    attempt,
                };
                let outcome = self.exempt_and_merge(effect, a).await;
                self.ended_for_good(effect, a, outcome).await
            }
            GitHubEffect::MergeExempt {
                repo,
                pr,
                sha,
                allowed_by,
                attempt,
            } => {
                let a = Attempt {
                    repo: &repo,
                    number: pr,
                    by: &allowed_by,
                    attempt,
                };
                let outcome = self.merge_exempt(effect, a, &sha).await;
                self.ended_for_good(effect, a, outcome).await
            }
            GitHubEffect::PrStatus(head) => self.pr_status(&head).await,
            other => Err(EffectError::permanent(format!(
                "{} is not a freeze effect",
                other.kind()
            ))),
        }
    }
}

impl GitHubEffects {
    /// An exemption effect that fails for good ends its attempt, so the next `freeze exempt`
    /// starts a new one; the failure itself is recorded by the queue as usual.
    async fn ended_for_good(
        &self,
        effect: &Effect,
        a: Attempt<'_>,
        outcome: Result<Option<String>, EffectError>,
    ) -> Result<Option<String>, EffectError> {
        if let Err(EffectError::Permanent { reason }) = &outcome {
            self.exemption_failed(effect, a, reason).await?;
        }
        outcome
    }
}

/// The orgs whose repository lists could be read, and those that could not.
pub(super) struct OrgRepos {
    pub repos: BTreeMap<String, Vec<String>>,
    pub failed: Vec<(String, GhError)>,
}

impl GitHubEffects {
    /// The unarchived repositories of each org. One org that cannot be listed does not stop
    /// the others; the caller decides what its failure means.
    pub(super) async fn org_repos(&self, orgs: &[String]) -> OrgRepos {
        let mut out = OrgRepos {
            repos: BTreeMap::new(),
            failed: Vec::new(),
        };
        for org in orgs {
            match self.client.org_repos(org).await {
                Ok(repos) => {
                    let names = repos.into_iter().filter(|r| !r.archived);
                    out.repos
                        .insert(org.clone(), names.map(|r| r.full_name).collect());
                }
                Err(e) => out.failed.push((org.clone(), e)),
            }
        }
        out
    }

    /// The branches a freeze covers in `repo`: the configured ones, or its default branch.
    pub(super) async fn branches(&self, repo: &str) -> Result<Vec<String>, GhError> {
        if !self.config.branches.is_empty() {
            return Ok(self.config.branches.clone());
        }
        Ok(vec![self.client.repo(repo).await?.default_branch])
    }

    /// True when a newer freeze or unfreeze was requested after this run started.
    pub(super) async fn superseded(&self, generation: i64) -> Result<bool, EffectError> {
        Ok(self.store.freeze_generation().await.map_err(db_error)? > generation)
    }

    /// Whether `scope` changed after `generation`: a status decided for an older state of
    /// that scope is not written. Other scopes' changes do not matter (a webhook for a repo
    /// frozen before another one was must still get its status).
    pub(super) async fn scope_superseded(
        &self,
        scope: &str,
        generation: i64,
    ) -> Result<bool, EffectError> {
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        Ok(scopes
            .iter()
            .find(|s| s.scope == scope)
            .is_some_and(|s| s.generation > generation))
    }

    /// Records what a successful read of one target found (and did): read now, no error.
    /// `applied_generation` is the newest generation GitHub confirmed on it: the wanted one
    /// after a write that went through, the previous one after a read alone.
    pub(super) async fn record(
        &self,
        label: &str,
        wanted: &Wanted,
        actual: &str,
        id: Option<u64>,
        applied_generation: i64,
        note: Option<String>,
    ) -> Result<(), EffectError> {
        let target = FreezeTarget {
            target: label.to_string(),
            scope: wanted.scope.clone(),
            desired: if wanted.frozen { "frozen" } else { "unfrozen" }.into(),
            actual: actual.into(),
            ruleset_id: id.and_then(|i| i64::try_from(i).ok()),
            applied_generation,
            verified_at: Utc::now().timestamp_millis(),
            last_error: note,
            error_at: None,
            retry_at: None,
        };
        self.store.record_target(&target).await.map_err(db_error)?;
        Ok(())
    }

    /// Records a failure on one target: the error (retryable ones read `will retry: …`),
    /// when, and the retry time GitHub named. What was last read, when, and the generation
    /// GitHub last confirmed stay as they were.
    pub(super) async fn record_failure(
        &self,
        label: &str,
        wanted: &Wanted,
        e: &GhError,
        detail: Option<&str>,
    ) -> Result<(), EffectError> {
        let now = Utc::now();
        let (mut error, retry_at) = failure_note(e, now);
        if let Some(d) = detail {
            error.push_str(&format!("; {d}"));
        }
        let failure = TargetFailure {
            target: label,
            scope: &wanted.scope,
            desired: if wanted.frozen { "frozen" } else { "unfrozen" },
            error: &error,
            at: now,
            retry_at,
            permanent: !e.is_retryable(),
        };
        self.store
            .record_target_failure(&failure)
            .await
            .map_err(db_error)
    }

    pub(super) async fn timeline(
        &self,
        incident: Option<IncidentId>,
        kind: EntryKind,
        text: String,
    ) -> Result<(), EffectError> {
        let entry = NewEntry {
            incident_id: incident,
            occurred_at: Utc::now(),
            actor: crate::incident::Actor::system().identity().to_string(),
            source: Source::Github,
            kind,
            text,
        };
        self.store.append_timeline(&entry).await.map_err(db_error)
    }

    /// The effects that say `intent` in `effect`'s incident room, on every chat platform.
    fn intents(&self, effect: &Effect, intent: &Intent, step: &str) -> Vec<NewEffect> {
        let Some(incident) = &effect.incident_id else {
            return Vec::new();
        };
        let key = format!("{}:{step}", effect.idempotency_key);
        self.chat.plan_intent(incident, intent, &key)
    }

    /// Posts `text` in the incident's room (through each chat adapter's own effects).
    pub(super) async fn tell_room(
        &self,
        effect: &Effect,
        step: &str,
        text: String,
    ) -> Result<(), EffectError> {
        let planned = self.intents(effect, &Intent::RoomPost { text }, step);
        enqueue_all(&self.store, &planned).await.map_err(db_error)
    }

    /// Updates the freeze's progress message in the incident's room (posted once, then
    /// edited).
    pub(super) async fn progress(
        &self,
        effect: &Effect,
        step: &str,
        text: String,
    ) -> Result<(), EffectError> {
        let planned = self.intents(effect, &progress(text), step);
        enqueue_all(&self.store, &planned).await.map_err(db_error)
    }

    /// [`progress`](Self::progress) without waiting: inside a stream of GitHub calls, one of
    /// which may hold the SQLite writer this needs.
    pub(super) fn progress_in_background(&self, effect: &Effect, step: &str, text: String) {
        let planned = self.intents(effect, &progress(text), step);
        if planned.is_empty() {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = enqueue_all(&store, &planned).await {
                tracing::warn!(error = %format!("{e:#}"), "queueing a freeze progress update failed");
            }
        });
    }
}

fn progress(text: String) -> Intent {
    Intent::Progress {
        key: FREEZE_PROGRESS.into(),
        text,
    }
}

/// Enqueues `effects` in one background transaction (a no-op for none).
async fn enqueue_all(store: &Store, effects: &[NewEffect]) -> anyhow::Result<()> {
    if effects.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_background().await?;
    for effect in effects {
        tx.enqueue_effect(effect).await?;
    }
    tx.commit().await
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

pub(super) fn db_error(e: anyhow::Error) -> EffectError {
    tracing::error!(error = %format!("{e:#}"), "database error in a GitHub effect");
    EffectError::retryable("database unavailable")
}

/// How a failure is noted on a target, and when it is retried if GitHub named a wait:
/// `will retry: …` for a retryable one, the error itself for a permanent one.
pub(super) fn failure_note(
    e: &GhError,
    now: chrono::DateTime<Utc>,
) -> (String, Option<chrono::DateTime<Utc>>) {
    match EffectError::from(e.clone()) {
        EffectError::Retryable { retry_after, .. } => {
            let at = retry_after
                .and_then(|w| chrono::Duration::from_std(w).ok())
                .map(|w| now + w);
            (format!("will retry: {e}"), at)
        }
        _ => (e.to_string(), None),
    }
}
