//! Block Kit rendering: the pinned incident card, the live company-wide notice, slash-command
//! replies and the modals. Blocks are written as JSON (close to Slack's documentation, easy
//! to review) and checked by deserializing into slack-morphism's Block Kit types.
//!
//! Every Block Kit message and modal is built through [`Blocks`], the one place that knows
//! Slack's limits ([`limit`]): each text it is given is cut to its field's limit (between
//! whole characters, ending in "…"), and when anything was cut the message ends with a note
//! saying where the full text is ([`FullText`]). Mrkdwn fields only take [`Mrkdwn`], so user
//! text is escaped by construction (see [`super::mrkdwn`]); plain-text fields take text as
//! it is, since Slack does not parse them. Message texts without blocks (thread replies,
//! posts, slash-command answers) go through [`message_text`].

use serde_json::{Value, json};
use slack_morphism::prelude::{SlackBlock, SlackView};

use super::mrkdwn::{self, Mrkdwn, fit_plain, limit};
use crate::incident::model::{Incident, IncidentNumber, Status};
use crate::incident::reply::{Reply, Visibility};

/// Action ids on the card's buttons and the modals' callback ids.
pub const ACTION_ACK: &str = "fb_ack";
pub const ACTION_UPDATE: &str = "fb_update";
pub const ACTION_RESOLVE: &str = "fb_resolve";
pub const VIEW_DECLARE: &str = "fb_declare";
pub const VIEW_UPDATE: &str = "fb_update";

/// Renders a stored identity for Slack: the one function for mentions the bot makes.
/// `slack:U024BE7LH`, `U024BE7LH` and `<@U024BE7LH|name>` become `<@U024BE7LH>`; anything
/// that is not a Slack user ID (a CLI user, a name) is escaped text, never a live mention.
pub fn mention(identity: &str) -> String {
    mrkdwn::mention(identity)
}

/// The Slack user id in `slack:U024BE7LH`, `<@U024BE7LH>`, `<@U024BE7LH|name>` or
/// `U024BE7LH`, if any.
pub fn user_id(identity: &str) -> Option<String> {
    mrkdwn::user_id(identity)
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

/// The channel topic (at most 250 characters, Slack's limit): severity, status, commander.
pub fn topic(incident: &Incident) -> String {
    let drill = if incident.drill { "DRILL · " } else { "" };
    let commander = incident
        .commander
        .as_deref()
        .map_or("unassigned".into(), mention);
    let topic = format!(
        "{drill}{} · {} · commander {commander}",
        incident.severity, incident.status
    );
    mrkdwn::truncate_mrkdwn(&topic, limit::TOPIC).unwrap_or(topic)
}

/// Where the full text of a shortened field is: the incident's page when
/// `server.public_url` is set, else the CLI command that prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullText {
    pub number: IncidentNumber,
    pub public_url: Option<String>,
}

impl FullText {
    pub fn new(number: IncidentNumber, public_url: Option<&str>) -> Self {
        Self {
            number,
            public_url: public_url.map(str::to_string),
        }
    }

    /// The incident's page (its post-mortem draft, with the whole timeline), if served.
    pub fn url(&self) -> Option<String> {
        self.public_url.as_deref().map(|base| {
            format!(
                "{}/incidents/{}/postmortem.html",
                base.trim_end_matches('/'),
                self.number
            )
        })
    }

    /// The note a shortened message ends with.
    pub fn note(&self) -> Mrkdwn {
        match self.url() {
            Some(url) => {
                let mut m = Mrkdwn::markup("(truncated; full text on ");
                m.push(Mrkdwn::link(&url, &format!("the {} page", self.number)))
                    .push_markup(")");
                m
            }
            None => {
                let mut m = Mrkdwn::markup("(truncated; full text in `firebreak incident show ");
                m.push_text(&self.number.to_string()).push_markup("`)");
                m
            }
        }
    }
}

/// A message `text` (a post, a thread reply, a slash-command answer) within Slack's 40,000
/// characters; if cut, it ends with the note saying where the full text is.
pub fn message_text(text: Mrkdwn, full: Option<&FullText>) -> String {
    fit_text(text, limit::MESSAGE_TEXT, full)
}

