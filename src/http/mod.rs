//! The axum router: health and readiness probes, the read-only JSON API, post-mortem pages
//! and Prometheus metrics, on its own small [`HttpState`]. The platform adapters' endpoints
//! (Slack, Discord, GitHub) are separate routers, each on its own state, merged in by the
//! app. One [`guard`] wraps the whole merged router, so every path (one added later, or one
//! nothing serves) needs an API token (or, for pages and reads, a signed-in session) unless
//! `auth::PUBLIC_PATHS` lists it. The web pages (`pages`) are merged in by the app too.

mod access;
pub mod api;
pub mod caller;
pub mod guard;
pub mod idempotency;
pub mod machine;
pub mod oidc;
pub mod pages;
pub mod refusal;
pub mod rejections;
pub mod session;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::auth::{Need, Scope};
use crate::github::client::GitHubClient;
use crate::read::ReadModel;

pub use guard::Guard;

/// What the HTTP API needs, and nothing more.
#[derive(Clone)]
pub struct HttpState {
    pub read: ReadModel,
    /// `[postmortem] templates_dir`.
    pub postmortem_templates: Option<PathBuf>,
    /// For the rate-limit headroom in `/api/freeze`, when GitHub is configured.
    pub github: Option<Arc<GitHubClient>>,
}

/// One route the app serves, with a path that exercises it and what it needs (`None`:
/// public). Every `.route(…)` in the code must be here: a unit test reads the sources to
/// check, and `tests/http_auth.rs` walks this list with and without tokens.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    pub method: &'static str,
    pub pattern: &'static str,
    /// A concrete path for it (the test declares INC-1 first).
    pub example: &'static str,
    pub needs: Option<Need>,
}

const fn route(
    method: &'static str,
    pattern: &'static str,
    example: &'static str,
    needs: Option<Need>,
) -> RouteInfo {
    RouteInfo {
        method,
        pattern,
        example,
        needs,
    }
}

const READ: Option<Need> = Some(Need::Scope(Scope::Read));
const DECLARE: Option<Need> = Some(Need::Scope(Scope::Declare));
const UPDATE: Option<Need> = Some(Need::Scope(Scope::Update));

/// Every route of [`router`] and of the adapters' routers.
pub const ROUTES: &[RouteInfo] = &[
    route("GET", "/healthz", "/healthz", None),
    route("GET", "/readyz", "/readyz", None),
    route("GET", "/metrics", "/metrics", Some(Need::Metrics)),
    route("GET", "/api/incidents", "/api/incidents", READ),
    route(
        "GET",
        "/api/incidents/{number}",
        "/api/incidents/INC-1",
        READ,
    ),
    route("GET", "/api/freeze", "/api/freeze", READ),
    route("GET", "/api/audit", "/api/audit", READ),
    route(
        "GET",
        "/incidents/{number}/{file}",
        "/incidents/INC-1/postmortem.md",
        READ,
    ),
    route("POST", "/slack/commands", "/slack/commands", None),
    route("POST", "/slack/events", "/slack/events", None),
    route("POST", "/slack/interactions", "/slack/interactions", None),
    route(
        "POST",
        "/discord/interactions",
        "/discord/interactions",
        None,
    ),
    route("POST", "/github/webhook", "/github/webhook", None),
    route("POST", "/api/incidents", "/api/incidents", DECLARE),
    route(
        "POST",
        "/api/incidents/{number}/updates",
        "/api/incidents/INC-1/updates",
        UPDATE,
    ),
    route(
        "POST",
        "/api/incidents/{number}/status",
        "/api/incidents/INC-1/status",
        UPDATE,
    ),
    route(
        "POST",
        "/api/incidents/{number}/resolve",
        "/api/incidents/INC-1/resolve",
        UPDATE,
    ),
    route("POST", "/api/alertmanager", "/api/alertmanager", DECLARE),
    route("GET", "/", "/", READ),
    route("GET", "/incidents/{number}", "/incidents/1", READ),
    route("GET", "/signin", "/signin", None),
    route("POST", "/signin", "/signin", None),
    route("POST", "/signout", "/signout", Some(Need::Session)),
    route("GET", "/freezes", "/freezes", READ),
    route("GET", "/effects", "/effects", READ),
    route(
        "POST",
        "/effects/{id}/retry",
        "/effects/1/retry",
        Some(Need::Session),
    ),
    route("POST", "/incidents", "/incidents", Some(Need::Session)),
    route(
        "POST",
        "/incidents/{number}/updates",
        "/incidents/INC-1/updates",
        Some(Need::Session),
    ),
    route(
        "POST",
        "/incidents/{number}/status",
        "/incidents/INC-1/status",
        Some(Need::Session),
    ),
    route(
        "POST",
        "/incidents/{number}/resolve",
        "/incidents/INC-1/resolve",
        Some(Need::Session),
    ),
    route(
        "GET",
        "/incidents/{number}/events",
        "/incidents/INC-1/events",
        READ,
    ),
    route("GET", "/assets/live.js", "/assets/live.js", READ),
    route("GET", "/signin/slack", "/signin/slack", None),
    route(
        "GET",
        "/signin/slack/callback",
        "/signin/slack/callback",
        None,
    ),
    route("GET", "/signin/oidc", "/signin/oidc", None),
    route(
        "GET",
        "/signin/oidc/callback",
        "/signin/oidc/callback",
        None,
    ),
];

/// The API's routes, with `adapters` (the platforms' signed endpoints) merged in, all behind
/// the token guard.
pub fn router(state: HttpState, guard: Guard, adapters: Router) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/incidents", get(api::list_incidents))
        .route("/api/incidents/{number}", get(api::show_incident))
        .route("/api/freeze", get(api::freeze_status))
        .route("/api/audit", get(api::audit))
        .route("/incidents/{number}/{file}", get(api::incident_document))
        .with_state(state)
        .merge(adapters)
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
        .layer(axum::middleware::from_fn(rejections::rewrite))
        // Bodies over 1 MiB are refused with 413 before any handler sees them.
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(access::layer())
        .layer(access::echo_request_id())
        .layer(access::set_request_id())
}

/// `/metrics` alone, with no credential, for `server.metrics_listen` (an address only the
/// scraper reaches).
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(api::metrics))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Access, access};

    /// The `"…"` after each `.route(` in the sources under `src/`.
    fn routes_in_sources() -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for piece in text.split(".route(\"").skip(1) {
                        let pattern = piece.split('"').next().unwrap().to_string();
                        found.push((pattern, path.display().to_string()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_route_in_the_code_is_listed() {
        let found = routes_in_sources();
        assert!(found.len() >= ROUTES.len(), "{found:?}");
        for (pattern, file) in &found {
            assert!(
                ROUTES.iter().any(|r| r.pattern == *pattern),
                "{file} serves {pattern}, which http::ROUTES does not list: add it, with what it needs"
            );
        }
        for r in ROUTES {
            assert!(
                found.iter().any(|(p, _)| p == r.pattern),
                "{} is listed but nothing serves it",
                r.pattern
            );
        }
    }

    #[test]
    fn the_list_agrees_with_the_access_policy() {
        for r in ROUTES {
            let expected = r.needs.map_or(Access::Public, Access::Token);
            assert_eq!(access(r.method, r.example), expected, "{r:?}");
        }
    }
}
