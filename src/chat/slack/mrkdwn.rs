//! Slack text on the way out: escaping, Slack's published limits, and truncation.
//!
//! Everything firebreak sends to Slack as mrkdwn (Block Kit `mrkdwn` objects and every
//! message `text`) is a [`Mrkdwn`]. The only ways to put text in one are:
//!
//! - [`Mrkdwn::text`]: untrusted text (titles, updates, summaries, reasons, error messages,
//!   anything a person typed or the core wrote). `&`, `<` and `>` are sent as `&amp;`,
//!   `&lt;` and `&gt;`, as Slack asks, so `<!channel>`, `<!here>`, `<@U…>` and
//!   `<https://evil.example|click>` show as typed and never act. A bare `@channel`, `@here`,
//!   `@everyone` or `@all` also gets an invisible word joiner (U+2060) after the `@`, for the
//!   surfaces that parse those words (`link_names`, Mattermost and Rocket.Chat webhooks).
//! - [`Mrkdwn::markup`]: formatting the bot writes itself; a `&'static str`, so never user
//!   text.
//! - [`Mrkdwn::user`], [`Mrkdwn::channel`], [`Mrkdwn::date`], [`Mrkdwn::link`]: the only
//!   `<…>` the bot sends, each built from an ID or a value it checked.
//!
//! `plain_text` objects are not parsed by Slack, so they take the text as it is; they only
//! have limits ([`truncate_plain`]).
//!
//! Lengths count characters (Unicode scalar values), as Slack's limits do. Truncation cuts
//! only between grapheme clusters (an emoji with its modifiers, a letter with its combining
//! marks, a flag, stay whole), never inside an entity (`&amp;`) or the bot's own `<…>`
//! markup, and ends with "…".

use std::fmt;

use unicode_segmentation::UnicodeSegmentation;

/// Slack's published limits, in characters (Block Kit reference, Web API method docs).
pub mod limit {
    /// `header` block text (plain_text).
    pub const HEADER_TEXT: usize = 150;
    /// `section` block `text`.
    pub const SECTION_TEXT: usize = 3_000;
    /// Each of a `section` block's `fields`.
    pub const SECTION_FIELD: usize = 2_000;
    /// How many `fields` a section may have.
    pub const SECTION_FIELDS: usize = 10;
    /// A text object anywhere else (context elements, …).
    pub const TEXT_OBJECT: usize = 3_000;
    /// How many elements a `context` block may have.
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// How many elements an `actions` block may have.
    pub const ACTION_ELEMENTS: usize = 25;
    /// A button's text (plain_text).
    pub const BUTTON_TEXT: usize = 75;
    /// A button's `value`.
    pub const BUTTON_VALUE: usize = 2_000;
    /// A confirmation dialog's title, text, and its two buttons.
    pub const CONFIRM_TITLE: usize = 100;
    pub const CONFIRM_TEXT: usize = 300;
    pub const CONFIRM_BUTTON: usize = 30;
    /// `action_id`, `block_id` and `callback_id`.
    pub const ID: usize = 255;
    /// Blocks in one message.
    pub const MESSAGE_BLOCKS: usize = 50;
    /// Blocks in one modal.
    pub const MODAL_BLOCKS: usize = 100;
    /// A message's top-level `text` (Slack truncates longer text).
    pub const MESSAGE_TEXT: usize = 40_000;
    /// A modal's title, submit and close texts.
    pub const MODAL_TITLE: usize = 24;
    /// A modal's `private_metadata`.
    pub const PRIVATE_METADATA: usize = 3_000;
    /// An `input` block's label.
    pub const INPUT_LABEL: usize = 2_000;
    /// An input's placeholder.
    pub const PLACEHOLDER: usize = 150;
    /// A select option's text and value.
    pub const OPTION_TEXT: usize = 75;
    pub const OPTION_VALUE: usize = 150;
    /// The most a `plain_text_input` may allow (`max_length`).
    pub const TEXT_INPUT: usize = 3_000;
    /// `conversations.setTopic` / `conversations.setPurpose` (`too_long` beyond).
    pub const TOPIC: usize = 250;
    pub const PURPOSE: usize = 250;
}

