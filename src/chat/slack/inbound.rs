//! What Slack sends us, parsed from the (already verified) raw body into one small internal
//! enum. Only the fields firebreak uses are read, so Slack adding fields never breaks us,
//! and a payload missing a field we need is a clear 400 rather than a half-applied command.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPayload(pub String);

/// A slash command (`/incident …`, `/freeze …`, `/unfreeze …`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    pub channel_id: String,
    #[serde(default)]
    pub trigger_id: String,
}

/// One Events API or interactivity delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackInbound {
    UrlVerification {
        challenge: String,
    },
    Mention(Mention),
    Reaction(Reaction),
    /// An event we subscribe to but do not act on, or one we don't know.
    OtherEvent {
        event_id: String,
    },
    Button(Button),
    ViewSubmission(ViewSubmission),
    OtherInteraction,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    pub event_id: String,
    pub user: String,
    pub channel: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub event_id: String,
    /// Who reacted.
    pub user: String,
    pub reaction: String,
    pub channel: String,
    /// The message reacted to.
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: Option<String>,
    pub trigger_id: String,
    pub action_id: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViewSubmission {
    pub user_id: String,
    pub user_name: String,
    pub callback_id: String,
    pub private_metadata: String,
    /// Input values by action id (text inputs' `value`, selects' `selected_option.value`).
    pub values: HashMap<String, String>,
    /// Slack's ids for this submission, when it sends them.
    pub trigger_id: Option<String>,
    pub view_id: Option<String>,
}

impl ViewSubmission {
    /// Identifies this submission, for de-duplicating it and keying what it causes: the
    /// view's id plus a digest of who submitted what. The same form submitted twice with the
    /// same content (a double click, a retry) is one submission; the same view submitted
    /// again after fixing a field, or by someone else, is another. Slack's trigger id is
    /// left out: it differs between two clicks of the same submit button.
    pub fn key(&self) -> String {
        let view = self.view_id.as_deref().unwrap_or("-");
        format!("{view}:{}", self.content_digest())
    }

    fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut values: Vec<_> = self.values.iter().collect();
        values.sort();
        let mut hash = Sha256::new();
        for part in [&self.user_id, &self.callback_id, &self.private_metadata] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        for (k, v) in values {
            hash.update(k.as_bytes());
            hash.update([0]);
            hash.update(v.as_bytes());
            hash.update([0]);
        }
        hex::encode(&hash.finalize()[..12])
    }
}

/// Whether a slash-command request is Slack checking our certificate (`ssl_check=1`),
/// which wants an empty 200 and nothing else.
pub fn is_ssl_check(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Check {
        ssl_check: Option<String>,
    }
    serde_urlencoded::from_bytes::<Check>(body).is_ok_and(|c| c.ssl_check.as_deref() == Some("1"))
}

pub fn parse_command(body: &[u8]) -> Result<SlashCommand, MalformedPayload> {
    let cmd: SlashCommand = serde_urlencoded::from_bytes(body)
        .map_err(|e| MalformedPayload(format!("slash command form: {e}")))?;
    checked_id("user_id", &cmd.user_id)?;
    checked_id("channel_id", &cmd.channel_id)?;
    Ok(cmd)
}

/// Slack's ids (`U024BE7LH`, `C123ABC`) are letters and digits; anything else in one (a NUL,
/// markup) is a malformed payload, refused before it can become a stored identity.
fn checked_id<'a>(what: &str, id: &'a str) -> Result<&'a str, MalformedPayload> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(MalformedPayload(format!("{what} is not a Slack id")))
    }
}

/// A required Slack id at `pointer`.
fn required_id(v: &Value, pointer: &str) -> Result<String, MalformedPayload> {
    let id = required(v, pointer)?;
    checked_id(pointer.trim_start_matches('/'), &id)?;
    Ok(id)
}

pub fn parse_event(body: &[u8]) -> Result<SlackInbound, MalformedPayload> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| MalformedPayload(format!("event JSON: {e}")))?;
    match str_at(&v, "/type") {
        Some("url_verification") => Ok(SlackInbound::UrlVerification {
            challenge: required(&v, "/challenge")?,
        }),
        Some("event_callback") => parse_callback(&v),
        other => Err(MalformedPayload(format!(
            "unsupported event envelope {other:?}"
        ))),
    }
}

fn parse_callback(v: &Value) -> Result<SlackInbound, MalformedPayload> {
    let event_id = required(v, "/event_id")?;
    match str_at(v, "/event/type") {
        Some("app_mention") => Ok(SlackInbound::Mention(Mention {
            event_id,
            user: required_id(v, "/event/user")?,
            channel: required_id(v, "/event/channel")?,
            text: required(v, "/event/text")?,
        })),
        Some("reaction_added") if str_at(v, "/event/item/type") == Some("message") => {
            Ok(SlackInbound::Reaction(Reaction {
                event_id,
                user: required_id(v, "/event/user")?,
                reaction: required(v, "/event/reaction")?,
                channel: required_id(v, "/event/item/channel")?,
                ts: required(v, "/event/item/ts")?,
            }))
        }
        _ => Ok(SlackInbound::OtherEvent { event_id }),
    }
}

