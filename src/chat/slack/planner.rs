//! Which Slack effects each incident change needs. Two FIFO groups per incident keep order
//! where it matters and parallelism where it doesn't: everything in the incident channel
//! (create, invite, topic, card, posts) runs in one group; the company-wide notices in the
//! other, so the announcement goes out at T+0 without waiting for channel setup.
//!
//! The "sync" effects render from the database when they run, not from the state at
//! planning time, so a notice or card is always current even if edits queue up.

use serde_json::json;

use super::blocks::mention;
use super::config::SlackConfig;
use crate::effects::NewEffect;
use crate::effects::planner::EffectPlanner;
use crate::incident::model::Incident;
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;
use crate::incident::timeline::Source;

pub const SYNC_CHANNEL: &str = "slack.sync_channel";
pub const SYNC_NOTICES: &str = "slack.sync_notices";
pub const CHANNEL_POST: &str = "slack.channel_post";
pub const NOTICE_REPLY: &str = "slack.notice_reply";
pub const OPEN_MODAL: &str = "slack.open_modal";
pub const EPHEMERAL: &str = "slack.ephemeral";
pub const CAPTURE_PIN: &str = "slack.capture_pin";
/// A message in the incident channel that is edited as work progresses (the freeze).
pub const PROGRESS: &str = "slack.progress";

pub const ALL_KINDS: &[&str] = &[
    SYNC_CHANNEL,
    SYNC_NOTICES,
    CHANNEL_POST,
    NOTICE_REPLY,
    OPEN_MODAL,
    EPHEMERAL,
    CAPTURE_PIN,
    PROGRESS,
];

pub struct SlackPlanner {
    pub config: SlackConfig,
    /// `server.public_url`, for links to post-mortem pages.
    pub public_url: Option<String>,
}

impl EffectPlanner for SlackPlanner {
    fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        let p = Plan {
            incident,
            event_tag: tag(event),
        };
        let announce = self
            .config
            .announce
            .for_severity(incident.severity)
            .to_vec();
        let who = if actor.source == Source::Slack {
            mention(&actor.id)
        } else {
            actor.name.clone()
        };
        Ok(match event {
            IncidentEvent::Declared => {
                let invite: Vec<String> = (actor.source == Source::Slack)
                    .then(|| actor.id.clone())
                    .into_iter()
                    .collect();
                vec![
                    p.notices(&announce),
                    p.channel(SYNC_CHANNEL, json!({ "invite": invite })),
                ]
            }
            IncidentEvent::Acknowledged | IncidentEvent::RoleAssigned { .. } => {
                vec![p.channel(SYNC_CHANNEL, json!({})), p.notices(&[])]
            }
            IncidentEvent::Update { text } => {
                let due = incident
                    .next_update_due
                    .map(|d| format!("\nNext update due by {} UTC.", d.format("%H:%M")))
                    .unwrap_or_default();
                vec![
                    p.channel(
                        CHANNEL_POST,
                        json!({ "text": format!("📣 *Update* from {who}: {text}{due}") }),
                    ),
                    p.channel(SYNC_CHANNEL, json!({})),
                    p.notice_group(NOTICE_REPLY, json!({ "text": format!("📣 {text}") })),
                    p.notices(&[]),
                ]
            }
            IncidentEvent::StatusChanged { .. } | IncidentEvent::SeverityChanged { .. } => {
                vec![p.channel(SYNC_CHANNEL, json!({})), p.notices(&announce)]
            }
            IncidentEvent::Resolved => {
                let summary = incident
                    .summary
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                let text = format!("✅ {} resolved by {who}{summary}", incident.number);
                let draft = postmortem_link(self.public_url.as_deref(), incident);
                vec![
                    p.channel(CHANNEL_POST, json!({ "text": format!("{text}\n{draft}") })),
                    p.channel(SYNC_CHANNEL, json!({})),
                    p.notice_group(NOTICE_REPLY, json!({ "text": text })),
                    p.notices(&[]),
                ]
            }
            IncidentEvent::Overdue => {
                let due = incident
                    .next_update_due
                    .map(|d| d.format("%H:%M UTC").to_string())
                    .unwrap_or_default();
                let comms = incident
                    .comms
                    .as_deref()
                    .or(incident.commander.as_deref())
                    .map_or("Comms".into(), mention);
                let text = format!(
                    "⏰ The status update promised for {due} is overdue. {comms}, please post one with `/incident update …`."
                );
                vec![p.channel(CHANNEL_POST, json!({ "text": text }))]
            }
        })
    }
}

/// Where the post-mortem draft is, for the resolution message.
pub fn postmortem_link(public_url: Option<&str>, incident: &Incident) -> String {
    match public_url {
        Some(base) => format!(
            "📝 Post-mortem draft: {}/incidents/{}/postmortem.html (Markdown: …/postmortem.md). Fill in the sections with `/incident postmortem set …`.",
            base.trim_end_matches('/'),
            incident.number
        ),
        None => format!(
            "📝 Post-mortem draft: `firebreak postmortem {}`. Fill in the sections with `/incident postmortem set …`.",
            incident.number
        ),
    }
}

struct Plan<'a> {
    incident: &'a Incident,
    event_tag: &'static str,
}

impl Plan<'_> {
    fn effect(&self, kind: &str, group: &str, mut payload: serde_json::Value) -> NewEffect {
        let id = &self.incident.id;
        payload["incident_id"] = json!(id.0);
        NewEffect {
            incident_id: Some(id.clone()),
            kind: kind.into(),
            payload,
            idempotency_key: format!("{kind}:{id}:v{}:{}", self.incident.version, self.event_tag),
            ordering_key: Some(format!("slack:{id}:{group}")),
            audience: None,
        }
    }

    fn channel(&self, kind: &str, payload: serde_json::Value) -> NewEffect {
        self.effect(kind, "channel", payload)
    }

    fn notice_group(&self, kind: &str, payload: serde_json::Value) -> NewEffect {
        self.effect(kind, "notices", payload)
    }

    /// Ensure a notice exists in each of `channels`, and bring every existing one up to date.
    fn notices(&self, channels: &[String]) -> NewEffect {
        self.notice_group(SYNC_NOTICES, json!({ "channels": channels }))
    }
}

fn tag(event: &IncidentEvent) -> &'static str {
    match event {
        IncidentEvent::Declared => "declared",
        IncidentEvent::Acknowledged => "ack",
        IncidentEvent::Update { .. } => "update",
        IncidentEvent::StatusChanged { .. } => "status",
        IncidentEvent::SeverityChanged { .. } => "severity",
        IncidentEvent::RoleAssigned { .. } => "role",
        IncidentEvent::Resolved => "resolved",
        IncidentEvent::Overdue => "overdue",
    }
}
