//! The reconciler's second phase: the `firebreak/merge-freeze` status on the head of every
//! open pull request into a frozen branch (`failure`, or `success` when exempted), flipped
//! to `success` when the freeze lifts. Each repository stands alone: one whose pulls cannot
//! be listed, or whose statuses GitHub refuses, is named in the summary or retried, and the
//! others are written all the same.

use futures::FutureExt;
use futures::stream::{self, StreamExt};

use super::client::{GhError, Pull, RulesetScope};
use super::freeze::{self, STATUS_CONTEXT, Wanted};
use super::handler::{GitHubEffects, db_error};
use super::pulls::{branch_matches, is_glob};
use super::reconcile::{Applied, Leftovers, Outcome, Pass};
use super::text;
use crate::effects::handler::EffectError;
use crate::store::{Exemption, FreezeScope, WrittenStatus, exemption_state};

/// Repositories whose statuses are written at once.
const REPOS_AT_ONCE: usize = 4;
/// Statuses written at once within a repository.
const STATUSES_AT_ONCE: usize = 16;

/// Why a step on one repository or commit did not go through.
#[derive(Debug)]
pub(super) enum StepError {
    /// The database: the whole effect must be retried.
    Db(EffectError),
    /// GitHub, for this repository or commit only.
    GitHub(GhError),
}

impl From<GhError> for StepError {
    fn from(e: GhError) -> Self {
        Self::GitHub(e)
    }
}

impl From<StepError> for EffectError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Db(e) => e,
            StepError::GitHub(e) => e.into(),
        }
    }
}

fn db(e: anyhow::Error) -> StepError {
    StepError::Db(db_error(e))
}

/// One status to write.
pub(super) struct Status {
    pub sha: String,
    pub pr: u64,
    pub state: String,
    pub text: String,
    /// Where its "Details" link goes: the incident's page, when there is one to link.
    pub url: Option<String>,
    /// A drill's status: a real freeze's replaces it even when both are `failure`.
    pub drill: bool,
}

/// How one repository's statuses went.
#[derive(Default)]
struct RepoStatuses {
    written: usize,
    errors: Vec<GhError>,
}

impl GitHubEffects {
    /// Phase 2: statuses in every repository whose ruleset step went through. Returns how
    /// many were written; what GitHub refused goes to `failed`, what it could not answer to
    /// `later`. Only database errors end it early.
    pub(super) async fn write_statuses(
        &self,
        pass: &Pass<'_>,
        done: &[Applied],
        org_repos: &std::collections::BTreeMap<String, Vec<String>>,
        later: &mut Leftovers,
        failed: &mut Vec<String>,
    ) -> Result<usize, EffectError> {
        let results: Vec<(String, Result<RepoStatuses, EffectError>)> =
            stream::iter(status_repos(done, org_repos))
                .map(|(repo, wanted)| self.sync_statuses(repo, wanted, pass).boxed())
                .buffer_unordered(REPOS_AT_ONCE)
                .collect()
                .await;
        let mut written = 0;
        for (repo, result) in results {
            let outcome = result?;
            written += outcome.written;
            if let Some(e) = outcome.errors.iter().find(|e| e.is_retryable()) {
                later.add(&format!("{repo} statuses"), e);
            } else if let Some(e) = outcome.errors.first() {
                let n = outcome.errors.len();
                failed.push(format!("{repo} ({n} statuses: {e})"));
            }
        }
        Ok(written)
    }

    /// One repository's statuses, with its name for the caller.
    async fn sync_statuses(
        &self,
        repo: String,
        wanted: Wanted,
        pass: &Pass<'_>,
    ) -> (String, Result<RepoStatuses, EffectError>) {
        let result = self.sync_repo(&repo, &wanted, pass).await;
        (repo, result)
    }

    async fn sync_repo(
        &self,
        repo: &str,
        wanted: &Wanted,
        pass: &Pass<'_>,
    ) -> Result<RepoStatuses, EffectError> {
        let jobs = match self.status_jobs(repo, wanted, pass).await {
            Ok(jobs) => jobs,
            Err(StepError::GitHub(e)) => {
                return Ok(RepoStatuses {
                    written: 0,
                    errors: vec![e],
                });
            }
            Err(StepError::Db(e)) => return Err(e),
        };
        let results: Vec<Result<bool, StepError>> = stream::iter(jobs)
            .map(|status| {
                self.set_status(repo, status, &wanted.scope, pass.generation)
                    .boxed()
            })
            .buffer_unordered(STATUSES_AT_ONCE)
            .collect()
            .await;
        let mut outcome = RepoStatuses::default();
        for result in results {
            match result {
                Ok(wrote) => outcome.written += usize::from(wrote),
                Err(StepError::GitHub(e)) => outcome.errors.push(e),
                Err(StepError::Db(e)) => return Err(e),
            }
        }
        Ok(outcome)
    }

