//! An in-process fake of the Slack Web API for integration tests.
//!
//! [`FakeSlack::start`] serves the methods firebreak calls with axum on `127.0.0.1:0`, at the
//! root of [`FakeSlack::url`] (`POST {url}/chat.postMessage`), so a real slack-morphism client
//! can be pointed at it with `with_slack_api_url(&fake.url)`. It keeps state (channels,
//! members, topics, messages, pins), answers in shapes slack-morphism's strict response types
//! parse, records every call, and injects latency and per-method failures.
//!
//! Semantics worth knowing: `chat.postMessage` accepts any channel id, while
//! `conversations.invite` / `setTopic` need a channel made by `conversations.create` or
//! [`FakeSlack::add_channel`]; `conversations.invite` fails with `already_in_channel` only
//! when every user is already a member; `chat.update`, `pins.add`, `chat.getPermalink` and
//! `conversations.replies` need an existing message. The bot posts as [`BOT_USER`].
//!
//! `conversations.info` answers for a channel made by `conversations.create` or
//! [`FakeSlack::add_channel`] (archived after [`FakeSlack::archive_channel`]), else
//! `channel_not_found`.
//!
//! `users.info` answers for any user id; [`FakeSlack::set_user`] sets the names it gives.
//!
//! For outages, [`FakeSlack::set_down`] makes every call answer HTTP 503 until switched back,
//! and [`FakeSlack::break_channel`] makes every call naming one channel fail with an error code.
//!
//! Like Slack, it refuses what breaks the published limits (checked with
//! `firebreak::chat::slack::validate`): a message or edit with a field over its Block Kit
//! limit gets `invalid_blocks`, a `text` over 40,000 characters `msg_too_long`, a modal over
//! its limits `invalid_arguments`, and a topic over 250 characters `too_long`.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

/// The user id the fake's bot posts as.
pub const BOT_USER: &str = "U0BOT";
const BOT_ID: &str = "B0BOT";
const TEAM_ID: &str = "T0FAKE";
const CREATED: u64 = 1_700_000_000;

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The JSON body, or the query string and form body as a JSON object of strings.
    pub body: Value,
    /// The `Authorization` header, e.g. `Bearer xoxb-test`.
    pub auth: Option<String>,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// An injected answer; see [`FakeSlack::fail_next`].
#[derive(Clone, Debug)]
pub enum Failure {
    /// HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500.
    ServerError,
    /// HTTP 200 with `{"ok":false,"error":CODE}`.
    ApiError(String),
}

/// The current state of one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub user: String,
    pub text: String,
    /// The Block Kit blocks as sent, if any.
    pub blocks: Option<Value>,
    pub thread_ts: Option<String>,
    /// How many times `chat.update` changed it.
    pub edits: u32,
}

impl Message {
    fn new(channel: &str, ts: &str, user: &str, text: String) -> Message {
        let (channel, ts, user) = (channel.into(), ts.into(), user.into());
        Message {
            channel,
            ts,
            user,
            text,
            blocks: None,
            thread_ts: None,
            edits: 0,
        }
    }
}

struct Channel {
    id: String,
    name: String,
    is_private: bool,
    topic: Option<String>,
    members: Vec<String>,
    archived: bool,
}

#[derive(Default)]
struct Inner {
    latency: Duration,
    /// Every call answers HTTP 503 while set.
    down: bool,
    /// Calls naming one of these channels fail with the code.
    broken_channels: HashMap<String, String>,
    failures: HashMap<String, VecDeque<Failure>>,
    calls: Vec<(Call, bool)>,
    channels: Vec<Channel>,
    messages: Vec<Message>,
    pins: HashSet<(String, String)>,
    /// Profiles set with [`FakeSlack::set_user`], by user id: (display name, real name).
    users: HashMap<String, (String, String)>,
    counter: u64,
}

impl Inner {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
    /// Increasing message timestamps: 1700000000.000100, 1700000000.000200, …
    fn next_ts(&mut self) -> String {
        let micros = self.next() * 100;
        format!("{}.{:06}", CREATED + micros / 1_000_000, micros % 1_000_000)
    }
    fn add_channel(&mut self, name: &str, is_private: bool) -> String {
        let id = format!("C{:04}", self.next());
        let (name, members) = (name.into(), vec![BOT_USER.into()]);
        let channel = Channel {
            id: id.clone(),
            name,
            is_private,
            topic: None,
            members,
            archived: false,
        };
        self.channels.push(channel);
        id
    }
    fn channel(&mut self, id: &str) -> Result<&mut Channel, &'static str> {
        self.channels
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or("channel_not_found")
    }
    fn message(&mut self, channel: &str, ts: &str) -> Option<&mut Message> {
        self.messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts)
    }
}

