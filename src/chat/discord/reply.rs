//! The core's [`Reply`] as an interaction response: type 4 (a message in the channel,
//! ephemeral where the reply is private), the incident as a small embed with the
//! Acknowledge / Post update / Resolve buttons (each carrying the version it showed), and
//! the forms as type 9 modals.
//!
//! Everything is safe to show: the reply's text is the core's sentence, which keeps its
//! own code spans while what it quotes is defused ([`super::text::defuse`]); embeds show
//! user text escaped; every response sets
//! `allowed_mentions: {"parse": []}` so nothing in it pings `@everyone`, `@here`, a role or
//! a user, and every field is cut to Discord's limits with "…".

use serde_json::{Value, json};

use super::embeds::{self, Embed};
use super::text::{defuse, escape, fit, limit};
use crate::incident::{Incident, IncidentNumber, Reply, Visibility};

/// Interaction callback types.
pub const PONG: u8 = 1;
pub const CHANNEL_MESSAGE: u8 = 4;
pub const MODAL: u8 = 9;

/// The message flag that shows a response to its caller only.
pub const EPHEMERAL: u64 = 64;

/// Custom ids of the buttons and forms: `fb:<action>:<incident>[:<version>]`.
pub const ACK: &str = "ack";
pub const UPDATE: &str = "update";
pub const RESOLVE: &str = "resolve";
pub const DECLARE: &str = "declare";
/// A runbook step's Done button: `fb:rbdone:<incident>:<step id>`.
pub const STEP_DONE: &str = "rbdone";

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

/// A runbook step's Done button id: `fb:rbdone:42:restore-db`. Step ids are
/// `[a-z0-9_-]{1,40}`, so it stays far below Discord's 100 characters.
pub fn step_custom_id(number: IncidentNumber, step: &str) -> String {
    format!("fb:{STEP_DONE}:{}:{step}", number.0)
}

/// `fb:rbdone:42:restore-db` → INC-42, `restore-db`; `None` for any other id, or a step
/// id that is not one.
pub fn parse_step_custom_id(id: &str) -> Option<(IncidentNumber, String)> {
    let rest = id.strip_prefix("fb:")?.strip_prefix(STEP_DONE)?;
    let (number, step) = rest.strip_prefix(':')?.split_once(':')?;
    let number = number.parse().ok().filter(|n| *n > 0)?;
    let valid = (1..=40).contains(&step.len())
        && step
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    valid.then(|| (IncidentNumber(number), step.to_string()))
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
        &defuse(message_text),
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
        "content": fit(&defuse(text), limit::CONTENT),
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
        "title": fit(title, limit::MODAL_TITLE),
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

/// The card's buttons, carrying the version this reply showed.
fn buttons(incident: &Incident) -> Value {
    json!(embeds::card_buttons(incident))
}

fn incident_embed(i: &Incident) -> Value {
    json!(embeds::card(i, None).to_builder())
}

fn list_embed(incidents: &[Incident]) -> Value {
    let lines: Vec<String> = incidents
        .iter()
        .map(|i| format!("{} · {}", escape(&i.headline()), i.status))
        .collect();
    let embed = Embed {
        title: "Incidents".into(),
        description: lines.join("\n"),
        ..Embed::default()
    };
    json!(embed.fitted().to_builder())
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
    fn step_ids_round_trip_and_anything_else_is_refused() {
        let id = step_custom_id(IncidentNumber(42), "restore_db-2");
        assert_eq!(id, "fb:rbdone:42:restore_db-2");
        assert_eq!(
            parse_step_custom_id(&id),
            Some((IncidentNumber(42), "restore_db-2".into()))
        );
        let longest = step_custom_id(IncidentNumber(i64::MAX), &"a".repeat(40));
        assert!(longest.len() <= 100, "{}", longest.len());
        for bad in [
            "fb:rbdone:42",
            "fb:rbdone:42:",
            "fb:rbdone:x:step",
            "fb:rbdone:0:step",
            "fb:rbdone:42:Step",
            "fb:rbdone:42:a:b",
            "fb:rbdonex:42:step",
            "fb:ack:42:7",
        ] {
            assert_eq!(parse_step_custom_id(bad), None, "{bad}");
        }
        assert_eq!(
            parse_step_custom_id(&format!("fb:rbdone:1:{}", "a".repeat(41))),
            None
        );
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
        let own = ephemeral("Type `ack` to take it, @here");
        assert_eq!(
            own["data"]["content"], "Type `ack` to take it, @\u{200d}here",
            "the sentence keeps its code span; what it quotes cannot ping"
        );
        let named = ephemeral("Acknowledged by discord:42, who is now commander.");
        assert_eq!(
            named["data"]["content"],
            "Acknowledged by <@42>, who is now commander."
        );
        assert!(response(&Reply::public("x"))["data"].get("flags").is_none());
    }
}
