//! Exemptions that merge. `freeze exempt owner/repo#n` records who allowed it as a new
//! attempt (see `store::Exemption`); then:
//!
//! 1. the `github.exempt` effect reads the pull request, pins its head to the attempt (the
//!    exemption applies to that head only), gives it the `success` freeze status and queues
//!    `github.merge_exempt` for exactly that SHA;
//! 2. `github.merge_exempt` merges it as a bypass actor of the freeze ruleset (the GitHub App,
//!    or the configured `merge_actor` for token auth), with `sha` so that a later push is
//!    never merged — GitHub answers 409 instead — and only when GitHub reports it mergeable
//!    and every check on that head green. Pending checks are waited for without counting as
//!    GitHub failures ([`EffectError::Waiting`]); anything else (a new head, conflicts, a
//!    failed check, a refusal) is said on the timeline and in the incident room, and nothing
//!    is merged.
//!
//! Every way an attempt ends (merged, not merged, failed — a pull request that does not
//! exist) is recorded on the exemption, so the next `freeze exempt` starts a new attempt.
//! A merge that already happened (a retry after a lost answer) is success. A drill never
//! merges: it only posts the status.

use super::client::{CheckRun, CommitStatus, Pull};
use super::effect;
use super::freeze::STATUS_CONTEXT;
use super::handler::{GitHubEffects, db_error, short};
use super::reconcile::covering_scope;
use crate::effects::handler::EffectError;
use crate::effects::{Effect, NewEffect};
use crate::incident::timeline::EntryKind;
use crate::store::exemption_state as state;

/// Why a pull request cannot be merged now, or yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Wait and look again (mergeability being computed, checks running).
    Wait(String),
    /// Will not be merged; the reason is told.
    Refuse(String),
}

/// Conclusions of a completed check run that count as green.
const GREEN: &[&str] = &["success", "neutral", "skipped"];

/// Whether `pull` may be merged at `sha`, from what GitHub reports: open, not a draft, the
/// head still `sha`, mergeable, and every check run and commit status (firebreak's own
/// freeze status aside) green.
pub fn readiness(
    pull: &Pull,
    sha: &str,
    runs: &[CheckRun],
    statuses: &[CommitStatus],
) -> Readiness {
    if pull.state.as_deref() == Some("closed") {
        return Readiness::Refuse("it was closed without being merged".into());
    }
    if pull.head.sha != sha {
        return Readiness::Refuse(format!(
            "its head moved from {} to {} after the exemption; exempt it again to merge the new head",
            short(sha),
            short(&pull.head.sha)
        ));
    }
    if pull.draft == Some(true) {
        return Readiness::Refuse("it is a draft".into());
    }
    match (pull.mergeable, pull.mergeable_state.as_deref()) {
        (Some(false), _) | (_, Some("dirty")) => {
            return Readiness::Refuse("GitHub reports it not mergeable (conflicts)".into());
        }
        (None, _) | (_, Some("unknown")) => {
            return Readiness::Wait("GitHub is still computing whether it is mergeable".into());
        }
        _ => {}
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.status == "completed")
        .filter(|r| !r.conclusion.as_deref().is_some_and(|c| GREEN.contains(&c)))
        .map(|r| {
            format!(
                "{} ({})",
                r.name,
                r.conclusion.as_deref().unwrap_or("no conclusion")
            )
        })
        .chain(
            statuses
                .iter()
                .filter(|s| s.context != STATUS_CONTEXT)
                .filter(|s| s.state == "failure" || s.state == "error")
                .map(|s| format!("{} ({})", s.context, s.state)),
        )
        .collect();
    if !failed.is_empty() {
        return Readiness::Refuse(format!("checks are not green: {}", failed.join(", ")));
    }
    let pending: Vec<&str> = runs
        .iter()
        .filter(|r| r.status != "completed")
        .map(|r| r.name.as_str())
        .chain(
            statuses
                .iter()
                .filter(|s| s.context != STATUS_CONTEXT && s.state == "pending")
                .map(|s| s.context.as_str()),
        )
        .collect();
    if !pending.is_empty() {
        return Readiness::Wait(format!("waiting for checks: {}", pending.join(", ")));
    }
    Readiness::Ready
}

