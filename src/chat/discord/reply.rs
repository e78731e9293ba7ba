//! The core's [`Reply`] as an interaction response: type 4 (a message in the channel,
//! ephemeral where the reply is private), the incident as a small embed with the
//! Acknowledge / Post update / Resolve buttons (each carrying the version it showed), and
//! the forms as type 9 modals.
//!
//! Everything is safe to show: user text has Discord markdown escaped, every response sets
//! `allowed_mentions: {"parse": []}` so nothing in it pings `@everyone`, `@here`, a role or
//! a user, and every field is cut to Discord's limits with "…".

use serde_json::{Value, json};

use crate::incident::{Incident, IncidentNumber, Reply, Visibility};

/// Interaction callback types.
pub const PONG: u8 = 1;
pub const CHANNEL_MESSAGE: u8 = 4;
pub const MODAL: u8 = 9;

/// The message flag that shows a response to its caller only.
pub const EPHEMERAL: u64 = 64;

/// Discord's limits (characters).
pub mod limit {
    pub const CONTENT: usize = 2000;
    pub const TITLE: usize = 256;
    pub const DESCRIPTION: usize = 4096;
    pub const FIELDS: usize = 25;
    pub const FIELD_NAME: usize = 256;
    pub const FIELD_VALUE: usize = 1024;
    pub const FOOTER: usize = 2048;
    pub const EMBED_TOTAL: usize = 6000;
}

/// Custom ids of the buttons and forms: `fb:<action>:<incident>[:<version>]`.
pub const ACK: &str = "ack";
pub const UPDATE: &str = "update";
pub const RESOLVE: &str = "resolve";
pub const DECLARE: &str = "declare";

/// A button's or form's custom id.
pub fn custom_id(action: &str, parts: &[i64]) -> String {
    std::iter::once(format!("fb:{action}"))
        .chain(parts.iter().map(i64::to_string))
        .collect::<Vec<_>>()
        .join(":")
}

/// `fb:ack:42:7` → `("ack", [42, 7])`; `None` for ids that are not firebreak's.
pub fn parse_custom_id(id: &str) -> Option<(&str, Vec<i64>)> {
    let mut parts = id.strip_prefix("fb:")?.split(':');
    let action = parts.next()?;
    let numbers = parts
        .map(str::parse)
        .collect::<Result<Vec<i64>, _>>()
        .ok()?;
    Some((action, numbers))
}

/// `{"type":1}`, the answer to a PING.
pub fn pong() -> Value {
    json!({ "type": PONG })
}

/// The response to a command, a button or a form: the reply's text, and for an incident
/// change the incident with its buttons.
pub fn response(reply: &Reply) -> Value {
    let mut data = message(&reply.text, reply.visibility == Visibility::Private);
    if let Some(incident) = reply.incident() {
        data["embeds"] = json!([incident_embed(incident)]);
        if reply.visibility == Visibility::Public && incident.status.is_open() {
            data["components"] = buttons(incident);
        }
    }
    if let crate::incident::ReplyBody::List { incidents } = &reply.body {
        if !incidents.is_empty() {
            data["embeds"] = json!([list_embed(incidents)]);
        }
    }
    json!({ "type": CHANNEL_MESSAGE, "data": data })
}

/// An answer only the caller sees: an error, a refusal, help.
pub fn ephemeral(text: &str) -> Value {
    json!({ "type": CHANNEL_MESSAGE, "data": message(text, true) })
}

/// A sentence with the help text under it, in a code block.
pub fn help(message_text: &str, help: &str) -> Value {
    let text = fit(
        &escape(message_text),
        limit::CONTENT - 9 - help.len().min(1500),
    );
    let block = fit(
        &help.replace('`', "ˋ"),
        limit::CONTENT - 9 - text.chars().count(),
    );
    let mut data = message("", true);
    data["content"] = json!(format!("{text}\n```\n{block}\n```"));
    json!({ "type": CHANNEL_MESSAGE, "data": data })
}

fn message(text: &str, private: bool) -> Value {
    let mut data = json!({
        "content": content(text),
        "allowed_mentions": { "parse": [] },
    });
    if private {
        data["flags"] = json!(EPHEMERAL);
    }
    data
}

/// The declare form, for a bare `/incident declare`.
pub fn declare_modal() -> Value {
    modal(
        &custom_id(DECLARE, &[]),
        "Declare an incident",
        vec![
            input("title", "What is broken?", 1, 200, true, None),
            input(
                "severity",
                "Severity (SEV1-SEV4)",
                1,
                5,
                false,
                Some("SEV3"),
            ),
            input(
                "description",
                "What do we know so far?",
                2,
                4000,
                false,
                None,
            ),
        ],
    )
}

