//! The interaction payloads Discord posts to `/discord/interactions`, as one small enum.
//! Only the fields firebreak reads are parsed; everything else in Discord's (large, growing)
//! payload is ignored, so a new field never breaks the endpoint.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// Interaction types (Discord's `type`).
const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const MODAL_SUBMIT: u8 = 5;

/// Option types that hold other options.
pub const SUB_COMMAND: u8 = 1;
pub const SUB_COMMAND_GROUP: u8 = 2;

/// What Discord sent.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscordInbound {
    Ping,
    /// A slash command (`/incident declare …`).
    Command(Invocation, CommandCall),
    /// A button press on a message firebreak posted.
    Component(Invocation, String),
    /// A modal firebreak opened, submitted: its `custom_id` and its text fields by id.
    ModalSubmit(Invocation, String, HashMap<String, String>),
    /// Autocomplete and anything newer: acknowledged, not handled.
    Other,
}

/// Who sent an interaction, where, and its id (the de-duplication key).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The interaction's own snowflake; a retry carries the same one.
    pub id: String,
    pub channel_id: String,
    pub user_id: String,
    /// The name to use in sentences until a better one is known: the server nickname,
    /// else the global display name, else the username.
    pub user_name: Option<String>,
    /// The member's role ids in the server (none in a DM).
    pub roles: Vec<String>,
    /// Names Discord resolved for the users, roles and channels the options mention.
    pub resolved: Resolved,
}

/// A slash command: its name and its options, subcommands nested as Discord sends them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandCall {
    pub name: String,
    #[serde(default)]
    pub options: Vec<CommandOption>,
}

/// One option value, or a subcommand (group) holding more options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandOption {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub options: Vec<CommandOption>,
}

impl CommandCall {
    /// The subcommand path (`["freeze", "exempt"]` for `/freeze exempt`, `["incident",
    /// "declare"]`) and the leaf's value options.
    pub fn path(&self) -> (Vec<&str>, &[CommandOption]) {
        let mut path = vec![self.name.as_str()];
        let mut options = self.options.as_slice();
        while let [one] = options {
            if one.kind != SUB_COMMAND && one.kind != SUB_COMMAND_GROUP {
                break;
            }
            path.push(one.name.as_str());
            options = one.options.as_slice();
        }
        (path, options)
    }
}

/// Names Discord resolved for the ids an interaction's options carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// User id → display name.
    pub users: HashMap<String, String>,
    /// Role id → role name.
    pub roles: HashMap<String, String>,
    /// Channel id → channel name.
    pub channels: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    id: String,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    channel: Option<RawChannel>,
    #[serde(default)]
    member: Option<RawMember>,
    #[serde(default)]
    user: Option<RawUser>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
struct RawChannel {
    id: String,
}

#[derive(Deserialize)]
struct RawMember {
    user: RawUser,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    nick: Option<String>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    global_name: Option<String>,
}

impl RawUser {
    fn name(&self) -> Option<String> {
        self.global_name
            .clone()
            .or_else(|| self.username.clone())
            .filter(|n| !n.trim().is_empty())
    }
}

#[derive(Deserialize, Default)]
struct RawResolved {
    #[serde(default)]
    users: HashMap<String, RawUser>,
    #[serde(default)]
    members: HashMap<String, RawResolvedMember>,
    #[serde(default)]
    roles: HashMap<String, Named>,
    #[serde(default)]
    channels: HashMap<String, Named>,
}