/// The attempt an exemption effect carries, as the store counts it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt<'a> {
    pub repo: &'a str,
    pub number: u64,
    pub by: &'a str,
    pub attempt: i64,
}

impl Attempt<'_> {
    fn pr(&self) -> i64 {
        i64::try_from(self.number).unwrap_or(i64::MAX)
    }
}

/// `PR #7 does not exist in acme/api`: a 404 for the pull request.
pub fn missing_pull(repo: &str, number: u64) -> String {
    format!("PR #{number} does not exist in {repo}")
}

impl GitHubEffects {
    /// Reads the pull request the exemption names; a 404 ends the attempt for good.
    async fn exempted_pull(&self, a: Attempt<'_>) -> Result<Pull, EffectError> {
        match self.client.pull(a.repo, a.number).await {
            Ok(pull) => Ok(pull),
            Err(e) if e.status() == Some(404) => {
                Err(EffectError::permanent(missing_pull(a.repo, a.number)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Step 1: pin the head as it is now, give it the `success` status, then queue the merge
    /// of exactly that head.
    pub(super) async fn exempt_and_merge(
        &self,
        effect: &Effect,
        a: Attempt<'_>,
    ) -> Result<Option<String>, EffectError> {
        let (repo, number) = (a.repo, a.number);
        let pull = self.exempted_pull(a).await?;
        if pull.merged == Some(true) || pull.merged_at.is_some() {
            let text = format!("{repo}#{number} is already merged");
            self.end(a, state::MERGED, &text).await?;
            return Ok(Some(text));
        }
        let sha = pull.head.sha.as_str();
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        let scope = covering_scope(&scopes, repo).filter(|s| s.frozen);
        let merge = scope.filter(|s| !s.drill).map(|_| {
            effect::merge_exempt(
                effect.incident_id.as_ref(),
                repo,
                number,
                sha,
                a.by,
                a.attempt,
            )
        });
        if !self.pin(effect, a, sha, merge.as_ref()).await? {
            return Ok(Some(format!(
                "{repo}#{number}: exemption attempt {} is no longer current; nothing done",
                a.attempt
            )));
        }
        let status = self.exempt(repo, number, sha, a.by).await?;
        let note = match scope {
            None => {
                let why = "not frozen, so firebreak does not merge it: anyone may";
                self.end(a, state::NOT_MERGED, why).await?;
                why.to_string()
            }
            Some(s) if s.drill => {
                let text = format!(
                    "{repo}#{number}: drill exemption, status only; firebreak does not merge during a drill"
                );
                self.timeline(effect.incident_id.clone(), EntryKind::FreezeExempted, text)
                    .await?;
                self.end(a, state::NOT_MERGED, "drill: not merged").await?;
                "drill: not merged".to_string()
            }
            Some(_) => format!("merge of {} queued", short(sha)),
        };
        Ok(Some(format!("{status}; {note}")))
    }

    /// Pins `sha` as the head `a` applies to and queues `merge` (if any) in one transaction,
    /// so the attempt is never without a live effect. `false`: a newer attempt replaced it.
    async fn pin(
        &self,
        effect: &Effect,
        a: Attempt<'_>,
        sha: &str,
        merge: Option<&NewEffect>,
    ) -> Result<bool, EffectError> {
        let key = merge.map_or(effect.idempotency_key.as_str(), |m| {
            m.idempotency_key.as_str()
        });
        let mut tx = self.store.begin_background().await.map_err(db_error)?;
        let pinned = tx
            .pin_exemption(a.repo, a.pr(), a.attempt, sha, key)
            .await
            .map_err(db_error)?;
        if !pinned {
            tx.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        if let Some(merge) = merge {
            tx.enqueue_effect(merge).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Records how attempt `a` ended (if it had not already).
    pub(super) async fn end(
        &self,
        a: Attempt<'_>,
        state: &str,
        outcome: &str,
    ) -> Result<(), EffectError> {
        self.store
            .end_exemption(a.repo, a.pr(), a.attempt, state, outcome)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// An exemption effect failed for good: the attempt ended, and the room is told why.
    pub(super) async fn exemption_failed(
        &self,
        effect: &Effect,
        a: Attempt<'_>,
        reason: &str,
    ) -> Result<(), EffectError> {
        self.end(a, state::FAILED, reason).await?;
        let text = format!(
            "{}#{} was exempted but cannot be merged: {reason}",
            a.repo, a.number
        );
        self.tell_room(effect, "failed", format!("⚠️ {text}")).await
    }

    /// Step 2: merge exactly `sha`, as a bypass actor, once GitHub says it may be merged.
    pub(super) async fn merge_exempt(
        &self,
        effect: &Effect,
        a: Attempt<'_>,
        sha: &str,
    ) -> Result<Option<String>, EffectError> {
        let (repo, number, by) = (a.repo, a.number, a.by);
        let pull = self.exempted_pull(a).await?;
        if pull.merged == Some(true) || pull.merged_at.is_some() {
            let text = format!("{repo}#{number} is already merged");
            self.end(a, state::MERGED, &text).await?;
            return Ok(Some(text));
        }
        let (runs, statuses) = if pull.head.sha == sha {
            (
                self.client.check_runs(repo, sha).await?,
                self.client.commit_statuses(repo, sha).await?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        match readiness(&pull, sha, &runs, &statuses) {
            Readiness::Ready => {}
            Readiness::Wait(why) => {
                // GitHub answered; nothing failed. The queue paces the next look.
                return Err(EffectError::waiting(format!(
                    "{repo}#{number} not merged yet: {why}"
                )));
            }
            Readiness::Refuse(why) => return self.not_merged(effect, a, &why).await,
        }
        // Checked at the moment of use: the freeze this exemption was granted in may have
        // ended (and another begun) while the checks ran.
        if let Some(why) = self.no_longer_granted(a, sha).await? {
            return self.not_merged(effect, a, &why).await;
        }
        match self.client.merge_pull(repo, number, sha).await {
            Ok(commit) => {
                let text = format!(
                    "{repo}#{number} merged through the freeze at {} (exempted by {}); merge commit {}",
                    short(sha),
                    crate::incident::identity::fallback_name(by),
                    short(&commit)
                );
                self.timeline(
                    effect.incident_id.clone(),
                    EntryKind::FreezeExempted,
                    text.clone(),
                )
                .await?;
                self.tell_room(effect, "merged", format!("✅ {text}"))
                    .await?;
                self.end(a, state::MERGED, &text).await?;
                // On the timeline once, as `freeze_exempted` above, not again as the
                // effect's own outcome.
                Ok(None)
            }
            Err(e) if e.is_retryable() => Err(e.into()),
            Err(e) => {
                // A retried merge whose first answer was lost: GitHub now says "not
                // mergeable" because it is merged.
                if let Ok(p) = self.client.pull(repo, number).await {
                    if p.merged == Some(true) || p.merged_at.is_some() {
                        let text = format!("{repo}#{number} is already merged");
                        self.end(a, state::MERGED, &text).await?;
                        return Ok(Some(text));
                    }
                }
                let why = match e.status() {
                    Some(409) => format!(
                        "its head is no longer {} (a push after the exemption); exempt it again to merge the new head",
                        short(sha)
                    ),
                    Some(405) | Some(403) => format!(
                        "GitHub refused the merge ({e}); is firebreak a bypass actor of the {} ruleset? See the README",
                        super::freeze::RULESET_NAME
                    ),
                    _ => format!("GitHub refused the merge: {e}"),
                };
                self.not_merged(effect, a, &why).await
            }
        }
    }

    /// Why attempt `a` no longer allows merging `sha`, read just before the merge: a newer
    /// attempt replaced it, or the freeze it was granted in has ended.
    async fn no_longer_granted(
        &self,
        a: Attempt<'_>,
        sha: &str,
    ) -> Result<Option<String>, EffectError> {
        let exemptions = self.store.exemptions(a.repo).await.map_err(db_error)?;
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        let Some(e) = exemptions.iter().find(|e| e.pr_number == a.pr()) else {
            return Ok(Some("its exemption is gone".into()));
        };
        if e.attempt != a.attempt {
            return Ok(Some(format!(
                "exemption attempt {} was replaced by attempt {}",
                a.attempt, e.attempt
            )));
        }
        let granted = super::statuses::exempted_by(std::slice::from_ref(e), &scopes, a.number, sha);
        Ok(granted.is_none().then(|| {
            "the freeze it was exempted from has ended; a freeze now in force needs its own exemption"
                .to_string()
        }))
    }

    async fn not_merged(
        &self,
        effect: &Effect,
        a: Attempt<'_>,
        why: &str,
    ) -> Result<Option<String>, EffectError> {
        let text = format!("{}#{} was exempted but not merged: {why}", a.repo, a.number);
        self.end(a, state::NOT_MERGED, &text).await?;
        self.timeline(
            effect.incident_id.clone(),
            EntryKind::FreezeExempted,
            text.clone(),
        )
        .await?;
        self.tell_room(effect, "not-merged", format!("⚠️ {text}"))
            .await?;
        // Recorded once, as `freeze_exempted` above.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::client::GitRef;

    fn pull(sha: &str, mergeable: Option<bool>, state: &str) -> Pull {
        let r = |sha: &str| GitRef {
            sha: sha.into(),
            name: "main".into(),
        };
        Pull {
            number: 5,
            title: String::new(),
            html_url: String::new(),
            head: r(sha),
            base: r("b"),
            merged_at: None,
            user: None,
            state: Some("open".into()),
            merged: Some(false),
            mergeable,
            mergeable_state: Some(state.into()),
            draft: Some(false),
        }
    }

    fn run(name: &str, status: &str, conclusion: Option<&str>) -> CheckRun {
        CheckRun {
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_string),
        }
    }

    #[test]
    fn merges_only_that_head_when_mergeable_and_green() {
        let ok = pull("aaa", Some(true), "blocked");
        assert_eq!(readiness(&ok, "aaa", &[], &[]), Readiness::Ready);
        assert!(
            matches!(readiness(&ok, "bbb", &[], &[]), Readiness::Refuse(w) if w.contains("moved"))
        );
        assert!(matches!(
            readiness(&pull("aaa", None, "unknown"), "aaa", &[], &[]),
            Readiness::Wait(_)
        ));
        assert!(matches!(
            readiness(&pull("aaa", Some(false), "dirty"), "aaa", &[], &[]),
            Readiness::Refuse(_)
        ));
        assert!(matches!(
            readiness(&ok, "aaa", &[run("ci", "in_progress", None)], &[]),
            Readiness::Wait(w) if w.contains("ci")
        ));
        assert!(matches!(
            readiness(&ok, "aaa", &[run("ci", "completed", Some("failure"))], &[]),
            Readiness::Refuse(w) if w.contains("ci (failure)")
        ));
        let ours = CommitStatus {
            context: STATUS_CONTEXT.into(),
            state: "failure".into(),
        };
        assert_eq!(
            readiness(
                &ok,
                "aaa",
                &[run("ci", "completed", Some("success"))],
                &[ours]
            ),
            Readiness::Ready,
            "firebreak's own freeze status is not a check"
        );
    }
}
