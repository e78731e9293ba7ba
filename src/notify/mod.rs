//! Company-wide notices: deciding which event goes where (pure), rendering its text
//! from `templates/notice.txt`, and delivering it through Slack-compatible incoming
//! webhooks ([`webhook`]).
//!
//! The text is Slack mrkdwn, escaped for every receiver that speaks it: what people typed
//! has `&`, `<` and `>` sent as entities (no `<!channel>`, `<!here>` or `<url|label>` from a
//! title), and every `@` that starts a word gets an invisible word joiner (U+2060) after it,
//! so Mattermost and Rocket.Chat (which mention on a bare `@alice`, `@channel`, `@all`)
//! ping nobody either. The commander is the one intended mention, built from the stored
//! ID by [`crate::chat::slack::blocks::mention`]. A notice is at most
//! [`WEBHOOK_TEXT`] characters; a longer one is cut and says where the full text is.

pub mod webhook;

use askama::Template;
use serde::{Deserialize, Serialize};

use crate::chat::slack::blocks::{FullText, fit_text, mention};
use crate::chat::slack::mrkdwn::{self, Mrkdwn};
use crate::effects::planner::{Destination, EffectPlanner, Intent};
use crate::effects::{Audience, NewEffect, TypedEffect};
use crate::incident::model::{Incident, IncidentId, Severity};
use crate::incident::permissions::Actor;
use crate::incident::rules::IncidentEvent;

/// The effect kind for a POST to an incoming webhook.
pub const WEBHOOK_EFFECT: &str = "notify.webhook";

/// The most characters a notice may have: the smallest limit the receivers document
/// (Mattermost's default post size and Google Chat's are about 4,000; Slack takes 40,000
/// but recommends 4,000).
pub const WEBHOOK_TEXT: usize = 4_000;

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
/// `public_url` (`server.public_url`) is linked when a long notice is cut.
pub fn render_notice(
    incident: &Incident,
    event: &IncidentEvent,
    public_url: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let title = escape(&incident.title);
    let (icon, headline, lines) = match event {
        IncidentEvent::Declared => (
            "🚨",
            format!("declared: {title}"),
            vec![format!(
                "Declared by {} at {} UTC.",
                mention(&incident.declared_by),
                incident.declared_at.format("%Y-%m-%d %H:%M")
            )],
        ),
        IncidentEvent::Update { text } => ("📣", format!("update: {title}"), vec![escape(text)]),
        IncidentEvent::StatusChanged { from } => (
            "🔄",
            format!("is now {} (was {from}): {title}", incident.status),
            vec![],
        ),
        IncidentEvent::SeverityChanged { from } => (
            "⚠️",
            format!(
                "severity is now {} (was {from}): {title}",
                incident.severity
            ),
            vec![],
        ),
        IncidentEvent::Resolved => ("✅", format!("resolved: {title}"), resolved_lines(incident)),
        IncidentEvent::Acknowledged
        | IncidentEvent::RoleAssigned { .. }
        | IncidentEvent::Overdue => {
            return Ok(None);
        }
    };
    let commander = incident
        .commander
        .as_deref()
        .map_or("unassigned".to_string(), mention);
    let render = |lines: Vec<String>| -> anyhow::Result<String> {
        let text = NoticeText {
            drill: incident.drill,
            icon,
            number: incident.number.to_string(),
            severity: incident.severity,
            headline: headline.clone(),
            lines,
            status: incident.status.as_str(),
            commander: &commander,
        };
        Ok(text.render()?.trim_end().to_string())
    };
    let full = FullText::new(incident.number, public_url);
    let mut text = render(lines.clone())?;
    // Too long: shorten the longest line (the update, the summary), note where the full
    // text is, and keep the status and commander lines.
    let note = full.note().into_string();
    let over = mrkdwn::char_count(&text) + mrkdwn::char_count(&note) + 1;
    if let Some(over) = over.checked_sub(WEBHOOK_TEXT).filter(|o| *o > 0) {
        let mut lines = lines;
        if let Some(longest) = lines.iter_mut().max_by_key(|l| mrkdwn::char_count(l)) {
            let keep = mrkdwn::char_count(longest).saturating_sub(over);
            *longest = mrkdwn::truncate_mrkdwn(longest, keep).unwrap_or_default();
        }
        lines.push(note);
        text = render(lines)?;
    }
    Ok(Some(fit_text(
        Mrkdwn::trusted(text),
        WEBHOOK_TEXT,
        Some(&full),
    )))
}

/// Untrusted text for a Slack-compatible webhook: Slack's escaping, and a word joiner after
/// every `@` that starts a word (see the module documentation).
pub fn escape(text: &str) -> String {
    let escaped = mrkdwn::escape(text);
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@'
            && chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
        {
            out.push(mrkdwn::WORD_JOINER);
        }
    }
    out
}

fn resolved_lines(incident: &Incident) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(summary) = &incident.summary {
        lines.push(format!("Summary: {}", escape(summary)));
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
    /// `server.public_url`, linked when a long notice is cut.
    pub public_url: Option<String>,
    /// `[runbooks] drill_webhook`: when set, a drill's notices go there and nowhere else.
    pub drill_route: Option<String>,
}

impl WebhookPlanner {
    /// The routes `incident`'s notices may go to: for a drill with a drill route, that one.
    fn routes_for(&self, incident: &Incident) -> Vec<&NoticeRoute> {
        match (&self.drill_route, incident.drill) {
            (Some(drill), true) => self.routes.iter().filter(|r| &r.name == drill).collect(),
            _ => self.routes.iter().collect(),
        }
    }

