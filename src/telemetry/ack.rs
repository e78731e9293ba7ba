//! How long the platforms' signed endpoints (Slack, Discord, GitHub) take to answer: an
//! axum middleware around each adapter's router records `firebreak_ack_seconds{platform}`.

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::ACK_SECONDS;

/// `router` with every answer timed under `platform`.
pub fn timed(router: Router, platform: &'static str) -> Router {
    router.layer(axum::middleware::from_fn_with_state(platform, time))
}

async fn time(State(platform): State<&'static str>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    metrics::histogram!(ACK_SECONDS, "platform" => platform)
        .record(started.elapsed().as_secs_f64());
    response
}
