//! Which Slack effects each incident change needs. Everything in the incident channel
//! (create, invite, topic, card, posts) runs in one FIFO group. Company-wide notices go
//! through a cheap fan-out ([`SlackEffect::SyncNotices`]) that queues one effect per
//! announcement channel, each in its own FIFO group, so the announcement goes out at T+0
//! without waiting for channel setup, and one bad channel never holds up another. An
//! announcement's own notices are also queued directly with the change (see
//! `Plan::announce`); a declaration queues only those, with its channels recorded as owed
//! a notice in the same transaction, since a new incident has no notices to edit elsewhere
//! (`Plan::declare`).
//!
//! The "sync" effects render from the database when they run, not from the state at
//! planning time, so a notice or card is always current even if edits queue up.
//!
//! The texts effects carry (posts, thread replies, ephemeral answers) are Slack mrkdwn,
//! built here with [`Mrkdwn`]: what people typed is escaped once, at planning time, and the
//! only mentions are the ones built from stored IDs.

use chrono::{DateTime, Utc};

use super::api::SlackPacing;
use super::config::SlackConfig;
use super::effects::SlackEffects;
use super::effects::notices::{FanOut, plan_children};
pub use super::effects::types::{
    ALL_KINDS, CAPTURE_PIN, CHANNEL_POST, EPHEMERAL, NOTICE, NOTICE_REPLY, OPEN_MODAL, PROGRESS,
    SYNC_CHANNEL, SYNC_NOTICES,
};
use super::effects::types::{SlackEffect, channel_group, notices_group};
use super::mrkdwn::Mrkdwn;
use crate::chat::records::owed_notices;
use crate::effects::planner::Destination;
use crate::effects::planner::{EffectPlanner, Intent};
use crate::effects::{Audience, NewEffect, TypedEffect};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;
use crate::incident::timeline::Source;

/// How the notice summary in replies names this platform.
const PLATFORM: &str = "Slack";

pub struct SlackPlanner {
    pub config: SlackConfig,
    /// `server.public_url`, for links to post-mortem pages.
    pub public_url: Option<String>,
    /// The tiers of the Slack client in this process, if it runs one (`serve`): a
    /// declaration's first calls book their slots here ([`SlackPlanner::book_slots`]).
    pub pacing: Option<SlackPacing>,
}

impl SlackPlanner {
    /// Under a storm of declarations each new incident's first call (its channel, its
    /// notice) waits for its turn in Slack's tier. Queued as due now, the worker would claim
    /// each only to hear "come back at your slot" and write it back: two writes per effect
    /// for nothing, at the worst moment. Instead the slot is booked now, under the effect's
    /// key, and the effect queued for then; its first attempt goes through on the booking.
    /// A declaration that then fails or turns out a duplicate gives its slots back
    /// ([`EffectPlanner::discard`]).
    fn book_slots(&self, plan: &mut [NewEffect]) {
        let Some(pacing) = &self.pacing else { return };
        for effect in plan {
            let Some((method, channel)) = first_call(effect) else {
                continue;
            };
            if let Some(wait) = pacing.book(method, channel.as_deref(), &effect.idempotency_key) {
                // Read the clock after booking, and round up: due a little after the slot,
                // never before it (which would be one more claim to hear "wait").
                effect.not_before = due_after(Utc::now(), wait);
            }
        }
    }
}

/// The Slack call `effect` makes first, if it is a Slack effect booked at planning.
fn first_call(effect: &NewEffect) -> Option<(&'static str, Option<String>)> {
    let slack = effect.decode::<SlackEffect>().ok()?;
    let (method, channel) = slack.first_call()?;
    Some((method, channel.map(str::to_string)))
}

