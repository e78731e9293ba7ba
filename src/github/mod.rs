//! GitHub: a merge freeze that GitHub itself enforces.
//!
//! - [`client`]: the REST client (token or App auth, pagination, rate limits).
//! - [`error`]: which failed calls are worth retrying, and after how long.
//! - [`auth`]: GitHub App JWTs and cached installation tokens.
//! - [`pacer`]: staying under the secondary limits for content-creating calls.
//! - [`effect`]: the adapter's typed effects and their content-derived keys.
//! - [`planner`]: the core's freeze requests and resolutions turned into those effects.
//! - [`handler`]: runs the freeze effects; reports to incident rooms as neutral intents.
//! - [`freeze`]: the pure policy (targets, ruleset bodies, what to do given what exists).
//! - [`drift`]: what differs between the wanted ruleset and GitHub's, field by field.
//! - [`reconcile`]: the reconciler's first phase, rulesets, one target never blocking another.
//! - [`statuses`]: its second phase, the freeze statuses on open pull requests.
//! - [`pulls`]: recent changes, exemptions and webhook-driven statuses.
//! - [`publish`]: post-mortems published as pull requests.
//! - [`text`]: what firebreak writes to GitHub: status descriptions within 140 characters,
//!   and no live `@mention` or `#123` from what people typed.
//! - [`webhook`]: `POST /github/webhook`.
//! - [`config`]: `[github]` and the GitHub secrets.

pub mod auth;
pub mod client;
pub mod config;
pub mod drift;
pub mod effect;
pub mod error;
pub mod exempt;
pub mod freeze;
pub mod handler;
pub mod pacer;
pub mod planner;
pub mod publish;
pub mod pulls;
pub mod reconcile;
pub mod statuses;
pub mod text;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;

pub use config::{GitHubConfig, GitHubSecrets};

pub fn router(edge: Arc<webhook::GitHubEdge>) -> Router {
    Router::new()
        .route("/github/webhook", post(webhook::webhook))
        .with_state(edge)
}
