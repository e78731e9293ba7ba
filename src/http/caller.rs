//! Who is calling a machine route: the API token the auth layer accepted, as an axum
//! extractor. The auth layer puts an [`ApiCaller`] in the request's extensions; a handler
//! that takes one answers 401 when there is none (so a route wired without the auth layer
//! refuses everyone rather than serving anyone), and 403 when the token lacks the scope.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::refusal::Refusal;
use crate::incident::{Actor, Source};

/// The token a request came with: its name (the actor is `api:<name>`) and its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    pub name: String,
    /// `read`, `declare`, `update`, `metrics`.
    pub scopes: Vec<String>,
}

impl ApiCaller {
    pub fn new(name: impl Into<String>, scopes: &[&str]) -> Self {
        Self {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The actor commands run as: `api:<token name>` in the timeline and in `[permissions]`.
    pub fn actor(&self) -> Actor {
        Actor::new(Source::Api, self.name.clone(), self.name.clone())
    }

    /// `Ok` if the token has `scope`; else the 403 to answer.
    pub fn require(&self, scope: &str, what: &str) -> Result<(), Refusal> {
        if self.scopes.iter().any(|s| s == scope) {
            return Ok(());
        }
        let sentence = format!(
            "The token \"{}\" cannot {what}: that needs the {scope} scope.",
            self.name
        );
        Err(Refusal::new(StatusCode::FORBIDDEN, sentence))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        parts.extensions.get::<ApiCaller>().cloned().ok_or_else(|| {
            (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({
                    "error": "This needs an API token: send it as `Authorization: Bearer <token>`."
                })),
            )
                .into_response()
        })
    }
}