    /// A post to the named webhook, if it is one of these routes, about `incident` or none.
    /// The text is escaped like a notice's: nobody is pinged by it. Posts about an incident
    /// keep their own FIFO per webhook; the others share one.
    fn external(
        &self,
        to: &Destination,
        text: &str,
        key: &str,
        incident: Option<&IncidentId>,
    ) -> Vec<NewEffect> {
        let Destination::Webhook(name) = to else {
            return Vec::new();
        };
        if !self.routes.iter().any(|r| &r.name == name) {
            return Vec::new();
        }
        let effect = WebhookEffect::Notice {
            webhook: name.clone(),
            text: fit_text(Mrkdwn::text(text), WEBHOOK_TEXT, None),
        };
        let order = match incident {
            Some(incident) => format!("webhook:{name}:{incident}"),
            None => format!("webhook:{name}"),
        };
        vec![
            NewEffect::typed(
                incident.cloned(),
                &effect,
                format!("{WEBHOOK_EFFECT}:{key}"),
            )
            .ordered(order),
        ]
    }
}

impl EffectPlanner for WebhookPlanner {
    /// A runbook's post to a named webhook (a customer notice, a page).
    fn plan_intent(&self, incident: &IncidentId, intent: &Intent, key: &str) -> Vec<NewEffect> {
        match intent {
            Intent::External { to, text } => {
                self.external(to, text, &format!("{incident}:{key}"), Some(incident))
            }
            _ => Vec::new(),
        }
    }

    fn plan_external(&self, to: &Destination, text: &str, key: &str) -> Vec<NewEffect> {
        self.external(to, text, key, None)
    }

    fn plan(
        &self,
        incident: &Incident,
        event: &IncidentEvent,
        _actor: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        let wanted: Vec<&NoticeRoute> = self
            .routes_for(incident)
            .into_iter()
            .filter(|r| {
                (incident.drill && self.drill_route.is_some()) || route_wants(r, incident, event)
            })
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let Some(text) = render_notice(incident, event, self.public_url.as_deref())? else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::slack::validate::live_tokens;
    use crate::incident::model::{IncidentId, IncidentNumber, Status};

    fn incident(title: &str) -> Incident {
        Incident {
            id: IncidentId::new(),
            number: IncidentNumber(9),
            title: title.into(),
            severity: Severity::Sev1,
            status: Status::Investigating,
            drill: false,
            started_at: None,
            detected_at: None,
            declared_at: chrono::Utc::now(),
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            commander: Some("slack:U0CMDR1".into()),
            comms: None,
            scribe: None,
            summary: Some("<!here> fixed @alice".into()),
            last_update_at: None,
            next_update_due: None,
            reminded_due: None,
            declared_by: "<!channel>".into(),
            version: 3,
        }
    }

    #[test]
    fn external_posts_keep_their_keys_with_an_incident_and_have_none_without() {
        use crate::effects::planner::{Destination, EffectPlanner, Intent};
        let planner = WebhookPlanner {
            routes: vec![NoticeRoute {
                name: "ops".into(),
                min_severity: Severity::Sev2,
            }],
            public_url: None,
            drill_route: None,
        };
        let to = Destination::Webhook("ops".into());
        let inc = IncidentId("i1".into());
        let intent = Intent::External {
            to: to.clone(),
            text: "<!here> hi".into(),
        };
        let with = planner.plan_intent(&inc, &intent, "step:a");
        assert_eq!(with.len(), 1);
        assert_eq!(with[0].idempotency_key, "notify.webhook:i1:step:a");
        assert_eq!(with[0].ordering_key.as_deref(), Some("webhook:ops:i1"));
        assert_eq!(with[0].incident_id, Some(inc));
        let without = planner.plan_external(&to, "<!here> hi", "report:x");
        assert_eq!(without[0].idempotency_key, "notify.webhook:report:x");
        assert_eq!(without[0].ordering_key.as_deref(), Some("webhook:ops"));
        assert_eq!(without[0].incident_id, None);
        assert!(
            without[0].payload["text"]
                .as_str()
                .unwrap()
                .starts_with("&lt;!here&gt;")
        );
        let elsewhere = Destination::SlackChannel("C1".into());
        assert!(planner.plan_external(&elsewhere, "x", "k").is_empty());
        let unknown = Destination::Webhook("nope".into());
        assert!(planner.plan_external(&unknown, "x", "k").is_empty());
    }

    const HOSTILE: &str = "<!channel> <!here> <https://evil.example|click> @here @alice R&D";

    #[test]
    fn notices_carry_no_mention_but_the_commander() {
        let inc = incident(HOSTILE);
        let events = [
            IncidentEvent::Declared,
            IncidentEvent::Update {
                text: HOSTILE.into(),
            },
            IncidentEvent::StatusChanged {
                from: Status::Investigating,
            },
            IncidentEvent::Resolved,
        ];
        for event in &events {
            let text = render_notice(&inc, event, None).unwrap().unwrap();
            assert_eq!(live_tokens(&text), ["<@U0CMDR1>"], "{text}");
            assert!(text.contains("&lt;!channel&gt;"), "{text}");
            assert!(
                !text.contains("@here") && !text.contains("@alice"),
                "{text}"
            );
            assert!(text.contains("@\u{2060}alice"), "{text}");
        }
    }

    #[test]
    fn a_long_update_is_cut_to_the_receivers_limit_with_a_link() {
        let inc = incident("DB down");
        let update = IncidentEvent::Update {
            text: "<&".repeat(2_000),
        };
        let text = render_notice(&inc, &update, Some("https://fb.example"))
            .unwrap()
            .unwrap();
        assert!(mrkdwn::char_count(&text) <= WEBHOOK_TEXT);
        assert!(
            text.contains(
                "…\n(truncated; full text on <https://fb.example/incidents/INC-9/postmortem.html|the INC-9 page>)\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("Commander: <@U0CMDR1>"), "{text}");
    }
}
