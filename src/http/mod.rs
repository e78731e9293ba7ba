//! The axum router: health and readiness probes, the read-only JSON API, and Prometheus
//! metrics. Chat and GitHub endpoints join here as their adapters land.

pub mod api;

use axum::Router;
use axum::routing::get;

use crate::app::App;

pub fn router(app: App) -> Router {
    let slack = app
        .slack
        .clone()
        .map(crate::chat::slack::router)
        .unwrap_or_default();
    let github = app
        .github
        .clone()
        .map(crate::github::router)
        .unwrap_or_default();
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/incidents", get(api::list_incidents))
        .route("/api/incidents/{number}", get(api::show_incident))
        .route("/api/freeze", get(api::freeze_status))
        .route("/incidents/{file}/{name}", get(api::postmortem))
        .with_state(app)
        .merge(slack)
        .merge(github)
        // Bodies over 1 MiB are refused with 413 before any handler sees them.
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
}
