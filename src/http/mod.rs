//! The axum router: health and readiness probes, the read-only JSON API, post-mortem pages
//! and Prometheus metrics, on its own small [`HttpState`]. The platform adapters' endpoints
//! (Slack, GitHub) are separate routers, each on its own state, merged in by the app.

pub mod api;
pub mod caller;
pub mod idempotency;
pub mod machine;
pub mod refusal;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::github::client::GitHubClient;
use crate::read::ReadModel;

/// What the HTTP API needs, and nothing more.
#[derive(Clone)]
pub struct HttpState {
    pub read: ReadModel,
    /// `[postmortem] templates_dir`.
    pub postmortem_templates: Option<PathBuf>,
    /// For the rate-limit headroom in `/api/freeze`, when GitHub is configured.
    pub github: Option<Arc<GitHubClient>>,
}

/// The API's routes, with `adapters` (the platforms' signed endpoints) merged in.
pub fn router(state: HttpState, adapters: Router) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/incidents", get(api::list_incidents))
        .route("/api/incidents/{number}", get(api::show_incident))
        .route("/api/freeze", get(api::freeze_status))
        .route("/api/audit", get(api::audit))
        .route("/incidents/{file}/{name}", get(api::postmortem))
        .with_state(state)
        .merge(adapters)
        // Bodies over 1 MiB are refused with 413 before any handler sees them.
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
}
