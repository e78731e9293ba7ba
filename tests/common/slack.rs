//! Driving firebreak's Slack endpoints the way Slack does: signed form and JSON bodies.

use firebreak::app::Integrations;
use firebreak::chat::slack::SlackSecrets;
use firebreak::chat::slack::verify::sign;
use serde_json::{Value, json};

use super::TestApp;

pub const SIGNING_SECRET: &str = "test-signing-secret";

pub fn integrations(api_url: &str) -> Integrations {
    Integrations {
        slack: Some(SlackSecrets {
            signing_secret: SIGNING_SECRET.to_string().into(),
            bot_token: "xoxb-test-token".to_string().into(),
            api_url: api_url.to_string(),
        }),
        discord: None,
        github: None,
    }
}

/// Config for Slack tests: fast retries and two announcement channels for SEV1/SEV2.
pub const SLACK_CONFIG: &str = "[slack.announce]\nSEV1 = [\"C_INCIDENTS\", \"C_GENERAL\"]\nSEV2 = [\"C_INCIDENTS\", \"C_GENERAL\"]\nSEV3 = [\"C_INCIDENTS\"]\n";

/// Effects retried fast behind a fast breaker, so a few seconds' outage spans dozens of
/// former attempts.
pub const FAST_BREAKER: &str = "[effects]\nbase_backoff = \"50ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\n\
                                lease = \"40s\"\nbreaker_threshold = 2\nbreaker_cooldown = \"150ms\"\ncli_wait = \"5s\"\n";

/// `INC-7` out of a text (an answer, a notice).
pub fn incident_named(text: &str) -> Option<String> {
    let at = text.find("INC-")?;
    let digits: String = text[at + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("INC-{digits}"))
}

/// A `/incident` slash command body as Slack sends it from `#C_ORIGIN` by Alice, with its
/// own `trigger_id` (Slack's retries repeat it; distinct commands never share one).
pub fn unique_command(text: &str, trigger_id: &str) -> String {
    serde_urlencoded::to_string([
        ("team_id", "T0001"),
        ("channel_id", "C_ORIGIN"),
        ("user_id", "U0ALICE"),
        ("user_name", "alice"),
        ("command", "/incident"),
        ("text", text),
        ("trigger_id", trigger_id),
    ])
    .unwrap()
}

pub struct SlackSender {
    pub base: String,
    http: reqwest::Client,
}

impl SlackSender {
    pub fn new(app: &TestApp) -> Self {
        Self::at(app.url(""))
    }

    /// A sender for firebreak served at `base` (`http://127.0.0.1:PORT`), e.g. a process.
    pub fn at(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Posts `body` to `path`, signed now with the test secret.
    pub async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        let ts = chrono::Utc::now().timestamp();
        self.post_signed(path, content_type, body, ts, None).await
    }

    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        ts: i64,
        signature: Option<&str>,
    ) -> reqwest::Response {
        self.post_with(path, content_type, body, ts, signature, &[])
            .await
    }

    /// [`Self::post_signed`] with extra headers (`X-Slack-Retry-Num`, …).
    pub async fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        ts: i64,
        signature: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let sig = signature
            .map(str::to_string)
            .unwrap_or_else(|| sign(SIGNING_SECRET.as_bytes(), ts, &body));
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(body).send().await.expect("request")
    }

    pub fn command_body(command: &str, text: &str, channel: &str, user: &str) -> Vec<u8> {
        serde_urlencoded::to_string([
            ("token", "ignored"),
            ("team_id", "T0"),
            ("channel_id", channel),
            ("user_id", user),
            ("user_name", &user.to_lowercase()),
            ("command", command),
            ("text", text),
            ("response_url", "https://hooks.slack.com/commands/T0/1/x"),
            ("trigger_id", "1.2.trigger"),
        ])
        .unwrap()
        .into_bytes()
    }

    /// A slash command; returns the JSON reply.
    pub async fn command(&self, text: &str, channel: &str, user: &str) -> Value {
        let resp = self
            .post(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                Self::command_body("/incident", text, channel, user),
            )
            .await;
        assert_eq!(resp.status(), 200, "slash command status");
        resp.json().await.expect("JSON reply")
    }

    pub async fn event(&self, event_id: &str, event: Value) -> reqwest::Response {
        let body = json!({ "type": "event_callback", "team_id": "T0", "api_app_id": "A0", "event_id": event_id, "event_time": 1, "event": event });
        self.post(
            "/slack/events",
            "application/json",
            serde_json::to_vec(&body).unwrap(),
        )
        .await
    }

    pub async fn interaction(&self, payload: Value) -> reqwest::Response {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body.into_bytes(),
        )
        .await
    }

    pub async fn button(
        &self,
        action_id: &str,
        value: &str,
        channel: &str,
        user: &str,
    ) -> reqwest::Response {
        // Slack gives every click its own trigger id.
        static CLICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let click = CLICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.interaction(json!({
            "type": "block_actions", "user": { "id": user, "username": user.to_lowercase() },
            "team": { "id": "T0" }, "api_app_id": "A0", "trigger_id": format!("9.{click}.trigger"),
            "container": { "type": "message", "channel_id": channel }, "channel": { "id": channel },
            "actions": [{ "action_id": action_id, "value": value, "type": "button" }]
        }))
        .await
    }
}
