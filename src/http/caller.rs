//! Who is calling a machine route: the API token the guard (`http::guard`) accepted, as an
//! axum extractor. The guard puts an [`ApiCaller`] in the request's extensions after
//! checking the token and the scope the path needs (`auth::access`); a handler that takes
//! one answers 401 when there is none (so a route served without the guard refuses everyone
//! rather than serving anyone), and checks the scope again itself with
//! [`ApiCaller::require`].

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::refusal::Refusal;
use crate::auth::{Scope, Scopes};
use crate::incident::{Actor, Source};

/// The token a request came with: its name (the actor is `api:<name>`) and its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    pub name: String,
    pub scopes: Scopes,
}

impl ApiCaller {
    /// The actor commands run as: `api:<token name>` in the timeline and in `[permissions]`.
    pub fn actor(&self) -> Actor {
        Actor::new(Source::Api, self.name.clone(), self.name.clone())
    }

    /// `Ok` if the token has `scope`; else the 403 to answer.
    pub fn require(&self, scope: Scope, what: &str) -> Result<(), Refusal> {
        if self.scopes.contains(scope) {
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