/// The update form, for the Post update button.
pub fn update_modal(number: IncidentNumber) -> Value {
    modal(
        &custom_id(UPDATE, &[number.0]),
        &format!("Post an update on {number}"),
        vec![
            input("text", "What changed?", 2, 4000, true, None),
            input("next", "Next update due in (e.g. 30m)", 1, 10, false, None),
        ],
    )
}

fn modal(id: &str, title: &str, inputs: Vec<Value>) -> Value {
    let rows: Vec<Value> = inputs
        .into_iter()
        .map(|i| json!({ "type": 1, "components": [i] }))
        .collect();
    json!({ "type": MODAL, "data": {
        "custom_id": id,
        "title": cut(title, 45),
        "components": rows,
    }})
}

/// A text input: style 1 is one line, 2 a paragraph.
fn input(
    id: &str,
    label: &str,
    style: u8,
    max: usize,
    required: bool,
    value: Option<&str>,
) -> Value {
    let mut i = json!({
        "type": 4, "custom_id": id, "label": label, "style": style,
        "max_length": max, "required": required,
    });
    if let Some(v) = value {
        i["value"] = json!(v);
    }
    i
}

fn buttons(incident: &Incident) -> Value {
    let parts = [incident.number.0, incident.version];
    let button = |label: &str, action: &str, style: u8| json!({ "type": 2, "style": style, "label": label, "custom_id": custom_id(action, &parts) });
    json!([{ "type": 1, "components": [
        button("Acknowledge", ACK, 1),
        button("Post update", UPDATE, 2),
        button("Resolve", RESOLVE, 4),
    ]}])
}

fn incident_embed(i: &Incident) -> Value {
    let who = |w: &Option<String>| w.as_deref().map_or("none".to_string(), content);
    let fields = vec![
        ("Status", i.status.as_str().to_string()),
        ("Severity", i.severity.to_string()),
        ("Commander", who(&i.commander)),
        ("Comms", who(&i.comms)),
        ("Scribe", who(&i.scribe)),
    ];
    Embed::new(&i.headline())
        .fields(fields)
        .footer(&format!("Version {}", i.version))
        .into_json()
}

fn list_embed(incidents: &[Incident]) -> Value {
    let lines: Vec<String> = incidents
        .iter()
        .map(|i| format!("{} · {}", escape(&i.headline()), i.status))
        .collect();
    Embed::new("Incidents")
        .description(&lines.join("\n"))
        .into_json()
}

/// An embed within Discord's limits: each part cut to its own, fields beyond 25 dropped,
/// and the description shortened so the whole stays within 6000 characters.
#[derive(Debug, Default)]
pub struct Embed {
    title: String,
    description: String,
    fields: Vec<(String, String)>,
    footer: String,
}

impl Embed {
    /// `title` is plain text (Discord shows embed titles without markdown).
    pub fn new(title: &str) -> Self {
        Self {
            title: cut(title, limit::TITLE),
            ..Self::default()
        }
    }

    /// Already-escaped markdown.
    pub fn description(mut self, text: &str) -> Self {
        self.description = cut(text, limit::DESCRIPTION);
        self
    }

    /// Field values are already-escaped markdown.
    pub fn fields(mut self, fields: Vec<(&str, String)>) -> Self {
        self.fields = fields
            .into_iter()
            .take(limit::FIELDS)
            .map(|(n, v)| (cut(n, limit::FIELD_NAME), cut(&v, limit::FIELD_VALUE)))
            .collect();
        self
    }

    pub fn footer(mut self, text: &str) -> Self {
        self.footer = cut(text, limit::FOOTER);
        self
    }

    fn total(&self) -> usize {
        let len = |s: &str| s.chars().count();
        len(&self.title)
            + len(&self.description)
            + len(&self.footer)
            + self
                .fields
                .iter()
                .map(|(n, v)| len(n) + len(v))
                .sum::<usize>()
    }

    pub fn into_json(mut self) -> Value {
        let over = self.total().saturating_sub(limit::EMBED_TOTAL);
        if over > 0 {
            let keep = self.description.chars().count().saturating_sub(over);
            self.description = cut(&self.description, keep);
        }
        while self.total() > limit::EMBED_TOTAL && self.fields.pop().is_some() {}
        let mut e = json!({ "title": self.title });
        if !self.description.is_empty() {
            e["description"] = json!(self.description);
        }
        if !self.fields.is_empty() {
            e["fields"] = self
                .fields
                .iter()
                .map(|(n, v)| json!({ "name": n, "value": v, "inline": true }))
                .collect();
        }
        if !self.footer.is_empty() {
            e["footer"] = json!({ "text": self.footer });
        }
        e
    }
}

/// Plain text as message content: markdown escaped, identities as mentions, within 2000.
pub fn content(text: &str) -> String {
    fit(&escape(text), limit::CONTENT)
}

