//! `[slack]` in the config, and the Slack secrets from the environment.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::api::DEFAULT_SLACK_API_URL;
use crate::chat::AnnounceChannels;
use crate::config::env_secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// Incident channels are named `<prefix>-<number>-<slug>`.
    pub channel_prefix: String,
    /// Create incident channels as private channels.
    pub private_channels: bool,
    /// Company-wide notice channels per severity (IDs like `C024BE91L`).
    pub announce: AnnounceChannels,
    /// Users (IDs like `U024BE7LH`) invited to every incident channel.
    pub invite: Vec<String>,
    /// Timeout for one Web API call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// `[runbooks] drill_channel`: when set, a drill's company-wide notice goes there
    /// instead of the announcement channels.
    #[serde(skip)]
    pub drill_channel: Option<String>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "inc".into(),
            private_channels: false,
            announce: AnnounceChannels::default(),
            invite: Vec::new(),
            timeout: Duration::from_secs(10),
            drill_channel: None,
        }
    }
}

impl SlackConfig {
    /// Whether the config names Slack channels to announce in or people to invite. Then
    /// every process plans Slack effects, even one without the Slack credentials (a CLI in
    /// another shell): they wait in the queue for `serve`, which has them.
    pub fn is_configured(&self) -> bool {
        !self.announce.is_empty() || !self.invite.is_empty()
    }
}

/// Slack credentials and endpoint, from `SLACK_SIGNING_SECRET`, `SLACK_BOT_TOKEN` and
/// `SLACK_API_URL`. Slack is on when both secrets are set; one set but empty is an error.
#[derive(Clone)]
pub struct SlackSecrets {
    pub signing_secret: SecretString,
    pub bot_token: SecretString,
    pub api_url: String,
}

impl SlackSecrets {
    /// `Ok(None)` when Slack is not configured; an error when only half of it is.
    pub fn from_env() -> Result<Option<Self>, String> {
        let secret = env_secret("SLACK_SIGNING_SECRET")?;
        let token = env_secret("SLACK_BOT_TOKEN")?;
        let api_url =
            std::env::var("SLACK_API_URL").unwrap_or_else(|_| DEFAULT_SLACK_API_URL.into());
        match (secret, token) {
            (Some(s), Some(t)) => Ok(Some(Self {
                signing_secret: s,
                bot_token: t,
                api_url: api_url.trim_end_matches('/').to_string(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err("SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not".into()),
            (None, Some(_)) => Err("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not".into()),
        }
    }
}

impl std::fmt::Debug for SlackSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSecrets")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}