/// `now + wait`, a millisecond late rather than early (the queue keeps milliseconds).
fn due_after(now: DateTime<Utc>, wait: std::time::Duration) -> Option<DateTime<Utc>> {
    let wait = chrono::Duration::from_std(wait).ok()? + chrono::Duration::milliseconds(1);
    now.checked_add_signed(wait)
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
        let announce = announce_channels(&self.config, incident);
        // Texts are planned as mrkdwn: what people typed is escaped here, once, and the only
        // mentions are the ones built from stored IDs.
        let who = if actor.source == Source::Slack {
            Mrkdwn::user(&actor.id)
        } else {
            Mrkdwn::text(&actor.name)
        };
        Ok(match event {
            IncidentEvent::Declared => {
                let invite: Vec<String> = (actor.source == Source::Slack)
                    .then(|| actor.id.clone())
                    .into_iter()
                    .collect();
                let mut plan = p.declare(&announce);
                plan.push(p.sync_channel(invite, true));
                self.book_slots(&mut plan);
                plan
            }
            IncidentEvent::Acknowledged | IncidentEvent::RoleAssigned { .. } => {
                vec![
                    p.sync_channel(Vec::new(), false),
                    p.notices(Vec::new(), None),
                ]
            }
            IncidentEvent::Update { text } => {
                let due = incident
                    .next_update_due
                    .map(|d| format!("\nNext update due by {} UTC.", d.format("%H:%M")))
                    .unwrap_or_default();
                let mut post = Mrkdwn::markup("📣 *Update* from ");
                post.push(who)
                    .push_markup(": ")
                    .push_text(text)
                    .push_text(&due);
                let mut reply = Mrkdwn::markup("📣 ");
                reply.push_text(text);
                vec![
                    p.post(post),
                    p.sync_channel(Vec::new(), false),
                    p.notices(Vec::new(), Some(reply)),
                ]
            }
            IncidentEvent::StatusChanged { .. } | IncidentEvent::SeverityChanged { .. } => {
                let mut plan = vec![p.sync_channel(Vec::new(), false)];
                plan.extend(p.announce(announce));
                plan
            }
            IncidentEvent::Resolved => {
                let mut text = Mrkdwn::markup("✅ ");
                text.push_text(&incident.number.to_string())
                    .push_markup(" resolved by ")
                    .push(who);
                if let Some(summary) = incident.summary.as_deref() {
                    text.push_markup(": ").push_text(summary);
                }
                let mut post = text.clone();
                post.push_markup("\n")
                    .push_text(&postmortem_link(self.public_url.as_deref(), incident));
                vec![
                    p.post(post),
                    p.sync_channel(Vec::new(), false),
                    p.notices(Vec::new(), Some(text)),
                ]
            }
            IncidentEvent::Overdue => vec![p.post(overdue_text(incident))],
        })
    }

    fn plan_intent(&self, incident: &IncidentId, intent: &Intent, key: &str) -> Vec<NewEffect> {
        let effect = match intent {
            Intent::Progress {
                key: progress,
                text,
            } => SlackEffect::Progress {
                incident_id: incident.clone(),
                key: progress.clone(),
                text: Mrkdwn::text(text).into_string(),
            },
            Intent::RoomPost { text } => SlackEffect::ChannelPost {
                incident_id: incident.clone(),
                text: Mrkdwn::text(text).into_string(),
            },
            Intent::Checklist { .. } => SlackEffect::Checklist {
                incident_id: incident.clone(),
            },
            Intent::Nudge { owner, text } => {
                let mut post = match owner.as_deref().filter(|o| o.starts_with("slack:")) {
                    Some(o) => {
                        let mut m = Mrkdwn::user(o);
                        m.push_markup(" ");
                        m
                    }
                    None => Mrkdwn::markup(""),
                };
                post.push_text(text);
                SlackEffect::ChannelPost {
                    incident_id: incident.clone(),
                    text: post.into_string(),
                }
            }
            Intent::External { to, text } => {
                return self.plan_external(to, text, &format!("{incident}:{key}"));
            }
            // Publishing is the post-mortem repository's business.
            Intent::PublishPostmortem { .. } => return Vec::new(),
        };
        let key = format!("{}:{incident}:{key}", effect.kind());
        vec![effect.queued(key).ordered(channel_group(incident))]
    }

    /// A message in a channel outside any incident room (a customer notice, a report);
    /// webhooks are the webhook adapter's.
    fn plan_external(&self, to: &Destination, text: &str, key: &str) -> Vec<NewEffect> {
        let Destination::SlackChannel(channel) = to else {
            return Vec::new();
        };
        let effect = SlackEffect::Post {
            channel: channel.clone(),
            text: Mrkdwn::text(text).into_string(),
        };
        let key = format!("{}:{key}", effect.kind());
        vec![effect.queued(key).ordered(format!("slack:post:{channel}"))]
    }

    /// Gives back the slots [`SlackPlanner::book_slots`] booked for `plan`.
    fn discard(&self, plan: &[NewEffect]) {
        let Some(pacing) = &self.pacing else { return };
        for effect in plan {
            if let Some((method, channel)) = first_call(effect) {
                pacing.release(method, channel.as_deref(), &effect.idempotency_key);
            }
        }
    }
}

/// A private answer to `user` in `channel`, once per `key` (the trigger or event behind it).
/// `text` is plain text (a reply, an error); it is escaped for Slack here.
pub fn ephemeral(channel: &str, user: &str, text: Mrkdwn, key: String) -> NewEffect {
    SlackEffect::Ephemeral {
        channel: channel.to_string(),
        user: user.to_string(),
        text: text.into_string(),
    }
    .queued(key)
}

/// Capture the message at `ts` (someone pinned it) on the incident's timeline, once.
pub fn capture_pin(incident: &IncidentId, channel: &str, ts: &str, reactor: &str) -> NewEffect {
    SlackEffect::CapturePin {
        incident_id: incident.clone(),
        channel: channel.to_string(),
        ts: ts.to_string(),
        reactor: reactor.to_string(),
    }
    .queued(format!("pin:{channel}:{ts}"))
}

