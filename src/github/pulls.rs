//! The GitHub effects around pull requests, beside the reconciler: "what did we change
//! last?" on declare, exemptions, and freeze statuses on heads that arrive by webhook.

use chrono::{DateTime, Utc};

use super::client::Pull;
use super::effect::PullHead;
use super::freeze::{self, STATUS_CONTEXT, Wanted};
use super::handler::{GitHubEffects, db_error, short};
use super::reconcile::covering_scope;
use super::statuses::exempted_by;
use crate::effects::Effect;
use crate::effects::handler::EffectError;
use crate::incident::model::{Incident, IncidentId};
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::store::FreezeScope;

/// Merged pull requests listed in the incident room at most.
const LISTED: usize = 15;

/// A pull request merged into `repo` at `merged`.
struct Merged {
    merged: DateTime<Utc>,
    repo: String,
    pull: Pull,
}

impl GitHubEffects {
    /// "What did we change last?": pull requests merged into the frozen repositories in the
    /// hours before the declaration, on the timeline at their merge times. A repository
    /// GitHub refuses to list is named and skipped; one it cannot answer for now retries
    /// the effect.
    pub(super) async fn recent_changes(
        &self,
        effect: &Effect,
        id: &IncidentId,
    ) -> Result<Option<String>, EffectError> {
        let Some(incident) = self.store.incident_by_id(id).await.map_err(db_error)? else {
            return Err(EffectError::permanent("the incident no longer exists"));
        };
        let repos = self.incident_repos(id).await?;
        let since = incident.declared_at
            - chrono::Duration::hours(i64::from(self.config.recent_changes_hours));
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        for repo in repos {
            match self.client.recently_closed_pulls(&repo).await {
                Ok(pulls) => found.extend(merged_between(&repo, pulls, since, &incident)),
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => skipped.push(format!("{repo} ({e})")),
            }
        }
        found.sort_by_key(|m| m.merged);
        for m in &found {
            let entry = recent_change_entry(id, m);
            self.store.append_timeline(&entry).await.map_err(db_error)?;
        }
        let mut text = recent_changes_text(&found, &incident, self.config.recent_changes_hours);
        if !skipped.is_empty() {
            text.push_str(&format!("\nCould not list: {}", skipped.join(", ")));
        }
        self.tell_room(effect, "recent", text).await?;
        Ok(Some(format!("{} recent changes found", found.len())))
    }

    /// The repositories frozen for incident `id`, with `owner/*` expanded.
    async fn incident_repos(&self, id: &IncidentId) -> Result<Vec<String>, EffectError> {
        let scopes: Vec<FreezeScope> = self.store.freeze_scopes().await.map_err(db_error)?;
        let mine: Vec<FreezeScope> = scopes
            .into_iter()
            .filter(|s| s.incident_id.as_ref() == Some(id))
            .collect();
        let expand: Vec<String> = mine
            .iter()
            .filter_map(|s| s.scope.strip_suffix("/*").map(str::to_string))
            .collect();
        let orgs = self.org_repos(&expand).await;
        if let Some((_, e)) = orgs.failed.into_iter().next() {
            return Err(e.into());
        }
        let mut repos: Vec<String> = mine
            .iter()
            .filter(|s| !s.scope.ends_with("/*"))
            .map(|s| s.scope.clone())
            .collect();
        repos.extend(orgs.repos.into_values().flatten());
        Ok(repos)
    }

    pub(super) async fn exempt(
        &self,
        repo: &str,
        number: u64,
        by: &str,
    ) -> Result<Option<String>, EffectError> {
        let pr = self.client.pull(repo, number).await?;
        let wanted = Wanted {
            scope: repo.to_string(),
            frozen: true,
            drill: false,
            generation: 0,
            reason: None,
        };
        let text = freeze::status_description(&wanted, None, Some(by));
        let status = self
            .client
            .create_status(repo, &pr.head.sha, "success", &text, STATUS_CONTEXT)
            .await?;
        let generation = self.store.freeze_generation().await.map_err(db_error)?;
        self.store
            .set_pr_status(repo, &pr.head.sha, number, "success", generation)
            .await
            .map_err(db_error)?;
        Ok(Some(format!(
            "{repo}#{number} exempted: status success on {} (GitHub {status})",
            short(&pr.head.sha)
        )))
    }

