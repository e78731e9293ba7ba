//! GitHub: a merge freeze that GitHub itself enforces.
//!
//! - [`client`]: the REST client (token or App auth, pagination, rate limits).
//! - [`auth`]: GitHub App JWTs and cached installation tokens.
//! - [`pacer`]: staying under the secondary limits for content-creating calls.
//! - [`freeze`]: the pure policy (targets, ruleset bodies, what to do given what exists).
//! - [`reconcile`]: the reconciler and the other GitHub effects.
//! - [`pulls`]: recent changes, exemptions and webhook-driven statuses.
//! - [`publish`]: post-mortems published as pull requests.
//! - [`webhook`]: `POST /github/webhook`.
//! - [`config`]: `[github]` and the GitHub secrets.

pub mod auth;
pub mod client;
pub mod config;
pub mod freeze;
pub mod pacer;
pub mod publish;
pub mod pulls;
pub mod reconcile;
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
