//! An in-process fake of the Discord REST API (v10) for integration tests.
//!
//! [`FakeDiscord::start`] serves, under `{url}/api/v10`, the calls firebreak makes: list and
//! create guild channels, create a forum post (thread), create, read and edit messages, pin.
//! Point `DISCORD_API_URL` (the origin) at [`FakeDiscord::url`]. It keeps state (channels,
//! messages with their edits and pins, and people's messages [`FakeDiscord::add_user_message`]
//! adds), answers in shapes serenity's strict model types
//! parse, and records every call in arrival order with the status it got.
//!
//! Failures: [`FakeDiscord::set_down`] answers every call HTTP 503; [`FakeDiscord::break_channel`]
//! answers every call on one channel 403 `50001 Missing Access`; [`FakeDiscord::rate_limit_next`]
//! answers the next calls 429 with `retry_after` (and `global`), as Discord does. Successful
//! answers carry `X-RateLimit-*` headers with room to spare.
//!
//! Like Discord, it refuses (400) a message or edit with an embed over the published limits,
//! content over 2,000 characters, or components beyond 5 rows of 5 buttons (custom ids of
//! at most 100 characters, unique in the message; labels of at most 80).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const GUILD: &str = "111111111111111111";
pub const CATEGORY: &str = "222222222222222222";
pub const FORUM: &str = "333333333333333333";
pub const BOT: &str = "444444444444444444";
pub const COMMS_ROLE: &str = "555555555555555555";
/// The announcement channels tests configure for SEV1.
pub const ANNOUNCE: [&str; 3] = [
    "600000000000000001",
    "600000000000000002",
    "600000000000000003",
];

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The path below `/api/v10`, e.g. `/channels/123/messages`.
    pub path: String,
    pub body: Value,
    pub auth: Option<String>,
    pub at: Instant,
    pub status: u16,
}

/// The current state of one message.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub channel: String,
    pub content: String,
    pub embeds: Value,
    pub components: Value,
    /// `allowed_mentions` as last sent (`Null` if the request had none).
    pub allowed_mentions: Value,
    pub edits: u32,
    /// The author's user id ([`BOT`] for what firebreak posted).
    pub author: String,
    /// When it was posted, ISO 8601.
    pub timestamp: String,
    /// The users the content mentions, as Discord lists them: `[{id, username, …}]`.
    pub mentions: Value,
}

impl Message {
    /// The embed's title (first embed), or "".
    pub fn title(&self) -> String {
        self.embeds[0]["title"].as_str().unwrap_or("").to_string()
    }

    pub fn description(&self) -> String {
        self.embeds[0]["description"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

#[derive(Clone, Debug)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub kind: u64,
    pub parent: Option<String>,
}

/// A 429 to answer with.
#[derive(Clone, Debug)]
struct Limit {
    retry_after: f64,
    global: bool,
}

#[derive(Default)]
struct Inner {
    down: bool,
    broken: HashSet<String>,
    limits: Vec<Limit>,
    calls: Vec<Call>,
    channels: Vec<Channel>,
    messages: Vec<Message>,
    pins: HashSet<(String, String)>,
    counter: u64,
    /// What `GET /gateway/bot` names (404 while `None`, as an origin without a gateway).
    gateway: Option<String>,
    /// Message ids by (channel, nonce), for `enforce_nonce`.
    nonces: HashMap<(String, String), String>,
    /// This many message posts are made but answered 503, as if the answer was lost.
    lose_answers: usize,
}

impl Inner {
    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}", 900_000_000_000_000_000u64 + self.counter)
    }
}

