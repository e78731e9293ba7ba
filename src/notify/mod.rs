//! Company-wide notices: deciding which announcement goes where (pure), rendering its text
//! from `templates/notice.txt`, and delivering it through Slack-compatible incoming
//! webhooks ([`webhook`]).

pub mod webhook;

use askama::Template;
use serde_json::json;

use crate::effects::NewEffect;
use crate::incident::model::{Incident, Severity};
use crate::incident::rules::Announcement;

/// The effect kind for a POST to an incoming webhook.
pub const WEBHOOK_EFFECT: &str = "notify.webhook";

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

/// Whether a route wants this announcement. A downgrade below the threshold is still sent
/// where the earlier, higher severity was, so nobody is left believing it is still a SEV1.
pub fn route_wants(route: &NoticeRoute, incident: &Incident, ann: &Announcement) -> bool {
    incident.severity.meets(route.min_severity)
        || matches!(ann, Announcement::SeverityChanged { from } if from.meets(route.min_severity))
}

/// The text of a notice (plain text; every incoming-webhook flavour accepts it).
pub fn render_notice(incident: &Incident, ann: &Announcement) -> anyhow::Result<String> {
    let (icon, headline, lines) = match ann {
        Announcement::Declared => (
            "🚨",
            format!("declared: {}", incident.title),
            vec![format!(
                "Declared by {} at {} UTC.",
                incident.declared_by,
                incident.declared_at.format("%Y-%m-%d %H:%M")
            )],
        ),
        Announcement::Update { text } => (
            "📣",
            format!("update: {}", incident.title),
            vec![text.clone()],
        ),
        Announcement::StatusChanged { from } => (
            "🔄",
            format!(
                "is now {} (was {from}): {}",
                incident.status, incident.title
            ),
            vec![],
        ),
        Announcement::SeverityChanged { from } => (
            "⚠️",
            format!(
                "severity is now {} (was {from}): {}",
                incident.severity, incident.title
            ),
            vec![],
        ),
        Announcement::Resolved => (
            "✅",
            format!("resolved: {}", incident.title),
            resolved_lines(incident),
        ),
    };
    let text = NoticeText {
        drill: incident.drill,
        icon,
        number: incident.number.to_string(),
        severity: incident.severity,
        headline,
        lines,
        status: incident.status.as_str(),
        commander: incident.commander.as_deref().unwrap_or("unassigned"),
    };
    Ok(text.render()?.trim_end().to_string())
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

/// The effects for one announcement: one webhook POST per route that wants it. The key
/// includes the incident version the announcement belongs to, so re-planning the same
/// change can never enqueue a second notice.
pub fn plan_notices(
    routes: &[NoticeRoute],
    incident: &Incident,
    ann: &Announcement,
) -> anyhow::Result<Vec<NewEffect>> {
    let wanted: Vec<&NoticeRoute> = routes
        .iter()
        .filter(|r| route_wants(r, incident, ann))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let text = render_notice(incident, ann)?;
    Ok(wanted
        .into_iter()
        .map(|route| NewEffect {
            incident_id: Some(incident.id.clone()),
            kind: WEBHOOK_EFFECT.into(),
            payload: json!({ "webhook": route.name, "text": text }),
            idempotency_key: format!(
                "notice:{}:v{}:{}",
                incident.id, incident.version, route.name
            ),
        })
        .collect())
}
