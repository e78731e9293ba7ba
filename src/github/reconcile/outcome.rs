//! What a reconcile came to: each target's outcome, the counts that never read "0/0",
//! what is left to a retry (with the longest wait GitHub asked for), and the one-line
//! summary and per-target descriptions on the timeline. Pure.

use std::time::Duration;

use crate::effects::handler::EffectError;
use crate::github::client::{GhError, RulesetScope};
use crate::github::freeze::{RULESET_NAME, RulesetAction, Wanted};

/// How one target's ruleset step went.
pub(in crate::github) enum Outcome {
    /// The ruleset is as wanted (or a newer request took over).
    Done,
    /// GitHub refused for good; recorded and reported.
    Failed,
    /// GitHub could not answer now; the reconcile is retried for it.
    Later(GhError),
}

pub(in crate::github) struct Applied {
    pub target: RulesetScope,
    pub wanted: Wanted,
    pub outcome: Outcome,
}

impl Applied {
    /// Whether GitHub blocks merges on this target now: a drill never does.
    pub(in crate::github) fn in_place(&self) -> bool {
        matches!(self.outcome, Outcome::Done) && self.wanted.frozen && !self.wanted.drill
    }
}

/// How many targets block merges, out of how many should: drills and lifted targets are
/// counted apart, so a drill or an unfreeze never reads "active on 0/0 targets".
pub(in crate::github) fn counts(done: &[Applied]) -> String {
    let enforced = done.iter().filter(|a| a.in_place()).count();
    let blocking = done
        .iter()
        .filter(|a| a.wanted.frozen && !a.wanted.drill)
        .count();
    let drills = done
        .iter()
        .filter(|a| a.wanted.frozen && a.wanted.drill)
        .count();
    let lifted = done
        .iter()
        .filter(|a| !a.wanted.frozen && matches!(a.outcome, Outcome::Done))
        .count();
    let mut parts = Vec::new();
    if blocking > 0 {
        parts.push(format!("ruleset active on {enforced}/{blocking} targets"));
    }
    if drills > 0 {
        parts.push(format!("drill on {drills} targets (nothing blocked)"));
    }
    if lifted > 0 {
        parts.push(format!("freeze lifted on {lifted} targets"));
    }
    if parts.is_empty() {
        parts.push("no targets to change".into());
    }
    parts.join(", ")
}

/// What one pass leaves to a retry, and how long GitHub asked to wait.
#[derive(Debug, Default)]
pub(in crate::github) struct Leftovers {
    what: Vec<String>,
    retry_after: Option<Duration>,
}

impl Leftovers {
    pub fn add(&mut self, what: &str, e: &GhError) {
        self.what.push(format!("{what} ({e})"));
        if let EffectError::Retryable {
            retry_after: Some(wait),
            ..
        } = EffectError::from(e.clone())
        {
            self.retry_after = Some(self.retry_after.map_or(wait, |w| w.max(wait)));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.what.is_empty()
    }

    /// Names at most this many in the error; a big outage would list every target.
    const NAMED: usize = 5;

    pub(in crate::github) fn into_error(self) -> EffectError {
        let mut reason = format!(
            "to retry: {}",
            self.what[..self.what.len().min(Self::NAMED)].join("; ")
        );
        if self.what.len() > Self::NAMED {
            reason.push_str(&format!(" and {} more", self.what.len() - Self::NAMED));
        }
        EffectError::Retryable {
            reason,
            retry_after: self.retry_after,
        }
    }
}

/// Orgs whose repositories could not be listed: retried, or named as failed.
pub(in crate::github) fn sort_org_failures(
    orgs: &[(String, GhError)],
    later: &mut Leftovers,
    failed: &mut Vec<String>,
) {
    for (org, e) in orgs {
        let what = format!("{org}/* (listing its repositories)");
        if e.is_retryable() {
            later.add(&what, e);
        } else {
            failed.push(format!("{what}: {e}"));
        }
    }
}

/// Targets whose ruleset step did not go through: retried, or named as failed.
pub(in crate::github) fn sort_target_failures(
    done: &[Applied],
    later: &mut Leftovers,
    failed: &mut Vec<String>,
) {
    for a in done {
        match &a.outcome {
            Outcome::Done => {}
            Outcome::Failed => failed.push(a.target.label()),
            Outcome::Later(e) => later.add(&a.target.label(), e),
        }
    }
}

pub(in crate::github) fn summary(
    generation: i64,
    counts: &str,
    statuses: usize,
    failed: &[String],
) -> String {
    let mut summary = format!(
        "Merge freeze reconciled (generation {generation}): {counts}, {statuses} PR statuses written"
    );
    if !failed.is_empty() {
        summary.push_str(&format!("; {} failed: {}", failed.len(), failed.join(", ")));
    }
    summary
}

pub(in crate::github) fn describe(
    label: &str,
    action: &RulesetAction,
    status: u16,
    repaired: bool,
) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_keep_the_longest_wait_github_asked_for() {
        let mut later = Leftovers::default();
        assert!(later.is_empty());
        let limited = |secs| GhError::Status {
            status: 403,
            message: "secondary rate limit".into(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        later.add("acme/a", &limited(3));
        later.add("acme/b", &limited(9));
        later.add("acme/c", &GhError::Network("timed out".into()));
        for n in 0..5 {
            later.add(
                &format!("acme/more-{n}"),
                &GhError::Network("timed out".into()),
            );
        }
        match later.into_error() {
            EffectError::Retryable {
                reason,
                retry_after,
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(9)));
                assert!(
                    reason.contains("acme/a") && reason.contains("acme/c"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counts_never_say_0_of_0() {
        let applied = |frozen: bool, drill: bool, outcome: Outcome| Applied {
            target: RulesetScope::Repo("acme/api".into()),
            wanted: Wanted {
                scope: "acme/api".into(),
                frozen,
                drill,
                generation: 1,
                reason: None,
            },
            outcome,
        };
        assert_eq!(
            counts(&[applied(false, false, Outcome::Done)]),
            "freeze lifted on 1 targets"
        );
        assert_eq!(
            counts(&[
                applied(true, false, Outcome::Done),
                applied(true, false, Outcome::Failed)
            ]),
            "ruleset active on 1/2 targets"
        );
        assert_eq!(
            counts(&[applied(true, true, Outcome::Done)]),
            "drill on 1 targets (nothing blocked)"
        );
        assert_eq!(counts(&[]), "no targets to change");
    }

    #[test]
    fn the_summary_names_what_failed() {
        assert_eq!(
            summary(4, "ruleset active on 2/3 targets", 5, &["acme/bad".into()]),
            "Merge freeze reconciled (generation 4): ruleset active on 2/3 targets, 5 PR statuses written; 1 failed: acme/bad"
        );
    }
}