    /// The statuses `repo` should show: on every open pull request into a frozen branch
    /// while frozen; `success` on the ones firebreak failed once it lifts.
    async fn status_jobs(
        &self,
        repo: &str,
        wanted: &Wanted,
        pass: &Pass<'_>,
    ) -> Result<Vec<Status>, StepError> {
        if !wanted.frozen {
            let failing = self.store.pr_statuses_to_lift(repo).await;
            let text = freeze::status_description(wanted, None, None);
            return Ok(failing
                .map_err(db)?
                .into_iter()
                .map(|(sha, pr)| Status {
                    sha,
                    pr: pr as u64,
                    state: "success".to_string(),
                    text: text.clone(),
                    url: None,
                    drill: false,
                })
                .collect());
        }
        let exemptions = self.store.exemptions(repo).await.map_err(db)?;
        let scopes = self.store.freeze_scopes().await.map_err(db)?;
        let incident = self.incident_number(pass, wanted).await?;
        let url = self.incident_page(incident.as_deref());
        let key = text::key_to_add(incident.as_deref(), wanted.reason.as_deref());
        let mut jobs = Vec::new();
        for pr in self.frozen_pulls(repo).await? {
            let exempt = exempted_by(&exemptions, &scopes, pr.number, &pr.head.sha);
            let state = freeze::pr_status(true, exempt.is_some(), wanted.drill);
            jobs.push(Status {
                sha: pr.head.sha,
                pr: pr.number,
                state: state.to_string(),
                text: freeze::status_description(wanted, key, exempt),
                url: url.clone(),
                drill: wanted.drill,
            });
        }
        Ok(jobs)
    }

    /// The open pull requests into the branches the freeze covers in `repo`. GitHub's `base`
    /// filter takes one branch name, so glob patterns (`release/*`) list every open pull
    /// request once and keep those whose base matches, as the ruleset does.
    async fn frozen_pulls(&self, repo: &str) -> Result<Vec<Pull>, GhError> {
        let branches = self.branches(repo).await?;
        if branches.iter().any(|b| is_glob(b)) {
            let all = self.client.open_pulls_any_base(repo).await?;
            return Ok(all
                .into_iter()
                .filter(|p| branches.iter().any(|b| branch_matches(b, &p.base.name)))
                .collect());
        }
        let mut pulls = Vec::new();
        for branch in branches {
            pulls.extend(self.client.open_pulls(repo, &branch).await?);
        }
        Ok(pulls)
    }

    /// The incident's page, `{server.public_url}/incidents/INC-n/postmortem.html`, when a
    /// public URL is configured.
    pub(super) fn incident_page(&self, number: Option<&str>) -> Option<String> {
        let base = self.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/incidents/{}/postmortem.html", number?))
    }

    async fn incident_number(
        &self,
        pass: &Pass<'_>,
        wanted: &Wanted,
    ) -> Result<Option<String>, StepError> {
        let Some(id) = pass.incidents.get(&wanted.scope).cloned().flatten() else {
            return Ok(None);
        };
        let incident = self.store.incident_by_id(&id).await.map_err(db)?;
        Ok(incident.map(|i| i.number.to_string()))
    }

    /// Writes one status unless the commit already shows it. Returns whether it wrote.
    /// `generation` is the one it was decided under for `scope`; a later change to that
    /// scope (not to another one) supersedes it.
    pub(super) async fn set_status(
        &self,
        repo: &str,
        status: Status,
        scope: &str,
        generation: i64,
    ) -> Result<bool, StepError> {
        let Status {
            sha,
            pr,
            state,
            text,
            url,
            drill,
        } = status;
        let state = state.as_str();
        let current = self.store.pr_status_written(repo, &sha).await.map_err(db)?;
        if current.as_ref().is_some_and(|w| {
            w.state == state
                && w.drill == drill
                && w.description.as_deref().is_none_or(|d| d == text)
        }) {
            return Ok(false);
        }
        if self
            .scope_superseded(scope, generation)
            .await
            .map_err(StepError::Db)?
        {
            return Ok(false);
        }
        self.client
            .create_status_linked(repo, &sha, state, &text, STATUS_CONTEXT, url.as_deref())
            .await?;
        self.store
            .set_pr_status(
                repo,
                &sha,
                pr,
                &WrittenStatus {
                    state: state.to_string(),
                    generation,
                    drill,
                    description: Some(text),
                },
            )
            .await
            .map_err(db)?;
        Ok(true)
    }
}

