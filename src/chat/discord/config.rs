//! `[discord]` in the config, and the Discord secrets from the environment.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::chat::AnnounceChannels;
use crate::config::env_secret;

/// Where Discord REST calls go unless `DISCORD_API_URL` says otherwise.
pub const DEFAULT_DISCORD_API_URL: &str = "https://discord.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The server (guild) incidents run in: channels are created there.
    pub guild_id: Option<String>,
    /// Incident channels are named `<prefix>-<number>-<slug>`.
    pub channel_prefix: String,
    /// Create incident text channels under this category.
    pub category_id: Option<String>,
    /// Open each incident as a thread (post) in this forum channel instead of a channel.
    pub forum_channel_id: Option<String>,
    /// Company-wide notice channels per severity (channel IDs).
    pub announce: AnnounceChannels,
    /// The comms role tagged by update reminders.
    pub comms_role_id: Option<String>,
    /// Run a gateway client in `serve` (for 📌 reactions onto the timeline).
    pub gateway: bool,
    /// Timeout for one REST call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            guild_id: None,
            channel_prefix: "inc".into(),
            category_id: None,
            forum_channel_id: None,
            announce: AnnounceChannels::default(),
            comms_role_id: None,
            gateway: false,
            timeout: Duration::from_secs(10),
        }
    }
}

impl DiscordConfig {
    /// Whether the config names a Discord server to run incidents in. Then every process
    /// plans Discord effects, even one without the Discord credentials (a CLI in another
    /// shell): they wait in the queue for `serve`, which has them.
    pub fn is_configured(&self) -> bool {
        self.guild_id.is_some() || self.forum_channel_id.is_some() || !self.announce.is_empty()
    }
}

/// Discord credentials and endpoint, from `DISCORD_PUBLIC_KEY`, `DISCORD_BOT_TOKEN`,
/// `DISCORD_APPLICATION_ID` and `DISCORD_API_URL` (an origin such as `http://127.0.0.1:9000`).
/// Discord is on when the public key and the bot token are set; one without the other is
/// an error.
#[derive(Clone)]
pub struct DiscordSecrets {
    /// The application's Ed25519 public key, hex.
    pub public_key: String,
    pub bot_token: SecretString,
    pub application_id: Option<String>,
    pub api_url: String,
}

impl DiscordSecrets {
    /// `Ok(None)` when Discord is not configured; an error when only half of it is.
    pub fn from_env() -> Result<Option<Self>, String> {
        let key = env_secret("DISCORD_PUBLIC_KEY")?;
        let token = env_secret("DISCORD_BOT_TOKEN")?;
        let application_id = std::env::var("DISCORD_APPLICATION_ID")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let api_url =
            std::env::var("DISCORD_API_URL").unwrap_or_else(|_| DEFAULT_DISCORD_API_URL.into());
        match (key, token) {
            (Some(k), Some(t)) => {
                use secrecy::ExposeSecret;
                Ok(Some(Self {
                    public_key: k.expose_secret().trim().to_string(),
                    bot_token: t,
                    application_id,
                    api_url: api_url.trim_end_matches('/').to_string(),
                }))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err("DISCORD_PUBLIC_KEY is set but DISCORD_BOT_TOKEN is not".into()),
            (None, Some(_)) => Err("DISCORD_BOT_TOKEN is set but DISCORD_PUBLIC_KEY is not".into()),
        }
    }
}

impl std::fmt::Debug for DiscordSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSecrets")
            .field("api_url", &self.api_url)
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}