/// A running fake Slack; the server lives as long as the tokio runtime.
#[derive(Clone)]
pub struct FakeSlack {
    /// Base URL, e.g. `http://127.0.0.1:PORT`; methods are served at `{url}/{method}`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    /// Binds `127.0.0.1:0` and serves in a background tokio task.
    pub async fn start() -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve fake slack") });
        FakeSlack { url, inner }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delay added before every answer (the call is recorded on arrival).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// While `down`, every call is recorded and answered HTTP 503 (Slack is unavailable).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Every call naming `channel` answers `{"ok":false,"error":code}` from now on, e.g.
    /// `channel_not_found` for a channel that does not exist or the bot cannot see.
    pub fn break_channel(&self, channel: &str, code: &str) {
        self.lock()
            .broken_channels
            .insert(channel.into(), code.into());
    }

    /// Undoes [`Self::break_channel`] (the bot was invited, the channel unarchived).
    pub fn repair_channel(&self, channel: &str) {
        self.lock().broken_channels.remove(channel);
    }

    /// The next `failures.len()` calls to `method` get these answers in order, then normal
    /// behaviour resumes.
    pub fn fail_next(&self, method: &str, failures: Vec<Failure>) {
        self.lock()
            .failures
            .entry(method.into())
            .or_default()
            .extend(failures);
    }

    /// Every call in arrival order, including failed ones.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.iter().map(|(c, _)| c.clone()).collect()
    }

    /// Only the calls answered `ok:true`.
    pub fn successful_calls(&self) -> Vec<Call> {
        let inner = self.lock();
        inner
            .calls
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Method names of [`Self::successful_calls`], in order.
    pub fn methods(&self) -> Vec<String> {
        self.successful_calls()
            .into_iter()
            .map(|c| c.method)
            .collect()
    }

    /// Makes `conversations.history` / `conversations.replies` return this message for
    /// (channel, ts), replacing any message already there.
    pub fn put_message(&self, channel: &str, ts: &str, user: &str, text: &str) {
        let mut inner = self.lock();
        inner
            .messages
            .retain(|m| !(m.channel == channel && m.ts == ts));
        inner
            .messages
            .push(Message::new(channel, ts, user, text.into()));
    }

    /// Creates a channel as if someone else had, e.g. to provoke `name_taken`; returns its id.
    pub fn add_channel(&self, name: &str) -> String {
        self.lock().add_channel(name, false)
    }

    /// Archives channel `id` (made with [`Self::add_channel`]): `conversations.info` says so.
    pub fn archive_channel(&self, id: &str) {
        if let Some(c) = self.lock().channels.iter_mut().find(|c| c.id == id) {
            c.archived = true;
        }
    }

    /// The current state of every message (posted or put), in creation order.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    /// Every channel as (id, name, topic, members); members include [`BOT_USER`].
    pub fn channels(&self) -> Vec<(String, String, Option<String>, Vec<String>)> {
        let inner = self.lock();
        let row = |c: &Channel| {
            (
                c.id.clone(),
                c.name.clone(),
                c.topic.clone(),
                c.members.clone(),
            )
        };
        inner.channels.iter().map(row).collect()
    }

    /// What `users.info` says about `user` from now on. Users never set get a made-up
    /// profile (display name: the id in lower case; real name: `User <id>`).
    pub fn set_user(&self, user: &str, display_name: &str, real_name: &str) {
        self.lock()
            .users
            .insert(user.into(), (display_name.into(), real_name.into()));
    }

    /// Pinned messages as (channel, ts), sorted.
    pub fn pins(&self) -> Vec<(String, String)> {
        let mut pins: Vec<_> = self.lock().pins.iter().cloned().collect();
        pins.sort();
        pins
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lock = || inner.lock().unwrap_or_else(|e| e.into_inner());
    let method = uri.path().trim_start_matches('/').to_string();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let body = parse_params(uri.query(), &body);
    let call = Call {
        method: method.clone(),
        body: body.clone(),
        auth: auth.map(Into::into),
        at: std::time::Instant::now(),
    };
    let (index, latency) = {
        let mut inner = lock();
        inner.calls.push((call, false));
        (inner.calls.len() - 1, inner.latency)
    };
    tokio::time::sleep(latency).await;
    let mut inner = lock();
    let error = |code: &str| json!({"ok": false, "error": code});
    let failure = inner
        .failures
        .get_mut(&method)
        .and_then(VecDeque::pop_front);
    let broken = param(&body, "channel").and_then(|c| inner.broken_channels.get(&c).cloned());
    let (status, reply) = match &failure {
        _ if inner.down => (
            StatusCode::SERVICE_UNAVAILABLE,
            error("service_unavailable"),
        ),
        Some(Failure::RateLimited { .. }) => (StatusCode::TOO_MANY_REQUESTS, error("ratelimited")),
        Some(Failure::ServerError) => (StatusCode::INTERNAL_SERVER_ERROR, error("internal_error")),
        Some(Failure::ApiError(code)) => (StatusCode::OK, error(code)),
        None if auth.is_none() => (StatusCode::OK, error("not_authed")),
        None if broken.is_some() => (StatusCode::OK, error(&broken.unwrap_or_default())),
        None => match answer(&mut inner, &method, &body) {
            Ok(mut v) => {
                v["ok"] = json!(true);
                (StatusCode::OK, v)
            }
            Err("unknown_method") => (StatusCode::NOT_FOUND, error("unknown_method")),
            Err(code) => (StatusCode::OK, error(code)),
        },
    };
    inner.calls[index].1 = reply["ok"] == json!(true);
    let mut response = (status, Json(reply)).into_response();
    if let Some(Failure::RateLimited { retry_after_secs }) = failure {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after_secs.into());
    }
    response
}