/// `s` cut to `max` characters, ending in "…" when it was cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escaped text cut to `max` without leaving half an escape or half a mention at the end.
fn fit(escaped: &str, max: usize) -> String {
    if escaped.chars().count() <= max {
        return escaped.to_string();
    }
    let mut out: String = escaped.chars().take(max.saturating_sub(1)).collect();
    if let Some(open) = out.rfind('<') {
        if !out[open..].contains('>') {
            out.truncate(open);
        }
    }
    let trailing = out.len() - out.trim_end_matches('\\').len();
    if trailing % 2 == 1 {
        out.pop();
    }
    out.push('…');
    out
}

/// Plain text as Discord markdown that shows exactly that text, with `discord:ID`
/// identities (how the core names chat users) turned into user mentions. The mentions
/// never ping: every response sets `allowed_mentions` to parse nothing.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut line_start = true;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((id, tail)) = identity_at(rest) {
            out.push_str(&format!("<@{id}>"));
            rest = tail;
            line_start = false;
            continue;
        }
        let special = matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']' | ':'
        ) || (line_start && matches!(c, '#' | '-' | '+'));
        if special {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n' || (line_start && c.is_whitespace());
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `discord:<digits>` at the start of `s`, at a word boundary.
fn identity_at(s: &str) -> Option<(&str, &str)> {
    let after = s.strip_prefix("discord:")?;
    let len = after.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &after[len..];
    (len > 0 && !tail.starts_with(|c: char| c.is_alphanumeric())).then(|| (&after[..len], tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip() {
        assert_eq!(custom_id(ACK, &[42, 7]), "fb:ack:42:7");
        assert_eq!(parse_custom_id("fb:ack:42:7"), Some((ACK, vec![42, 7])));
        assert_eq!(parse_custom_id("fb:declare"), Some((DECLARE, vec![])));
        assert_eq!(parse_custom_id("other:1"), None);
        assert_eq!(parse_custom_id("fb:ack:x"), None);
    }

    #[test]
    fn text_is_escaped_and_identities_become_quiet_mentions() {
        assert_eq!(escape("a *b* _c_ `d`"), "a \\*b\\* \\_c\\_ \\`d\\`");
        assert_eq!(escape("# big\n- item"), "\\# big\n\\- item");
        assert_eq!(
            escape("<@&123> [x](http://e)"),
            "\\<@&123\\> \\[x\\](http\\://e)"
        );
        assert_eq!(escape("by discord:42."), "by <@42>.");
        assert_eq!(escape("discord:42x"), "discord\\:42x");
        assert_eq!(escape("@everyone"), "@everyone");
    }

    #[test]
    fn every_response_parses_no_mentions_and_fits() {
        let long = "@everyone <@&1> ".repeat(400);
        for r in [
            response(&Reply::public(long.clone())),
            ephemeral(&long),
            help(&long, &long),
        ] {
            assert_eq!(r["data"]["allowed_mentions"], json!({ "parse": [] }));
            let content = r["data"]["content"].as_str().unwrap();
            assert!(
                content.chars().count() <= limit::CONTENT,
                "{}",
                content.len()
            );
            assert!(content.ends_with('…') || content.ends_with("```"));
        }
        assert_eq!(ephemeral("x")["data"]["flags"], json!(EPHEMERAL));
        assert!(response(&Reply::public("x"))["data"].get("flags").is_none());
    }

    #[test]
    fn cutting_never_leaves_half_an_escape_or_mention() {
        let s = fit(&escape(&"*".repeat(3000)), 2000);
        assert!(s.chars().count() <= 2000 && !s.trim_end_matches('…').ends_with("\\\\"));
        assert!(s.trim_end_matches('…').len() % 2 == 0);
        let s = fit(&"a<@123>".repeat(400), 2000);
        assert!(!s.trim_end_matches('…').ends_with("<@12"));
    }

    #[test]
    fn an_embed_stays_within_every_limit() {
        let big = "x".repeat(10_000);
        let fields = (0..40).map(|_| ("name", big.clone())).collect();
        let e = Embed::new(&big)
            .description(&big)
            .fields(fields)
            .footer(&big)
            .into_json();
        let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        assert!(len(&e["title"]) <= limit::TITLE);
        assert!(len(&e["description"]) <= limit::DESCRIPTION);
        let fields = e["fields"].as_array().map_or(0, Vec::len);
        assert!(fields <= limit::FIELDS);
        let total = len(&e["title"])
            + len(&e["description"])
            + len(&e["footer"]["text"])
            + e["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| len(&f["name"]) + len(&f["value"]))
                .sum::<usize>();
        assert!(total <= limit::EMBED_TOTAL, "{total}");
    }
}
