//! Answers to slash commands: the command's reply, help and ephemeral notes.

use serde_json::{Value, json};

use super::*;
use crate::chat::slack::mrkdwn::{self, Mrkdwn};
use crate::incident::reply::{Reply, Visibility};

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
