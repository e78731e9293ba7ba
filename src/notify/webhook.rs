//! Delivers notices to Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat,
//! Google Chat): a JSON POST of `{"text": …}`.
//!
//! Webhook URLs embed a credential, so they are held as secrets, looked up by name when the
//! effect runs (the queue stores only the name), and never logged: errors name the webhook
//! and the HTTP status, not the URL.
//!
//! Delivery is at least once. Every POST carries an `Idempotency-Key` header that is the
//! effect's own key (incident, version, webhook), the same on every retry, so a receiver that
//! sees a notice twice (a crash between its answer and our record of it) can drop the copy.
//! Each webhook has its own rate limit; an effect over it waits in the queue, not in a worker.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use super::{WEBHOOK_EFFECT, WebhookEffect};
use crate::effects::Effect;
use crate::effects::backoff::parse_retry_after;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::effects::pacing::Pacer;

/// One configured webhook: its URL (a secret) and its rate limit.
pub struct Webhook {
    pub url: SecretString,
    pub limit: Pacer,
}

impl Webhook {
    /// `per_second` sustained, `burst` at once (Slack allows one a second, short bursts).
    pub fn new(url: SecretString, per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            url,
            limit: Pacer::new(Duration::from_secs(1) / per_second.get(), burst.get()),
        }
    }

    /// `Ok` if a POST may go now, else how long until this notice's own slot.
    fn admit(&self) -> Result<(), EffectError> {
        self.limit
            .admit("")
            .map_err(|wait| EffectError::Deferred { wait })
    }
}

/// The `notify.webhook` effect handler.
pub struct WebhookNotifier {
    http: reqwest::Client,
    hooks: HashMap<String, Webhook>,
}

impl WebhookNotifier {
    pub fn new(http: reqwest::Client, hooks: HashMap<String, Webhook>) -> Self {
        Self { http, hooks }
    }
}

#[async_trait]
impl EffectHandler for WebhookNotifier {
    fn kinds(&self) -> &'static [&'static str] {
        &[WEBHOOK_EFFECT]
    }

    fn target(&self, effect: &Effect) -> String {
        match effect.decode::<WebhookEffect>() {
            Ok(WebhookEffect::Notice { webhook, .. }) => format!("webhook:{webhook}"),
            Err(_) => "webhook:?".into(),
        }
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let WebhookEffect::Notice { webhook, text } = effect.decode()?;
        let hook = self.hooks.get(&webhook).ok_or_else(|| {
            EffectError::permanent(format!("webhook \"{webhook}\" is no longer configured"))
        })?;
        hook.admit()?;
        let response = self
            .http
            .post(hook.url.expose_secret())
            .header("Idempotency-Key", &effect.idempotency_key)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .map_err(|e| {
                EffectError::retryable(format!(
                    "could not reach webhook \"{webhook}\": {}",
                    e.without_url()
                ))
            })?;
        classify(&webhook, response.status(), response.headers())?;
        Ok(Some(format!("Notice posted to webhook \"{webhook}\"")))
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
