//! Publishing a post-mortem as a pull request: a branch per incident, the rendered Markdown
//! committed to it through the contents API, and one pull request. Running it again updates
//! the same branch, file and pull request, so re-publishing after more is written never
//! opens a second one. It runs as an effect, so a GitHub outage means a retry, not a loss.

use std::sync::Arc;

use async_trait::async_trait;

use super::client::GitHubClient;
use super::effect::{GitHubEffect, PUBLISH_POSTMORTEM};
use crate::config::PublishConfig;
use crate::effects::Effect;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::incident::model::Incident;
use crate::store::Store;

pub struct Publisher {
    pub client: Arc<GitHubClient>,
    pub store: Store,
    pub config: PublishConfig,
    pub templates: Option<std::path::PathBuf>,
}

#[async_trait]
impl EffectHandler for Publisher {
    fn kinds(&self) -> &'static [&'static str] {
        &[PUBLISH_POSTMORTEM]
    }

    fn target(&self, _effect: &Effect) -> String {
        "github".into()
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let GitHubEffect::PublishPostmortem { incident_id: id } = effect.decode()? else {
            return Err(EffectError::permanent(format!(
                "{} is not a post-mortem publish",
                effect.kind
            )));
        };
        let incident = self
            .store
            .incident_by_id(&id)
            .await
            .map_err(db)?
            .ok_or_else(|| EffectError::permanent("the incident no longer exists"))?;
        let view = crate::postmortem::load(&self.store, incident.number)
            .await
            .map_err(db)?
            .ok_or_else(|| EffectError::permanent("the incident no longer exists"))?;
        let md = crate::postmortem::overrides::render(
            self.templates.as_deref(),
            &view,
            crate::postmortem::overrides::Format::Markdown,
        )
        .map_err(|e| EffectError::permanent(format!("rendering failed: {e}")))?
        .logged();
        let repo = &self.config.repo;
        let owner = repo.split('/').next().unwrap_or_default();
        let branch = format!(
            "firebreak/postmortem-{}",
            incident.number.to_string().to_lowercase()
        );
        let path = file_path(&self.config.path, &incident);
        let base = self.client.repo(repo).await?.default_branch;
        if self.client.branch_sha(repo, &branch).await?.is_none() {
            let sha =
                self.client.branch_sha(repo, &base).await?.ok_or_else(|| {
                    EffectError::permanent(format!("{repo} has no branch {base}"))
                })?;
            self.client.create_branch(repo, &branch, &sha).await?;
        }
        let existing = self.client.file_sha(repo, &path, &branch).await?;
        // The title is what people typed: no live @mention or #123 from it (see `text`).
        let title_text = super::text::neutralize(&incident.title);
        let message = format!("Post-mortem for {}: {title_text}", incident.number);
        self.client
            .put_file(repo, &path, &branch, &message, &md, existing.as_deref())
            .await?;
        let title = format!("Post-mortem: {} {title_text}", incident.number);
        let body = format!(
            "Drafted by firebreak from the {} timeline. Edit `{path}` on this branch, or re-publish from chat.",
            incident.number
        );
        let (verb, pull) = match self.client.open_pull_from(repo, owner, &branch).await? {
            Some(pull) => {
                self.client
                    .update_pull(repo, pull.number, &title, &body)
                    .await?;
                ("updated", pull)
            }
            None => (
                "opened",
                self.client
                    .create_pull(repo, &title, &branch, &base, &body)
                    .await?,
            ),
        };
        // The worker records this outcome on the incident's timeline.
        let text = format!(
            "Post-mortem {verb} as {repo}#{} ({})",
            pull.number, pull.html_url
        );
        Ok(Some(text))
    }
}

/// Fills `{date}`, `{number}` and `{slug}` in the configured path.
pub fn file_path(pattern: &str, incident: &Incident) -> String {
    let mut slug = String::new();
    for c in incident.title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    pattern
        .replace(
            "{date}",
            &incident.declared_at.format("%Y-%m-%d").to_string(),
        )
        .replace("{number}", &incident.number.to_string().to_lowercase())
        .replace("{slug}", slug.trim_matches('-'))
}

fn db(e: anyhow::Error) -> EffectError {
    tracing::error!(error = %format!("{e:#}"), "database error while publishing a post-mortem");
    EffectError::retryable("database unavailable")
}
