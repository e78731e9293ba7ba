//! `firebreak discord register [--guild ID]`: puts firebreak's application commands
//! ([`commands::definitions`]) on Discord with one bulk overwrite through serenity's HTTP
//! client, globally or in one server. The current list is read first and compared
//! ([`commands::normalize`]); when nothing would change, nothing is sent, so running it
//! again is a no-op that says so.

use anyhow::Context;
use secrecy::ExposeSecret;
use serde_json::Value;
use serenity::http::{Http, HttpBuilder};
use serenity::model::id::{ApplicationId, GuildId};

use super::commands;
use super::config::DiscordSecrets;

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The commands were already as defined.
    Unchanged { commands: Vec<String> },
    /// The list was overwritten.
    Updated { commands: Vec<String> },
}

impl Registered {
    /// One line for the terminal; `scope` is "globally" or "in server 123".
    pub fn describe(&self, scope: &str) -> String {
        match self {
            Self::Unchanged { commands } => format!(
                "Discord commands unchanged {scope}: {} are up to date.",
                commands.join(", ")
            ),
            Self::Updated { commands } => {
                format!(
                    "Registered Discord commands {scope}: {}.",
                    commands.join(", ")
                )
            }
        }
    }
}

/// A serenity HTTP client for `secrets`: `DISCORD_API_URL` as the origin, serenity's own
/// rate limiter off (it ignores the origin), the application id set.
pub fn http(secrets: &DiscordSecrets) -> Result<Http, String> {
    let id = secrets
        .application_id
        .as_deref()
        .ok_or("Set DISCORD_APPLICATION_ID to the application's id (General Information, \"Application ID\") to register commands.")?;
    let id: u64 = id.trim().parse().ok().filter(|n| *n > 0).ok_or(
        "DISCORD_APPLICATION_ID is not an application id; it is a number like 80351110224678912.",
    )?;
    Ok(HttpBuilder::new(secrets.bot_token.expose_secret())
        .proxy(secrets.api_url.as_str())
        .ratelimiter_disabled(true)
        .application_id(ApplicationId::new(id))
        .build())
}

/// The guild id from `--guild`, as a sentence when it is not one.
pub fn guild(arg: &str) -> Result<GuildId, String> {
    arg.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(GuildId::new)
        .ok_or_else(|| {
            format!("\"{arg}\" is not a server id; it is a number like 80351110224678912.")
        })
}

/// Registers the commands, globally or in `guild`, unless they are already as defined.
pub async fn register(http: &Http, guild: Option<GuildId>) -> anyhow::Result<Registered> {
    let wanted = commands::definitions();
    let current = match guild {
        Some(g) => http.get_guild_commands(g).await,
        None => http.get_global_commands().await,
    }
    .context("reading the application's commands from Discord")?;
    let current = serde_json::to_value(&current)?;
    let names = commands::names(&wanted);
    if commands::normalize(&current) == commands::normalize(&wanted) {
        return Ok(Registered::Unchanged { commands: names });
    }
    overwrite(http, guild, &wanted).await?;
    Ok(Registered::Updated { commands: names })
}

async fn overwrite(http: &Http, guild: Option<GuildId>, wanted: &Value) -> anyhow::Result<()> {
    match guild {
        Some(g) => http.create_guild_commands(g, wanted).await,
        None => http.create_global_commands(wanted).await,
    }
    .context("overwriting the application's commands on Discord")?;
    Ok(())
}