/// The mark a truncated text ends with.
pub const ELLIPSIS: char = '…';

/// Invisible, and breaks `@channel` / `@here` / `@everyone` (and GitHub's `@user`) apart.
pub const WORD_JOINER: char = '\u{2060}';

/// Characters, as Slack counts them.
pub fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// Slack-escapes untrusted text for mrkdwn: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, and
/// a word joiner after the `@` of a bare `@channel`, `@here` or `@everyone`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, c) in text.char_indices() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => {
                out.push('@');
                if is_broadcast(&text[i + 1..]) {
                    out.push(WORD_JOINER);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `rest` (what follows an `@`) starts with a word that pings everyone.
fn is_broadcast(rest: &str) -> bool {
    ["channel", "here", "everyone", "all"].iter().any(|w| {
        rest.get(..w.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(w))
            && !rest[w.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

/// Slack mrkdwn that is safe to send: see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mrkdwn(String);

impl Mrkdwn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Untrusted text, escaped.
    pub fn text(text: &str) -> Self {
        Self(escape(text))
    }

    /// Formatting the bot writes itself (`*`, `_`, emoji, fixed words). Never user text.
    pub fn markup(markup: &'static str) -> Self {
        Self(markup.to_string())
    }

    /// A person, from a stored identity: a live mention if it is a Slack user ID, else the
    /// name as escaped text. See [`mention`].
    pub fn user(identity: &str) -> Self {
        Self(mention(identity))
    }

    /// `<#C123>` for a channel ID, or the value as escaped text if it is not one.
    pub fn channel(id: &str) -> Self {
        let shaped = id.len() >= 2
            && id.len() <= 32
            && id.starts_with(['C', 'G', 'D'])
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if shaped {
            Self(format!("<#{id}>"))
        } else {
            Self::text(id)
        }
    }

    /// A time every reader sees in their own time zone, with UTC as the fallback.
    pub fn date(t: chrono::DateTime<chrono::Utc>) -> Self {
        Self(format!(
            "<!date^{}^{{date_short_pretty}} {{time}}|{} UTC>",
            t.timestamp(),
            t.format("%Y-%m-%d %H:%M")
        ))
    }

    /// `<url|label>` for an http(s) URL the bot built (from configuration); anything else
    /// is shown as text.
    pub fn link(url: &str, label: &str) -> Self {
        let plain = url.starts_with("https://") || url.starts_with("http://");
        if plain
            && !url
                .chars()
                .any(|c| matches!(c, '<' | '>' | '|') || c.is_whitespace())
        {
            Self(format!("<{}|{}>", url.replace('&', "&amp;"), escape(label)))
        } else {
            Self::text(&format!("{label} ({url})"))
        }
    }

    /// Appends another piece.
    pub fn push(&mut self, other: Mrkdwn) -> &mut Self {
        self.0.push_str(&other.0);
        self
    }

    /// Appends untrusted text, escaped.
    pub fn push_text(&mut self, text: &str) -> &mut Self {
        self.0.push_str(&escape(text));
        self
    }

    /// Appends the bot's own formatting.
    pub fn push_markup(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// The pieces, one after the other.
    pub fn concat(parts: impl IntoIterator<Item = Mrkdwn>) -> Self {
        let mut out = Self::new();
        for p in parts {
            out.push(p);
        }
        out
    }

    /// The pieces with `separator` (the bot's own) between them.
    pub fn join(parts: impl IntoIterator<Item = Mrkdwn>, separator: &'static str) -> Self {
        let mut out = Self::new();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                out.push_markup(separator);
            }
            out.push(p);
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn char_count(&self) -> usize {
        char_count(&self.0)
    }

    /// At most `max` characters, cut between whole units and ending in "…" if cut; and
    /// whether it was cut.
    pub fn truncated(self, max: usize) -> (Mrkdwn, bool) {
        match truncate_mrkdwn(&self.0, max) {
            Some(cut) => (Mrkdwn(cut), true),
            None => (self, false),
        }
    }

    /// Plain text a trusted part of firebreak produced, already mrkdwn, sent as it is: for
    /// payloads queued before escaping moved to planning time. Prefer [`Mrkdwn::text`].
    pub(crate) fn trusted(mrkdwn: String) -> Self {
        Self(mrkdwn)
    }
}

impl fmt::Display for Mrkdwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Renders a stored identity for Slack. The one function for mentions: `slack:U024BE7LH`,
/// `U024BE7LH`, `<@U024BE7LH>` and `<@U024BE7LH|name>` become the live mention
/// `<@U024BE7LH>`; anything else (a CLI user, a name) is escaped text, never a mention.
pub fn mention(identity: &str) -> String {
    match user_id(identity) {
        Some(id) => format!("<@{id}>"),
        None => escape(crate::incident::identity::fallback_name(identity)),
    }
}

/// The Slack user ID in `slack:U024BE7LH`, `<@U024BE7LH>`, `<@U024BE7LH|name>` or
/// `U024BE7LH`, if any.
pub fn user_id(identity: &str) -> Option<String> {
    if let Ok(parsed) = crate::incident::Identity::parse(identity) {
        return parsed.slack_user().map(str::to_string);
    }
    let inner = identity.strip_prefix("slack:").unwrap_or(identity);
    let inner = inner
        .strip_prefix("<@")
        .and_then(|u| u.strip_suffix('>'))
        .unwrap_or(inner);
    let id = inner.split('|').next().unwrap_or(inner);
    is_user_id(id).then(|| id.to_string())
}

/// `U024BE7LH`-shaped: `U` or `W`, then uppercase letters and digits.
fn is_user_id(id: &str) -> bool {
    id.len() >= 5
        && id.len() <= 32
        && id.starts_with(['U', 'W'])
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Plain text (a `plain_text` object, a topic) at most `max` characters, cut between
/// grapheme clusters with "…" at the end; `None` if it already fits.
pub fn truncate_plain(text: &str, max: usize) -> Option<String> {
    truncate(text, max, false)
}

/// Like [`truncate_plain`] for mrkdwn: also never cuts an entity (`&amp;`) or the bot's own
/// `<…>` markup (mentions, dates, links) in half.
pub fn truncate_mrkdwn(text: &str, max: usize) -> Option<String> {
    truncate(text, max, true)
}

/// [`truncate_plain`], returning the text itself when it fits.
pub fn fit_plain(text: &str, max: usize) -> String {
    truncate_plain(text, max).unwrap_or_else(|| text.to_string())
}

fn truncate(text: &str, max: usize, mrkdwn: bool) -> Option<String> {
    if char_count(text) <= max {
        return None;
    }
    let budget = max.saturating_sub(1);
    let end = prefix_end(text, budget, mrkdwn);
    let mut out = text[..end].trim_end().to_string();
    out.push(ELLIPSIS);
    Some(out)
}

/// The byte length of the longest prefix of `text` with at most `budget` characters that
/// ends between whole units.
fn prefix_end(text: &str, budget: usize, mrkdwn: bool) -> usize {
    let mut used = 0;
    let mut end = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let unit = if mrkdwn { markup_unit(rest) } else { None }
            .unwrap_or_else(|| rest.graphemes(true).next().map_or(rest.len(), str::len));
        let chars = char_count(&rest[..unit]);
        if used + chars > budget {
            break;
        }
        used += chars;
        end += unit;
        rest = &rest[unit..];
    }
    end
}

/// The length of an entity (`&amp;`, `&lt;`, `&gt;`) or a `<…>` at the start of `rest`.
fn markup_unit(rest: &str) -> Option<usize> {
    let close = match rest.as_bytes().first()? {
        b'&' => ';',
        b'<' => '>',
        _ => return None,
    };
    let end = rest.find(close)?;
    // Entities are short; a `<…>` never spans a line.
    let plausible = if close == ';' {
        end <= 8
    } else {
        !rest[..end].contains('\n')
    };
    plausible.then_some(end + 1)
}

#[cfg(test)]
#[path = "mrkdwn_tests.rs"]
mod tests;