/// Open a form for the person who asked, before their trigger expires.
pub fn open_modal(trigger_id: &str, view: serde_json::Value, expires_at_ms: i64) -> NewEffect {
    SlackEffect::OpenModal {
        trigger_id: trigger_id.to_string(),
        view,
        expires_at_ms,
    }
    .queued(format!("modal:{trigger_id}"))
}

/// The announcement channels for the incident's severity, each once, in config order.
fn announce_channels(config: &SlackConfig, incident: &Incident) -> Vec<String> {
    if let Some(drill) = config.drill_channel.as_ref().filter(|_| incident.drill) {
        return vec![drill.clone()];
    }
    let mut channels: Vec<String> = Vec::new();
    for c in config.announce.for_severity(incident.severity) {
        if !channels.contains(c) {
            channels.push(c.clone());
        }
    }
    channels
}

fn overdue_text(incident: &Incident) -> Mrkdwn {
    let due = incident
        .next_update_due
        .map(|d| d.format("%H:%M UTC").to_string())
        .unwrap_or_default();
    let comms = incident
        .comms
        .as_deref()
        .or(incident.commander.as_deref())
        .map_or(Mrkdwn::markup("Comms"), Mrkdwn::user);
    let mut text = Mrkdwn::markup("⏰ The status update promised for ");
    text.push_text(&due)
        .push_markup(" is overdue. ")
        .push(comms)
        .push_markup(", please post one with `/incident update …`.");
    text
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
    fn id(&self) -> IncidentId {
        self.incident.id.clone()
    }

    /// Keyed by the incident version this change produced: planning it again is a no-op.
    fn key(&self, kind: &str) -> String {
        format!(
            "{kind}:{}:v{}:{}",
            self.incident.id, self.incident.version, self.event_tag
        )
    }

    fn queued(&self, effect: SlackEffect, group: String) -> NewEffect {
        let key = self.key(effect.kind());
        effect.queued(key).ordered(group)
    }

    /// The incident channel's setup; `fresh` when the incident is being declared.
    fn sync_channel(&self, invite: Vec<String>, fresh: bool) -> NewEffect {
        let effect = SlackEffect::SyncChannel {
            incident_id: self.id(),
            invite,
            fresh,
        };
        self.queued(effect, channel_group(&self.incident.id))
    }

    fn post(&self, text: Mrkdwn) -> NewEffect {
        let effect = SlackEffect::ChannelPost {
            incident_id: self.id(),
            text: text.into_string(),
        };
        self.queued(effect, channel_group(&self.incident.id))
    }

    /// Bring every notice up to date, post new ones in `channels`, and with `reply`, answer
    /// in each notice's thread.
    fn notices(&self, channels: Vec<String>, reply: Option<Mrkdwn>) -> NewEffect {
        let tells_the_company = reply.is_some();
        let effect = SlackEffect::SyncNotices {
            incident_id: self.id(),
            channels,
            reply: reply.map(Mrkdwn::into_string),
        };
        let effect = self.queued(effect, notices_group(&self.incident.id));
        if tells_the_company {
            effect.announcing(Audience::Posted { platform: PLATFORM })
        } else {
            effect
        }
    }

    /// The announcement: a notice effect per channel, queued with the change (so the CLI
    /// delivers it, failures included), and the fan-out that also edits notices in other
    /// channels. Each notice has the key the fan-out gives it, so it is queued once.
    fn announce(&self, channels: Vec<String>) -> Vec<NewEffect> {
        let fan_out = self.notices(channels.clone(), None);
        let audience = Audience::of_announcement(PLATFORM, channels.len(), false);
        let notices = self.owed_notices(&fan_out.idempotency_key, &channels, None, false);
        std::iter::once(fan_out.announcing(audience))
            .chain(notices)
            .collect()
    }

    /// A declaration's announcement: just the notice per channel, each recording its channel
    /// as owed a notice in the declaring transaction. A new incident has no notices elsewhere
    /// to edit, so it needs no fan-out; the keys are the ones a fan-out would give them.
    fn declare(&self, channels: &[String]) -> Vec<NewEffect> {
        let audience = Audience::of_announcement(PLATFORM, channels.len(), true);
        self.owed_notices(&self.key(SYNC_NOTICES), channels, audience, true)
    }

    /// A notice effect per channel, keyed under `parent_key`; see [`owed_notices`].
    fn owed_notices(
        &self,
        parent_key: &str,
        channels: &[String],
        audience: Option<Audience>,
        fresh: bool,
    ) -> Vec<NewEffect> {
        let notices = plan_children(
            &self.incident.id,
            &FanOut {
                parent_key,
                announce: channels,
                reply: None,
                fresh,
            },
            &[],
        );
        owed_notices::<SlackEffects>(&self.incident.id, notices, channels, audience)
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
#[path = "planner_tests.rs"]
mod tests;
