//! What firebreak shows on Discord: the incident card (an embed with the action buttons),
//! the company-wide notice embed, and the messages that carry them, all safe by
//! construction: user text goes through [`super::text`], every message carries
//! `allowed_mentions` with an empty `parse` list plus only the role the bot means to tag,
//! and every embed is fitted to Discord's limits before serenity sees it.

use serenity::all::{
    ButtonStyle, Colour, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed,
    CreateEmbedFooter, CreateMessage, EditMessage, RoleId, UserId,
};

use super::reply::{ACK, RESOLVE, UPDATE, custom_id};
use super::text::{escape, fit, limit};
use crate::incident::identity::Identity;
use crate::incident::model::{Incident, Severity, Status};

/// A stored identity as Discord shows it: a Discord user as a mention (which never pings
/// from an embed, and only pings in content if `allowed_mentions` names it), anyone else by
/// name, escaped.
pub fn person(identity: &str) -> String {
    match Identity::parse(identity) {
        Ok(id) if id.platform() == "discord" => format!("<@{}>", id.id()),
        Ok(id) => escape(id.fallback_name()),
        Err(_) => escape(identity),
    }
}

/// `allowed_mentions` for every message: nothing parsed from the text; only `roles` (the
/// stored role IDs the bot means to tag) ping.
pub fn allowed_mentions(roles: &[String]) -> CreateAllowedMentions {
    allowed_mentions_of(roles, &[])
}

/// [`allowed_mentions`] that also lets `users` (Discord user ids the bot means to tag, such
/// as a late step's owner) ping; ids that are not snowflakes are dropped.
pub fn allowed_mentions_of(roles: &[String], users: &[String]) -> CreateAllowedMentions {
    let roles: Vec<RoleId> = snowflakes(roles).map(RoleId::new).collect();
    let users: Vec<UserId> = snowflakes(users).map(UserId::new).collect();
    CreateAllowedMentions::new().roles(roles).users(users)
}

fn snowflakes(ids: &[String]) -> impl Iterator<Item = u64> + '_ {
    ids.iter()
        .filter_map(|r| r.trim().parse::<u64>().ok().filter(|n| *n != 0))
}

/// An embed as plain data, so its limits can be checked before serenity sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embed {
    pub title: String,
    pub description: String,
    pub colour: u32,
    /// (name, value, inline)
    pub fields: Vec<(String, String, bool)>,
    pub footer: String,
}

impl Embed {
    /// Characters counted against the 6,000 total.
    pub fn total_chars(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(n, v, _)| n.chars().count() + v.chars().count())
            .sum();
        self.title.chars().count()
            + self.description.chars().count()
            + self.footer.chars().count()
            + fields
    }

    /// Cuts every part to its limit, then the description until the total fits.
    pub fn fitted(mut self) -> Self {
        self.title = fit(&self.title, limit::TITLE);
        self.description = fit(&self.description, limit::DESCRIPTION);
        self.footer = fit(&self.footer, limit::FOOTER);
        self.fields.truncate(limit::FIELDS);
        for (name, value, _) in &mut self.fields {
            *name = fit(name, limit::FIELD_NAME);
            *value = fit(value, limit::FIELD_VALUE);
        }
        let over = self.total_chars().saturating_sub(limit::EMBED_TOTAL);
        if over > 0 {
            let keep = self.description.chars().count().saturating_sub(over);
            self.description = fit(&self.description, keep);
        }
        self
    }

    pub fn to_builder(&self) -> CreateEmbed {
        let mut e = CreateEmbed::new()
            .title(&self.title)
            .colour(Colour::new(self.colour))
            .fields(self.fields.clone());
        if !self.description.is_empty() {
            e = e.description(&self.description);
        }
        if !self.footer.is_empty() {
            e = e.footer(CreateEmbedFooter::new(&self.footer));
        }
        e
    }
}

/// `INC-42 · SEV1 · title`, with a ✅ once resolved and [DRILL] for drills.
fn title_line(incident: &Incident) -> String {
    let drill = if incident.drill { "[DRILL] " } else { "" };
    let icon = if incident.status == Status::Resolved {
        "✅"
    } else {
        "🚨"
    };
    format!(
        "{icon} {drill}{} · {} · {}",
        incident.number,
        incident.severity,
        escape(&incident.title)
    )
}

fn colour(incident: &Incident) -> u32 {
    if incident.status == Status::Resolved {
        return 0x2E_B6_7D;
    }
    match incident.severity {
        Severity::Sev1 => 0xE0_1E_5A,
        Severity::Sev2 => 0xEC_B2_2E,
        Severity::Sev3 => 0x36_C5_F0,
        Severity::Sev4 => 0x9E_9E_9E,
    }
}

