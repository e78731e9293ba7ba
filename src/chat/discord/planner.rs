//! Which Discord effects each incident change needs, mirroring Slack's planner: everything
//! in the incident channel (create, card, posts) runs in one FIFO group; company-wide
//! notices go through a database-only fan-out that queues one effect per announcement
//! channel, each in its own FIFO group, and an announcement's own notices are queued
//! directly with the change, under the keys the fan-out gives them (so they go out at T+0
//! and the CLI delivers and reports them). A declaration queues only those, recording its
//! channels as owed a notice in the same transaction: there is nothing else to edit yet.
//!
//! Texts are planned as Discord markdown: what they quote of people's text is escaped
//! here, so it cannot format the bot's message; the whole is defused and fitted when the
//! message is built ([`super::text::content`]), and the only mention that pings is the
//! comms role, from its stored id.

use super::config::DiscordConfig;
use super::effects::notices::plan_children;
use super::effects::types::SYNC_NOTICES;
use super::effects::types::{channel_group, notices_group};
use super::effects::{DiscordEffect, DiscordEffects};
use super::text::{escape, fit};
use crate::chat::records::owed_notices;
use crate::effects::planner::{EffectPlanner, Intent};
use crate::effects::{Audience, NewEffect, TypedEffect};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;

/// How the notice summary in replies names this platform.
const PLATFORM: &str = "Discord";

/// Characters of the (escaped) summary quoted in the resolution post: content is 2,000 at
/// most, so the post-mortem link after it always fits.
const SUMMARY_IN_POST: usize = 1_100;

pub struct DiscordPlanner {
    pub config: DiscordConfig,
    /// `server.public_url`, for links to post-mortem pages.
    pub public_url: Option<String>,
}

impl EffectPlanner for DiscordPlanner {
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
        let announce = announce_channels(&self.config, incident);
        Ok(match event {
            IncidentEvent::Declared => {
                let mut plan = p.declare(&announce);
                plan.push(p.sync_channel());
                plan
            }
            IncidentEvent::Acknowledged | IncidentEvent::RoleAssigned { .. } => {
                vec![p.sync_channel(), p.notices()]
            }
            IncidentEvent::Update { text } => {
                let due = incident
                    .next_update_due
                    .map(|d| format!("\nNext update due {}.", when(d)))
                    .unwrap_or_default();
                let post = format!(
                    "📣 Update from {}: {}{due}",
                    escape(&actor.name),
                    escape(text)
                );
                let notices = match self.config.announce.is_empty() {
                    true => p.notices(),
                    false => p
                        .notices()
                        .announcing(Audience::Posted { platform: PLATFORM }),
                };
                vec![p.post(post, None), p.sync_channel(), notices]
            }
            IncidentEvent::StatusChanged { .. } | IncidentEvent::SeverityChanged { .. } => {
                let mut plan = vec![p.sync_channel()];
                plan.extend(p.announce(announce));
                plan
            }
            IncidentEvent::Resolved => {
                let by = escape(&actor.name);
                let mut text = format!("✅ {} resolved by {by}", incident.number);
                if let Some(summary) = incident.summary.as_deref() {
                    // Short enough that the post-mortem link after it is never cut off.
                    text.push_str(": ");
                    text.push_str(&fit(&escape(summary), SUMMARY_IN_POST));
                }
                text.push('\n');
                text.push_str(&postmortem_link(self.public_url.as_deref(), incident));
                vec![p.post(text, None), p.sync_channel(), p.notices()]
            }
            IncidentEvent::Overdue => {
                vec![p.post(overdue_text(incident), self.config.comms_role_id.clone())]
            }
        })
    }

    fn plan_intent(&self, incident: &IncidentId, intent: &Intent, key: &str) -> Vec<NewEffect> {
        let effect = match intent {
            Intent::Progress {
                key: progress,
                text,
            } => DiscordEffect::Progress {
                incident_id: incident.clone(),
                key: progress.clone(),
                text: text.clone(),
            },
            Intent::RoomPost { text } => DiscordEffect::ChannelPost {
                incident_id: incident.clone(),
                text: text.clone(),
                mention_role: None,
                mention_user: None,
            },
            // Rendered from the database when it runs, with a Done button per open step.
            Intent::Checklist { .. } => DiscordEffect::Checklist {
                incident_id: incident.clone(),
            },
            // A Discord owner is tagged (and only they are pinged); anyone else is named in
            // the text.
            Intent::Nudge { owner, text } => DiscordEffect::ChannelPost {
                incident_id: incident.clone(),
                text: text.clone(),
                mention_role: None,
                mention_user: owner.as_deref().and_then(discord_user),
            },
            // Publishing is the post-mortem repository's business, and posts outside the
            // room go to webhooks and Slack channels, not chat's rooms here.
            Intent::PublishPostmortem { .. } | Intent::External { .. } => return Vec::new(),
        };
        let key = format!("{}:{incident}:{key}", effect.kind());
        vec![effect.queued(key).ordered(channel_group(incident))]
    }
}

