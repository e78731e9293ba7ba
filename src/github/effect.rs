//! The GitHub adapter's effects: one serde enum for everything it runs from the queue, and
//! the rows that carry it. Every idempotency key is built from content (the freeze
//! generation, the incident, the repository and pull request, the webhook's delivery id, the
//! post-mortem's revision), never from a random id, so enqueueing the same request twice
//! (a double submit, a retried command, a redelivered webhook) yields one effect.

use serde::{Deserialize, Serialize};

use crate::effects::{NewEffect, TypedEffect};
use crate::incident::model::IncidentId;

pub const RECONCILE: &str = "github.reconcile";
pub const RECENT_CHANGES: &str = "github.recent_changes";
pub const EXEMPT: &str = "github.exempt";
pub const MERGE_EXEMPT: &str = "github.merge_exempt";
pub const PR_STATUS: &str = "github.pr_status";
pub const PUBLISH_POSTMORTEM: &str = "github.publish_postmortem";

/// The FIFO group of everything that writes freeze rulesets or statuses: reconciles,
/// exemptions and webhook-driven statuses never overlap, here or on another replica.
pub const FREEZE_GROUP: &str = "github:reconcile";

/// What the GitHub adapter can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GitHubEffect {
    /// Make GitHub match the wanted freeze state, as of `generation` or newer.
    Reconcile { generation: i64 },
    /// Put the pull requests merged shortly before the declaration on the timeline.
    RecentChanges { incident_id: IncidentId },
    /// Pin an exempted pull request's head, set its freeze status to success, then queue
    /// its merge at that head.
    Exempt {
        repo: String,
        pr: u64,
        allowed_by: String,
        reason: Option<String>,
        /// The exemption's attempt (see `store::Exemption`); 0 in effects queued before
        /// attempts existed.
        #[serde(default)]
        attempt: i64,
    },
    /// Merge an exempted pull request as a bypass actor, only at `sha`.
    MergeExempt {
        repo: String,
        pr: u64,
        sha: String,
        allowed_by: String,
        #[serde(default)]
        attempt: i64,
    },
    /// A head that arrived by webhook: give it the freeze status if its branch is frozen.
    PrStatus(PullHead),
    /// (Re)publish the incident's post-mortem as a pull request.
    PublishPostmortem { incident_id: IncidentId },
}

/// A pull request's head as a `pull_request` webhook announced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullHead {
    pub repo: String,
    pub pr: u64,
    pub sha: String,
    /// The branch the pull request targets.
    pub base: String,
    pub default_branch: String,
}

impl TypedEffect for GitHubEffect {
    fn kind(&self) -> &'static str {
        match self {
            Self::Reconcile { .. } => RECONCILE,
            Self::RecentChanges { .. } => RECENT_CHANGES,
            Self::Exempt { .. } => EXEMPT,
            Self::MergeExempt { .. } => MERGE_EXEMPT,
            Self::PrStatus(_) => PR_STATUS,
            Self::PublishPostmortem { .. } => PUBLISH_POSTMORTEM,
        }
    }
}

/// The reconcile a freeze or unfreeze of `generation` needs.
pub fn reconcile(generation: i64, incident: Option<&IncidentId>) -> NewEffect {
    NewEffect::typed(
        incident.cloned(),
        &GitHubEffect::Reconcile { generation },
        format!("{RECONCILE}:gen{generation}"),
    )
    .ordered(FREEZE_GROUP)
}

/// The periodic drift repair: one per `bucket` (a reconcile interval), whichever replica
/// queues it first.
pub fn periodic_reconcile(generation: i64, bucket: i64) -> NewEffect {
    let mut effect = reconcile(generation, None);
    effect.idempotency_key = format!("{RECONCILE}:periodic:{bucket}");
    effect
}

/// "What did we change last?" for `incident`: once per incident.
pub fn recent_changes(incident: &IncidentId) -> NewEffect {
    NewEffect::typed(
        Some(incident.clone()),
        &GitHubEffect::RecentChanges {
            incident_id: incident.clone(),
        },
        format!("{RECENT_CHANGES}:{incident}"),
    )
}

/// Attempt `attempt` at exempting `repo#pr`, by `allowed_by`. The core starts a new attempt
/// only once the previous one ended, so asking again while one runs (a double submit, a
/// retried command, someone else asking) is the same effect; asking again after it ended (a
/// push, a check gone green) is a new one. The repository is keyed in lower case, as
/// GitHub's names are case-insensitive.
pub fn exempt(
    incident: Option<&IncidentId>,
    repo: &str,
    pr: u64,
    allowed_by: &str,
    reason: Option<&str>,
    attempt: i64,
) -> NewEffect {
    let effect = GitHubEffect::Exempt {
        repo: repo.to_string(),
        pr,
        allowed_by: allowed_by.to_string(),
        reason: reason.map(str::to_string),
        attempt,
    };
    let key = format!(
        "{EXEMPT}:{}#{pr}:attempt{attempt}",
        repo.to_ascii_lowercase()
    );
    NewEffect::typed(incident.cloned(), &effect, key).ordered(FREEZE_GROUP)
}

