//! Turns the framework's own refusals into firebreak's sentences. axum answers a body over
//! the limit, an unreadable query string or a wrong content type with its extractor's text
//! (`Failed to buffer the request body: length limit exceeded`), and an unknown path with an
//! empty 404; this layer rewrites those answers (and only those) into a sentence: JSON
//! `{"error": …}` under `/api/` and for `/metrics`, plain text elsewhere. Our own answers
//! pass through untouched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest answer body this layer reads to recognise a framework refusal.
const SNIFF_LIMIT: usize = 4096;

/// The middleware (`axum::middleware::from_fn`).
pub async fn rewrite(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() || !is_plain_or_empty(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, SNIFF_LIMIT).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    match sentence(status, &text, &method, &path) {
        Some((status, sentence)) => answer(status, &sentence, &path),
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

fn is_plain_or_empty(response: &Response) -> bool {
    match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    }
}

/// The sentence for a framework refusal (its status and text), or `None` for an answer of
/// our own. Pure.
pub fn sentence(
    status: StatusCode,
    text: &str,
    method: &str,
    path: &str,
) -> Option<(StatusCode, String)> {
    let text = text.trim();
    let said = |s: &str| Some((status, s.to_string()));
    if text.is_empty() {
        return match status {
            StatusCode::NOT_FOUND => said(&format!("There is nothing at {path}.")),
            StatusCode::METHOD_NOT_ALLOWED => said(&format!("{method} is not allowed on {path}.")),
            _ => None,
        };
    }
    if text.starts_with("Failed to buffer the request body") {
        return Some((
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than 1 MiB.".to_string(),
        ));
    }
    if text.starts_with("Failed to deserialize query string") {
        return said(
            "The query string could not be read: check the names and values of its parameters.",
        );
    }
    if text.starts_with("Form requests must have") {
        return said("Send this as a form: Content-Type: application/x-www-form-urlencoded.");
    }
    if text.starts_with("Expected request with `Content-Type: application/json`") {
        return said("Send JSON, with Content-Type: application/json.");
    }
    if text.starts_with("Failed to deserialize the JSON body")
        || text.starts_with("Failed to parse the request body as JSON")
    {
        return said("The body is not the JSON this route takes; see the README for its fields.");
    }
    if text.starts_with("Invalid URL") || text.starts_with("Wrong number of path arguments") {
        return said(&format!("There is nothing at {path}."));
    }
    None
}

fn answer(status: StatusCode, sentence: &str, path: &str) -> Response {
    if path.starts_with("/api/") || path == "/metrics" {
        return (status, axum::Json(serde_json::json!({ "error": sentence }))).into_response();
    }
    let mut response = (status, sentence.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(status: StatusCode, text: &str) -> Option<String> {
        sentence(status, text, "POST", "/api/incidents").map(|(_, s)| s)
    }

    #[test]
    fn framework_texts_become_sentences_and_ours_pass() {
        let big = said(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Failed to buffer the request body: length limit exceeded",
        );
        assert_eq!(
            big.as_deref(),
            Some("The request body is larger than 1 MiB.")
        );
        let query = said(
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string: after: invalid digit found in string",
        )
        .unwrap();
        assert!(!query.contains("invalid digit"), "{query}");
        assert!(
            said(StatusCode::NOT_FOUND, "")
                .unwrap()
                .contains("/api/incidents")
        );
        assert_eq!(
            said(StatusCode::METHOD_NOT_ALLOWED, "").as_deref(),
            Some("POST is not allowed on /api/incidents.")
        );
        // Our own sentences are left as they are.
        let ours = "This form is larger than 64 KB; shorten the text and send it again.";
        assert_eq!(said(StatusCode::PAYLOAD_TOO_LARGE, ours), None);
        assert_eq!(
            said(StatusCode::NOT_FOUND, "There is no incident INC-9."),
            None
        );
        assert_eq!(said(StatusCode::UNAUTHORIZED, ""), None);
    }
}
