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

mod messages;
mod modals;
mod replies;
#[cfg(test)]
pub(super) mod tests;

use serde_json::{Value, json};
use slack_morphism::prelude::{SlackBlock, SlackView};

use super::mrkdwn::{self, Mrkdwn, fit_plain, limit};
use crate::incident::model::{Incident, IncidentNumber};

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
    crate::chat::channel_name(prefix, incident, attempt, 80, |c| c.is_ascii_alphanumeric())
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
pub use messages::{card, notice};
pub use modals::{declare_modal, update_modal};
pub use replies::{command_response, ephemeral_response, help_mrkdwn, help_response, reply_mrkdwn};

fn parse_blocks(blocks: Vec<Value>) -> anyhow::Result<Vec<SlackBlock>> {
    Ok(serde_json::from_value(Value::Array(blocks))?)
}

fn parse_view(view: Value) -> anyhow::Result<SlackView> {
    Ok(serde_json::from_value(view)?)
}