    /// A pull request opened or updated while frozen: put the freeze status on its new head.
    pub(super) async fn pr_status(&self, head: &PullHead) -> Result<Option<String>, EffectError> {
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        let Some(scope) = covering_scope(&scopes, &head.repo) else {
            return Ok(None);
        };
        if !scope.frozen || !self.branch_frozen(head) {
            return Ok(None);
        }
        let exemptions = self.store.exemptions(&head.repo).await.map_err(db_error)?;
        let exempt = exempted_by(&exemptions, head.pr);
        let incident = match &scope.incident_id {
            Some(id) => self.store.incident_by_id(id).await.map_err(db_error)?,
            None => None,
        };
        let number = incident.map(|i| i.number.to_string());
        let wanted = Wanted {
            scope: scope.scope.clone(),
            frozen: true,
            drill: scope.drill,
            generation: scope.generation,
            reason: scope.reason.clone(),
        };
        let state = freeze::pr_status(true, exempt.is_some());
        let text = freeze::status_description(&wanted, number.as_deref(), exempt);
        let (repo, sha) = (&head.repo, head.sha.clone());
        let wrote = self
            .set_status(
                repo,
                sha,
                head.pr,
                state.to_string(),
                text,
                scope.generation,
            )
            .await?;
        Ok(wrote.then(|| {
            format!(
                "{repo}#{}: {state} status set on {} while frozen",
                head.pr,
                short(&head.sha)
            )
        }))
    }

    fn branch_frozen(&self, head: &PullHead) -> bool {
        if self.config.branches.is_empty() {
            head.base == head.default_branch
        } else {
            self.config.branches.contains(&head.base)
        }
    }
}

fn merged_between(
    repo: &str,
    pulls: Vec<Pull>,
    since: DateTime<Utc>,
    incident: &Incident,
) -> impl Iterator<Item = Merged> {
    let repo = repo.to_string();
    let until = incident.declared_at;
    pulls.into_iter().filter_map(move |pull| {
        let merged = pull.merged_at.filter(|m| *m >= since && *m <= until)?;
        Some(Merged {
            merged,
            repo: repo.clone(),
            pull,
        })
    })
}

fn recent_change_entry(id: &IncidentId, m: &Merged) -> NewEntry {
    let pr = &m.pull;
    let author = pr.user.as_ref().map_or("unknown", |u| u.login.as_str());
    NewEntry {
        incident_id: Some(id.clone()),
        occurred_at: m.merged,
        actor: crate::incident::Identity::lossy("github", author).to_string(),
        source: Source::Github,
        kind: EntryKind::RecentChange,
        text: format!(
            "{}#{} “{}” merged by {author} ({})",
            m.repo, pr.number, pr.title, pr.html_url
        ),
    }
}

/// The message for the incident room, newest first.
fn recent_changes_text(found: &[Merged], incident: &Incident, hours: u32) -> String {
    if found.is_empty() {
        return format!(
            "🔎 No pull requests were merged into the frozen repositories in the {hours}h before {}.",
            incident.number
        );
    }
    let lines: Vec<String> = found
        .iter()
        .rev()
        .take(LISTED)
        .map(|m| {
            format!(
                "• {} {}#{} {} ({})",
                m.merged.format("%H:%M"),
                m.repo,
                m.pull.number,
                m.pull.title,
                m.pull.html_url
            )
        })
        .collect();
    format!(
        "🔎 Merged in the {hours}h before {} (newest first):\n{}",
        incident.number,
        lines.join("\n")
    )
}