fn role(who: Option<&str>) -> String {
    who.map_or("unassigned".into(), person)
}

fn next_update(incident: &Incident) -> String {
    incident
        .next_update_due
        .map_or("none promised".into(), |d| {
            format!("<t:{}:f>", d.timestamp())
        })
}

/// The pinned card in the incident channel (pure).
pub fn card(incident: &Incident, latest_update: Option<&str>) -> Embed {
    let mut fields = vec![
        ("Status".into(), incident.status.as_str().to_string(), true),
        ("Severity".into(), incident.severity.to_string(), true),
        (
            "Commander".into(),
            role(incident.commander.as_deref()),
            true,
        ),
        ("Comms".into(), role(incident.comms.as_deref()), true),
        ("Scribe".into(), role(incident.scribe.as_deref()), true),
        ("Next update due".into(), next_update(incident), true),
        // A field, not the footer: footers show `<@id>` raw.
        ("Declared by".into(), person(&incident.declared_by), true),
    ];
    if let Some(summary) = incident.summary.as_deref() {
        fields.push(("Summary".into(), escape(summary), false));
    }
    Embed {
        title: title_line(incident),
        description: latest_update.map_or(String::new(), |u| {
            format!("**Latest update:** {}", escape(u))
        }),
        colour: colour(incident),
        fields,
        footer: "firebreak · edited as the incident changes".into(),
    }
    .fitted()
}

/// The company-wide notice (pure): the current state, where to follow along, the latest
/// update.
pub fn notice(incident: &Incident, channel: Option<&str>, latest_update: Option<&str>) -> Embed {
    let mut lines = vec![format!(
        "Status: **{}** · Commander: {}",
        incident.status.as_str(),
        role(incident.commander.as_deref())
    )];
    if let Some(channel) = channel {
        lines.push(format!("Follow along in <#{channel}>"));
    }
    if incident.drill {
        lines.push("*This is a drill: nothing is broken.*".into());
    }
    if let Some(update) = latest_update {
        lines.push(format!("**Latest update:** {}", escape(update)));
    }
    Embed {
        title: title_line(incident),
        description: lines.join("\n"),
        colour: colour(incident),
        fields: Vec::new(),
        footer: "Company-wide notice · edited as the incident changes".into(),
    }
    .fitted()
}

/// The buttons under the card while the incident is open: `custom_id` is
/// `fb:<action>:<incident number>:<version>` ([`custom_id`], which the interactions endpoint
/// parses back), the version being what the card showed, so a stale press is refused.
pub fn card_buttons(incident: &Incident) -> Vec<CreateActionRow> {
    if !incident.status.is_open() {
        return Vec::new();
    }
    let id = |action: &str| custom_id(action, &[incident.number.0, incident.version]);
    vec![CreateActionRow::Buttons(vec![
        CreateButton::new(id(ACK))
            .label("Acknowledge")
            .style(ButtonStyle::Primary),
        CreateButton::new(id(UPDATE))
            .label("Post update")
            .style(ButtonStyle::Secondary),
        CreateButton::new(id(RESOLVE))
            .label("Resolve")
            .style(ButtonStyle::Danger),
    ])]
}

/// A new message carrying `embed` (and `buttons`), mentioning no one.
pub fn embed_message(embed: &Embed, buttons: Vec<CreateActionRow>) -> CreateMessage {
    CreateMessage::new()
        .embed(embed.to_builder())
        .components(buttons)
        .allowed_mentions(allowed_mentions(&[]))
}

/// The edit that replaces a message's embed (and buttons).
pub fn embed_edit(embed: &Embed, buttons: Vec<CreateActionRow>) -> EditMessage {
    EditMessage::new()
        .embed(embed.to_builder())
        .components(buttons)
        .allowed_mentions(allowed_mentions(&[]))
}

/// A text message; `roles` are the only mentions that may ping.
pub fn text_message(text: String, roles: &[String]) -> CreateMessage {
    text_message_to(text, roles, &[])
}

/// A text message; `roles` and `users` are the only mentions that may ping.
pub fn text_message_to(text: String, roles: &[String], users: &[String]) -> CreateMessage {
    CreateMessage::new()
        .content(text)
        .allowed_mentions(allowed_mentions_of(roles, users))
}

/// The edit that replaces a text message (progress), mentioning no one.
pub fn text_edit(text: String) -> EditMessage {
    EditMessage::new()
        .content(text)
        .allowed_mentions(allowed_mentions(&[]))
}

