//! Discord: interactions in (signed HTTP), REST calls out through the durable queue via
//! serenity's HTTP client, and a gateway client for 📌 reactions. The same incidents, one
//! grammar, one timeline as Slack; nothing here is known to the core.
//!
//! - [`config`]: `[discord]` and the Discord secrets.
//! - [`api`]: serenity's HTTP client for a configurable origin, and failures as retry
//!   decisions.
//! - [`ratelimit`]: Discord's `X-RateLimit-*` headers, 429 `retry_after` and the global limit.
//! - [`embeds`]: the incident card, the notice and message texts, safe and within limits.
//! - [`planner`]: which Discord effects each incident change needs.
//! - [`effects`]: the typed effects and their handler.
//! - [`gateway`]: the gateway client, for 📌 reactions onto the timeline.

pub mod api;
pub mod config;
pub mod effects;
pub mod embeds;
pub mod gateway;
pub mod planner;
pub mod ratelimit;

pub use config::{DiscordConfig, DiscordSecrets};