/// Query string merged with a JSON or urlencoded body (the body wins).
fn parse_params(query: Option<&str>, body: &[u8]) -> Value {
    let mut map = Map::new();
    let mut form = |s: &[u8]| {
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(s).unwrap_or_default();
        map.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    };
    form(query.unwrap_or_default().as_bytes());
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(json)) => map.extend(json),
        _ => form(body),
    }
    Value::Object(map)
}

fn param(body: &Value, key: &str) -> Option<String> {
    match &body[key] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON value, or a string holding one (form-encoded `blocks`, `view`).
fn json_param(body: &Value, key: &str) -> Option<Value> {
    match &body[key] {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Null => None,
        v => Some(v.clone()),
    }
}

/// Slack timestamps ordered numerically ("seconds.micros").
fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let micros = format!("{frac:0<6}")[..6].parse().unwrap_or(0);
    (secs.parse().unwrap_or(0), micros)
}

fn channel_json(c: &Channel) -> Value {
    json!({
        "id": c.id, "name": c.name, "name_normalized": c.name, "created": CREATED,
        "creator": BOT_USER, "is_channel": true, "is_group": false, "is_im": false,
        "is_mpim": false, "is_private": c.is_private, "is_archived": c.archived,
        "is_general": false, "is_shared": false, "is_org_shared": false, "is_member": true,
        "topic": {"value": c.topic.clone().unwrap_or_default(), "creator": BOT_USER, "last_set": CREATED},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "previous_names": [], "num_members": c.members.len(),
    })
}

fn message_json(m: &Message) -> Value {
    let mut v =
        json!({"type": "message", "user": m.user, "text": m.text, "ts": m.ts, "team": TEAM_ID});
    if m.user == BOT_USER {
        v["bot_id"] = json!(BOT_ID);
    }
    if let Some(blocks) = &m.blocks {
        v["blocks"] = blocks.clone();
    }
    if let Some(thread_ts) = &m.thread_ts {
        v["thread_ts"] = json!(thread_ts);
    }
    if m.edits > 0 {
        v["edited"] = json!({"user": BOT_USER, "ts": m.ts});
    }
    v
}

type Answer = Result<Value, &'static str>;

