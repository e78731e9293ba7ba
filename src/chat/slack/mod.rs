//! Slack: slash commands, events and interactivity in; Web API calls out through the
//! durable queue. The pieces:
//!
//! - [`verify`]: request signatures on the raw body.
//! - [`inbound`]: the payloads we accept, as one small enum.
//! - [`decode`]: Slack's escaping undone, so what is stored is what was typed.
//! - [`routes`]: the three endpoints.
//! - [`planner`]: which effects each incident change needs on Slack.
//! - [`pins`]: pinned messages onto the timeline.
//! - [`effects`]: running those effects idempotently through [`api`].
//! - [`ratelimit`]: pacing by Slack's method tiers.
//! - [`blocks`]: Block Kit for the card, the live notice and the modals, through the one
//!   builder that keeps every field within Slack's limits.
//! - [`mrkdwn`]: escaping on the way out, mentions from stored IDs, limits, truncation.
//! - [`validate`]: Slack's published Block Kit limits as a checker, for tests.
//! - [`config`]: `[slack]` and the Slack secrets.

pub mod api;
pub mod blocks;
pub mod checklist;
pub mod config;
pub mod decode;
pub mod effects;
pub mod inbound;
pub mod mrkdwn;
pub mod pins;
pub mod planner;
pub mod ratelimit;
pub mod routes;
pub mod validate;
pub mod verify;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;

pub use config::{SlackConfig, SlackSecrets};
pub use routes::SlackEdge;

/// The Slack endpoints, mounted under `/slack`.
pub fn router(edge: Arc<SlackEdge>) -> Router {
    Router::new()
        .route("/slack/commands", post(routes::commands))
        .route("/slack/events", post(routes::events))
        .route("/slack/interactions", post(routes::interactions))
        .with_state(edge)
}
