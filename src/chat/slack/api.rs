//! The Slack Web API through slack-morphism: client construction with a configurable base
//! URL, per-method rate tiers, and the mapping of every failure onto the effects queue's
//! retry policy.
//!
//! Calls are paced by Slack's published method tiers ([`SlackRateLimits`]); slack-morphism
//! itself neither throttles nor retries, because the durable queue owns retrying: a retry
//! that survives a restart beats one held in memory.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::ratelimit::SlackRateLimits;
use crate::effects::handler::EffectError;

/// Where the Slack Web API lives unless `SLACK_API_URL` says otherwise.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";

/// Slack error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// A Slack Web API client bound to the bot token.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    timeout: Duration,
    limits: Arc<SlackRateLimits>,
    /// Cleared while Slack is failing (5xx, unreachable, timeouts). Calls made then are the
    /// circuit breaker's probes, which it paces itself; they do not spend the tiers' budget,
    /// so the backlog goes out at full speed when Slack answers again.
    answering: Arc<AtomicBool>,
}

impl SlackApi {
    /// The client for `secrets`, if Slack is configured in this process.
    pub fn for_secrets(
        secrets: Option<&super::SlackSecrets>,
        timeout: Duration,
    ) -> anyhow::Result<Option<Self>> {
        secrets
            .map(|s| Self::new(&s.api_url, &s.bot_token, timeout))
            .transpose()
    }

    pub fn new(api_url: &str, bot_token: &SecretString, timeout: Duration) -> anyhow::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue::new(
                bot_token.expose_secret().to_string(),
            )),
            timeout,
            limits: Arc::new(SlackRateLimits::default()),
            answering: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Runs one API call with a timeout, if its rate tier (per `channel` for posts) allows
    /// it now; otherwise it fails with [`EffectError::Deferred`] at once, so the effect goes
    /// back to the queue instead of holding a worker. `method` names it in errors.
    pub async fn call<'a, T, F, Fut>(
        &'a self,
        method: &str,
        channel: Option<&str>,
        f: F,
    ) -> Result<T, SlackCallError>
    where
        F: FnOnce(SlackClientSession<'a, SlackClientHyperHttpsConnector>) -> Fut,
        Fut: Future<Output = Result<T, SlackClientError>> + 'a,
    {
        if self.answering.load(Ordering::Relaxed) {
            if let Err(wait) = self.limits.check(method, channel) {
                let deferred = EffectError::Deferred { wait };
                return Err(SlackCallError::new(method, None, deferred));
            }
        }
        let session = self.client.open_session(&self.token);
        let result = match tokio::time::timeout(self.timeout, f(session)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(SlackCallError::from_client(method, e)),
            Err(_) => Err(SlackCallError::new(
                method,
                None,
                EffectError::retryable(format!("Slack {method} timed out")),
            )),
        };
        self.observe(method, channel, result.as_ref().err());
        result
    }

    /// Fails with [`EffectError::Deferred`] if `method` (in `channel`, for posts) could not
    /// be called now, taking no slot if it could: an effect asks before reading what the
    /// call needs, so a deferred attempt costs no reads.
    pub fn ready(&self, method: &str, channel: Option<&str>) -> Result<(), SlackCallError> {
        if !self.answering.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.limits
            .ahead(method, channel)
            .map_err(|wait| SlackCallError::new(method, None, EffectError::Deferred { wait }))
    }

    /// The tiers this client paces its calls by, for planning (see [`SlackPacing`]).
    pub fn pacing(&self) -> SlackPacing {
        SlackPacing {
            limits: Arc::clone(&self.limits),
            answering: Arc::clone(&self.answering),
        }
    }

    /// Learns from an answer: a 429's `Retry-After` holds back that method (and channel);
    /// an outage switches the tiers off until Slack answers again.
    fn observe(&self, method: &str, channel: Option<&str>, error: Option<&SlackCallError>) {
        let answering = match error.map(|e| &e.error) {
            Some(EffectError::Retryable {
                retry_after: Some(wait),
                ..
            }) => {
                self.limits.penalize(method, channel, *wait);
                true
            }
            Some(EffectError::Retryable { .. }) => error.is_some_and(|e| e.is("ratelimited")),
            _ => true,
        };
        self.answering.store(answering, Ordering::Relaxed);
    }
}

/// A [`SlackApi`]'s rate tiers, seen from the planner: under a storm of declarations a new
/// incident's first call (its channel, its notice) would only be claimed by the worker to
/// hear "wait for your slot", so the planner books the slot and queues the effect for then.
#[derive(Clone)]
pub struct SlackPacing {
    limits: Arc<SlackRateLimits>,
    answering: Arc<AtomicBool>,
}