/// Capture `message` (someone pinned it) on the incident's timeline, once per message: a
/// second 📌 by someone else, or the gateway replaying the event, queues nothing more.
pub fn capture_pin(incident: &IncidentId, guild: &str, channel: &str, message: &str) -> NewEffect {
    DiscordEffect::CapturePin {
        incident_id: incident.clone(),
        guild: guild.to_string(),
        channel: channel.to_string(),
        message: message.to_string(),
    }
    .queued(format!("discord.pin:{channel}:{message}"))
}

/// The Discord user id of a stored identity (`discord:<snowflake>`), for a mention.
fn discord_user(identity: &str) -> Option<String> {
    let id = crate::incident::Identity::parse(identity).ok()?;
    let user = id.id();
    let snowflake = id.platform() == "discord" && user.parse::<u64>().is_ok_and(|n| n != 0);
    snowflake.then(|| user.to_string())
}

/// The announcement channels for the incident's severity, each once, in config order.
fn announce_channels(config: &DiscordConfig, incident: &Incident) -> Vec<String> {
    let mut channels: Vec<String> = Vec::new();
    for c in config.announce.for_severity(incident.severity) {
        if !channels.contains(c) {
            channels.push(c.clone());
        }
    }
    channels
}

fn overdue_text(incident: &Incident) -> String {
    let due = incident.next_update_due.map(when).unwrap_or_default();
    format!(
        "⏰ The status update promised for {due} is overdue. Please post one with `/incident update …`."
    )
}

/// A time as Discord shows it to each reader: date and time in their own zone, and how
/// far off it is ("in an hour"), so a 24-hour cadence never reads as "now".
fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    let t = at.timestamp();
    format!("<t:{t}:f> (<t:{t}:R>)")
}