/// The `ok:true` answer to a method, or its error code (`unknown_method` becomes a 404).
fn answer(inner: &mut Inner, method: &str, body: &Value) -> Answer {
    let channel = param(body, "channel").unwrap_or_default();
    let ts = param(body, "ts")
        .or(param(body, "timestamp"))
        .or(param(body, "message_ts"));
    let ts = ts.unwrap_or_default();
    match method {
        "conversations.create" => create(inner, body),
        "conversations.invite" => invite(inner, &channel, body),
        "conversations.setTopic" => {
            let topic = param(body, "topic").unwrap_or_default();
            if topic.chars().count() > 250 {
                return Err("too_long");
            }
            let c = inner.channel(&channel)?;
            c.topic = param(body, "topic");
            Ok(json!({"channel": channel_json(c), "topic": c.topic.clone().unwrap_or_default()}))
        }
        "conversations.info" => Ok(json!({"channel": channel_json(inner.channel(&channel)?)})),
        "chat.postMessage" => post(inner, &channel, body),
        "chat.update" => update(inner, &channel, &ts, body),
        "chat.postEphemeral" if channel.is_empty() => Err("channel_not_found"),
        "chat.postEphemeral" if param(body, "user").is_none() => Err("user_not_found"),
        "chat.postEphemeral" => Ok(json!({"message_ts": inner.next_ts()})),
        "pins.add" | "chat.getPermalink" if inner.message(&channel, &ts).is_none() => {
            Err("message_not_found")
        }
        "pins.add" if !inner.pins.insert((channel.clone(), ts.clone())) => Err("already_pinned"),
        "pins.add" => Ok(json!({})),
        "chat.getPermalink" => {
            let link = format!(
                "https://example.slack.com/archives/{channel}/p{}",
                ts.replace('.', "")
            );
            Ok(json!({"channel": channel, "permalink": link}))
        }
        "views.open" => view(inner, body),
        "conversations.history" => Ok(history(inner, &channel, body)),
        "conversations.replies" => replies(inner, &channel, ts),
        "users.info" => {
            let u = param(body, "user").ok_or("user_not_found")?;
            let name = u.to_lowercase();
            let (display_name, real_name) = inner
                .users
                .get(&u)
                .cloned()
                .unwrap_or_else(|| (name.clone(), format!("User {u}")));
            Ok(json!({"user": {
                "id": u, "team_id": TEAM_ID, "name": name, "real_name": real_name, "deleted": false,
                "is_bot": u == BOT_USER, "is_admin": false, "tz": "UTC", "tz_offset": 0,
                "profile": {"display_name": display_name, "real_name": real_name},
            }}))
        }
        _ => Err("unknown_method"),
    }
}

fn create(inner: &mut Inner, body: &Value) -> Answer {
    let name = param(body, "name").ok_or("invalid_name_required")?;
    let valid = |c: char| c.is_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.chars().count() > 80 {
        Err("invalid_name_maxlength")
    } else if !name.chars().all(valid) {
        Err("invalid_name_specials")
    } else if inner.channels.iter().any(|c| c.name == name) {
        Err("name_taken")
    } else {
        let private = matches!(param(body, "is_private").as_deref(), Some("true" | "1"));
        let id = inner.add_channel(&name, private);
        Ok(json!({"channel": channel_json(inner.channel(&id)?)}))
    }
}

fn invite(inner: &mut Inner, channel: &str, body: &Value) -> Answer {
    let users: Vec<String> = match &body["users"] {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Value::String(s) => s.split(',').map(|u| u.trim().to_string()).collect(),
        _ => vec![],
    };
    let users: Vec<String> = users.into_iter().filter(|u| !u.is_empty()).collect();
    let c = inner.channel(channel)?;
    if users.is_empty() {
        return Err("no_user");
    } else if users.iter().all(|u| c.members.contains(u)) {
        return Err("already_in_channel");
    }
    for u in users {
        if !c.members.contains(&u) {
            c.members.push(u);
        }
    }
    Ok(json!({"channel": channel_json(c)}))
}

/// What Slack refuses: blocks over their limits, text over 40,000 characters.
fn check_limits(text: Option<&String>, blocks: Option<&Value>) -> Result<(), &'static str> {
    use firebreak::chat::slack::validate;
    if let Some(blocks) = blocks {
        if !validate::message_blocks(blocks).is_empty() {
            return Err("invalid_blocks");
        }
    }
    if text.is_some_and(|t| !validate::message(&json!({ "text": t })).is_empty()) {
        return Err("msg_too_long");
    }
    Ok(())
}

fn post(inner: &mut Inner, channel: &str, body: &Value) -> Answer {
    let (text, blocks) = (param(body, "text"), json_param(body, "blocks"));
    if channel.is_empty() {
        return Err("channel_not_found");
    } else if text.is_none() && blocks.is_none() {
        return Err("no_text");
    }
    check_limits(text.as_ref(), blocks.as_ref())?;
    let ts = inner.next_ts();
    let mut message = Message::new(channel, &ts, BOT_USER, text.unwrap_or_default());
    (message.blocks, message.thread_ts) = (blocks, param(body, "thread_ts"));
    let json = message_json(&message);
    inner.messages.push(message);
    Ok(json!({"channel": channel, "ts": ts, "message": json}))
}

