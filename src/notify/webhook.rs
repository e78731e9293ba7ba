//! Delivers notices to Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat,
//! Google Chat): a JSON POST of `{"text": …}`.
//!
//! Webhook URLs embed a credential, so they are held as secrets, looked up by name when the
//! effect runs (the queue stores only the name), and never logged: errors name the webhook
//! and the HTTP status, not the URL.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::WEBHOOK_EFFECT;
use crate::effects::Effect;
use crate::effects::backoff::parse_retry_after;
use crate::effects::handler::{EffectError, EffectHandler};

#[derive(Deserialize)]
struct Payload {
    webhook: String,
    text: String,
}

/// The `notify.webhook` effect handler.
pub struct WebhookNotifier {
    http: reqwest::Client,
    urls: HashMap<String, SecretString>,
}

impl WebhookNotifier {
    pub fn new(http: reqwest::Client, urls: HashMap<String, SecretString>) -> Self {
        Self { http, urls }
    }
}

#[async_trait]
impl EffectHandler for WebhookNotifier {
    fn kinds(&self) -> &'static [&'static str] {
        &[WEBHOOK_EFFECT]
    }

    fn target(&self, effect: &Effect) -> String {
        let name = effect
            .payload
            .get("webhook")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        format!("webhook:{name}")
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let p: Payload = serde_json::from_value(effect.payload.clone())
            .map_err(|e| EffectError::permanent(format!("malformed notice payload: {e}")))?;
        let url = self.urls.get(&p.webhook).ok_or_else(|| {
            EffectError::permanent(format!("webhook \"{}\" is no longer configured", p.webhook))
        })?;
        let response = self
            .http
            .post(url.expose_secret())
            .json(&serde_json::json!({ "text": p.text }))
            .send()
            .await
            .map_err(|e| {
                EffectError::retryable(format!(
                    "could not reach webhook \"{}\": {}",
                    p.webhook,
                    e.without_url()
                ))
            })?;
        classify(&p.webhook, response.status(), response.headers())?;
        Ok(Some(format!("Notice posted to webhook \"{}\"", p.webhook)))
    }
}

/// Maps an HTTP answer to success, a retry (with the server's hint) or a permanent failure.
pub fn classify(
    name: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), EffectError> {
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("webhook \"{name}\" answered HTTP {}", status.as_u16());
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        return Err(EffectError::Retryable {
            reason,
            retry_after,
        });
    }
    Err(EffectError::permanent(reason))
}

/// The HTTP client used for outgoing notices: rustls, a short timeout, no redirects to
/// follow blindly with a credential-bearing URL.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("firebreak/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn statuses_are_classified() {
        let mut h = HeaderMap::new();
        assert!(classify("x", StatusCode::OK, &h).is_ok());
        assert!(matches!(
            classify("x", StatusCode::NOT_FOUND, &h),
            Err(EffectError::Permanent { .. })
        ));
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            classify("x", StatusCode::TOO_MANY_REQUESTS, &h),
            Err(EffectError::Retryable {
                reason: "webhook \"x\" answered HTTP 429".into(),
                retry_after: Some(Duration::from_secs(7)),
            })
        );
        assert!(matches!(
            classify("x", StatusCode::BAD_GATEWAY, &HeaderMap::new()),
            Err(EffectError::Retryable { .. })
        ));
    }
}