/// `text` within `max` characters, the note included when it had to be cut.
pub fn fit_text(text: Mrkdwn, max: usize, full: Option<&FullText>) -> String {
    if text.char_count() <= max {
        return text.into_string();
    }
    let note = match full {
        Some(f) => f.note(),
        None => Mrkdwn::markup("(truncated)"),
    };
    let (cut, _) = text.truncated(max.saturating_sub(note.char_count() + 1));
    let mut out = cut;
    out.push_markup("\n").push(note);
    out.into_string()
}

/// A button on an `actions` block.
pub struct Button<'a> {
    pub action_id: &'a str,
    pub text: &'a str,
    pub value: String,
    pub style: Option<&'a str>,
    pub confirm: Option<Confirm<'a>>,
}

/// A button's confirmation dialog (all plain text).
pub struct Confirm<'a> {
    pub title: &'a str,
    pub text: &'a str,
    pub confirm: &'a str,
    pub deny: &'a str,
}

/// The one builder of Block Kit surfaces: every field is cut to Slack's limit for it. See
/// the module documentation.
pub struct Blocks {
    blocks: Vec<Value>,
    max_blocks: usize,
    full: Option<FullText>,
    truncated: bool,
}

impl Blocks {
    /// A message's blocks (at most 50); `full` says where the full text is if a field is cut.
    pub fn message(full: Option<FullText>) -> Self {
        Self {
            blocks: Vec::new(),
            max_blocks: limit::MESSAGE_BLOCKS,
            full,
            truncated: false,
        }
    }

    /// A modal's blocks (at most 100).
    pub fn modal() -> Self {
        Self {
            max_blocks: limit::MODAL_BLOCKS,
            ..Self::message(None)
        }
    }

    /// Whether any field was cut so far.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// `text` cut to `max` characters (noting that it was), for a piece of a larger field.
    pub fn fit(&mut self, text: Mrkdwn, max: usize) -> Mrkdwn {
        let (text, cut) = text.truncated(max);
        self.truncated |= cut;
        text
    }

    fn plain(&mut self, text: &str, max: usize) -> Value {
        let text = match mrkdwn::truncate_plain(text, max) {
            Some(cut) => {
                self.truncated = true;
                cut
            }
            None => text.to_string(),
        };
        // Slack refuses an empty text object.
        let text = if text.is_empty() { " ".into() } else { text };
        json!({ "type": "plain_text", "text": text, "emoji": true })
    }

    fn mrkdwn(&mut self, text: Mrkdwn, max: usize) -> Value {
        let text = self.fit(text, max);
        let text = if text.is_empty() {
            " ".to_string()
        } else {
            text.into_string()
        };
        json!({ "type": "mrkdwn", "text": text })
    }

    fn push(&mut self, block: Value) {
        if self.blocks.len() < self.max_blocks {
            self.blocks.push(block);
        } else {
            self.truncated = true;
        }
    }

    /// A `header` block (plain text, 150 characters).
    pub fn header(&mut self, text: &str) -> &mut Self {
        let text = self.plain(text, limit::HEADER_TEXT);
        self.push(json!({ "type": "header", "text": text }));
        self
    }

    /// A `section` block with mrkdwn text (3,000 characters).
    pub fn section(&mut self, text: Mrkdwn) -> &mut Self {
        let text = self.mrkdwn(text, limit::SECTION_TEXT);
        self.push(json!({ "type": "section", "text": text }));
        self
    }

    /// A `section` block of mrkdwn fields (at most 10, 2,000 characters each).
    pub fn fields(&mut self, fields: Vec<Mrkdwn>) -> &mut Self {
        if fields.len() > limit::SECTION_FIELDS {
            self.truncated = true;
        }
        let fields: Vec<Value> = fields
            .into_iter()
            .take(limit::SECTION_FIELDS)
            .map(|f| self.mrkdwn(f, limit::SECTION_FIELD))
            .collect();
        self.push(json!({ "type": "section", "fields": fields }));
        self
    }