/// A running fake Discord; the server lives as long as the tokio runtime.
#[derive(Clone)]
pub struct FakeDiscord {
    /// The origin, e.g. `http://127.0.0.1:PORT` (`DISCORD_API_URL`).
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve fake discord")
        });
        FakeDiscord { url, inner }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// While `down`, every call is recorded and answered HTTP 503.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Every call on `channel` (or on a guild's channels) answers 403 `50001 Missing Access`
    /// from now on.
    pub fn break_channel(&self, channel: &str) {
        self.lock().broken.insert(channel.into());
    }

    /// The next `n` calls answer 429 with this `retry_after` (seconds) and `global` flag.
    pub fn rate_limit_next(&self, n: usize, retry_after: f64, global: bool) {
        let limit = Limit {
            retry_after,
            global,
        };
        self.lock().limits.extend(std::iter::repeat_n(limit, n));
    }

    /// The next `n` message posts or channel creations are made but answered 503, as if the
    /// answer was lost on the way back (a timeout, a crash): a blind retry makes two.
    pub fn lose_answers(&self, n: usize) {
        self.lock().lose_answers = n;
    }

    /// Someone deleted message `id`: editing it answers 404 `10008 Unknown Message`.
    pub fn delete_message(&self, id: &str) {
        self.lock().messages.retain(|m| m.id != id);
    }

    /// A channel that already exists in the guild (to take a name).
    pub fn add_channel(&self, name: &str) -> String {
        let mut inner = self.lock();
        let id = inner.next_id();
        inner.channels.push(Channel {
            id: id.clone(),
            name: name.into(),
            kind: 0,
            parent: None,
        });
        id
    }

    /// A message someone (`author`, a user id) posted in `channel` at `timestamp` (ISO 8601),
    /// mentioning `mentions` as (user id, username); its id.
    pub fn add_user_message(
        &self,
        channel: &str,
        author: &str,
        content: &str,
        timestamp: &str,
        mentions: &[(&str, &str)],
    ) -> String {
        let mut inner = self.lock();
        let id = inner.next_id();
        let mentions: Vec<Value> = mentions
            .iter()
            .map(|(id, name)| json!({"id": id, "username": name, "global_name": null, "discriminator": "0", "avatar": null}))
            .collect();
        inner.messages.push(Message {
            id: id.clone(),
            channel: channel.into(),
            content: content.into(),
            embeds: json!([]),
            components: json!([]),
            allowed_mentions: Value::Null,
            edits: 0,
            author: author.into(),
            timestamp: timestamp.into(),
            mentions: Value::Array(mentions),
        });
        id
    }

    /// `GET /gateway/bot` answers with `url` (a [`FakeGateway`](super::fake_discord_gateway)).
    pub fn serve_gateway(&self, url: &str) {
        self.lock().gateway = Some(url.into());
    }

    /// Every call in arrival order, failed ones included.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The successful calls as `METHOD /path`, in order.
    pub fn successful(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.status < 300)
            .map(|c| format!("{} {}", c.method, c.path))
            .collect()
    }

    pub fn channels(&self) -> Vec<Channel> {
        self.lock().channels.clone()
    }

    /// Every message in creation order, as it is now.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    pub fn messages_in(&self, channel: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect()
    }

    /// Pinned messages as (channel, message).
    pub fn pins(&self) -> Vec<(String, String)> {
        let mut pins: Vec<_> = self.lock().pins.iter().cloned().collect();
        pins.sort();
        pins
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri
        .path()
        .strip_prefix("/api/v10")
        .unwrap_or(uri.path())
        .to_string();
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, reply, extra) = answer_or_fail(&mut inner, &method, &path, &body, auth.is_some());
    inner.calls.push(Call {
        method: method.to_string(),
        path,
        body,
        auth,
        at: Instant::now(),
        status: status.as_u16(),
    });
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, axum::Json(reply)).into_response()
    };
    for (name, value) in extra {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

type Headers = Vec<(&'static str, String)>;

fn answer_or_fail(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    body: &Value,
    authed: bool,
) -> (StatusCode, Value, Headers) {
    if inner.down {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"message": "upstream unavailable", "code": 0}),
            Vec::new(),
        );
    }
    if !authed {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"message": "401: Unauthorized", "code": 0}),
            Vec::new(),
        );
    }
    if !inner.limits.is_empty() {
        let limit = inner.limits.remove(0);
        let mut headers: Headers = vec![("retry-after", format!("{}", limit.retry_after.ceil()))];
        if limit.global {
            headers.push(("x-ratelimit-global", "true".into()));
            headers.push(("x-ratelimit-scope", "global".into()));
        }
        let body = json!({"message": "You are being rate limited.", "retry_after": limit.retry_after, "global": limit.global});
        return (StatusCode::TOO_MANY_REQUESTS, body, headers);
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // A broken guild refuses channel creation (the bot lacks Manage Channels there).
    let channel = match segments.as_slice() {
        ["channels", id, ..] | ["guilds", id, "channels"] => Some(id.to_string()),
        _ => None,
    };
    if channel.is_some_and(|c| inner.broken.contains(&c)) {
        return (
            StatusCode::FORBIDDEN,
            json!({"message": "Missing Access", "code": 50001}),
            Vec::new(),
        );
    }
    let headers: Headers = vec![
        ("x-ratelimit-limit", "5".into()),
        ("x-ratelimit-remaining", "4".into()),
        ("x-ratelimit-reset-after", "1.000".into()),
        ("x-ratelimit-bucket", "fake".into()),
    ];
    match answer(inner, method, &segments, body) {
        Ok((status, reply)) => (status, reply, headers),
        Err((status, message, code)) => {
            (status, json!({"message": message, "code": code}), headers)
        }
    }
}

