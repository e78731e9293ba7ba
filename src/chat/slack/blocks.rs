//! Block Kit rendering: the pinned incident card, the live company-wide notice, slash-command
//! replies and the modals. Blocks are written as JSON (close to Slack's documentation, easy
//! to review) and checked by deserializing into slack-morphism's Block Kit types.

use serde_json::{Value, json};
use slack_morphism::prelude::{SlackBlock, SlackView};

use crate::incident::model::{Incident, IncidentNumber, Status};
use crate::incident::reply::{Reply, Visibility};

/// Action ids on the card's buttons and the modals' callback ids.
pub const ACTION_ACK: &str = "fb_ack";
pub const ACTION_UPDATE: &str = "fb_update";
pub const ACTION_RESOLVE: &str = "fb_resolve";
pub const VIEW_DECLARE: &str = "fb_declare";
pub const VIEW_UPDATE: &str = "fb_update";

/// Renders a stored person for Slack: a Slack identity (`slack:U024BE7LH`, or a bare id
/// stored before identities) becomes a mention (`<@U024BE7LH>`); another platform's
/// identity shows by name (`cli:carol` as `carol`); plain names stay as they are.
pub fn mention(user: &str) -> String {
    match user_id(user) {
        Some(id) => format!("<@{id}>"),
        None => crate::incident::identity::fallback_name(user).to_string(),
    }
}

/// The Slack user id in `slack:U024BE7LH`, `<@U024BE7LH>`, `<@U024BE7LH|name>` or
/// `U024BE7LH`, if any.
pub fn user_id(user: &str) -> Option<String> {
    if let Ok(identity) = crate::incident::Identity::parse(user) {
        return identity.slack_user().map(str::to_string);
    }
    let inner = user
        .strip_prefix("<@")
        .and_then(|u| u.strip_suffix('>'))
        .unwrap_or(user);
    let id = inner.split('|').next().unwrap_or(inner);
    let looks_like_id = id.len() >= 5
        && (id.starts_with('U') || id.starts_with('W'))
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    looks_like_id.then(|| id.to_string())
}

/// Slack's escaped mentions in slash-command text (`<@U1|alice>`) reduced to `<@U1>`.
pub fn normalize_mentions(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            if w.starts_with("<@") {
                mention(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `inc-42-checkout-api-returns-502`, within Slack's 80-character limit; `attempt` > 0 adds
/// a suffix for name clashes.
pub fn channel_name(prefix: &str, incident: &Incident, attempt: u32) -> String {
    let mut slug = String::new();
    for c in incident.title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let base = format!("{prefix}-{}-{}", incident.number.0, slug.trim_matches('-'));
    let suffix = if attempt == 0 {
        String::new()
    } else {
        format!("-{}", attempt + 1)
    };
    let keep = 80 - suffix.len();
    let base: String = base.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

pub fn topic(incident: &Incident) -> String {
    let drill = if incident.drill { "DRILL · " } else { "" };
    let commander = incident
        .commander
        .as_deref()
        .map_or("unassigned".into(), mention);
    format!(
        "{drill}{} · {} · commander {commander}",
        incident.severity, incident.status
    )
}

fn title_line(incident: &Incident) -> String {
    let drill = if incident.drill { "[DRILL] " } else { "" };
    let icon = if incident.status == Status::Resolved {
        "✅"
    } else {
        "🚨"
    };
    format!(
        "{icon} {drill}{} · {} · {}",
        incident.number, incident.severity, incident.title
    )
}

fn role_field(label: &str, who: Option<&str>) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{label}*\n{}", who.map_or("unassigned".into(), mention)) })
}

fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{} UTC>",
        t.timestamp(),
        t.format("%Y-%m-%d %H:%M")
    )
}

/// The pinned card in the incident channel: state, roles, and the action buttons.
pub fn card(
    incident: &Incident,
    latest_update: Option<&str>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let n = incident.number;
    let value = format!("{}:{}", n.0, incident.version);
    let next = incident
        .next_update_due
        .map_or("none promised".into(), time_text);
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": title_line(incident) } }),
        json!({ "type": "section", "fields": [
            { "type": "mrkdwn", "text": format!("*Status*\n{}", incident.status) },
            { "type": "mrkdwn", "text": format!("*Severity*\n{}", incident.severity) },
            role_field("Commander", incident.commander.as_deref()),
            role_field("Comms", incident.comms.as_deref()),
            role_field("Scribe", incident.scribe.as_deref()),
            { "type": "mrkdwn", "text": format!("*Next update due*\n{next}") },
        ]}),
    ];
    if let Some(text) = latest_update {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Latest update*\n{text}") } }));
    }
    if incident.status.is_open() {
        blocks.push(json!({ "type": "actions", "block_id": "fb_card_actions", "elements": [
            { "type": "button", "action_id": ACTION_ACK, "value": value, "text": { "type": "plain_text", "text": "Acknowledge" } },
            { "type": "button", "action_id": ACTION_UPDATE, "value": value, "text": { "type": "plain_text", "text": "Post update" } },
            { "type": "button", "action_id": ACTION_RESOLVE, "value": value, "style": "danger", "text": { "type": "plain_text", "text": "Resolve" },
              "confirm": { "title": { "type": "plain_text", "text": format!("Resolve {n}?") },
                           "text": { "type": "plain_text", "text": "This closes the incident and lifts what it started." },
                           "confirm": { "type": "plain_text", "text": "Resolve" }, "deny": { "type": "plain_text", "text": "Cancel" } } },
        ]}));
    }
    blocks.push(json!({ "type": "context", "elements": [
        { "type": "mrkdwn", "text": format!("Declared {} by {} · firebreak", time_text(incident.declared_at), mention(&incident.declared_by)) }
    ]}));
    Ok((title_line(incident), parse_blocks(blocks)?))
}