    /// A `context` block of mrkdwn elements (at most 10, 3,000 characters each).
    pub fn context(&mut self, elements: Vec<Mrkdwn>) -> &mut Self {
        if elements.len() > limit::CONTEXT_ELEMENTS {
            self.truncated = true;
        }
        let elements: Vec<Value> = elements
            .into_iter()
            .take(limit::CONTEXT_ELEMENTS)
            .map(|e| self.mrkdwn(e, limit::TEXT_OBJECT))
            .collect();
        self.push(json!({ "type": "context", "elements": elements }));
        self
    }

    /// An `actions` block of buttons (at most 25).
    pub fn actions(&mut self, block_id: &str, buttons: Vec<Button<'_>>) -> &mut Self {
        let elements: Vec<Value> = buttons
            .into_iter()
            .take(limit::ACTION_ELEMENTS)
            .map(|b| self.button(b))
            .collect();
        let block_id = fit_plain(block_id, limit::ID);
        self.push(json!({ "type": "actions", "block_id": block_id, "elements": elements }));
        self
    }

    fn button(&mut self, b: Button<'_>) -> Value {
        let mut button = json!({
            "type": "button",
            "action_id": fit_plain(b.action_id, limit::ID),
            "value": fit_plain(&b.value, limit::BUTTON_VALUE),
            "text": self.plain(b.text, limit::BUTTON_TEXT),
        });
        if let Some(style) = b.style {
            button["style"] = json!(style);
        }
        if let Some(c) = b.confirm {
            button["confirm"] = json!({
                "title": self.plain(c.title, limit::CONFIRM_TITLE),
                "text": self.plain(c.text, limit::CONFIRM_TEXT),
                "confirm": self.plain(c.confirm, limit::CONFIRM_BUTTON),
                "deny": self.plain(c.deny, limit::CONFIRM_BUTTON),
            });
        }
        button
    }

    /// A modal `input` block: a label (2,000 characters) and its element.
    pub fn input(&mut self, block_id: &str, label: &str, optional: bool, element: Value) {
        let label = self.plain(label, limit::INPUT_LABEL);
        self.push(json!({
            "type": "input", "block_id": fit_plain(block_id, limit::ID), "optional": optional,
            "label": label, "element": element,
        }));
    }

    /// A `plain_text_input` element; `max_length` is capped at Slack's 3,000.
    pub fn text_input(action_id: &str, multiline: bool, max_length: Option<usize>) -> Value {
        let mut element = json!({
            "type": "plain_text_input", "action_id": fit_plain(action_id, limit::ID),
            "multiline": multiline,
        });
        if let Some(max) = max_length {
            element["max_length"] = json!(max.min(limit::TEXT_INPUT));
        }
        element
    }

    /// A select option (text 75, value 150 characters).
    pub fn option(&mut self, text: &str, value: &str) -> Value {
        json!({
            "text": self.plain(text, limit::OPTION_TEXT),
            "value": fit_plain(value, limit::OPTION_VALUE),
        })
    }

    /// The blocks as JSON; if anything was cut, the last one is a note saying where the full
    /// text is.
    pub fn into_json(mut self) -> Vec<Value> {
        if self.truncated {
            let note = match &self.full {
                Some(full) => full.note(),
                None => Mrkdwn::markup("(truncated)"),
            };
            if self.blocks.len() >= self.max_blocks {
                self.blocks.truncate(self.max_blocks - 1);
            }
            let note = self.mrkdwn(note, limit::TEXT_OBJECT);
            self.blocks
                .push(json!({ "type": "context", "elements": [note] }));
        }
        self.blocks
    }

    /// A message: its `text` (the notification and fallback, 40,000 characters) and blocks.
    pub fn finish(self, text: Mrkdwn) -> anyhow::Result<(String, Vec<SlackBlock>)> {
        let text = message_text(text, self.full.as_ref());
        Ok((text, parse_blocks(self.into_json())?))
    }