type Answer = Result<(StatusCode, Value), (StatusCode, String, i64)>;

fn answer(inner: &mut Inner, method: &Method, segments: &[&str], body: &Value) -> Answer {
    match (method.as_str(), segments) {
        ("GET", ["guilds", guild, "channels"]) => {
            let list: Vec<Value> = inner
                .channels
                .iter()
                .map(|c| channel_json(c, guild))
                .collect();
            Ok((StatusCode::OK, Value::Array(list)))
        }
        ("POST", ["guilds", guild, "channels"]) => {
            let id = inner.next_id();
            let channel = Channel {
                id,
                name: body["name"].as_str().unwrap_or_default().to_string(),
                kind: body["type"].as_u64().unwrap_or(0),
                parent: body["parent_id"].as_str().map(str::to_string),
            };
            let reply = channel_json(&channel, guild);
            inner.channels.push(channel);
            if inner.lose_answers > 0 {
                inner.lose_answers -= 1;
                return Err((StatusCode::SERVICE_UNAVAILABLE, "answer lost".into(), 0));
            }
            Ok((StatusCode::CREATED, reply))
        }
        ("POST", ["channels", forum, "threads"]) => {
            let id = inner.next_id();
            let channel = Channel {
                id: id.clone(),
                name: body["name"].as_str().unwrap_or_default().to_string(),
                kind: 11,
                parent: Some(forum.to_string()),
            };
            let starter = store_message(inner, &id, Some(id.clone()), &body["message"])?;
            let mut reply = channel_json(&channel, GUILD);
            reply["message"] = starter;
            inner.channels.push(channel);
            Ok((StatusCode::CREATED, reply))
        }
        ("POST", ["channels", channel, "messages"]) => {
            // With `enforce_nonce`, Discord answers a nonce it saw recently with that message.
            let nonce = body["enforce_nonce"]
                .as_bool()
                .filter(|e| *e)
                .and_then(|_| body["nonce"].as_str())
                .map(|n| (channel.to_string(), n.to_string()));
            let seen = nonce.as_ref().and_then(|n| inner.nonces.get(n)).cloned();
            if let Some(id) = seen {
                let first = inner.messages.iter().find(|m| m.id == id);
                return Ok((StatusCode::OK, first.map(message_json).unwrap_or_default()));
            }
            let reply = store_message(inner, channel, None, body)?;
            if let Some(nonce) = nonce {
                inner
                    .nonces
                    .insert(nonce, reply["id"].as_str().unwrap_or_default().into());
            }
            if inner.lose_answers > 0 {
                inner.lose_answers -= 1;
                return Err((StatusCode::SERVICE_UNAVAILABLE, "answer lost".into(), 0));
            }
            Ok((StatusCode::OK, reply))
        }
        ("PATCH", ["channels", channel, "messages", id]) => {
            validate(body)?;
            let message = inner
                .messages
                .iter_mut()
                .find(|m| m.channel == *channel && m.id == *id)
                .ok_or((StatusCode::NOT_FOUND, "Unknown Message".into(), 10008))?;
            if let Some(content) = body.get("content").and_then(Value::as_str) {
                message.content = content.into();
            }
            for (field, slot) in [
                ("embeds", &mut message.embeds),
                ("components", &mut message.components),
                ("allowed_mentions", &mut message.allowed_mentions),
            ] {
                if let Some(v) = body.get(field) {
                    *slot = v.clone();
                }
            }
            message.edits += 1;
            let reply = message_json(message);
            Ok((StatusCode::OK, reply))
        }
        // Only the bot's `GET /gateway/bot`, not `GET /gateway`: serenity asks the latter and
        // falls back to Discord's public gateway, so the gateway test shows firebreak connects
        // to the URL it asked for itself.
        ("GET", ["gateway", "bot"]) => match &inner.gateway {
            Some(url) => Ok((
                StatusCode::OK,
                json!({"url": url, "shards": 1, "session_start_limit":
                    {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}),
            )),
            None => Err((StatusCode::NOT_FOUND, "404: Not Found".into(), 0)),
        },
        ("GET", ["channels", channel, "messages", id]) => inner
            .messages
            .iter()
            .find(|m| m.channel == *channel && m.id == *id)
            .map(|m| (StatusCode::OK, message_json(m)))
            .ok_or((StatusCode::NOT_FOUND, "Unknown Message".into(), 10008)),
        ("PUT", ["channels", channel, "pins", id]) => {
            if !inner
                .messages
                .iter()
                .any(|m| m.channel == *channel && m.id == *id)
            {
                return Err((StatusCode::NOT_FOUND, "Unknown Message".into(), 10008));
            }
            inner.pins.insert((channel.to_string(), id.to_string()));
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        _ => Err((StatusCode::NOT_FOUND, "404: Not Found".into(), 0)),
    }
}

fn store_message(
    inner: &mut Inner,
    channel: &str,
    id: Option<String>,
    body: &Value,
) -> Result<Value, (StatusCode, String, i64)> {
    validate(body)?;
    let id = id.unwrap_or_else(|| inner.next_id());
    let message = Message {
        id,
        channel: channel.into(),
        content: body["content"].as_str().unwrap_or_default().into(),
        embeds: body.get("embeds").cloned().unwrap_or(json!([])),
        components: body.get("components").cloned().unwrap_or(json!([])),
        allowed_mentions: body.get("allowed_mentions").cloned().unwrap_or(Value::Null),
        edits: 0,
        author: BOT.into(),
        timestamp: "2026-01-01T00:00:00.000000+00:00".into(),
        mentions: json!([]),
    };
    let reply = message_json(&message);
    inner.messages.push(message);
    Ok(reply)
}

/// Discord's limits on content and embeds (400 `50035 Invalid Form Body` when broken).
fn validate(body: &Value) -> Result<(), (StatusCode, String, i64)> {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut problems = Vec::new();
    if len(&body["content"]) > 2_000 {
        problems.push("content over 2000".to_string());
    }
    for embed in body["embeds"].as_array().into_iter().flatten() {
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        let mut total = len(&embed["title"]) + len(&embed["description"]);
        total += len(&embed["footer"]["text"]);
        for (what, value, max) in [
            ("title", &embed["title"], 256),
            ("description", &embed["description"], 4_096),
            ("footer", &embed["footer"]["text"], 2_048),
        ] {
            if len(value) > max {
                problems.push(format!("embed {what} over {max}"));
            }
        }
        if fields.len() > 25 {
            problems.push("more than 25 fields".into());
        }
        for f in &fields {
            total += len(&f["name"]) + len(&f["value"]);
            if len(&f["name"]) > 256 || len(&f["value"]) > 1_024 {
                problems.push("field over its limit".into());
            }
        }
        if total > 6_000 {
            problems.push("embed over 6000 in total".into());
        }
    }
    problems.extend(component_problems(&body["components"]));
    if problems.is_empty() {
        Ok(())
    } else {
        let msg = format!("Invalid Form Body: {}", problems.join(", "));
        Err((StatusCode::BAD_REQUEST, msg, 50035))
    }
}

/// Discord's limits on a message's components: at most 5 action rows of at most 5 buttons,
/// each `custom_id` 1–100 characters and unique in the message, each label at most 80.
fn component_problems(components: &Value) -> Vec<String> {
    let rows = components.as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    if rows.len() > 5 {
        problems.push(format!("{} action rows (5 at most)", rows.len()));
    }
    let mut seen = HashSet::new();
    for row in &rows {
        let buttons = row["components"].as_array().cloned().unwrap_or_default();
        if buttons.is_empty() || buttons.len() > 5 {
            problems.push(format!("a row of {} buttons (1 to 5)", buttons.len()));
        }
        for b in &buttons {
            let id = b["custom_id"].as_str().unwrap_or_default();
            if id.is_empty() || id.chars().count() > 100 || !seen.insert(id.to_string()) {
                problems.push(format!("bad or repeated custom_id {id:?}"));
            }
            if b["label"].as_str().map_or(0, |l| l.chars().count()) > 80 {
                problems.push("button label over 80".into());
            }
        }
    }
    problems
}

fn channel_json(c: &Channel, guild: &str) -> Value {
    let mut v = json!({
        "id": c.id, "type": c.kind, "guild_id": guild, "name": c.name, "position": 0,
        "permission_overwrites": [], "nsfw": false, "flags": 0,
    });
    if let Some(parent) = &c.parent {
        v["parent_id"] = json!(parent);
    }
    v
}

fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id, "channel_id": m.channel, "content": m.content,
        "author": {"id": m.author, "username": if m.author == BOT { "firebreak" } else { "someone" },
                   "avatar": null, "bot": m.author == BOT},
        "timestamp": m.timestamp, "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": m.mentions, "mention_roles": [],
        "attachments": [], "embeds": [], "components": [], "pinned": false, "type": 0,
    })
}

