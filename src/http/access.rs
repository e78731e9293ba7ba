//! The access log: one line a request under the `firebreak::access` target (method, path
//! without its query, status, latency and a request id), and the request id itself: the
//! caller's `x-request-id` if it sent one, else a new UUID, echoed in the response.
//!
//! `RUST_LOG=info,firebreak::access=warn` silences it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id (the caller's, or a new one); outside the access log.
pub fn set_request_id() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)
}

/// Echoes the request's id in its response.
pub fn echo_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(REQUEST_ID)
}

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

/// Logs each request once, when its response is ready.
pub fn layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(span as MakeSpan)
        .on_request(())
        .on_response(served as OnResponse)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// The span every log line of the request carries: its id, method and path (never the query,
/// which can hold an OAuth code).
fn span(request: &Request<Body>) -> Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        target: "firebreak::access",
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

fn served(response: &Response<Body>, latency: Duration, _span: &Span) {
    tracing::info!(
        target: "firebreak::access",
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "served"
    );
}
