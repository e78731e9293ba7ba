//! `freeze exempt` in the core: refused at the door unless a freeze covers the repository;
//! otherwise one **attempt** at letting a pull request through (issue 10). A new attempt
//! starts only once the current one ended (merged, not merged, failed — as the enforcing
//! adapter records it, or because its effect finished or gave up), so a double submit or a
//! retried command while one runs is the same request, with the same effect key, and asking
//! again after a push or a check gone green is a new one. The attempt is bound to the freeze
//! it was granted in (the covering scope and its `frozen_since`).

use chrono::{DateTime, Utc};

use super::error::{ServiceError, UserError};
use super::freeze::{FreezeRequest, FreezeSettings};
use super::permissions::Actor;
use super::service::IncidentService;
use super::timeline::{EntryKind, NewEntry};
use crate::effects::NewEffect;
use crate::store::{Exemption, FreezeScope, NewAttempt, Tx};

impl IncidentService {
    /// `freeze exempt`: refused unless a freeze covers the repository; otherwise a new
    /// attempt at merging the pull request, or the one still running when asked again.
    pub(super) async fn exempt(
        &self,
        tx: &mut Tx,
        settings: &FreezeSettings,
        ExemptRequest { repo, pr, reason }: ExemptRequest,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(String, NewEffect), ServiceError> {
        let Some(covering) = covering_freeze(tx, &repo).await? else {
            return Err(UserError::invalid(not_exemptible(&settings.scopes, &repo, pr)).into());
        };
        // The configured spelling for a single repository; as typed under `owner/*`.
        let repo = if covering.scope.ends_with("/*") {
            repo
        } else {
            covering.scope.clone()
        };
        let pr_number = i64::try_from(pr).unwrap_or(i64::MAX);
        let incident = covering.incident_id.clone();
        let plan = |attempt: i64, allowed_by: &str, reason: Option<String>| {
            settings.planner.plan(&FreezeRequest::Exempt {
                repo: repo.clone(),
                pr,
                allowed_by: allowed_by.to_string(),
                reason,
                attempt,
                incident: incident.clone(),
            })
        };
        for _ in 0..2 {
            let current = tx.exemption(&repo, pr_number).await?;
            let ended = match &current {
                Some(e) if e.in_progress() => match &e.effect_key {
                    Some(key) => tx.effect_ended(key).await?,
                    None => true,
                },
                _ => true,
            };
            let attempt = match exempt_step(current.as_ref(), ended) {
                ExemptStep::Running(e) => {
                    let text = running_text(e, actor);
                    return Ok((text, plan(e.attempt, &e.allowed_by, e.reason.clone())));
                }
                ExemptStep::Start(attempt) => attempt,
            };
            let by = actor.identity().to_string();
            let effect = plan(attempt, &by, reason.clone());
            let started = tx
                .start_exemption(
                    &NewAttempt {
                        repo: &repo,
                        pr_number,
                        allowed_by: &by,
                        reason: reason.as_deref(),
                        scope: &covering.scope,
                        frozen_since: covering.frozen_since,
                        effect_key: &effect.idempotency_key,
                        at: now,
                    },
                    attempt,
                )
                .await?;
            if !started {
                // Another request started it first: that one is running now.
                continue;
            }
            let text = exempted_text(&repo, pr, attempt, &actor.name, reason.as_deref());
            tx.append_timeline(&NewEntry {
                incident_id: incident.clone(),
                occurred_at: now,
                actor: actor.identity().to_string(),
                source: actor.source,
                kind: EntryKind::FreezeExempted,
                text: text.clone(),
            })
            .await?;
            return Ok((format!("{text}."), effect));
        }
        Err(anyhow::anyhow!("exemption of {repo}#{pr} kept changing under the request").into())
    }
}

/// The newest freeze covering `repo` (exactly, or through `owner/*`): the incident that
/// timeline entries about it belong to, and the generation an exemption is from.
async fn covering_freeze(tx: &mut Tx, repo: &str) -> anyhow::Result<Option<FreezeScope>> {
    Ok(tx
        .freeze_scopes()
        .await?
        .into_iter()
        .filter(|s| s.frozen && covers(&s.scope, repo))
        .max_by_key(|s| (s.incident_id.is_some(), s.generation)))
}

/// Whether `scope` (`owner/repo` or `owner/*`) covers `repo`, in any case, as GitHub's names
/// are case-insensitive.
pub(super) fn covers(scope: &str, repo: &str) -> bool {
    let owner = repo.split('/').next().unwrap_or_default();
    scope.eq_ignore_ascii_case(repo) || scope.eq_ignore_ascii_case(&format!("{owner}/*"))
}

/// Why `repo#pr` cannot be exempted when no freeze covers it.
fn not_exemptible(configured: &[String], repo: &str, pr: u64) -> String {
    if configured.iter().any(|s| covers(s, repo)) {
        format!(
            "{repo} is not frozen now, so there is nothing to exempt {repo}#{pr} from: anyone may merge it."
        )
    } else {
        format!(
            "{repo} is not frozen and not one of the repositories firebreak freezes ([github] repos), so {repo}#{pr} cannot be exempted."
        )
    }
}

/// What `freeze exempt` does, given the pull request's exemption so far and whether its
/// attempt ended (as recorded, or because its effect finished or gave up).
#[derive(Debug, PartialEq)]
enum ExemptStep<'a> {
    /// Start this attempt.
    Start(i64),
    /// The current attempt is still running: asking again is the same request.
    Running(&'a Exemption),
}

fn exempt_step(current: Option<&Exemption>, ended: bool) -> ExemptStep<'_> {
    match current {
        None => ExemptStep::Start(1),
        Some(e) if ended => ExemptStep::Start(e.attempt + 1),
        Some(e) => ExemptStep::Running(e),
    }
}