#[derive(Deserialize)]
struct RawResolvedMember {
    #[serde(default)]
    nick: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawComponentData {
    custom_id: String,
}

#[derive(Deserialize)]
struct RawModalData {
    custom_id: String,
    #[serde(default)]
    components: Vec<RawRow>,
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    components: Vec<RawInput>,
}

#[derive(Deserialize)]
struct RawInput {
    #[serde(default)]
    custom_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// Parses one interaction body.
pub fn parse(body: &[u8]) -> Result<DiscordInbound, ParseError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    if raw.kind == PING {
        return Ok(DiscordInbound::Ping);
    }
    if !matches!(
        raw.kind,
        APPLICATION_COMMAND | MESSAGE_COMPONENT | MODAL_SUBMIT
    ) {
        return Ok(DiscordInbound::Other);
    }
    let data = raw
        .data
        .clone()
        .ok_or_else(|| ParseError("an interaction without data".into()))?;
    let who = invocation(&raw, &data)?;
    let bad = |e: serde_json::Error| ParseError(e.to_string());
    Ok(match raw.kind {
        APPLICATION_COMMAND => {
            DiscordInbound::Command(who, serde_json::from_value(data).map_err(bad)?)
        }
        MESSAGE_COMPONENT => {
            let d: RawComponentData = serde_json::from_value(data).map_err(bad)?;
            DiscordInbound::Component(who, d.custom_id)
        }
        _ => {
            let d: RawModalData = serde_json::from_value(data).map_err(bad)?;
            let fields = d
                .components
                .into_iter()
                .flat_map(|row| row.components)
                .map(|i| (i.custom_id, i.value.unwrap_or_default()))
                .collect();
            DiscordInbound::ModalSubmit(who, d.custom_id, fields)
        }
    })
}

/// Who and where: `member.user` in a server, `user` in a DM.
fn invocation(raw: &Raw, data: &Value) -> Result<Invocation, ParseError> {
    if raw.id.is_empty() {
        return Err(ParseError("an interaction without an id".into()));
    }
    let (user, nick, roles) = match (&raw.member, &raw.user) {
        (Some(m), _) => (&m.user, m.nick.clone(), m.roles.clone()),
        (None, Some(u)) => (u, None, Vec::new()),
        (None, None) => return Err(ParseError("an interaction without a user".into())),
    };
    let channel_id = raw
        .channel_id
        .clone()
        .or_else(|| raw.channel.as_ref().map(|c| c.id.clone()))
        .unwrap_or_default();
    Ok(Invocation {
        id: raw.id.clone(),
        channel_id,
        user_id: user.id.clone(),
        user_name: nick
            .filter(|n| !n.trim().is_empty())
            .or_else(|| user.name()),
        roles,
        resolved: resolved(data),
    })
}

fn resolved(data: &Value) -> Resolved {
    let raw: RawResolved = data
        .get("resolved")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    let mut users: HashMap<String, String> = raw
        .users
        .iter()
        .filter_map(|(id, u)| Some((id.clone(), u.name()?)))
        .collect();
    for (id, m) in &raw.members {
        if let Some(nick) = m.nick.clone().filter(|n| !n.trim().is_empty()) {
            users.insert(id.clone(), nick);
        }
    }
    let names = |m: HashMap<String, Named>| {
        m.into_iter()
            .filter_map(|(id, n)| Some((id, n.name?)))
            .collect()
    };
    Resolved {
        users,
        roles: names(raw.roles),
        channels: names(raw.channels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn ping_and_unknown_types() {
        assert_eq!(parse(br#"{"type":1}"#).unwrap(), DiscordInbound::Ping);
        assert_eq!(
            parse(br#"{"type":4,"id":"1"}"#).unwrap(),
            DiscordInbound::Other
        );
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn a_guild_command_with_a_subcommand_and_resolved_names() {
        let v = json!({
            "type": 2, "id": "111", "application_id": "9", "token": "t", "version": 1,
            "guild_id": "5", "channel_id": "77",
            "member": {"user": {"id": "42", "username": "bob", "global_name": "Bob B"},
                       "roles": ["900"], "nick": "bobby"},
            "data": {"id": "3", "name": "incident", "type": 1, "options": [
                {"name": "assign", "type": 1, "options": [
                    {"name": "role", "type": 3, "value": "comms"},
                    {"name": "user", "type": 6, "value": "43"}]}],
                "resolved": {"users": {"43": {"id": "43", "username": "carol", "global_name": null}}}}
        });
        let DiscordInbound::Command(who, call) = parse(&body(v)).unwrap() else {
            panic!("a command")
        };
        assert_eq!(who.id, "111");
        assert_eq!(who.channel_id, "77");
        assert_eq!(who.user_id, "42");
        assert_eq!(who.user_name.as_deref(), Some("bobby"));
        assert_eq!(who.roles, vec!["900"]);
        assert_eq!(who.resolved.users["43"], "carol");
        let (path, options) = call.path();
        assert_eq!(path, vec!["incident", "assign"]);
        assert_eq!(options.len(), 2);
    }

    #[test]
    fn a_dm_component_and_a_modal_submit() {
        let v = json!({"type": 3, "id": "2", "channel": {"id": "8"},
            "user": {"id": "42", "username": "bob"},
            "data": {"custom_id": "fb:ack:1:2", "component_type": 2}});
        let DiscordInbound::Component(who, id) = parse(&body(v)).unwrap() else {
            panic!("a component")
        };
        assert_eq!((who.channel_id.as_str(), who.roles.len()), ("8", 0));
        assert_eq!(id, "fb:ack:1:2");
        let v = json!({"type": 5, "id": "3", "channel_id": "8",
            "member": {"user": {"id": "42"}, "roles": []},
            "data": {"custom_id": "fb:declare", "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "title", "value": "DB down"}]}]}});
        let DiscordInbound::ModalSubmit(_, id, fields) = parse(&body(v)).unwrap() else {
            panic!("a modal")
        };
        assert_eq!(id, "fb:declare");
        assert_eq!(fields["title"], "DB down");
    }

    #[test]
    fn an_interaction_without_a_user_is_malformed() {
        let v = json!({"type": 2, "id": "1", "data": {"name": "incident"}});
        assert!(parse(&body(v)).is_err());
    }
}
