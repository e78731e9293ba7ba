//! Discord: interactions in (signed HTTP), REST calls out through the durable queue via
//! serenity's HTTP client, and a gateway client for 📌 reactions. The same incidents, one
//! grammar, one timeline as Slack; nothing here is known to the core.
//!
//! - [`config`]: `[discord]` and the Discord secrets.
//! - [`api`]: serenity's HTTP client for a configurable origin, and failures as retry
//!   decisions.
//! - [`ratelimit`]: Discord's `X-RateLimit-*` headers, 429 `retry_after` and the global limit.
//! - [`text`]: Discord's limits, and user text escaped so it never pings.
//! - [`embeds`]: the incident card, the notice and the messages that carry them.
//! - [`checklist`]: the runbook checklist as pages of content with Done buttons.
//! - [`planner`]: which Discord effects each incident change needs.
//! - [`effects`]: the typed effects and their handler.
//! - [`gateway`]: the gateway client, for 📌 reactions onto the timeline.
//! - [`pins`]: what a 📌 does: permission, then the capture queued once per message.
//! - [`verify`]: Ed25519 request signatures on the raw body.
//! - [`interactions`]: the interaction payloads we accept, as one small enum.
//! - [`decode`]: Discord's mention syntax made neutral text on the way in.
//! - [`commands`]: the application commands (`/incident`, `/freeze`, `/unfreeze`).
//! - [`options`]: a slash command's typed options mapped onto the core grammar.
//! - [`routes`]: `POST /discord/interactions`.
//! - [`reply`]: the core's reply as an interaction response, within Discord's limits.
//! - [`register`]: `firebreak discord register`.

pub mod api;
pub mod checklist;
pub mod commands;
pub mod config;
pub mod decode;
pub mod effects;
pub mod embeds;
pub mod gateway;
pub mod interactions;
pub mod options;
pub mod pins;
pub mod planner;
pub mod ratelimit;
pub mod register;
pub mod reply;
pub mod routes;
pub mod text;
pub mod verify;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;

pub use config::{DiscordConfig, DiscordSecrets};
pub use routes::DiscordEdge;

/// The Discord endpoint, `/discord/interactions`.
pub fn router(edge: Arc<DiscordEdge>) -> Router {
    Router::new()
        .route("/discord/interactions", post(routes::interactions))
        .with_state(edge)
}
