//! Driving firebreak's Discord endpoint the way Discord does: interaction payloads in
//! Discord's real shapes (type 2 commands with nested subcommand options, type 3 button
//! presses, type 5 modal submits; `member.user` in a server, `user` in a DM), signed with
//! Ed25519 by a keypair generated for the test run.

use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::{Signer, SigningKey};
use firebreak::app::Integrations;
use firebreak::chat::discord::DiscordSecrets;
use serde_json::{Value, json};

use super::TestApp;

pub const BOT_TOKEN: &str = "discord-test-bot-token";
pub const APPLICATION_ID: &str = "1100000000000000001";
pub const GUILD_ID: &str = "1200000000000000001";

/// The test application's signing key: generated once per test binary.
pub fn signing_key() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        SigningKey::from_bytes(&seed)
    })
}

/// The public half, as `DISCORD_PUBLIC_KEY` holds it.
pub fn public_key_hex() -> String {
    hex::encode(signing_key().verifying_key().to_bytes())
}

/// Discord on, REST calls to `api_url`.
pub fn integrations(api_url: &str) -> Integrations {
    Integrations {
        slack: None,
        discord: Some(secrets(api_url)),
        github: None,
    }
}

pub fn secrets(api_url: &str) -> DiscordSecrets {
    DiscordSecrets {
        public_key: public_key_hex(),
        bot_token: BOT_TOKEN.to_string().into(),
        application_id: Some(APPLICATION_ID.into()),
        api_url: api_url.into(),
    }
}

/// `hex(Ed25519(timestamp ‖ body))`, as Discord sends in `X-Signature-Ed25519`.
pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    hex::encode(key.sign(&[timestamp.as_bytes(), body].concat()).to_bytes())
}

/// A fresh interaction snowflake.
pub fn snowflake() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Someone in the test server.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: &'static str,
    pub username: &'static str,
    pub roles: Vec<&'static str>,
}

pub fn bob() -> Member {
    Member {
        id: "4200000000000000042",
        username: "bob",
        roles: vec![],
    }
}

impl Member {
    fn member_json(&self) -> Value {
        json!({
            "user": {"id": self.id, "username": self.username, "global_name": null,
                     "discriminator": "0", "avatar": null, "public_flags": 0},
            "roles": self.roles, "nick": null, "avatar": null, "premium_since": null,
            "joined_at": "2026-01-01T00:00:00.000000+00:00", "pending": false, "deaf": false,
            "mute": false, "flags": 0, "permissions": "2248473465835073",
        })
    }
}

/// The envelope every interaction shares, in a server channel.
fn envelope(kind: u8, channel: &str, who: &Member, data: Value) -> Value {
    json!({
        "app_permissions": "2248473465835073",
        "application_id": APPLICATION_ID,
        "authorizing_integration_owners": {"0": GUILD_ID},
        "channel": {"id": channel, "type": 0, "guild_id": GUILD_ID, "name": "general"},
        "channel_id": channel,
        "context": 0,
        "data": data,
        "entitlements": [],
        "guild": {"id": GUILD_ID, "features": [], "locale": "en-US"},
        "guild_id": GUILD_ID,
        "guild_locale": "en-US",
        "id": snowflake(),
        "locale": "en-US",
        "member": who.member_json(),
        "token": "aW50ZXJhY3Rpb24tdG9rZW4",
        "type": kind,
        "version": 1,
    })
}

/// `/name sub option:value …` (type 2); options as `(name, type, value)`.
pub fn command(
    name: &str,
    sub: Option<&str>,
    options: &[(&str, u8, Value)],
    channel: &str,
    who: &Member,
) -> Value {
    let values: Vec<Value> = options
        .iter()
        .map(|(n, t, v)| json!({"name": n, "type": t, "value": v}))
        .collect();
    let top = match sub {
        Some(s) => json!([{"name": s, "type": 1, "options": values}]),
        None => Value::Array(values),
    };
    let data = json!({"id": "1400000000000000001", "name": name, "type": 1, "options": top, "guild_id": GUILD_ID});
    envelope(2, channel, who, data)
}

/// `/incident <sub> …`.
pub fn incident(sub: &str, options: &[(&str, u8, Value)], channel: &str, who: &Member) -> Value {
    command("incident", Some(sub), options, channel, who)
}

/// A button press (type 3) on a message firebreak posted.
pub fn button(custom_id: &str, channel: &str, who: &Member) -> Value {
    let mut v = envelope(
        3,
        channel,
        who,
        json!({"custom_id": custom_id, "component_type": 2}),
    );
    v["message"] = json!({"id": "1500000000000000001", "channel_id": channel, "content": "",
        "author": {"id": APPLICATION_ID, "username": "firebreak", "bot": true}, "type": 20});
    v
}

/// A modal submit (type 5) with text inputs `(custom_id, value)`.
pub fn modal_submit(
    custom_id: &str,
    fields: &[(&str, &str)],
    channel: &str,
    who: &Member,
) -> Value {
    let rows: Vec<Value> = fields
        .iter()
        .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
        .collect();
    envelope(
        5,
        channel,
        who,
        json!({"custom_id": custom_id, "components": rows}),
    )
}

/// The same command sent from a DM: `user` instead of `member`, no guild.
pub fn in_dm(mut v: Value, who: &Member) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.remove("member");
    obj.remove("guild_id");
    obj.remove("guild");
    obj.insert("user".into(), who.member_json()["user"].clone());
    obj.insert("context".into(), json!(1));
    v
}

pub struct DiscordSender {
    pub base: String,
    http: reqwest::Client,
}

impl DiscordSender {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.url(""),
            http: reqwest::Client::new(),
        }
    }

    /// Posts `payload`, signed now with the test key; returns the status and the JSON body.
    pub async fn send(&self, payload: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(payload).unwrap();
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = sign(signing_key(), &ts, &body);
        self.post_raw(body, Some(&ts), Some(&sig)).await
    }

    /// Posts raw bytes with the given headers (absent when `None`).
    pub async fn post_raw(
        &self,
        body: Vec<u8>,
        ts: Option<&str>,
        sig: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/discord/interactions", self.base))
            .header("content-type", "application/json");
        if let Some(ts) = ts {
            req = req.header("x-signature-timestamp", ts);
        }
        if let Some(sig) = sig {
            req = req.header("x-signature-ed25519", sig);
        }
        let resp = req.body(body).send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends and expects 200; returns the interaction response.
    pub async fn ok(&self, payload: &Value) -> Value {
        let (status, body) = self.send(payload).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// The content of a type 4 response.
pub fn content(resp: &Value) -> &str {
    assert_eq!(resp["type"], 4, "a message response: {resp}");
    resp["data"]["content"].as_str().unwrap_or_default()
}