/// The merge of an exempted `repo#pr` at exactly `sha`, for attempt `attempt`: one per
/// attempt and head. Its own FIFO group, not the freeze's: waiting for checks must not hold
/// up reconciles.
pub fn merge_exempt(
    incident: Option<&IncidentId>,
    repo: &str,
    pr: u64,
    sha: &str,
    allowed_by: &str,
    attempt: i64,
) -> NewEffect {
    let effect = GitHubEffect::MergeExempt {
        repo: repo.to_string(),
        pr,
        sha: sha.to_string(),
        allowed_by: allowed_by.to_string(),
        attempt,
    };
    let key = format!(
        "{MERGE_EXEMPT}:{}#{pr}:attempt{attempt}@{sha}",
        repo.to_ascii_lowercase()
    );
    NewEffect::typed(incident.cloned(), &effect, key).ordered(format!("github:merge:{repo}#{pr}"))
}

/// The freeze status for a head announced by the webhook delivery `delivery`. Each delivery
/// is its own effect; a second one for the same head writes nothing new, because the
/// handler skips a commit that already shows the status.
pub fn pr_status(head: PullHead, delivery: &str) -> NewEffect {
    let key = format!("{PR_STATUS}:{}@{}:{delivery}", head.repo, head.sha);
    NewEffect::typed(None, &GitHubEffect::PrStatus(head), key).ordered(FREEZE_GROUP)
}

/// Publishing `incident`'s post-mortem at `revision` (what it contains, e.g. `v7` or a
/// digest of its material): the same revision twice is one effect.
pub fn publish_postmortem(incident: &IncidentId, revision: &str) -> NewEffect {
    NewEffect::typed(
        Some(incident.clone()),
        &GitHubEffect::PublishPostmortem {
            incident_id: incident.clone(),
        },
        format!("{PUBLISH_POSTMORTEM}:{incident}:{revision}"),
    )
    .ordered(format!("github:publish:{incident}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Effect;

    fn head() -> PullHead {
        PullHead {
            repo: "acme/api".into(),
            pr: 5,
            sha: "abc".into(),
            base: "main".into(),
            default_branch: "main".into(),
        }
    }

    #[test]
    fn effects_round_trip_through_the_queue() {
        let head = head();
        let id = IncidentId("i1".into());
        for (new, expected) in [
            (
                reconcile(3, Some(&id)),
                GitHubEffect::Reconcile { generation: 3 },
            ),
            (
                pr_status(head.clone(), "d-1"),
                GitHubEffect::PrStatus(head.clone()),
            ),
            (
                exempt(None, "acme/api", 5, "ops", Some("hotfix"), 2),
                GitHubEffect::Exempt {
                    repo: "acme/api".into(),
                    pr: 5,
                    allowed_by: "ops".into(),
                    reason: Some("hotfix".into()),
                    attempt: 2,
                },
            ),
        ] {
            assert_eq!(new.kind, expected.kind());
            assert_eq!(
                Effect::as_claimed(&new).decode::<GitHubEffect>(),
                Ok(expected)
            );
        }
    }

    #[test]
    fn keys_come_from_content() {
        let id = IncidentId("i1".into());
        assert_eq!(reconcile(3, None).idempotency_key, "github.reconcile:gen3");
        assert_eq!(
            exempt(Some(&id), "acme/api", 5, "ops", Some("a"), 2).idempotency_key,
            exempt(None, "acme/api", 5, "ops", Some("b"), 2).idempotency_key,
            "a double submit is one effect"
        );
        assert_eq!(
            exempt(None, "Acme/API", 5, "ops", None, 2).idempotency_key,
            exempt(None, "acme/api", 5, "dev", None, 2).idempotency_key,
            "someone else asking during the same attempt is the same effect"
        );
        assert_ne!(
            exempt(None, "acme/api", 5, "ops", None, 2).idempotency_key,
            exempt(None, "acme/api", 5, "ops", None, 3).idempotency_key,
            "a new attempt is a new exemption"
        );
        assert_ne!(
            merge_exempt(None, "acme/api", 5, "abc", "ops", 1).idempotency_key,
            merge_exempt(None, "acme/api", 5, "abc", "ops", 2).idempotency_key,
            "the same head merged again in a new attempt is a new merge"
        );
        let head = head();
        assert_eq!(
            pr_status(head.clone(), "d-1").idempotency_key,
            "github.pr_status:acme/api@abc:d-1"
        );
        assert_ne!(
            pr_status(head.clone(), "d-1").idempotency_key,
            pr_status(head, "d-2").idempotency_key
        );
        assert_eq!(
            publish_postmortem(&id, "v4").idempotency_key,
            publish_postmortem(&id, "v4").idempotency_key
        );
    }

    #[test]
    fn a_payload_of_another_shape_fails_permanently() {
        let mut effect = Effect::as_claimed(&reconcile(1, None));
        effect.payload = serde_json::from_str(r#"{"generation": 1}"#).unwrap();
        assert!(matches!(
            effect.decode::<GitHubEffect>(),
            Err(crate::effects::handler::EffectError::Permanent { .. })
        ));
    }
}