/// The company-wide notice: always the current state, edited in place as things change.
pub fn notice(
    incident: &Incident,
    channel_id: Option<&str>,
    latest_update: Option<&str>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let commander = incident
        .commander
        .as_deref()
        .map_or("unassigned".into(), mention);
    let mut lines = vec![
        format!("*{}*", title_line(incident)),
        format!("Status: *{}* · Commander: {commander}", incident.status),
    ];
    if let Some(channel) = channel_id {
        lines.push(format!("Follow along in <#{channel}>"));
    }
    if let Some(text) = latest_update {
        lines.push(format!("Latest update: {text}"));
    }
    if incident.drill {
        lines.push("_This is a drill: nothing is broken._".into());
    }
    let blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": lines.join("\n") } }),
        json!({ "type": "context", "elements": [
            { "type": "mrkdwn", "text": format!("Declared {} · updates in the thread", time_text(incident.declared_at)) }
        ]}),
    ];
    Ok((title_line(incident), parse_blocks(blocks)?))
}

/// The HTTP response to a slash command.
pub fn command_response(reply: &Reply) -> Value {
    let response_type = match reply.visibility {
        Visibility::Public => "in_channel",
        Visibility::Private => "ephemeral",
    };
    json!({ "response_type": response_type, "text": reply.text })
}

/// An ephemeral answer with the help text in a code block.
pub fn help_response(message: &str, help: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": format!("{message}\n```{help}```") })
}

/// The modal for a bare `/incident declare`. `origin` is the channel it was typed in.
pub fn declare_modal(origin: &str) -> anyhow::Result<SlackView> {
    let severities: Vec<Value> = ["sev1", "sev2", "sev3", "sev4"]
        .iter()
        .map(|s| json!({ "text": { "type": "plain_text", "text": s.to_uppercase() }, "value": s }))
        .collect();
    parse_view(json!({
        "type": "modal", "callback_id": VIEW_DECLARE, "private_metadata": origin,
        "title": { "type": "plain_text", "text": "Declare an incident" },
        "submit": { "type": "plain_text", "text": "Declare" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "input", "block_id": "title", "label": { "type": "plain_text", "text": "What is broken?" },
              "element": { "type": "plain_text_input", "action_id": "title", "max_length": 200 } },
            { "type": "input", "block_id": "severity", "label": { "type": "plain_text", "text": "Severity" },
              "element": { "type": "static_select", "action_id": "severity", "options": severities, "initial_option": severities[2] } },
            { "type": "input", "block_id": "description", "optional": true, "label": { "type": "plain_text", "text": "What do we know so far?" },
              "element": { "type": "plain_text_input", "action_id": "description", "multiline": true } },
        ]
    }))
}