fn exempted_text(repo: &str, pr: u64, attempt: i64, by: &str, reason: Option<&str>) -> String {
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    let again = if attempt > 1 { " again" } else { "" };
    format!("{repo}#{pr} exempted{again} from the merge freeze by {by}{why}")
}

fn running_text(e: &Exemption, actor: &Actor) -> String {
    let by = if e.allowed_by == actor.identity().to_string() {
        "you".to_string()
    } else {
        super::identity::fallback_name(&e.allowed_by).to_string()
    };
    format!(
        "{}#{} is already exempted (by {by}) and its merge is under way; exempt it again once that ends.",
        e.repo, e.pr_number
    )
}

/// `freeze exempt <repo>#<pr> [--reason …]`, as parsed.
pub(super) struct ExemptRequest {
    pub repo: String,
    pub pr: u64,
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exemption(attempt: i64, state: &str) -> Exemption {
        Exemption {
            repo: "acme/api".into(),
            pr_number: 5,
            allowed_by: "cli:ops".into(),
            reason: None,
            attempt,
            state: state.into(),
            outcome: None,
            sha: None,
            scope: Some("acme/api".into()),
            frozen_since: Some(3),
            effect_key: None,
        }
    }

    #[test]
    fn a_new_attempt_only_once_the_current_one_ended() {
        assert_eq!(exempt_step(None, true), ExemptStep::Start(1));
        let running = exemption(2, "pending");
        assert_eq!(
            exempt_step(Some(&running), false),
            ExemptStep::Running(&running)
        );
        assert_eq!(exempt_step(Some(&running), true), ExemptStep::Start(3));
        let merged = exemption(2, "merged");
        assert_eq!(exempt_step(Some(&merged), true), ExemptStep::Start(3));
    }

    #[test]
    fn scopes_cover_repositories_in_any_case_and_refusals_say_why() {
        assert!(covers("acme/api", "Acme/API"));
        assert!(covers("ACME/*", "acme/web"));
        assert!(!covers("acme/api", "acme/web"));
        let configured = ["acme/api".to_string()];
        assert!(not_exemptible(&configured, "acme/api", 5).contains("is not frozen now"));
        assert!(not_exemptible(&configured, "acme/web", 5).contains("[github] repos"));
    }
}
