//! The Discord REST API through serenity: its HTTP client built for a configurable origin
//! (`DISCORD_API_URL`), its routes and builders for every call, its model types for every
//! answer, and the mapping of every failure onto the effects queue's retry policy.
//!
//! serenity's own rate limiter is off (it ignores a custom origin), and serenity drops the
//! headers and the 429 body of a failed call, so requests are built with serenity's
//! [`Request`] and sent here, where the answer is read in full: `X-RateLimit-*`,
//! `Retry-After` and the 429 body feed [`DiscordRateLimits`]; nothing is retried in memory,
//! because the durable queue owns retrying.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serenity::all::{
    ChannelId, CreateChannel, CreateForumPost, CreateMessage, EditMessage, GuildChannel, GuildId,
    Message, MessageId,
};
use serenity::http::{Http, HttpBuilder, LightMethod, Request, Route};

use super::config::DiscordSecrets;
use super::ratelimit::{DiscordRateLimits, RateLimitInfo};
use crate::effects::backoff::parse_retry_after;
use crate::effects::handler::EffectError;

/// Discord's JSON error code for a message that no longer exists.
pub const UNKNOWN_MESSAGE: i64 = 10008;

/// The bot's REST client.
#[derive(Clone)]
pub struct DiscordApi {
    http: Arc<Http>,
    client: reqwest::Client,
    limits: Arc<DiscordRateLimits>,
}

/// serenity's HTTP client for the bot: its token, the configured origin (`DISCORD_API_URL`),
/// serenity's own rate limiter off (it ignores a custom origin). The gateway client is
/// built on the same.
pub fn serenity_http(secrets: &DiscordSecrets, client: reqwest::Client) -> Http {
    let mut builder = HttpBuilder::new(secrets.bot_token.expose_secret())
        .client(client)
        .proxy(secrets.api_url.clone())
        .ratelimiter_disabled(true);
    if let Some(id) = application_id(secrets.application_id.as_deref()) {
        builder = builder.application_id(id.into());
    }
    builder.build()
}

impl DiscordApi {
    pub fn new(secrets: &DiscordSecrets, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .use_rustls_tls()
            .build()?;
        Ok(Self {
            http: Arc::new(serenity_http(secrets, client.clone())),
            client,
            limits: Arc::new(DiscordRateLimits::default()),
        })
    }

    /// serenity's client, for calls made outside the queue (command registration,
    /// interaction callbacks).
    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    pub async fn guild_channels(&self, guild: GuildId) -> Result<Vec<GuildChannel>, CallError> {
        let req = Request::new(Route::GuildChannels { guild_id: guild }, LightMethod::Get);
        self.json("list the server's channels", &format!("guild:{guild}"), req)
            .await
    }

    pub async fn create_channel(
        &self,
        guild: GuildId,
        channel: &CreateChannel<'_>,
    ) -> Result<GuildChannel, CallError> {
        let req = Request::new(Route::GuildChannels { guild_id: guild }, LightMethod::Post)
            .body(Some(body(channel)?));
        self.json(
            "create the incident channel",
            &format!("guild:{guild}"),
            req,
        )
        .await
    }

    pub async fn create_forum_post(
        &self,
        forum: ChannelId,
        post: &CreateForumPost<'_>,
    ) -> Result<GuildChannel, CallError> {
        let route = Route::ChannelForumPosts { channel_id: forum };
        let req = Request::new(route, LightMethod::Post).body(Some(body(post)?));
        self.json("open the incident thread", &format!("threads:{forum}"), req)
            .await
    }

    pub async fn send_message(
        &self,
        channel: ChannelId,
        message: &CreateMessage,
    ) -> Result<Message, CallError> {
        let route = Route::ChannelMessages {
            channel_id: channel,
        };
        let req = Request::new(route, LightMethod::Post).body(Some(body(message)?));
        self.json("post a message", &format!("messages:{channel}"), req)
            .await
    }

    pub async fn edit_message(
        &self,
        channel: ChannelId,
        message: MessageId,
        edit: &EditMessage,
    ) -> Result<Message, CallError> {
        let route = Route::ChannelMessage {
            channel_id: channel,
            message_id: message,
        };
        let req = Request::new(route, LightMethod::Patch).body(Some(body(edit)?));
        self.json("edit a message", &format!("edit:{channel}"), req)
            .await
    }

    pub async fn message(
        &self,
        channel: ChannelId,
        message: MessageId,
    ) -> Result<Message, CallError> {
        let route = Route::ChannelMessage {
            channel_id: channel,
            message_id: message,
        };
        let req = Request::new(route, LightMethod::Get);
        self.json("read the pinned message", &format!("read:{channel}"), req)
            .await
    }

