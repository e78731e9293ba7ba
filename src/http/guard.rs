//! The guard in front of every route: a request for a path [`auth::access`] does not list
//! as public needs `Authorization: Bearer <token>` for an unrevoked token with the scope
//! the path needs. Missing, unknown or revoked: 401 with `WWW-Authenticate: Bearer`; valid
//! but without the scope: 403 naming it. Answers are JSON with an `error` sentence.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::caller::ApiCaller;
use crate::auth::{self, Access, Challenge, Need};
use crate::store::{ApiToken, Store};

/// What the guard needs: the tokens.
#[derive(Clone)]
pub struct Guard {
    pub store: Store,
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let need = match auth::access(request.method().as_str(), path) {
        Access::Public => return next.run(request).await,
        Access::Token(need) => need,
    };
    let Some(token) = bearer(request.headers()) else {
        return unauthenticated(
            path,
            "This needs an API token: send it as `Authorization: Bearer <token>` (`firebreak token create` makes one).",
        );
    };
    let found = match guard.store.token_by_hash(&auth::token_hash(token)).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "looking up an API token failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "internal error; see the server log" })),
            )
                .into_response();
        }
    };
    let Some(found) = found else {
        return unauthenticated(
            path,
            "That API token is not valid: it is unknown or has been revoked.",
        );
    };
    if !found.scopes.allow(need) {
        return forbidden(request.method().as_str(), path, &found, need);
    }
    record_use(&guard.store, &found).await;
    // Who is calling, for the handlers that act as the token (`http::caller`).
    request.extensions_mut().insert(ApiCaller {
        name: found.name.clone(),
        scopes: found.scopes.clone(),
    });
    next.run(request).await
}

/// The token in `Authorization: Bearer <token>` (the scheme in any case), if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Writes the token's use when the last one written is a minute old or more.
async fn record_use(store: &Store, token: &ApiToken) {
    let now = Utc::now();
    if !auth::last_use_due(token.last_used_at, now) {
        return;
    }
    if let Err(e) = store
        .token_used(token.id, now, now - auth::LAST_USED_EVERY)
        .await
    {
        tracing::warn!(error = %format!("{e:#}"), token = %token.name, "recording an API token's use failed");
    }
}

fn unauthenticated(path: &str, sentence: &str) -> Response {
    match auth::challenge(path) {
        Challenge::Bearer => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            Json(json!({ "error": sentence })),
        )
            .into_response(),
    }
}

fn forbidden(method: &str, path: &str, token: &ApiToken, need: Need) -> Response {
    let sentence = format!(
        "The token \"{}\" has the scopes {}, but {method} {path} needs {}.",
        token.name,
        token.scopes,
        need.describe()
    );
    (StatusCode::FORBIDDEN, Json(json!({ "error": sentence }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_takes_the_token_after_the_scheme() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(bearer(&with("Bearer fbk_x")), Some("fbk_x"));
        assert_eq!(bearer(&with("bearer  fbk_x ")), Some("fbk_x"));
        assert_eq!(bearer(&with("Basic YTpi")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&with("fbk_x")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
