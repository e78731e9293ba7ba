//! `POST /github/webhook`: signature checked on the raw body (`X-Hub-Signature-256`, any of
//! the comma-separated secrets in `GITHUB_WEBHOOK_SECRET`, so secrets can be rotated), then
//! `ping` answered and `pull_request` opened/synchronize/reopened/ready_for_review, and
//! `edited` with a new base, turned into a queued status write. Everything else is
//! acknowledged with 202 and ignored.
//!
//! GitHub sends either content type a webhook can be configured with: `application/json`,
//! or its default `application/x-www-form-urlencoded`, whose body is `payload=<JSON>`. The
//! signature is over the body as sent either way.
//!
//! The `X-GitHub-Delivery` id is recorded in the same transaction as the effect it causes:
//! a redelivery after that commit is answered "duplicate delivery" and queues nothing, and
//! one after a crash before it finds nothing recorded and is processed in full.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::effect::{self, PullHead};
use crate::incident::{IncidentService, ServiceError};
use crate::store::Delivery;

pub struct GitHubEdge {
    pub service: IncidentService,
    pub secrets: Vec<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Mismatch,
}

/// Checks `sha256=<hex>` against every configured secret, in constant time each. An empty
/// secret matches nothing.
pub fn verify(
    secrets: &[SecretString],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let expected = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    let matches = |secret: &SecretString| {
        // An empty key is one anyone can sign with; config load refuses it, and so does this.
        if secret.expose_secret().trim().is_empty() {
            return false;
        }
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    };
    if secrets.iter().any(matches) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs a body the way GitHub does; for tests.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
    #[serde(default)]
    changes: Changes,
}

/// What an `edited` action changed; only a new base matters here.
#[derive(Deserialize, Default)]
struct Changes {
    #[serde(default)]
    base: Option<serde_json::Value>,
}

/// The actions after which a pull request's head needs the freeze status: a new or
/// reopened pull request, a new head, a draft made ready, or a new base.
fn needs_status(event: &PullRequestEvent) -> bool {
    match event.action.as_str() {
        "opened" | "synchronize" | "reopened" | "ready_for_review" => true,
        "edited" => event.changes.base.is_some(),
        _ => false,
    }
}

#[derive(Deserialize)]
struct PullRequest {
    head: Ref,
    base: Ref,
}

#[derive(Deserialize)]
struct Ref {
    sha: String,
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    default_branch: String,
}

pub async fn webhook(
    State(edge): State<Arc<GitHubEdge>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match verify(&edge.secrets, header("x-hub-signature-256"), &body) {
        Ok(()) => {}
        Err(SignatureError::Missing) => {
            return (StatusCode::BAD_REQUEST, "missing X-Hub-Signature-256").into_response();
        }
        Err(SignatureError::Mismatch) => {
            return (StatusCode::UNAUTHORIZED, "invalid X-Hub-Signature-256").into_response();
        }
    }
    let delivery = Delivery::new(
        "github",
        header("x-github-delivery").map_or_else(|| body_digest(&body), str::to_string),
    );
    match header("x-github-event") {
        Some("ping") => Json(json!({ "msg": "pong" })).into_response(),
        Some("pull_request") => match payload(header("content-type"), &body) {
            Ok(json) => pull_request(&edge, delivery, &json).await,
            Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
        },
        _ => (StatusCode::ACCEPTED, "event ignored").into_response(),
    }
}

async fn pull_request(edge: &GitHubEdge, delivery: Delivery, body: &[u8]) -> Response {
    let event: PullRequestEvent = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("malformed pull_request payload: {e}"),
            )
                .into_response();
        }
    };
    if !needs_status(&event) {
        return (StatusCode::ACCEPTED, "action ignored").into_response();
    }
    // Whether the repository is frozen is decided when the effect runs, against the wanted
    // state at that moment, so a webhook racing an unfreeze can't leave a stale failure.
    let head = PullHead {
        repo: event.repository.full_name,
        pr: event.number,
        sha: event.pull_request.head.sha,
        base: event.pull_request.base.name,
        default_branch: event.repository.default_branch,
    };
    let status = effect::pr_status(head, &delivery.id);
    match edge
        .service
        .for_delivery(delivery)
        .enqueue_all(&[status])
        .await
    {
        Ok(_) => (StatusCode::OK, "queued").into_response(),
        Err(ServiceError::Duplicate) => (StatusCode::OK, "duplicate delivery").into_response(),
        Err(e) => internal(anyhow::anyhow!("{e}")),
    }
}

/// The JSON of a delivery: the body itself, or for a form-encoded one its `payload` field.
fn payload<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if mime.as_deref() != Some("application/x-www-form-urlencoded") {
        return Ok(Cow::Borrowed(body));
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| format!("malformed form-encoded payload: {e}"))?;
    fields
        .into_iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| Cow::Owned(v.into_bytes()))
        .ok_or_else(|| "form-encoded delivery without a payload field".to_string())
}

/// A delivery id for a request without `X-GitHub-Delivery`: its body's digest, so the same
/// body sent twice is still one delivery.
fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "handling a GitHub webhook failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the firebreak log",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_example() {
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let secrets = vec![
            SecretString::from("old".to_string()),
            SecretString::from("new".to_string()),
        ];
        let body = b"{}";
        assert_eq!(verify(&secrets, Some(&sign("new", body)), body), Ok(()));
        assert_eq!(verify(&secrets, Some(&sign("old", body)), body), Ok(()));
        assert_eq!(
            verify(&secrets, Some(&sign("other", body)), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(&secrets, None, body), Err(SignatureError::Missing));
        assert_eq!(
            verify(&secrets, Some("sha1=abc"), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn form_encoded_deliveries_carry_json_in_payload() {
        let json = br#"{"a":"b c&d=e+f"}"#;
        let form =
            serde_urlencoded::to_string([("payload", std::str::from_utf8(json).unwrap())]).unwrap();
        let form_type = Some("application/x-www-form-urlencoded");
        assert_eq!(payload(form_type, form.as_bytes()).unwrap().as_ref(), json);
        assert_eq!(
            payload(Some("application/json"), json).unwrap().as_ref(),
            json
        );
        assert_eq!(payload(None, json).unwrap().as_ref(), json);
        assert!(payload(form_type, b"other=1").is_err());
    }

    #[test]
    fn an_empty_secret_matches_nothing() {
        let body = b"{}";
        for empty in ["", " "] {
            let secrets = vec![
                SecretString::from("s3cret".to_string()),
                SecretString::from(empty.to_string()),
            ];
            assert_eq!(
                verify(&secrets, Some(&sign(empty, body)), body),
                Err(SignatureError::Mismatch),
                "a payload signed with {empty:?} is refused"
            );
            assert_eq!(verify(&secrets, Some(&sign("s3cret", body)), body), Ok(()));
        }
    }
}