/// Who exempted pull request `number` at head `sha` from the freeze in force now, if anyone
/// did: an exemption applies only to the head it pinned, and only in the freeze it was
/// granted in (its scope still frozen since the same generation). A push, or the freeze
/// ending and a new one starting, needs a new exemption.
pub(super) fn exempted_by<'a>(
    exemptions: &'a [Exemption],
    scopes: &[FreezeScope],
    number: u64,
    sha: &str,
) -> Option<&'a str> {
    exemptions
        .iter()
        .filter(|e| e.pr_number == i64::try_from(number).unwrap_or(i64::MAX))
        .find(|e| applies(e, scopes, sha))
        .map(|e| e.allowed_by.as_str())
}

fn applies(e: &Exemption, scopes: &[FreezeScope], sha: &str) -> bool {
    let same_freeze = |s: &FreezeScope| {
        s.frozen
            && e.scope.as_deref() == Some(s.scope.as_str())
            && s.frozen_since.is_some()
            && s.frozen_since == e.frozen_since
    };
    e.state != exemption_state::FAILED
        && e.sha.as_deref() == Some(sha)
        && scopes.iter().any(same_freeze)
}

/// The repositories whose pull requests need statuses, with what they should show: every
/// repository of a target whose ruleset step went through.
fn status_repos(
    done: &[Applied],
    org_repos: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<(String, Wanted)> {
    // A repository covered twice (an org ruleset and its own) shows one status: the newest
    // freeze's, except that a drill never takes it from a real freeze.
    let mut out: std::collections::BTreeMap<String, Wanted> = Default::default();
    let mut put = |repo: &str, wanted: &Wanted| match out.get(repo) {
        Some(have) if !freeze::overrides(wanted, have) => {}
        _ => {
            out.insert(repo.to_string(), wanted.clone());
        }
    };
    for a in done.iter().filter(|a| matches!(a.outcome, Outcome::Done)) {
        match &a.target {
            RulesetScope::Repo(r) => put(r, &a.wanted),
            RulesetScope::Org(o) => {
                for r in org_repos.get(o).into_iter().flatten() {
                    put(r, &a.wanted);
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(frozen_since: Option<i64>) -> FreezeScope {
        FreezeScope {
            scope: "acme/*".into(),
            frozen: frozen_since.is_some(),
            generation: 9,
            incident_id: None,
            reason: None,
            drill: false,
            requested_by: "x".into(),
            updated_at: chrono::Utc::now(),
            frozen_since,
        }
    }

    fn exemption(state: &str) -> Exemption {
        Exemption {
            repo: "acme/api".into(),
            pr_number: 5,
            allowed_by: "cli:ops".into(),
            reason: None,
            attempt: 1,
            state: state.into(),
            outcome: None,
            sha: Some("aaa".into()),
            scope: Some("acme/*".into()),
            frozen_since: Some(3),
            effect_key: None,
        }
    }

    #[test]
    fn an_exemption_applies_to_its_head_in_its_freeze_only() {
        let e = [exemption(exemption_state::NOT_MERGED)];
        let now = [scope(Some(3))];
        assert_eq!(exempted_by(&e, &now, 5, "aaa"), Some("cli:ops"));
        assert_eq!(exempted_by(&e, &now, 6, "aaa"), None, "another PR");
        assert_eq!(exempted_by(&e, &now, 5, "bbb"), None, "a new head");
        assert_eq!(
            exempted_by(&e, &[scope(Some(7))], 5, "aaa"),
            None,
            "a new freeze"
        );
        assert_eq!(exempted_by(&e, &[scope(None)], 5, "aaa"), None, "no freeze");
        let failed = [exemption(exemption_state::FAILED)];
        assert_eq!(exempted_by(&failed, &now, 5, "aaa"), None);
    }
}