/// The modal behind the card's "Post update" button.
pub fn update_modal(number: IncidentNumber, origin: &str) -> anyhow::Result<SlackView> {
    parse_view(json!({
        "type": "modal", "callback_id": VIEW_UPDATE, "private_metadata": format!("{}:{origin}", number.0),
        "title": { "type": "plain_text", "text": format!("Update {number}") },
        "submit": { "type": "plain_text", "text": "Post" },
        "blocks": [
            { "type": "input", "block_id": "text", "label": { "type": "plain_text", "text": "What changed?" },
              "element": { "type": "plain_text_input", "action_id": "text", "multiline": true } },
            { "type": "input", "block_id": "next", "optional": true, "label": { "type": "plain_text", "text": "Next update in (e.g. 30m)" },
              "element": { "type": "plain_text_input", "action_id": "next" } },
        ]
    }))
}

fn parse_blocks(blocks: Vec<Value>) -> anyhow::Result<Vec<SlackBlock>> {
    Ok(serde_json::from_value(Value::Array(blocks))?)
}

fn parse_view(view: Value) -> anyhow::Result<SlackView> {
    Ok(serde_json::from_value(view)?)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::incident::model::{IncidentId, Severity};

    pub(crate) fn incident(title: &str) -> Incident {
        Incident {
            id: IncidentId::new(),
            number: IncidentNumber(42),
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
            commander: Some("<@U024BE7LH>".into()),
            comms: None,
            scribe: None,
            summary: None,
            last_update_at: None,
            next_update_due: None,
            reminded_due: None,
            declared_by: "alice".into(),
            version: 3,
        }
    }

    #[test]
    fn channel_names_are_slugged_and_bounded() {
        assert_eq!(
            channel_name("inc", &incident("Checkout API returns 502!"), 0),
            "inc-42-checkout-api-returns-502"
        );
        assert_eq!(
            channel_name("inc", &incident("Checkout"), 1),
            "inc-42-checkout-2"
        );
        let long = channel_name("inc", &incident(&"x".repeat(200)), 3);
        assert_eq!(long.len(), 80);
        assert!(long.ends_with("-4"));
    }

    #[test]
    fn mentions() {
        assert_eq!(mention("U024BE7LH"), "<@U024BE7LH>");
        assert_eq!(mention("<@U024BE7LH|bob>"), "<@U024BE7LH>");
        assert_eq!(mention("bob"), "bob");
        assert_eq!(mention("slack:U1"), "<@U1>");
        assert_eq!(mention("cli:carol"), "carol");
        assert_eq!(user_id("slack:U0CAROL").as_deref(), Some("U0CAROL"));
        assert_eq!(user_id("cli:carol"), None);
        assert_eq!(
            normalize_mentions("assign commander <@U1ABCD|bob>"),
            "assign commander <@U1ABCD>"
        );
    }

    #[test]
    fn card_and_modals_are_valid_block_kit() {
        let (_, blocks) = card(&incident("DB down"), Some("Failing over")).unwrap();
        let json = serde_json::to_string(&blocks).unwrap();
        assert!(
            json.contains("\"value\":\"42:3\""),
            "buttons carry number and version: {json}"
        );
        assert!(
            notice(&incident("DB down"), Some("C1"), None)
                .unwrap()
                .1
                .len()
                == 2
        );
        declare_modal("C1").unwrap();
        update_modal(IncidentNumber(42), "C1").unwrap();
    }
}