/// What Discord would ping for `message` (pure): the mentions in its content that its
/// `allowed_mentions` permits (everything, if it has none).
pub fn pings(message: &Message) -> Vec<String> {
    let allowed = &message.allowed_mentions;
    let parse: Vec<&str> = match allowed.get("parse").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(Value::as_str).collect(),
        None if allowed.is_null() => vec!["everyone", "roles", "users"],
        None => Vec::new(),
    };
    let listed = |key: &str, id: &str| {
        allowed[key]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(id)))
    };
    let text = &message.content;
    let mut out = Vec::new();
    for word in ["@everyone", "@here"] {
        if text.contains(word) && parse.contains(&"everyone") {
            out.push(word.to_string());
        }
    }
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<@") {
        let tail = &rest[start + 2..];
        let (role, tail) = match tail.strip_prefix('&') {
            Some(t) => (true, t),
            None => (false, tail.strip_prefix('!').unwrap_or(tail)),
        };
        let id: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if !id.is_empty() && tail[id.len()..].starts_with('>') {
            let (kind, key) = if role {
                ("roles", "roles")
            } else {
                ("users", "users")
            };
            if parse.contains(&kind) || listed(key, &id) {
                out.push(format!("{}{id}", if role { "role:" } else { "user:" }));
            }
        }
        rest = &rest[start + 2..];
    }
    out
}

/// Discord switched on, pointed at `api_url` (the fake's origin, or the contract mock's).
pub fn integrations(api_url: &str) -> firebreak::app::Integrations {
    firebreak::app::Integrations {
        slack: None,
        discord: Some(firebreak::chat::discord::DiscordSecrets {
            // RFC 8032's first test key: a valid Ed25519 public key.
            public_key: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".into(),
            bot_token: "test-bot-token".to_string().into(),
            application_id: Some("777777777777777777".into()),
            api_url: api_url.to_string(),
        }),
        github: None,
    }
}

/// `[discord]` for tests: a text channel per incident under [`CATEGORY`], the comms role,
/// and announcement channels (SEV1: the first two of [`ANNOUNCE`], SEV2: the last two).
pub fn config_toml() -> String {
    format!(
        "[discord]\nguild_id = \"{GUILD}\"\ncategory_id = \"{CATEGORY}\"\ncomms_role_id = \"{COMMS_ROLE}\"\n\
         [discord.announce]\nSEV1 = [\"{a}\", \"{b}\"]\nSEV2 = [\"{b}\", \"{c}\"]\n",
        a = ANNOUNCE[0],
        b = ANNOUNCE[1],
        c = ANNOUNCE[2]
    )
}