/// `inc-42-checkout-api-returns-502`, within Discord's 100 characters (lower case, digits
/// and dashes); `attempt` > 0 adds a suffix for a name already in use.
pub fn channel_name(prefix: &str, incident: &Incident, attempt: u32) -> String {
    crate::chat::channel_name(
        prefix,
        incident,
        attempt,
        limit::CHANNEL_NAME,
        char::is_alphanumeric,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chat::discord::text::{content, role_content};
    use crate::incident::model::{IncidentId, IncidentNumber};
    use proptest::prelude::*;

    pub(crate) fn incident(title: &str) -> Incident {
        let now = chrono::Utc::now();
        Incident {
            id: IncidentId("01J0INCIDENT".into()),
            number: IncidentNumber(42),
            title: title.into(),
            severity: Severity::Sev1,
            status: Status::Investigating,
            drill: false,
            started_at: None,
            detected_at: None,
            declared_at: now,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            commander: Some("discord:80351110224678912".into()),
            comms: Some("slack:U0CAROL".into()),
            scribe: None,
            summary: None,
            last_update_at: None,
            next_update_due: None,
            reminded_due: None,
            declared_by: "discord:80351110224678912".into(),
            version: 3,
        }
    }

    fn within_limits(e: &Embed) -> bool {
        e.title.chars().count() <= limit::TITLE
            && e.description.chars().count() <= limit::DESCRIPTION
            && e.footer.chars().count() <= limit::FOOTER
            && e.fields.len() <= limit::FIELDS
            && e.fields.iter().all(|(n, v, _)| {
                n.chars().count() <= limit::FIELD_NAME && v.chars().count() <= limit::FIELD_VALUE
            })
            && e.total_chars() <= limit::EMBED_TOTAL
    }

    #[test]
    fn people_show_as_quiet_mentions_or_names() {
        assert_eq!(person("discord:42"), "<@42>");
        assert_eq!(person("cli:alice"), "alice");
        assert_eq!(person("<@&9>"), "\\<@&9\\>");
        let json = serde_json::to_value(allowed_mentions(&["999".into()])).unwrap();
        assert_eq!(json["parse"], serde_json::json!([]));
        assert_eq!(json["roles"], serde_json::json!(["999"]));
        let json = serde_json::to_value(allowed_mentions_of(&[], &["42".into(), "x".into()]));
        let json = json.unwrap();
        assert_eq!(json["parse"], serde_json::json!([]));
        assert_eq!(json["users"], serde_json::json!(["42"]));
        assert_eq!(json["roles"], serde_json::json!([]));
    }

    #[test]
    fn the_card_carries_versioned_buttons_until_resolved() {
        let mut inc = incident("Checkout down");
        let rows = serde_json::to_value(card_buttons(&inc)).unwrap();
        let ids: Vec<&str> = rows[0]["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["fb:ack:42:3", "fb:update:42:3", "fb:resolve:42:3"]);
        inc.status = Status::Resolved;
        assert!(card_buttons(&inc).is_empty());
        assert!(card(&inc, None).title.starts_with("✅ INC-42 · SEV1"));
    }

    #[test]
    fn channel_names_are_slugged_and_bounded() {
        let inc = incident("Checkout API: 502s!!");
        assert_eq!(channel_name("inc", &inc, 0), "inc-42-checkout-api-502s");
        assert_eq!(channel_name("inc", &inc, 1), "inc-42-checkout-api-502s-2");
        let long = incident(&"x".repeat(300));
        assert_eq!(channel_name("inc", &long, 3).chars().count(), 100);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn embeds_and_content_stay_within_discords_limits(
            title in "\\PC{0,300}",
            update in "(\\PC|@everyone|<@&1>){0,5000}",
            summary in proptest::option::of("\\PC{0,2000}"),
        ) {
            let mut inc = incident(&title);
            inc.summary = summary;
            let c = card(&inc, Some(&update));
            prop_assert!(within_limits(&c), "card {}", c.total_chars());
            let n = notice(&inc, Some("123"), Some(&update));
            prop_assert!(within_limits(&n), "notice {}", n.total_chars());
            prop_assert!(content(&update).chars().count() <= limit::CONTENT);
            prop_assert!(role_content("1", &update).chars().count() <= limit::CONTENT);
            for text in [&c.description, &n.description, &content(&update)] {
                let unescaped = text.replace("\\<", "");
                prop_assert!(!text.contains("@everyone") && !unescaped.contains("<@&1>"));
            }
        }
    }
}
