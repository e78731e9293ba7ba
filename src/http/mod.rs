//! The axum router: health and readiness probes, the read-only JSON API, and Prometheus
//! metrics. Chat and GitHub endpoints join here as their adapters land.

pub mod api;

use axum::Router;
use axum::routing::get;

use crate::app::App;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/incidents", get(api::list_incidents))
        .route("/api/incidents/{number}", get(api::show_incident))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(app)
}
