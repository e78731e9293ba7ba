//! The moments a runbook report measures, read from what the rest of the store already
//! records: when the first company-wide notice was delivered (the effects queue), when a
//! merge freeze was first applied on GitHub (the timeline), and how each `notify` step's
//! customer notice ended (its effect, found by the idempotency key the step queued it with).

use chrono::{DateTime, Utc};

use super::{Store, from_ms, opt_from_ms};
use crate::incident::IncidentId;
use crate::incident::timeline::EntryKind;

/// Milestones of one incident, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunbookMilestones {
    /// The first company-wide notice (webhook, Slack or Discord) delivered.
    pub first_notice_at: Option<DateTime<Utc>>,
    /// The first `freeze_applied` timeline entry: GitHub has the ruleset.
    pub first_freeze_applied_at: Option<DateTime<Utc>>,
    /// The customer notices runbook steps queued that have ended, oldest first.
    pub step_posts: Vec<StepPost>,
}

/// How the post a runbook step queued (a customer notice, a page) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPost {
    pub step_id: String,
    /// Delivered; `false`: given up on (the effect failed).
    pub delivered: bool,
    /// When it was delivered, or given up on.
    pub at: DateTime<Utc>,
}

/// The effect kinds of the company-wide notice, and of a step's post outside the room.
const NOTICE_KINDS: [&str; 2] = [
    crate::chat::slack::effects::types::NOTICE,
    crate::chat::discord::effects::types::NOTICE,
];
const WEBHOOK: &str = crate::notify::WEBHOOK_EFFECT;
const SLACK_POST: &str = crate::chat::slack::effects::types::POST;

impl Store {
    /// The milestones of `incident` that its runbook report measures.
    pub async fn runbook_milestones(
        &self,
        incident: &IncidentId,
    ) -> anyhow::Result<RunbookMilestones> {
        let mut conn = self.reader().await?;
        let (notice,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(updated_at) FROM effects WHERE incident_id = $1 AND state = 'done' \
             AND (kind IN ($2, $3) OR (kind = $4 AND idempotency_key LIKE 'notice:%'))",
        )
        .bind(&incident.0)
        .bind(NOTICE_KINDS[0])
        .bind(NOTICE_KINDS[1])
        .bind(WEBHOOK)
        .fetch_one(&mut *conn)
        .await?;
        let (frozen,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(occurred_at) FROM timeline_entries WHERE incident_id = $1 AND kind = $2",
        )
        .bind(&incident.0)
        .bind(EntryKind::FreezeApplied.as_str())
        .fetch_one(&mut *conn)
        .await?;
        let posts: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT idempotency_key, state, updated_at FROM effects WHERE incident_id = $1 \
             AND kind IN ($2, $3) AND state IN ('done', 'failed') AND idempotency_key LIKE $4 \
             ORDER BY updated_at, id",
        )
        .bind(&incident.0)
        .bind(WEBHOOK)
        .bind(SLACK_POST)
        .bind(format!("%:runbook:{}:%", incident.0))
        .fetch_all(&mut *conn)
        .await?;
        Ok(RunbookMilestones {
            first_notice_at: opt_from_ms(notice),
            first_freeze_applied_at: opt_from_ms(frozen),
            step_posts: posts
                .into_iter()
                .filter_map(|(key, state, at)| step_post(incident, &key, &state, at))
                .collect(),
        })
    }
}

/// The step a post's key names (`notify.webhook:{id}:runbook:{id}:{step}`), and how it ended.
fn step_post(incident: &IncidentId, key: &str, state: &str, at: i64) -> Option<StepPost> {
    let marker = format!(":runbook:{}:", incident.0);
    let (_, step) = key.split_once(&marker)?;
    Some(StepPost {
        step_id: step.to_string(),
        delivered: state == "done",
        at: from_ms(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_key_names_its_step() {
        let id = IncidentId("abc".into());
        let post = step_post(
            &id,
            "notify.webhook:abc:runbook:abc:tell_customers",
            "done",
            0,
        );
        assert_eq!(post.map(|p| p.step_id), Some("tell_customers".into()));
        assert_eq!(
            step_post(&id, "slack.post:abc:runbook:xyz:s", "done", 0),
            None
        );
    }
}
