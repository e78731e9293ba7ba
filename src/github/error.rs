//! What a failed GitHub call means for the queue. Pure policy: an answer that says "wait"
//! (5xx, 429, a rate-limit 403, a timeout) is retryable, with the wait GitHub asked for; an
//! answer about the request itself (404 on a repository, 422 on a body, a plain 403) is
//! permanent, because sending it again cannot help.

use std::time::{Duration, SystemTime};

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, RETRY_AFTER};
use serde_json::Value;

use crate::effects::backoff::parse_retry_after;
use crate::effects::handler::EffectError;

/// How long to wait after a secondary rate limit that named no wait, as GitHub advises.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A failed GitHub call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GhError {
    #[error("GitHub answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("could not reach GitHub: {0}")]
    Network(String),
    #[error("GitHub sent a response firebreak could not read: {0}")]
    Decode(String),
}

impl GhError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            EffectError::from(self.clone()),
            EffectError::Retryable { .. }
        )
    }
}

impl From<GhError> for EffectError {
    fn from(e: GhError) -> Self {
        let reason = e.to_string();
        match e {
            GhError::Status {
                status,
                retry_after,
                ..
            } if retry_after.is_some() || status >= 500 || status == 429 || status == 401 => {
                EffectError::Retryable {
                    reason,
                    retry_after,
                }
            }
            GhError::Network(_) => EffectError::retryable(reason),
            _ => EffectError::permanent(reason),
        }
    }
}

/// Turns a non-2xx answer into an error, with the wait GitHub asked for (rate limits, and
/// any retryable answer that sends `Retry-After`).
pub(super) async fn error_from(resp: reqwest::Response) -> GhError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.ok();
    let message = body
        .as_ref()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .map(|m| with_details(m, body.as_ref().map_or(&Value::Null, |v| &v["errors"])))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let retry_after = wait_asked(status, &headers, &message, Utc::now().timestamp());
    GhError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    }
}

/// GitHub's `message` with the `errors[]` details a 422 carries (each a string or an object
/// with `resource`, `field`, `code` and `message`), so the reason names what was wrong.
pub(super) fn with_details(message: String, errors: &Value) -> String {
    let Some(errors) = errors.as_array().filter(|e| !e.is_empty()) else {
        return message;
    };
    let details: Vec<String> = errors
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            Value::Object(o) => {
                let part = |k: &str| o.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
                let mut what = [part("resource"), part("field")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(".");
                if let Some(code) = part("code") {
                    what = if what.is_empty() {
                        code.to_string()
                    } else {
                        format!("{what} {code}")
                    };
                }
                match (what.is_empty(), part("message")) {
                    (true, Some(m)) => m.to_string(),
                    (false, Some(m)) => format!("{what}: {m}"),
                    (_, None) => what,
                }
            }
            other => other.to_string(),
        })
        .collect();
    format!("{message} ({})", details.join("; "))
}

/// The wait an answer asks for. A retryable one (5xx, 429, a rate-limit 403) that sends
/// `Retry-After` gets that wait, whatever its status: GitHub sends it with some 503s too.
/// Otherwise only rate limits name a wait (see [`rate_limit_wait`]).
pub(super) fn wait_asked(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: i64,
) -> Option<Duration> {
    if status.is_server_error() {
        return headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
    }
    rate_limit_wait(status, headers, message, now)
}

/// The wait a 403 or 429 asks for: `Retry-After` if present, else `x-ratelimit-reset` when
/// the primary limit is exhausted, else a minute for a secondary limit that named no wait.
/// `None` for any other answer (a 403 for missing permissions is not a rate limit).
pub(super) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: i64,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = header(RETRY_AFTER).and_then(|v| parse_retry_after(v, SystemTime::now())) {
        return Some(wait);
    }
    if header(HeaderName::from_static("x-ratelimit-remaining")) == Some("0") {
        if let Some(reset) =
            header(HeaderName::from_static("x-ratelimit-reset")).and_then(|v| v.parse::<i64>().ok())
        {
            return Some(Duration::from_secs(
                u64::try_from(reset - now).unwrap_or(0).max(1),
            ));
        }
    }
    message
        .to_ascii_lowercase()
        .contains("rate limit")
        .then_some(SECONDARY_LIMIT_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn status(status: u16, retry_after: Option<u64>) -> GhError {
        GhError::Status {
            status,
            message: "x".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn rate_limit_waits() {
        let forbidden = StatusCode::FORBIDDEN;
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1000"));
        assert_eq!(
            rate_limit_wait(forbidden, &h, "", 970),
            Some(Duration::from_secs(30))
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            rate_limit_wait(forbidden, &h, "", 970),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::UNPROCESSABLE_ENTITY, &h, "", 970),
            None,
            "only 403 and 429 are rate limits"
        );
        let none = HeaderMap::new();
        assert_eq!(rate_limit_wait(forbidden, &none, "Not accessible", 0), None);
        assert_eq!(
            rate_limit_wait(
                forbidden,
                &none,
                "You have exceeded a secondary rate limit.",
                0
            ),
            Some(SECONDARY_LIMIT_WAIT)
        );
    }

    #[test]
    fn a_server_error_s_retry_after_is_honoured() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("42"));
        for status in [502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                wait_asked(status, &h, "Service Unavailable", 0),
                Some(Duration::from_secs(42)),
                "{status}"
            );
        }
        assert_eq!(
            wait_asked(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), "", 0),
            None,
            "a 503 that names no wait leaves it to the backoff"
        );
        assert_eq!(
            wait_asked(StatusCode::TOO_MANY_REQUESTS, &h, "", 0),
            Some(Duration::from_secs(42))
        );
        assert_eq!(wait_asked(StatusCode::NOT_FOUND, &h, "", 0), None);
    }

    #[test]
    fn validation_details_stay_in_the_message() {
        let errors = serde_json::json!([
            {"resource": "Ruleset", "field": "enforcement", "code": "invalid", "message": "evaluate is not available"},
            "Invalid rule 'update': not allowed",
        ]);
        assert_eq!(
            with_details("Validation Failed".into(), &errors),
            "Validation Failed (Ruleset.enforcement invalid: evaluate is not available; Invalid rule 'update': not allowed)"
        );
        assert_eq!(with_details("Not Found".into(), &Value::Null), "Not Found");
    }

    #[test]
    fn errors_map_to_retry_decisions() {
        let retryable = |e: GhError| matches!(EffectError::from(e), EffectError::Retryable { .. });
        assert!(matches!(
            EffectError::from(status(403, Some(3))),
            EffectError::Retryable {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(!retryable(status(403, None)), "missing permissions");
        assert!(retryable(status(502, None)));
        assert!(retryable(status(429, None)), "429 without Retry-After");
        assert!(!retryable(status(404, None)), "no such repository");
        assert!(!retryable(status(422, None)), "a rejected body");
        assert!(retryable(GhError::Network("timed out".into())));
        assert!(!retryable(GhError::Decode("bad json".into())));
    }
}