/// Interactivity arrives as a form with one field, `payload`, holding JSON.
pub fn parse_interaction(body: &[u8]) -> Result<SlackInbound, MalformedPayload> {
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = serde_urlencoded::from_bytes(body)
        .map_err(|e| MalformedPayload(format!("interaction form: {e}")))?;
    let v: Value = serde_json::from_str(&form.payload)
        .map_err(|e| MalformedPayload(format!("interaction JSON: {e}")))?;
    let user_id = required_id(&v, "/user/id")?;
    let user_name = str_at(&v, "/user/username")
        .or(str_at(&v, "/user/name"))
        .unwrap_or(&user_id)
        .to_string();
    match str_at(&v, "/type") {
        Some("block_actions") => Ok(SlackInbound::Button(Button {
            channel_id: str_at(&v, "/channel/id")
                .or(str_at(&v, "/container/channel_id"))
                .filter(|c| checked_id("channel.id", c).is_ok())
                .map(str::to_string),
            trigger_id: required(&v, "/trigger_id")?,
            action_id: required(&v, "/actions/0/action_id")?,
            value: str_at(&v, "/actions/0/value")
                .unwrap_or_default()
                .to_string(),
            user_id,
            user_name,
        })),
        Some("view_submission") => Ok(SlackInbound::ViewSubmission(ViewSubmission {
            callback_id: required(&v, "/view/callback_id")?,
            private_metadata: str_at(&v, "/view/private_metadata")
                .unwrap_or_default()
                .to_string(),
            values: view_values(v.pointer("/view/state/values")),
            trigger_id: str_at(&v, "/trigger_id").map(str::to_string),
            view_id: str_at(&v, "/view/id").map(str::to_string),
            user_id,
            user_name,
        })),
        _ => Ok(SlackInbound::OtherInteraction),
    }
}

fn view_values(values: Option<&Value>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(Value::Object(blocks)) = values else {
        return out;
    };
    for block in blocks.values() {
        let Value::Object(actions) = block else {
            continue;
        };
        for (action_id, input) in actions {
            let value = str_at(input, "/value").or(str_at(input, "/selected_option/value"));
            if let Some(value) = value {
                out.insert(action_id.clone(), value.to_string());
            }
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn required(v: &Value, pointer: &str) -> Result<String, MalformedPayload> {
    str_at(v, pointer).map(str::to_string).ok_or_else(|| {
        MalformedPayload(format!(
            "missing {}",
            pointer.trim_start_matches('/').replace('/', ".")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_command_form() {
        let body = b"command=%2Fincident&text=declare+sev1+Checkout+down&user_id=U1&user_name=alice&channel_id=C1&trigger_id=T.1&team_id=T0";
        let cmd = parse_command(body).unwrap();
        assert_eq!(
            (
                cmd.command.as_str(),
                cmd.text.as_str(),
                cmd.user_id.as_str()
            ),
            ("/incident", "declare sev1 Checkout down", "U1")
        );
        assert!(parse_command(b"text=hello").is_err());
    }

    #[test]
    fn ssl_checks() {
        assert!(is_ssl_check(b"ssl_check=1&token=x"));
        assert!(!is_ssl_check(b"ssl_check=0"));
        assert!(!is_ssl_check(
            b"command=%2Fincident&text=ssl_check%3D1&user_id=U1&channel_id=C1"
        ));
    }

    #[test]
    fn events() {
        let v = br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"reaction_added","user":"U2","reaction":"pushpin","item":{"type":"message","channel":"C9","ts":"1700000000.000100"},"event_ts":"1"}}"#;
        let SlackInbound::Reaction(r) = parse_event(v).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.channel.as_str(), r.ts.as_str(), r.reaction.as_str()),
            ("C9", "1700000000.000100", "pushpin")
        );
        let v = br#"{"type":"url_verification","challenge":"abc"}"#;
        assert_eq!(
            parse_event(v).unwrap(),
            SlackInbound::UrlVerification {
                challenge: "abc".into()
            }
        );
        assert!(
            parse_event(br#"{"type":"event_callback","event":{}}"#)
                .unwrap_err()
                .0
                .contains("event_id")
        );
    }

    #[test]
    fn view_submission_values() {
        let payload = r#"{"type":"view_submission","user":{"id":"U1","username":"al"},"view":{"callback_id":"fb_declare","private_metadata":"C1","state":{"values":{"b1":{"title":{"type":"plain_text_input","value":"DB down"}},"b2":{"severity":{"type":"static_select","selected_option":{"value":"sev1"}}}}}}}"#;
        let body = serde_urlencoded::to_string([("payload", payload)]).unwrap();
        let SlackInbound::ViewSubmission(v) = parse_interaction(body.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(v.values["title"], "DB down");
        assert_eq!(v.values["severity"], "sev1");
        assert_eq!(v.private_metadata, "C1");
        let mut same = v.clone();
        same.trigger_id = Some("another click".into());
        assert_eq!(v.key(), same.key(), "keyed by content, not by trigger");
        let mut other = v.clone();
        other.values.insert("title".into(), "DB up".into());
        assert_ne!(v.key(), other.key());
        let mut viewed = v.clone();
        viewed.view_id = Some("V123".into());
        assert!(viewed.key().starts_with("V123:"), "{}", viewed.key());
        let mut fixed = viewed.clone();
        fixed.values.insert("title".into(), "DB down again".into());
        assert_ne!(viewed.key(), fixed.key(), "the same view with new content");
        let mut someone_else = viewed.clone();
        someone_else.user_id = "U2".into();
        assert_ne!(viewed.key(), someone_else.key());
    }
}
