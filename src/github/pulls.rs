//! The GitHub effects around pull requests, beside the reconciler: "what did we change
//! last?" on declare, exemptions, and freeze statuses on heads that arrive by webhook.

use super::freeze::{self, STATUS_CONTEXT, Wanted};
use super::reconcile::{GitHubEffects, covering_scope, db_error, short, str_of};
use crate::effects::Effect;
use crate::effects::handler::EffectError;
use crate::incident::model::IncidentId;
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::store::FreezeScope;

impl GitHubEffects {
    /// "What did we change last?": pull requests merged into the frozen repositories in the
    /// hours before the declaration, on the timeline at their merge times.
    pub(super) async fn recent_changes(
        &self,
        effect: &Effect,
    ) -> Result<Option<String>, EffectError> {
        let id = IncidentId(
            effect.payload["incident_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        let Some(incident) = self.store.incident_by_id(&id).await.map_err(db_error)? else {
            return Err(EffectError::permanent("the incident no longer exists"));
        };
        let scopes: Vec<FreezeScope> = self.store.freeze_scopes().await.map_err(db_error)?;
        let mine: Vec<FreezeScope> = scopes
            .into_iter()
            .filter(|s| s.incident_id.as_ref() == Some(&id))
            .collect();
        let expand: Vec<String> = mine
            .iter()
            .filter_map(|s| s.scope.strip_suffix("/*").map(str::to_string))
            .collect();
        let org_repos = self.org_repos(&expand).await?;
        let mut repos: Vec<String> = mine
            .iter()
            .filter(|s| !s.scope.ends_with("/*"))
            .map(|s| s.scope.clone())
            .collect();
        repos.extend(org_repos.into_values().flatten());
        let since = incident.declared_at
            - chrono::Duration::hours(i64::from(self.config.recent_changes_hours));
        let mut found = Vec::new();
        for repo in repos {
            for pr in self.client.recently_closed_pulls(&repo).await? {
                if let Some(merged) = pr
                    .merged_at
                    .filter(|m| *m >= since && *m <= incident.declared_at)
                {
                    found.push((merged, repo.clone(), pr));
                }
            }
        }
        found.sort_by_key(|(m, _, _)| *m);
        for (merged, repo, pr) in &found {
            let author = pr.user.as_ref().map_or("unknown", |u| u.login.as_str());
            let entry = NewEntry {
                incident_id: Some(id.clone()),
                occurred_at: *merged,
                actor: author.to_string(),
                source: Source::Github,
                kind: EntryKind::RecentChange,
                text: format!(
                    "{repo}#{} “{}” merged by {author} ({})",
                    pr.number, pr.title, pr.html_url
                ),
            };
            self.store.append_timeline(&entry).await.map_err(db_error)?;
        }
        let hours = self.config.recent_changes_hours;
        let text = if found.is_empty() {
            format!(
                "🔎 No pull requests were merged into the frozen repositories in the {hours}h before {}.",
                incident.number
            )
        } else {
            let lines: Vec<String> = found
                .iter()
                .rev()
                .take(15)
                .map(|(m, repo, pr)| {
                    format!(
                        "• {} {repo}#{} {} ({})",
                        m.format("%H:%M"),
                        pr.number,
                        pr.title,
                        pr.html_url
                    )
                })
                .collect();
            format!(
                "🔎 Merged in the {hours}h before {} (newest first):\n{}",
                incident.number,
                lines.join("\n")
            )
        };
        self.tell_incidents(effect, &text).await?;
        Ok(Some(format!("{} recent changes found", found.len())))
    }

    pub(super) async fn exempt(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let repo = effect.payload["repo"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let number = effect.payload["pr"].as_u64().unwrap_or_default();
        let by = effect.payload["allowed_by"].as_str().unwrap_or("someone");
        let pr = self.client.pull(&repo, number).await?;
        let wanted = Wanted {
            scope: repo.clone(),
            frozen: true,
            drill: false,
            generation: 0,
            reason: None,
        };
        let text = freeze::status_description(&wanted, None, Some(by));
        let status = self
            .client
            .create_status(&repo, &pr.head.sha, "success", &text, STATUS_CONTEXT)
            .await?;
        let generation = self.store.freeze_generation().await.map_err(db_error)?;
        self.store
            .set_pr_status(&repo, &pr.head.sha, number, "success", generation)
            .await
            .map_err(db_error)?;
        Ok(Some(format!(
            "{repo}#{number} exempted: status success on {} (GitHub {status})",
            short(&pr.head.sha)
        )))
    }

    /// A pull request opened or updated while frozen: put the freeze status on its new head.
    pub(super) async fn pr_status(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let p = &effect.payload;
        let (repo, sha, base) = (str_of(p, "repo"), str_of(p, "sha"), str_of(p, "base"));
        let number = p["pr"].as_u64().unwrap_or_default();
        let default_branch = str_of(p, "default_branch");
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        let Some(scope) = covering_scope(&scopes, &repo) else {
            return Ok(None);
        };
        let branch_frozen = if self.config.branches.is_empty() {
            base == default_branch
        } else {
            self.config.branches.contains(&base)
        };
        if !scope.frozen || !branch_frozen {
            return Ok(None);
        }
        let exempt = self
            .store
            .exemptions(&repo)
            .await
            .map_err(db_error)?
            .into_iter()
            .find(|e| e.pr_number == number as i64);
        let wanted = Wanted {
            scope: scope.scope.clone(),
            frozen: true,
            drill: scope.drill,
            generation: scope.generation,
            reason: scope.reason.clone(),
        };
        let incident = match &scope.incident_id {
            Some(id) => self
                .store
                .incident_by_id(id)
                .await
                .map_err(db_error)?
                .map(|i| i.number.to_string()),
            None => None,
        };
        let state = freeze::pr_status(true, exempt.is_some());
        let text = freeze::status_description(
            &wanted,
            incident.as_deref(),
            exempt.as_ref().map(|e| e.allowed_by.as_str()),
        );
        let wrote = self
            .set_status(
                &repo,
                sha.clone(),
                number,
                state.to_string(),
                text,
                scope.generation,
            )
            .await?;
        Ok(wrote.then(|| {
            format!(
                "{repo}#{number}: {state} status set on {} while frozen",
                short(&sha)
            )
        }))
    }
}