    /// A modal: title, submit and close (24 characters each), `private_metadata` (3,000,
    /// refused rather than cut: it is data) and the blocks.
    pub fn finish_modal(self, modal: Modal<'_>) -> anyhow::Result<SlackView> {
        anyhow::ensure!(
            mrkdwn::char_count(modal.private_metadata) <= limit::PRIVATE_METADATA,
            "private_metadata is over Slack's {} characters",
            limit::PRIVATE_METADATA
        );
        let title =
            |t: &str| json!({ "type": "plain_text", "text": fit_plain(t, limit::MODAL_TITLE) });
        let mut view = json!({
            "type": "modal",
            "callback_id": fit_plain(modal.callback_id, limit::ID),
            "private_metadata": modal.private_metadata,
            "title": title(modal.title),
            "submit": title(modal.submit),
        });
        if let Some(close) = modal.close {
            view["close"] = title(close);
        }
        view["blocks"] = Value::Array(self.into_json());
        parse_view(view)
    }
}

/// A modal's frame, for [`Blocks::finish_modal`].
pub struct Modal<'a> {
    pub callback_id: &'a str,
    pub private_metadata: &'a str,
    pub title: &'a str,
    pub submit: &'a str,
    pub close: Option<&'a str>,
}

/// `🚨 INC-42 · SEV1 · title` (plain text: the header and the notification text).
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

fn role_field(label: &'static str, who: Option<&str>) -> Mrkdwn {
    let mut m = Mrkdwn::markup("*");
    m.push_markup(label).push_markup("*\n");
    m.push(who.map_or(Mrkdwn::markup("unassigned"), Mrkdwn::user));
    m
}

fn labelled(label: &'static str, value: Mrkdwn) -> Mrkdwn {
    let mut m = Mrkdwn::markup("*");
    m.push_markup(label).push_markup("*\n").push(value);
    m
}

/// The pinned card in the incident channel: state, roles, and the action buttons.
/// `public_url` (`server.public_url`) is where a shortened text's full version is linked.
pub fn card(
    incident: &Incident,
    latest_update: Option<&str>,
    public_url: Option<&str>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let n = incident.number;
    let mut b = Blocks::message(Some(FullText::new(n, public_url)));
    let next = incident
        .next_update_due
        .map_or(Mrkdwn::markup("none promised"), Mrkdwn::date);
    b.header(&title_line(incident));
    b.fields(vec![
        labelled("Status", Mrkdwn::text(incident.status.as_str())),
        labelled("Severity", Mrkdwn::text(&incident.severity.to_string())),
        role_field("Commander", incident.commander.as_deref()),
        role_field("Comms", incident.comms.as_deref()),
        role_field("Scribe", incident.scribe.as_deref()),
        labelled("Next update due", next),
    ]);
    if let Some(text) = latest_update {
        b.section(labelled("Latest update", Mrkdwn::text(text)));
    }
    if incident.status.is_open() {
        let value = format!("{}:{}", n.0, incident.version);
        let resolve_title = format!("Resolve {n}?");
        b.actions(
            "fb_card_actions",
            vec![
                Button {
                    action_id: ACTION_ACK,
                    text: "Acknowledge",
                    value: value.clone(),
                    style: None,
                    confirm: None,
                },
                Button {
                    action_id: ACTION_UPDATE,
                    text: "Post update",
                    value: value.clone(),
                    style: None,
                    confirm: None,
                },
                Button {
                    action_id: ACTION_RESOLVE,
                    text: "Resolve",
                    value,
                    style: Some("danger"),
                    confirm: Some(Confirm {
                        title: &resolve_title,
                        text: "This closes the incident and lifts what it started.",
                        confirm: "Resolve",
                        deny: "Cancel",
                    }),
                },
            ],
        );
    }
    let mut declared = Mrkdwn::markup("Declared ");
    declared
        .push(Mrkdwn::date(incident.declared_at))
        .push_markup(" by ")
        .push(Mrkdwn::user(&incident.declared_by))
        .push_markup(" · firebreak");
    b.context(vec![declared]);
    b.finish(Mrkdwn::text(&title_line(incident)))
}

/// Room for the notice's title line: any title the core accepts (200 characters), even if
/// every character is escaped to an entity; only longer rows stored before that limit are cut.
const NOTICE_TITLE: usize = 1_200;

