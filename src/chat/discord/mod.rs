//! Discord: interactions in (signed HTTP), REST calls out through the durable queue via
//! serenity's HTTP client, and a gateway client for 📌 reactions. The same incidents, one
//! grammar, one timeline as Slack; nothing here is known to the core.
//!
//! - [`config`]: `[discord]` and the Discord secrets.
//! - [`gateway`]: the gateway client, for 📌 reactions onto the timeline.

pub mod config;
pub mod gateway;

pub use config::{DiscordConfig, DiscordSecrets};