fn update(inner: &mut Inner, channel: &str, ts: &str, body: &Value) -> Answer {
    let (text, blocks) = (param(body, "text"), json_param(body, "blocks"));
    if text.is_none() && blocks.is_none() {
        return Err("no_text");
    }
    check_limits(text.as_ref(), blocks.as_ref())?;
    let m = inner.message(channel, ts).ok_or("message_not_found")?;
    m.text = text.unwrap_or(std::mem::take(&mut m.text));
    m.blocks = blocks.or(m.blocks.take());
    m.edits += 1;
    let edited = json!({"user": BOT_USER, "ts": ts});
    let message = json!({"user": BOT_USER, "bot_id": BOT_ID, "text": m.text, "blocks": m.blocks, "edited": edited});
    Ok(
        json!({"channel": channel, "ts": ts, "text": m.text, "thread_ts": m.thread_ts, "message": message}),
    )
}

/// Echoes the submitted view with the fields Slack adds (`SlackStatefulView` needs id,
/// team_id and hash).
fn view(inner: &mut Inner, body: &Value) -> Answer {
    let Some(mut view @ Value::Object(_)) = json_param(body, "view") else {
        return Err("invalid_arguments");
    };
    if !firebreak::chat::slack::validate::modal(&view).is_empty() {
        return Err("invalid_arguments");
    }
    param(body, "trigger_id").ok_or("invalid_trigger_id")?;
    let id = format!("V{:04}", inner.next());
    let field = |key: &str| view.get(key).cloned().unwrap_or(json!(""));
    let added = json!({
        "id": id, "team_id": TEAM_ID, "app_id": "A0FAKE", "bot_id": BOT_ID,
        "state": {"values": {}}, "hash": format!("{}.fakehash", inner.counter),
        "root_view_id": id, "previous_view_id": null, "private_metadata": field("private_metadata"),
        "callback_id": field("callback_id"), "external_id": field("external_id"),
    });
    let (Value::Object(view_map), Value::Object(added)) = (&mut view, added) else {
        unreachable!("both are objects")
    };
    view_map.extend(added);
    Ok(json!({"view": view}))
}

/// Top-level messages of a channel between `oldest` and `latest`, newest first.
fn history(inner: &Inner, channel: &str, body: &Value) -> Value {
    let inclusive = matches!(param(body, "inclusive").as_deref(), Some("true" | "1"));
    let latest = param(body, "latest").map(|t| ts_key(&t));
    let oldest = param(body, "oldest").map(|t| ts_key(&t));
    let limit = param(body, "limit").map_or(100, |l| l.parse().unwrap_or(100));
    let in_range = |m: &&Message| {
        let k = ts_key(&m.ts);
        let top_level = m.thread_ts.as_ref().is_none_or(|t| *t == m.ts);
        let below = latest.is_none_or(|l| k < l || (inclusive && k == l));
        m.channel == channel
            && top_level
            && below
            && oldest.is_none_or(|o| k > o || (inclusive && k == o))
    };
    let mut found: Vec<&Message> = inner.messages.iter().filter(in_range).collect();
    found.sort_by_key(|m| std::cmp::Reverse(ts_key(&m.ts)));
    let has_more = found.len() > limit;
    let messages: Vec<Value> = found.into_iter().take(limit).map(message_json).collect();
    json!({"messages": messages, "has_more": has_more, "pin_count": 0})
}

/// The whole thread `ts` belongs to (as parent or reply), oldest first.
fn replies(inner: &mut Inner, channel: &str, ts: String) -> Answer {
    let m = inner.message(channel, &ts).ok_or("thread_not_found")?;
    let root = m.thread_ts.clone().unwrap_or(ts);
    let in_thread = |m: &&Message| {
        m.channel == channel && (m.ts == root || m.thread_ts.as_ref() == Some(&root))
    };
    let mut thread: Vec<&Message> = inner.messages.iter().filter(in_thread).collect();
    thread.sort_by_key(|m| ts_key(&m.ts));
    let messages: Vec<Value> = thread.into_iter().map(message_json).collect();
    Ok(json!({"messages": messages, "has_more": false}))
}