/// Where the post-mortem draft is, for the resolution message.
fn postmortem_link(public_url: Option<&str>, incident: &Incident) -> String {
    match public_url {
        Some(base) => format!(
            "📝 Post-mortem draft: {}/incidents/{}/postmortem.html. Fill in the sections with `/incident postmortem set …`.",
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
    /// Keyed by the incident version this change produced: planning it again is a no-op.
    fn key(&self, kind: &str) -> String {
        format!(
            "{kind}:{}:v{}:{}",
            self.incident.id, self.incident.version, self.event_tag
        )
    }

    fn queued(&self, effect: DiscordEffect, group: String) -> NewEffect {
        let key = self.key(effect.kind());
        effect.queued(key).ordered(group)
    }

    fn sync_channel(&self) -> NewEffect {
        let effect = DiscordEffect::SyncChannel {
            incident_id: self.incident.id.clone(),
        };
        self.queued(effect, channel_group(&self.incident.id))
    }

    fn post(&self, text: String, mention_role: Option<String>) -> NewEffect {
        let effect = DiscordEffect::ChannelPost {
            incident_id: self.incident.id.clone(),
            text,
            mention_role,
            mention_user: None,
        };
        self.queued(effect, channel_group(&self.incident.id))
    }

    /// Bring every notice already posted (or owed) up to date.
    fn notices(&self) -> NewEffect {
        self.fan_out(Vec::new())
    }

    fn fan_out(&self, channels: Vec<String>) -> NewEffect {
        let effect = DiscordEffect::SyncNotices {
            incident_id: self.incident.id.clone(),
            channels,
        };
        self.queued(effect, notices_group(&self.incident.id))
    }

    /// The announcement: a notice per channel queued with the change, and the fan-out that
    /// also edits notices in other channels (it queues the same notices again, a no-op).
    fn announce(&self, channels: Vec<String>) -> Vec<NewEffect> {
        let fan_out = self.fan_out(channels.clone());
        let audience = Audience::of_announcement(PLATFORM, channels.len(), false);
        let notices = self.owed_notices(&fan_out.idempotency_key, &channels, None);
        std::iter::once(fan_out.announcing(audience))
            .chain(notices)
            .collect()
    }

    /// A declaration's announcement: just the notice per channel, each recording its channel
    /// as owed a notice in the declaring transaction. A new incident has no notices elsewhere
    /// to edit, so it needs no fan-out; the keys are the ones a fan-out would give them.
    fn declare(&self, channels: &[String]) -> Vec<NewEffect> {
        let audience = Audience::of_announcement(PLATFORM, channels.len(), true);
        self.owed_notices(&self.key(SYNC_NOTICES), channels, audience)
    }

    /// A notice effect per channel, keyed under `parent_key`; see [`owed_notices`].
    fn owed_notices(
        &self,
        parent_key: &str,
        channels: &[String],
        audience: Option<Audience>,
    ) -> Vec<NewEffect> {
        let notices = plan_children(&self.incident.id, parent_key, channels, &[]);
        owed_notices::<DiscordEffects>(&self.incident.id, notices, channels, audience)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::discord::embeds::tests::incident;
    use crate::chat::records::notice_owed;
    use crate::effects::planner::Intent;
    use crate::incident::timeline::Source;

    fn planner(sev1: &[&str]) -> DiscordPlanner {
        let mut config = DiscordConfig::default();
        config.announce.sev1 = sev1.iter().map(|c| c.to_string()).collect();
        config.comms_role_id = Some("777".into());
        DiscordPlanner {
            config,
            public_url: None,
        }
    }

    fn decoded(e: &NewEffect) -> DiscordEffect {
        serde_json::from_value(e.payload.clone()).unwrap()
    }

    #[test]
    fn a_declaration_announces_to_each_channel_once_then_sets_up_the_room() {
        let inc = incident("Checkout down");
        let alice = Actor::new(Source::Discord, "42", "alice");
        let p = planner(&["10", "20", "10"]);
        let plan = p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap();
        let kinds: Vec<&str> = plan.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["discord.notice", "discord.notice", "discord.sync_channel"],
            "no fan-out: a new incident has no notices to edit elsewhere"
        );
        assert_eq!(
            plan[0].audience,
            Some(Audience::Channels {
                platform: PLATFORM,
                count: 2
            })
        );
        assert_eq!(plan[1].audience, None, "counted once");
        let fan_out_key = format!("discord.sync_notices:{}:v3:declared", inc.id);
        assert_eq!(plan[0].idempotency_key, format!("{fan_out_key}:10"));
        assert_eq!(
            plan[1].ordering_key,
            Some(format!("discord:{}:notice:20", inc.id))
        );
        for (notice, channel) in plan[..2].iter().zip(["10", "20"]) {
            assert_eq!(
                notice.records,
                vec![notice_owed::<DiscordEffects>(&inc.id, channel)]
            );
        }
        assert_eq!(
            plan,
            p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap()
        );
    }

    #[test]
    fn quoted_text_cannot_format_the_bots_post() {
        let inc = incident("Checkout down");
        let update = IncidentEvent::Update {
            text: "line one\n# ALL CLEAR, STAND DOWN\n> quoted **bold**".into(),
        };
        let plan = planner(&[]).plan(&inc, &update, &Actor::system()).unwrap();
        let DiscordEffect::ChannelPost { text, .. } = decoded(&plan[0]) else {
            panic!("{plan:?}")
        };
        assert!(
            text.contains("\n\\# ALL CLEAR") && text.contains("\\> quoted \\*\\*bold"),
            "{text}"
        );
    }

    #[test]
    fn reminders_tag_the_comms_role_and_intents_go_to_the_room() {
        let inc = incident("Checkout down");
        let plan = planner(&[])
            .plan(&inc, &IncidentEvent::Overdue, &Actor::system())
            .unwrap();
        assert!(matches!(
            decoded(&plan[0]),
            DiscordEffect::ChannelPost { mention_role: Some(ref r), .. } if r == "777"
        ));
        let progress = Intent::Progress {
            key: "freeze".into(),
            text: "3/8 repositories frozen".into(),
        };
        let plan = planner(&[]).plan_intent(&inc.id, &progress, "k1");
        assert_eq!(
            plan[0].idempotency_key,
            format!("discord.progress:{}:k1", inc.id)
        );
        assert_eq!(plan[0].ordering_key, Some(channel_group(&inc.id)));
        for summary in ["@here ".repeat(700), "<@1>".repeat(900)] {
            let mut resolved = incident("Checkout down");
            resolved.summary = Some(summary);
            let plan = planner(&[])
                .plan(&resolved, &IncidentEvent::Resolved, &Actor::system())
                .unwrap();
            let DiscordEffect::ChannelPost { text, .. } = decoded(&plan[0]) else {
                panic!("{plan:?}")
            };
            let sent = crate::chat::discord::text::content(&text);
            assert!(
                sent.ends_with("`/incident postmortem set …`."),
                "the link survives escaping: {sent}"
            );
        }
        let publish = Intent::PublishPostmortem {
            revision: "r".into(),
        };
        assert!(planner(&[]).plan_intent(&inc.id, &publish, "k").is_empty());
    }

    #[test]
    fn a_checklist_renders_when_it_runs_and_a_nudge_tags_a_discord_owner_only() {
        let inc = incident("Checkout down");
        let checklist = Intent::Checklist {
            text: "plain".into(),
        };
        let plan = planner(&[]).plan_intent(&inc.id, &checklist, "checklist:2");
        assert_eq!(
            decoded(&plan[0]),
            DiscordEffect::Checklist {
                incident_id: inc.id.clone()
            }
        );
        assert_eq!(
            plan[0].idempotency_key,
            format!("discord.checklist:{}:checklist:2", inc.id)
        );
        assert_eq!(plan[0].ordering_key, Some(channel_group(&inc.id)));
        let tagged = |owner: Option<&str>| {
            let nudge = Intent::Nudge {
                owner: owner.map(str::to_string),
                text: "⏰ late".into(),
            };
            match decoded(&planner(&[]).plan_intent(&inc.id, &nudge, "n")[0]) {
                DiscordEffect::ChannelPost {
                    mention_user,
                    mention_role: None,
                    ..
                } => mention_user,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(tagged(Some("discord:42")).as_deref(), Some("42"));
        for nobody in [None, Some("slack:U1"), Some("discord:x"), Some("cli:alice")] {
            assert_eq!(tagged(nobody), None, "{nobody:?}");
        }
    }
}