/// The company-wide notice: always the current state, edited in place as things change.
/// A long update is shortened so the whole notice fits one section.
pub fn notice(
    incident: &Incident,
    channel_id: Option<&str>,
    latest_update: Option<&str>,
    public_url: Option<&str>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let mut b = Blocks::message(Some(FullText::new(incident.number, public_url)));
    let commander = incident
        .commander
        .as_deref()
        .map_or(Mrkdwn::markup("unassigned"), Mrkdwn::user);
    let mut title = Mrkdwn::markup("*");
    title
        .push(b.fit(Mrkdwn::text(&title_line(incident)), NOTICE_TITLE))
        .push_markup("*");
    let mut status = Mrkdwn::markup("Status: *");
    status
        .push_text(incident.status.as_str())
        .push_markup("* · Commander: ")
        .push(commander);
    let mut lines = vec![title, status];
    if let Some(channel) = channel_id {
        let mut follow = Mrkdwn::markup("Follow along in ");
        follow.push(Mrkdwn::channel(channel));
        lines.push(follow);
    }
    let drill = incident
        .drill
        .then(|| Mrkdwn::markup("_This is a drill: nothing is broken._"));
    if let Some(text) = latest_update {
        let fixed: usize = lines.iter().map(|l| l.char_count() + 1).sum::<usize>()
            + drill.as_ref().map_or(0, |d| d.char_count() + 1);
        let label = Mrkdwn::markup("Latest update: ");
        let room = limit::SECTION_TEXT.saturating_sub(fixed + label.char_count());
        let text = b.fit(Mrkdwn::text(text), room);
        lines.push(Mrkdwn::concat([label, text]));
    }
    lines.extend(drill);
    b.section(Mrkdwn::join(lines, "\n"));
    let mut declared = Mrkdwn::markup("Declared ");
    declared
        .push(Mrkdwn::date(incident.declared_at))
        .push_markup(" · updates in the thread");
    b.context(vec![declared]);
    b.finish(Mrkdwn::text(&title_line(incident)))
}

/// The neutral reply as Slack mrkdwn: all of it escaped, except the mentions of the
/// incident's own people (its role holders and who declared it, from stored IDs), which
/// the core writes as `<@U…>` or `slack:U…` and which stay live.
pub fn reply_mrkdwn(reply: &Reply, actor: Option<&str>) -> Mrkdwn {
    let mut intended: Vec<String> = actor.and_then(user_id).into_iter().collect();
    if let Some(i) = reply.incident() {
        for who in [&i.commander, &i.comms, &i.scribe]
            .into_iter()
            .flatten()
            .chain([&i.declared_by])
        {
            intended.extend(user_id(who));
        }
    }
    let escaped = mrkdwn::escape(&reply.text);
    Mrkdwn::trusted(relink(&escaped, &intended))
}

