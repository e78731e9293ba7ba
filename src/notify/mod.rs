//! Company-wide notices: deciding which event goes where (pure), rendering its text
//! from `templates/notice.txt`, and delivering it through Slack-compatible incoming
//! webhooks ([`webhook`]).

pub mod webhook;

use askama::Template;
use serde::{Deserialize, Serialize};

use crate::effects::planner::EffectPlanner;
use crate::effects::{Audience, NewEffect, TypedEffect};
use crate::incident::identity::fallback_name;
use crate::incident::model::{Incident, Severity};
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;

/// The effect kind for a POST to an incoming webhook.
pub const WEBHOOK_EFFECT: &str = "notify.webhook";

/// What the webhook adapter does: POST a notice's text to one named webhook. The queue
/// stores the name, never the URL (a credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebhookEffect {
    Notice { webhook: String, text: String },
}

impl TypedEffect for WebhookEffect {
    fn kind(&self) -> &'static str {
        WEBHOOK_EFFECT
    }
}

/// A webhook as the planner sees it: a name and a severity threshold, never the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRoute {
    pub name: String,
    pub min_severity: Severity,
}

#[derive(Template)]
#[template(path = "notice.txt")]
struct NoticeText<'a> {
    drill: bool,
    icon: &'a str,
    number: String,
    severity: Severity,
    headline: String,
    lines: Vec<String>,
    status: &'a str,
    commander: &'a str,
}

/// Whether a route wants this event. A downgrade below the threshold is still sent where
/// the earlier, higher severity was, so nobody is left believing it is still a SEV1.
pub fn route_wants(route: &NoticeRoute, incident: &Incident, event: &IncidentEvent) -> bool {
    incident.severity.meets(route.min_severity)
        || matches!(event, IncidentEvent::SeverityChanged { from } if from.meets(route.min_severity))
}

/// The text of a company-wide notice for `event`, or `None` for events the company does not
/// need to hear about (role changes, acknowledgements, reminders).
pub fn render_notice(incident: &Incident, event: &IncidentEvent) -> anyhow::Result<Option<String>> {
    let (icon, headline, lines) = match event {
        IncidentEvent::Declared => (
            "🚨",
            format!("declared: {}", incident.title),
            vec![format!(
                "Declared by {} at {} UTC.",
                fallback_name(&incident.declared_by),
                incident.declared_at.format("%Y-%m-%d %H:%M")
            )],
        ),
        IncidentEvent::Update { text } => (
            "📣",
            format!("update: {}", incident.title),
            vec![text.clone()],
        ),
        IncidentEvent::StatusChanged { from } => (
            "🔄",
            format!(
                "is now {} (was {from}): {}",
                incident.status, incident.title
            ),
            vec![],
        ),
        IncidentEvent::SeverityChanged { from } => (
            "⚠️",
            format!(
                "severity is now {} (was {from}): {}",
                incident.severity, incident.title
            ),
            vec![],
        ),
        IncidentEvent::Resolved => (
            "✅",
            format!("resolved: {}", incident.title),
            resolved_lines(incident),
        ),
        IncidentEvent::Acknowledged
        | IncidentEvent::RoleAssigned { .. }
        | IncidentEvent::Overdue => {
            return Ok(None);
        }
    };
    let text = NoticeText {
        drill: incident.drill,
        icon,
        number: incident.number.to_string(),
        severity: incident.severity,
        headline,
        lines,
        status: incident.status.as_str(),
        commander: incident
            .commander
            .as_deref()
            .map_or("unassigned", fallback_name),
    };
    Ok(Some(text.render()?.trim_end().to_string()))
}

fn resolved_lines(incident: &Incident) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(summary) = &incident.summary {
        lines.push(format!("Summary: {summary}"));
    }
    if let Some(resolved) = incident.resolved_at {
        let took = crate::incident::timeline::short_duration(resolved - incident.declared_at);
        lines.push(format!("Resolved {took} after it was declared."));
    }
    lines
}

/// Plans one webhook POST per route that wants the event. The idempotency key includes the
/// incident version the event belongs to, so re-planning the same change can never enqueue a
/// second notice.
pub struct WebhookPlanner {
    pub routes: Vec<NoticeRoute>,
}

impl EffectPlanner for WebhookPlanner {
    fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        _actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        let wanted: Vec<&NoticeRoute> = self
            .routes
            .iter()
            .filter(|r| route_wants(r, incident, event))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let Some(text) = render_notice(incident, event)? else {
            return Ok(Vec::new());
        };
        Ok(wanted
            .into_iter()
            .map(|route| {
                let effect = WebhookEffect::Notice {
                    webhook: route.name.clone(),
                    text: text.clone(),
                };
                let key = format!(
                    "notice:{}:v{}:{}",
                    incident.id, incident.version, route.name
                );
                // One FIFO per webhook and incident: a receiver never shows "resolved"
                // before "declared", and one webhook's backlog never holds up another's.
                NewEffect::typed(Some(incident.id.clone()), &effect, key)
                    .ordered(format!("webhook:{}:{}", route.name, incident.id))
                    .announcing(Audience::Webhook)
            })
            .collect())
    }
}