    pub async fn pin(&self, channel: ChannelId, message: MessageId) -> Result<(), CallError> {
        let route = Route::ChannelPin {
            channel_id: channel,
            message_id: message,
        };
        let req = Request::new(route, LightMethod::Put);
        self.send("pin the incident card", &format!("pins:{channel}"), req)
            .await
            .map(drop)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        route: &str,
        req: Request<'_>,
    ) -> Result<T, CallError> {
        let bytes = self.send(what, route, req).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            tracing::error!(error = %e, what, "Discord answered with a body firebreak could not read");
            CallError::new(
                None,
                None,
                EffectError::permanent(format!(
                    "Discord answered in a form firebreak could not read when asked to {what}"
                )),
            )
        })
    }

    /// Sends one request on `route` (the rate-limit key: path and major parameter) if its
    /// limit allows it now; else fails with [`EffectError::Deferred`] at once.
    async fn send(&self, what: &str, route: &str, req: Request<'_>) -> Result<Vec<u8>, CallError> {
        if let Err(wait) = self.limits.check(route) {
            return Err(CallError::new(None, None, EffectError::Deferred { wait }));
        }
        let request = req
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            .map_err(|e| {
                tracing::error!(error = %e, what, "building a Discord request failed");
                CallError::new(
                    None,
                    None,
                    EffectError::permanent(format!("could not build the request to {what}")),
                )
            })?;
        let response = request
            .send()
            .await
            .map_err(|e| unreachable_error(what, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unreachable_error(what, &e))?;
        self.limits
            .observe(route, &RateLimitInfo::read(status, &headers, &bytes));
        if (200..300).contains(&status) {
            return Ok(bytes.to_vec());
        }
        Err(classify(what, status, &headers, &bytes))
    }
}

fn application_id(raw: Option<&str>) -> Option<u64> {
    raw?.trim().parse::<u64>().ok().filter(|id| *id != 0)
}

fn body<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CallError> {
    serde_json::to_vec(value).map_err(|e| {
        CallError::new(
            None,
            None,
            EffectError::permanent(format!("could not encode a Discord request: {e}")),
        )
    })
}

fn unreachable_error(what: &str, e: &reqwest::Error) -> CallError {
    let reason = if e.is_timeout() {
        format!("Discord did not answer in time when asked to {what}")
    } else {
        format!("could not reach Discord to {what}")
    };
    CallError::new(None, None, EffectError::retryable(reason))
}

/// A failed Discord call: the HTTP status and Discord's JSON error code if it answered, and
/// what the queue should do.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: Option<u16>,
    pub code: Option<i64>,
    pub error: EffectError,
}

impl CallError {
    fn new(status: Option<u16>, code: Option<i64>, error: EffectError) -> Self {
        Self {
            status,
            code,
            error,
        }
    }

    /// Whether trying again can never help.
    pub fn is_permanent(&self) -> bool {
        matches!(self.error, EffectError::Permanent { .. })
    }

    pub fn is_code(&self, code: i64) -> bool {
        self.code == Some(code)
    }
}

impl From<CallError> for EffectError {
    fn from(e: CallError) -> Self {
        e.error
    }
}

/// Maps an HTTP answer to a retry decision (pure). The reasons name the call, the status
/// and Discord's error, never the token.
pub fn classify(
    what: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> CallError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = json.get("code").and_then(serde_json::Value::as_i64);
    let message = json
        .get("message")
        .and_then(serde_json::Value::as_str)
        .map(|m| m.chars().take(200).collect::<String>());
    let error = match status {
        429 => EffectError::Retryable {
            reason: format!("Discord rate limited the call to {what}"),
            retry_after: RateLimitInfo::read(status, headers, body).retry_after,
        },
        408 | 500..=599 => EffectError::Retryable {
            reason: format!("Discord answered HTTP {status} when asked to {what}"),
            retry_after: headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now())),
        },
        401 => EffectError::permanent(format!(
            "Discord refused the bot token (HTTP 401) when asked to {what}; check DISCORD_BOT_TOKEN"
        )),
        _ => {
            let detail = match (code, message) {
                (Some(c), Some(m)) => format!(" ({c} {m})"),
                (None, Some(m)) => format!(" ({m})"),
                (Some(c), None) => format!(" ({c})"),
                (None, None) => String::new(),
            };
            EffectError::permanent(format!("Discord refused to {what}: HTTP {status}{detail}"))
        }
    };
    CallError::new(Some(status), code, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn answers_map_to_retry_decisions() {
        let none = HeaderMap::new();
        let e = classify(
            "post a message",
            429,
            &none,
            br#"{"retry_after":2.5,"global":true}"#,
        );
        assert_eq!(
            e.error,
            EffectError::Retryable {
                reason: "Discord rate limited the call to post a message".into(),
                retry_after: Some(Duration::from_millis(2500))
            }
        );
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        let e = classify("edit a message", 503, &h, b"upstream down");
        assert!(matches!(
            e.error,
            EffectError::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(!classify("x", 502, &none, b"").is_permanent());
        let e = classify(
            "post a message",
            403,
            &none,
            br#"{"code":50001,"message":"Missing Access"}"#,
        );
        assert!(e.is_permanent() && e.is_code(50001));
        assert_eq!(
            e.error.to_string(),
            "Discord refused to post a message: HTTP 403 (50001 Missing Access)"
        );
        assert!(
            classify("x", 401, &none, b"")
                .error
                .to_string()
                .contains("DISCORD_BOT_TOKEN")
        );
        assert!(classify("x", 404, &none, br#"{"code":10008}"#).is_code(UNKNOWN_MESSAGE));
    }

    #[test]
    fn application_ids_are_snowflakes() {
        assert_eq!(application_id(Some(" 123 ")), Some(123));
        assert_eq!(application_id(Some("0")), None);
        assert_eq!(application_id(Some("abc")), None);
        assert_eq!(application_id(None), None);
    }
}