/// Turns `&lt;@ID&gt;` and `slack:ID` back into `<@ID>` for the IDs in `intended`.
fn relink(escaped: &str, intended: &[String]) -> String {
    if intended.is_empty() {
        return escaped.to_string();
    }
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while !rest.is_empty() {
        let found = [("&lt;@", "&gt;"), ("slack:", "")]
            .iter()
            .find_map(|(open, close)| {
                let after = rest.strip_prefix(open)?;
                let len = after
                    .bytes()
                    .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                    .count();
                let id = &after[..len];
                let tail = after[len..].strip_prefix(close)?;
                let boundary = !tail.starts_with(|c: char| c.is_alphanumeric());
                (boundary && intended.iter().any(|i| i == id)).then_some((id, tail))
            });
        match found {
            Some((id, tail)) => {
                out.push_str(&format!("<@{id}>"));
                rest = tail;
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// The HTTP response to a slash command.
pub fn command_response(reply: &Reply, actor: Option<&str>) -> Value {
    let response_type = match reply.visibility {
        Visibility::Public => "in_channel",
        Visibility::Private => "ephemeral",
    };
    let full = reply.incident().map(|i| FullText::new(i.number, None));
    let text = message_text(reply_mrkdwn(reply, actor), full.as_ref());
    json!({ "response_type": response_type, "text": text })
}

/// An ephemeral answer with the help text in a code block.
pub fn help_response(message: &str, help: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": message_text(help_mrkdwn(message, help), None) })
}

/// A message followed by the help text in a code block.
pub fn help_mrkdwn(message: &str, help: &str) -> Mrkdwn {
    let mut text = Mrkdwn::text(message);
    text.push_markup("\n```").push_text(help).push_markup("```");
    text
}

/// An ephemeral answer (an error, a refusal) of plain text.
pub fn ephemeral_response(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": message_text(Mrkdwn::text(text), None) })
}

/// The modal for a bare `/incident declare`. `origin` is the channel it was typed in.
pub fn declare_modal(origin: &str) -> anyhow::Result<SlackView> {
    let mut b = Blocks::modal();
    let severities: Vec<Value> = ["sev1", "sev2", "sev3", "sev4"]
        .iter()
        .map(|s| b.option(&s.to_uppercase(), s))
        .collect();
    let initial = severities[2].clone();
    b.input(
        "title",
        "What is broken?",
        false,
        Blocks::text_input("title", false, Some(200)),
    );
    b.input(
        "severity",
        "Severity",
        false,
        json!({ "type": "static_select", "action_id": "severity", "options": severities, "initial_option": initial }),
    );
    b.input(
        "description",
        "What do we know so far?",
        true,
        Blocks::text_input("description", true, Some(limit::TEXT_INPUT)),
    );
    b.finish_modal(Modal {
        callback_id: VIEW_DECLARE,
        private_metadata: origin,
        title: "Declare an incident",
        submit: "Declare",
        close: Some("Cancel"),
    })
}

/// The modal behind the card's "Post update" button.
pub fn update_modal(number: IncidentNumber, origin: &str) -> anyhow::Result<SlackView> {
    let mut b = Blocks::modal();
    b.input(
        "text",
        "What changed?",
        false,
        Blocks::text_input("text", true, Some(limit::TEXT_INPUT)),
    );
    b.input(
        "next",
        "Next update in (e.g. 30m)",
        true,
        Blocks::text_input("next", false, None),
    );
    b.finish_modal(Modal {
        callback_id: VIEW_UPDATE,
        private_metadata: &format!("{}:{origin}", number.0),
        title: &format!("Update {number}"),
        submit: "Post",
        close: None,
    })
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
    }

    #[test]
    fn card_and_modals_are_valid_block_kit() {
        let (_, blocks) = card(&incident("DB down"), Some("Failing over"), None).unwrap();
        let json = serde_json::to_string(&blocks).unwrap();
        assert!(
            json.contains("\"value\":\"42:3\""),
            "buttons carry number and version: {json}"
        );
        assert!(
            notice(&incident("DB down"), Some("C1"), None, None)
                .unwrap()
                .1
                .len()
                == 2
        );
        declare_modal("C1").unwrap();
        update_modal(IncidentNumber(42), "C1").unwrap();
    }

    fn json_of(text: &str, blocks: &[SlackBlock]) -> Value {
        json!({ "text": text, "blocks": serde_json::to_value(blocks).unwrap() })
    }

    /// Every `<…>` in the payload's mrkdwn, except dates and channel links.
    fn live(payload: &Value) -> Vec<String> {
        crate::chat::slack::validate::mrkdwn_strings(payload)
            .iter()
            .flat_map(|m| {
                crate::chat::slack::validate::live_tokens(m)
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|t| !t.starts_with("<!date^") && !t.starts_with("<#"))
            .collect()
    }

    const HOSTILE: &str = "<!channel> <!here> <https://evil.example|click> <@U0EVIL> & @here";

    #[test]
    fn hostile_titles_and_updates_stay_text_in_card_and_notice() {
        let mut inc = incident(HOSTILE);
        inc.declared_by = "<!everyone>".into();
        inc.comms = Some("slack:U0COMMS".into());
        let (text, blocks) = card(&inc, Some(HOSTILE), None).unwrap();
        let payload = json_of(&text, &blocks);
        assert_eq!(live(&payload), ["<@U024BE7LH>", "<@U0COMMS>"], "{payload}");
        let json = payload.to_string();
        assert!(json.contains("&lt;!channel&gt;"), "{json}");
        let (text, blocks) = notice(&inc, Some("C1"), Some(HOSTILE), None).unwrap();
        let payload = json_of(&text, &blocks);
        assert_eq!(live(&payload), ["<@U024BE7LH>"], "{payload}");
        assert!(
            payload["text"].as_str().unwrap().contains("@\u{2060}here"),
            "{payload}"
        );
    }

    #[test]
    fn a_200_character_title_makes_a_valid_header() {
        let title = "t".repeat(199) + "🚀";
        let (text, blocks) = card(&incident(&title), None, None).unwrap();
        let payload = json_of(&text, &blocks);
        assert!(
            crate::chat::slack::validate::message(&payload).is_empty(),
            "{:?}",
            crate::chat::slack::validate::message(&payload)
        );
        let header = payload["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(mrkdwn::char_count(header), 150);
        assert!(header.ends_with('…'));
        let note = payload["blocks"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .to_string();
        assert!(
            note.contains("(truncated; full text in `firebreak incident show INC-42`)"),
            "{note}"
        );
    }

    #[test]
    fn a_4000_character_update_keeps_every_section_within_3000() {
        let update = "&<".repeat(2_000);
        let inc = incident("DB down");
        for (text, blocks) in [
            card(&inc, Some(&update), Some("https://fb.example/")).unwrap(),
            notice(&inc, Some("C1"), Some(&update), Some("https://fb.example/")).unwrap(),
        ] {
            let payload = json_of(&text, &blocks);
            let problems = crate::chat::slack::validate::message(&payload);
            assert!(problems.is_empty(), "{problems:?}");
            let json = payload.to_string();
            assert!(
                json.contains(
                    "(truncated; full text on <https://fb.example/incidents/INC-42/postmortem.html|the INC-42 page>)"
                ),
                "{json}"
            );
            assert!(json.contains("&amp;&lt;…"), "cut between entities: {json}");
        }
    }

    #[test]
    fn the_builder_keeps_to_the_block_count() {
        let mut b = Blocks::message(Some(FullText::new(IncidentNumber(7), None)));
        for i in 0..60 {
            b.section(Mrkdwn::text(&format!("line {i}")));
        }
        let blocks = b.into_json();
        assert_eq!(blocks.len(), 50);
        assert!(blocks[49].to_string().contains("INC-7"));
    }

    #[test]
    fn slash_replies_escape_all_but_the_incidents_own_people() {
        let mut inc = incident(HOSTILE);
        inc.comms = Some("slack:U0COMMS".into());
        let reply = Reply::public(format!(
            "Declared: {HOSTILE}. Commander <@U024BE7LH>, comms slack:U0COMMS, not slack:U0COMMSX or <@U0OTHER>."
        ))
        .with_body(crate::incident::reply::ReplyBody::Incident {
            incident: Box::new(inc),
            timeline: Vec::new(),
        });
        let text = command_response(&reply, None)["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            text,
            "Declared: &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click&gt; &lt;@U0EVIL&gt; &amp; @\u{2060}here. \
             Commander <@U024BE7LH>, comms <@U0COMMS>, not slack:U0COMMSX or &lt;@U0OTHER&gt;."
        );
        let help = help_response("No <b>", "declare <title>");
        assert_eq!(help["text"], "No &lt;b&gt;\n```declare &lt;title&gt;```");
        assert_eq!(ephemeral_response("<!here>")["text"], "&lt;!here&gt;");
    }

    #[test]
    fn long_message_texts_are_cut_with_the_note() {
        let full = FullText::new(IncidentNumber(3), None);
        let text = message_text(Mrkdwn::text(&"<".repeat(20_000)), Some(&full));
        assert!(mrkdwn::char_count(&text) <= limit::MESSAGE_TEXT);
        assert!(text.ends_with("…\n(truncated; full text in `firebreak incident show INC-3`)"));
        assert!(!text.contains("&l…"));
    }

    #[test]
    fn topics_stay_within_250() {
        let mut inc = incident("x");
        inc.commander = Some("y".repeat(400));
        assert_eq!(mrkdwn::char_count(&topic(&inc)), limit::TOPIC);
        inc.commander = Some("<!here>".into());
        assert!(topic(&inc).ends_with("commander &lt;!here&gt;"));
    }
}
