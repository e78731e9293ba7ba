//! A fake OpenID Connect provider on a random port, shaped like Slack's (authorize and keys on
//! the issuer, the token endpoint under `/api`, as `SLACK_API_URL` points) and discoverable
//! like a generic one. Its authorize page consents at once and sends the browser back with a
//! code; its token endpoint answers with an ID token signed with a test RSA key, made as the
//! test asks ([`Twist`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "1111.2222";
pub const CLIENT_SECRET: &str = "fake-client-secret";
pub const TEAM: &str = "T0TEAM";
pub const USER: &str = "U0ADA";

/// How the next ID token differs from a good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    Good,
    WrongAudience,
    WrongIssuer,
    Expired,
    /// Signed with another key under the published key's `kid`.
    ForgedSignature,
    /// Signed with another key, under a `kid` the provider does not publish.
    UnknownKey,
    /// A member of another workspace.
    OtherWorkspace,
    /// The ID token issued last time, again.
    Replayed,
    /// Every endpoint answers 503.
    Down,
}

#[derive(Default)]
struct Inner {
    twist: Option<Twist>,
    /// code → nonce, from the authorize step.
    codes: HashMap<String, String>,
    last_token: Option<String>,
    token_calls: usize,
}

#[derive(Clone)]
struct Shared {
    issuer: String,
    inner: Arc<Mutex<Inner>>,
}

pub struct FakeProvider {
    pub base: String,
    shared: Shared,
}

impl FakeProvider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let shared = Shared {
            issuer: base.clone(),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/openid/connect/authorize", get(authorize))
            .route("/openid/connect/keys", get(keys))
            .route("/api/openid.connect.token", post(token))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, shared }
    }

    pub fn twist(&self, twist: Twist) {
        self.shared.inner.lock().unwrap().twist = Some(twist);
    }

    pub fn token_calls(&self) -> usize {
        self.shared.inner.lock().unwrap().token_calls
    }
}

fn down(s: &Shared) -> bool {
    s.inner.lock().unwrap().twist == Some(Twist::Down)
}

async fn discovery(State(s): State<Shared>) -> Response {
    if down(&s) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let b = &s.issuer;
    Json(json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/openid/connect/authorize"),
        "token_endpoint": format!("{b}/api/openid.connect.token"),
        "jwks_uri": format!("{b}/openid/connect/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

/// Consents at once: back to `redirect_uri` with a new code and the `state` given.
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("scope").map(String::as_str) != Some("openid profile email")
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    let code = format!("code-{}", uuid::Uuid::new_v4());
    let nonce = q.get("nonce").cloned().unwrap_or_default();
    s.inner.lock().unwrap().codes.insert(code.clone(), nonce);
    let mut back = reqwest::Url::parse(&q["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map_or("", String::as_str));
    Redirect::to(back.as_str()).into_response()
}

async fn keys(State(s): State<Shared>) -> Response {
    if down(&s) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let jwk: Value =
        serde_json::from_str(include_str!("../fixtures/oidc/provider-jwk.json")).unwrap();
    Json(json!({ "keys": [jwk] })).into_response()
}

/// The client secret, as form fields (Slack) or HTTP Basic (a generic provider).
fn secret_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    use base64::Engine;
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let posted = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some(format!("{id}:{secret}")),
        _ => None,
    };
    basic.or(posted).as_deref() == Some(&format!("{CLIENT_ID}:{CLIENT_SECRET}"))
}

async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    inner.token_calls += 1;
    let twist = inner.twist.unwrap_or(Twist::Good);
    if twist == Twist::Down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !secret_ok(&headers, &form) {
        return Json(json!({"ok": false, "error": "invalid_client"})).into_response();
    }
    let Some(nonce) = form.get("code").and_then(|c| inner.codes.remove(c)) else {
        return Json(json!({"ok": false, "error": "invalid_code"})).into_response();
    };
    let id_token = match (twist, inner.last_token.clone()) {
        (Twist::Replayed, Some(last)) => last,
        _ => id_token(&s.issuer, &nonce, twist),
    };
    inner.last_token = Some(id_token.clone());
    Json(json!({"ok": true, "access_token": "xoxp-fake", "id_token": id_token})).into_response()
}

/// An ID token for Ada, with `twist`.
pub fn id_token(issuer: &str, nonce: &str, twist: Twist) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": issuer,
        "sub": USER,
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": nonce,
        "name": "Ada Lovelace",
        "email": "Ada@Example.com",
        "email_verified": true,
        "https://slack.com/user_id": USER,
        "https://slack.com/team_id": TEAM,
    });
    match twist {
        Twist::WrongAudience => claims["aud"] = json!("someone-else"),
        Twist::WrongIssuer => claims["iss"] = json!("https://evil.example"),
        Twist::Expired => claims["exp"] = json!(now - 3600),
        Twist::OtherWorkspace => claims["https://slack.com/team_id"] = json!("T0OTHER"),
        _ => {}
    }
    let (pem, kid) = match twist {
        Twist::ForgedSignature => (include_str!("../fixtures/oidc/other-key.pem"), "provider-1"),
        Twist::UnknownKey => (include_str!("../fixtures/oidc/other-key.pem"), "other-1"),
        _ => (
            include_str!("../fixtures/oidc/provider-key.pem"),
            "provider-1",
        ),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}