impl Default for SlackPacing {
    /// Slack's published tiers, none of them used yet, with Slack answering.
    fn default() -> Self {
        Self {
            limits: Arc::default(),
            answering: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl SlackPacing {
    /// How long the effect keyed `holder` must wait to call `method` (in `channel`, for
    /// posts), its slot booked and kept for it; `None` if its slot is now, or if Slack is
    /// not answering (the breaker paces the probes then, not the tiers).
    pub fn book(&self, method: &str, channel: Option<&str>, holder: &str) -> Option<Duration> {
        if !self.answering.load(Ordering::Relaxed) {
            return None;
        }
        self.limits.book(method, channel, holder).err()
    }

    /// Gives back what [`book`](Self::book) kept for `holder`.
    pub fn release(&self, method: &str, channel: Option<&str>, holder: &str) {
        self.limits.release(method, channel, holder);
    }
}

/// A channel as `conversations.info` describes it: what the runbook check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelState {
    pub archived: bool,
}

impl SlackApi {
    /// `conversations.info` for `channel` (an id): whether it exists (else the error
    /// `channel_not_found`) and whether it is archived.
    pub async fn channel_info(&self, channel: &str) -> Result<ChannelState, SlackCallError> {
        let req = SlackApiConversationsInfoRequest::new(channel.into());
        let resp = self
            .call("conversations.info", None, |s| async move {
                s.conversations_info(&req).await
            })
            .await?;
        Ok(ChannelState {
            archived: resp.channel.flags.is_archived.unwrap_or(false),
        })
    }
}

/// A failed Slack call: the API error code if Slack gave one, and what the queue should do.
#[derive(Debug, Clone)]
pub struct SlackCallError {
    pub method: String,
    pub code: Option<String>,
    pub error: EffectError,
}

impl SlackCallError {
    fn new(method: &str, code: Option<String>, error: EffectError) -> Self {
        Self {
            method: method.to_string(),
            code,
            error,
        }
    }

    fn from_client(method: &str, e: SlackClientError) -> Self {
        let (code, error) = classify(method, e);
        Self::new(method, code, error)
    }

    /// Whether trying again can never help.
    pub fn is_permanent(&self) -> bool {
        matches!(self.error, EffectError::Permanent { .. })
    }

    /// True when Slack answered `ok:false` with this error code (HTTP 200 on the real
    /// service; a 4xx body from some proxies and mocks).
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl From<SlackCallError> for EffectError {
    fn from(e: SlackCallError) -> Self {
        e.error
    }
}

/// Maps slack-morphism's errors to retry decisions. The messages name the method and the
/// Slack error code, never the token.
fn classify(method: &str, e: SlackClientError) -> (Option<String>, EffectError) {
    match e {
        SlackClientError::ApiError(api) => {
            let reason = format!("Slack {method} failed: {}", api.code);
            let err = if TRANSIENT_CODES.contains(&api.code.as_str()) {
                EffectError::retryable(reason)
            } else {
                EffectError::permanent(reason)
            };
            (Some(api.code), err)
        }
        SlackClientError::RateLimitError(rl) => (
            Some("ratelimited".into()),
            EffectError::Retryable {
                reason: format!("Slack {method} was rate limited"),
                retry_after: rl.retry_after,
            },
        ),
        SlackClientError::HttpError(http) => {
            let status = http.status_code;
            let code = http
                .http_response_body
                .as_deref()
                .and_then(error_code_in_body);
            let reason = format!("Slack {method} answered HTTP {}", status.as_u16());
            let err =
                if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    EffectError::retryable(reason)
                } else {
                    EffectError::permanent(reason)
                };
            (code, err)
        }
        SlackClientError::HttpProtocolError(_)
        | SlackClientError::EndOfStream(_)
        | SlackClientError::SystemError(_) => (
            None,
            EffectError::retryable(format!("could not reach Slack for {method}")),
        ),
        SlackClientError::ProtocolError(p) => (
            None,
            EffectError::permanent(format!(
                "Slack {method} returned a response firebreak could not read: {p}"
            )),
        ),
        SlackClientError::SocketModeProtocolError(_) => (
            None,
            EffectError::permanent(format!("unexpected Slack error for {method}")),
        ),
    }
}

fn error_code_in_body(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("error").and_then(|e| e.as_str()).map(str::to_string)
}
