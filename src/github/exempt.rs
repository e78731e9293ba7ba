//! Exemptions that merge. `freeze exempt owner/repo#n` records who allowed it; then:
//!
//! 1. the `github.exempt` effect reads the pull request, gives its head the `success` freeze
//!    status and pins that head: it queues `github.merge_exempt` for exactly that SHA;
//! 2. `github.merge_exempt` merges it as a bypass actor of the freeze ruleset (the GitHub App,
//!    or the configured `merge_actor` for token auth), with `sha` so that a later push is
//!    never merged — GitHub answers 409 instead — and only when GitHub reports it mergeable
//!    and every check on that head green. Pending checks are waited for (retried); anything
//!    else (a new head, conflicts, a failed check, a refusal) is said on the timeline and in
//!    the incident room, and nothing is merged.
//!
//! A merge that already happened (a retry after a lost answer) is success. A drill never
//! merges: it only posts the status.

use super::client::{CheckRun, CommitStatus, Pull};
use super::effect;
use super::freeze::STATUS_CONTEXT;
use super::handler::{GitHubEffects, db_error, short};
use super::reconcile::covering_scope;
use crate::effects::Effect;
use crate::effects::handler::EffectError;
use crate::incident::timeline::EntryKind;

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

impl GitHubEffects {
    /// Step 1: the status, then the merge of the head as it is now.
    pub(super) async fn exempt_and_merge(
        &self,
        effect: &Effect,
        repo: &str,
        number: u64,
        by: &str,
    ) -> Result<Option<String>, EffectError> {
        let pull = self.client.pull(repo, number).await?;
        if pull.merged == Some(true) || pull.merged_at.is_some() {
            return Ok(Some(format!("{repo}#{number} is already merged")));
        }
        let status = self.exempt(repo, number, by).await?;
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        let scope = covering_scope(&scopes, repo).filter(|s| s.frozen);
        let note = match scope {
            None => "not frozen, so firebreak does not merge it: anyone may".to_string(),
            Some(s) if s.drill => {
                let text = format!(
                    "{repo}#{number}: drill exemption, status only; firebreak does not merge during a drill"
                );
                self.timeline(effect.incident_id.clone(), EntryKind::FreezeExempted, text)
                    .await?;
                "drill: not merged".to_string()
            }
            Some(_) => {
                let merge = effect::merge_exempt(
                    effect.incident_id.as_ref(),
                    repo,
                    number,
                    &pull.head.sha,
                    by,
                );
                let mut tx = self.store.begin_background().await.map_err(db_error)?;
                tx.enqueue_effect(&merge).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                format!("merge of {} queued", short(&pull.head.sha))
            }
        };
        Ok(Some(format!(
            "{}; {note}",
            status.unwrap_or_else(|| format!("{repo}#{number} exempted"))
        )))
    }

    /// Step 2: merge exactly `sha`, as a bypass actor, once GitHub says it may be merged.
    pub(super) async fn merge_exempt(
        &self,
        effect: &Effect,
        repo: &str,
        number: u64,
        sha: &str,
        by: &str,
    ) -> Result<Option<String>, EffectError> {
        let pull = self.client.pull(repo, number).await?;
        if pull.merged == Some(true) || pull.merged_at.is_some() {
            return Ok(Some(format!("{repo}#{number} is already merged")));
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
                // The queue's backoff paces the next look.
                return Err(EffectError::retryable(format!(
                    "{repo}#{number} not merged yet: {why}"
                )));
            }
            Readiness::Refuse(why) => return self.not_merged(effect, repo, number, &why).await,
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
                Ok(Some(text))
            }
            Err(e) if e.is_retryable() => Err(e.into()),
            Err(e) => {
                // A retried merge whose first answer was lost: GitHub now says "not
                // mergeable" because it is merged.
                if let Ok(p) = self.client.pull(repo, number).await {
                    if p.merged == Some(true) || p.merged_at.is_some() {
                        return Ok(Some(format!("{repo}#{number} is already merged")));
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
                self.not_merged(effect, repo, number, &why).await
            }
        }
    }

    async fn not_merged(
        &self,
        effect: &Effect,
        repo: &str,
        number: u64,
        why: &str,
    ) -> Result<Option<String>, EffectError> {
        let text = format!("{repo}#{number} was exempted but not merged: {why}");
        self.timeline(
            effect.incident_id.clone(),
            EntryKind::FreezeExempted,
            text.clone(),
        )
        .await?;
        self.tell_room(effect, "not-merged", format!("⚠️ {text}"))
            .await?;
        Ok(Some(text))
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
