//! Post-mortem material written during or after an incident: action items and the written
//! sections (summary, impact, root cause, …). They live beside the incident, not in its
//! row, so adding them never conflicts with responders changing the incident.

use sha2::{Digest, Sha256};

use super::command::{DocStatus, PostmortemVerb};
use super::error::{ServiceError, UserError};
use super::identity::Identity;
use super::model::{Incident, IncidentNumber};
use super::permissions::Actor;
use super::reply::Reply;
use super::service::{IncidentService, Outcome};
use super::timeline::{EntryKind, NewEntry};
use crate::effects::planner::Intent;
use crate::store::ActionDone;

/// How much of the Markdown a chat reply carries; the full draft is behind the link.
const SNIPPET_CHARS: usize = 2800;

impl IncidentService {
    /// The draft post-mortem: a link to the page (when `server.public_url` is set) and the
    /// start of the Markdown as a snippet.
    pub(super) async fn postmortem_draft(
        &self,
        number: IncidentNumber,
    ) -> Result<Outcome, ServiceError> {
        let view = crate::postmortem::load(self.store(), number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        let templates = self.policy().postmortem_templates.as_deref();
        let md = crate::postmortem::overrides::render(
            templates,
            &view,
            crate::postmortem::overrides::Format::Markdown,
        )?
        .logged();
        let link = match &self.policy().public_url {
            Some(base) => format!(
                "{}/incidents/{number}/postmortem.html",
                base.trim_end_matches('/')
            ),
            None => format!("`firebreak postmortem {number} --format html`"),
        };
        let snippet: String = md.chars().take(SNIPPET_CHARS).collect();
        let more = if snippet.len() < md.len() {
            "\n…"
        } else {
            ""
        };
        let text = format!("📝 Post-mortem draft for {number}: {link}\n```\n{snippet}{more}\n```");
        Ok(Outcome {
            reply: Reply::public(text),
            effects: Vec::new(),
        })
    }

    /// Queues (re)publishing the post-mortem as a pull request.
    pub(super) async fn postmortem_publish(
        &self,
        number: IncidentNumber,
    ) -> Result<Outcome, ServiceError> {
        if !self.policy().publish_postmortems {
            return Err(UserError::invalid(
                "Publishing post-mortems needs GitHub and [postmortem.github] repo in the config.",
            )
            .into());
        }
        let incident = self
            .store()
            .incident_by_number(number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        let revision = self.material_revision(&incident).await?;
        let intent = Intent::PublishPostmortem { revision };
        let effects = self
            .policy()
            .planners
            .plan_intent(&incident.id, &intent, "publish");
        let ids = self.enqueue_all(&effects).await?;
        Ok(Outcome {
            reply: Reply::public(format!(
                "Publishing the {number} post-mortem as a pull request."
            )),
            effects: ids,
        })
    }

    /// What a publish would contain, as a key: the incident's version and a digest of the
    /// written sections and action items. Asking twice for the same content (a double
    /// submit) is one publish; anything written in between makes a new one.
    async fn material_revision(&self, incident: &Incident) -> anyhow::Result<String> {
        let fields = self.store().postmortem_fields(&incident.id).await?;
        let actions = self.store().action_items(&incident.id).await?;
        let material = serde_json::to_vec(&(fields, actions))?;
        let digest = hex::encode(Sha256::digest(&material));
        Ok(format!("v{}-{}", incident.version, &digest[..16]))
    }

    /// Action items and written sections, already authorized and cleaned.
    pub(super) async fn postmortem_material(
        &self,
        number: IncidentNumber,
        verb: PostmortemVerb,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let incident: Incident = tx
            .incident_for_update(number)
            .await?
            .ok_or(UserError::NotFound(number))?;
        let entry = |text: String| NewEntry {
            incident_id: Some(incident.id.clone()),
            occurred_at: now,
            actor: actor.identity().to_string(),
            source: actor.source,
            kind: EntryKind::ActionItem,
            text,
        };
        let reply = match verb {
            PostmortemVerb::ActionAdd { text, owner, term } => {
                let owner = owner.as_deref().map(Identity::from_user_arg).transpose()?;
                let n = tx
                    .add_action(
                        &incident.id,
                        &text,
                        owner.as_ref().map(Identity::as_str),
                        term.as_str(),
                        now,
                    )
                    .await?;
                let who = owner
                    .as_ref()
                    .map(|o| format!(" (owner {})", o.fallback_name()))
                    .unwrap_or_default();
                let line = format!("Action item {n} ({}): {text}{who}", term.as_str());
                tx.append_timeline(&entry(line.clone())).await?;
                format!("{}: {line}.", incident.number)
            }
            PostmortemVerb::ActionDone { number: n } => {
                let refused = match tx.complete_action(&incident.id, n, now).await? {
                    ActionDone::Done => None,
                    ActionDone::AlreadyDone => Some(format!(
                        "{}'s action item {n} is already done.",
                        incident.number
                    )),
                    ActionDone::Missing => {
                        Some(format!("{} has no action item {n}.", incident.number))
                    }
                };
                if let Some(message) = refused {
                    return Err(UserError::invalid(message).into());
                }
                tx.append_timeline(&entry(format!("Action item {n} done")))
                    .await?;
                format!("{}: action item {n} is done.", incident.number)
            }
            PostmortemVerb::Set { field, text } => {
                if tx.postmortem_status(&incident.id).await?.as_deref()
                    == Some(DocStatus::Final.as_str())
                {
                    return Err(UserError::invalid(format!(
                        "{}'s post-mortem is final; set its status back with `postmortem {} status in-review` to edit it.",
                        incident.number, incident.number
                    ))
                    .into());
                }
                let author = actor.identity();
                tx.set_postmortem_field(&incident.id, field.as_str(), &text, author.as_str())
                    .await?;
                format!("{}: post-mortem {} saved.", incident.number, field.as_str())
            }
            PostmortemVerb::Status(status) => {
                if status == DocStatus::Final && incident.resolved_at.is_none() {
                    return Err(UserError::invalid(format!(
                        "{}'s post-mortem can't be final while the incident is open; resolve it first.",
                        incident.number
                    ))
                    .into());
                }
                tx.set_postmortem_status(
                    &incident.id,
                    status.as_str(),
                    actor.identity().as_str(),
                    now,
                )
                .await?;
                tx.append_timeline(&entry(format!("Post-mortem marked {}", status.as_str())))
                    .await?;
                format!(
                    "{}: the post-mortem is now {}.",
                    incident.number,
                    status.as_str()
                )
            }
            PostmortemVerb::ReviewerAdd { who } => {
                let who = Identity::from_user_arg(&who)?;
                if !tx
                    .add_reviewer(&incident.id, who.as_str(), actor.identity().as_str(), now)
                    .await?
                {
                    return Err(UserError::invalid(format!(
                        "{} already reviews {}'s post-mortem.",
                        who.fallback_name(),
                        incident.number
                    ))
                    .into());
                }
                tx.append_timeline(&entry(format!(
                    "Post-mortem reviewer added: {}",
                    who.as_str()
                )))
                .await?;
                format!(
                    "{}: {} reviews the post-mortem.",
                    incident.number,
                    who.fallback_name()
                )
            }
            other @ (PostmortemVerb::Draft | PostmortemVerb::Publish) => {
                return Err(UserError::invalid(format!(
                    "`{}` is not post-mortem material.",
                    other.name()
                ))
                .into());
            }
        };
        tx.commit().await?;
        Ok(Outcome {
            reply: Reply::public(reply),
            effects: Vec::new(),
        })
    }
}
