//! The sign-in page (`GET /signin`): with an API token (`POST /signin`), or with each
//! configured provider's button (`http::oidc`); and signing out (`POST /signout`).

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use super::{PagesState, page};
use crate::auth::{self, Scope};
use crate::http::guard::Credential;
use crate::http::oidc::Button;
use crate::http::session;

#[derive(Template)]
#[template(path = "pages/signin.html")]
struct SignInPage<'a> {
    next: &'a str,
    error: Option<&'a str>,
    /// `("/signin/slack?next=…", "Sign in with Slack")` for each configured provider.
    providers: Vec<(String, String)>,
}

/// The sign-in page, with `error` when there is one and a button for each provider in
/// `buttons`, each carrying `next` on.
pub(crate) fn sign_in_page(next: &str, error: Option<&str>, buttons: &[Button]) -> Response {
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    page(&SignInPage {
        next,
        error,
        providers: buttons
            .iter()
            .map(|b| (format!("/signin/{}?{query}", b.slug), b.label.clone()))
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /signin`: the form.
pub(super) async fn sign_in_form(
    State(pages): State<PagesState>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = session::safe_next(q.next.as_deref());
    sign_in_page(&next, None, &pages.sign_in.buttons())
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /signin`: a token with the `read` scope makes a session; anything else shows the
/// form again with a sentence, and no cookie (200, as a form shown again is; 403 for a post
/// from another site).
pub(super) async fn sign_in(
    State(pages): State<PagesState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = session::safe_next(form.next.as_deref());
    let again = |status: StatusCode, error: &str| {
        let mut response = sign_in_page(&next, Some(error), &pages.sign_in.buttons());
        *response.status_mut() = status;
        response
    };
    if !origin_ok(&headers, pages.public_url.as_deref()) {
        return again(
            StatusCode::FORBIDDEN,
            "This sign-in came from another site, so it was refused. Sign in from this page.",
        );
    }
    let token = form.token.trim();
    let found = match pages.store.token_by_hash(&auth::token_hash(token)).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "looking up a token to sign in failed");
            return again(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Signing in failed on the server; try again shortly.",
            );
        }
    };
    let Some(found) = found.filter(|_| !token.is_empty()) else {
        return again(
            StatusCode::OK,
            "That token is not valid: it is unknown or has been revoked.",
        );
    };
    if !found.scopes.contains(Scope::Read) {
        return again(
            StatusCode::OK,
            &format!(
                "The token \"{}\" has the scopes {}; signing in needs one with the read scope.",
                found.name, found.scopes
            ),
        );
    }
    let value = pages.sessions.issue(found.id, Utc::now());
    tracing::info!(token = %found.name, "signed in to the web pages");
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&value, pages.secure()),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

/// The sign-in post's `Origin` (or else `Referer`), when the browser sends one, must be
/// this site.
fn origin_ok(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().unwrap_or(""));
    from.is_none_or(|from| session::same_origin(from, host, public_url))
}

/// `POST /signout` (the guard has checked the session and its CSRF token): lists the
/// session as ended on the server (a copy of the cookie no longer works, and its open live
/// timelines end) and clears the cookie.
pub(super) async fn sign_out(
    State(pages): State<PagesState>,
    credential: Option<Extension<Credential>>,
) -> Response {
    if let Some(Extension(Credential::Session(session))) = credential
        && let Err(e) = pages
            .store
            .end_session(&session.nonce, session.expires, Utc::now())
            .await
    {
        return super::internal("signing out", e);
    }
    (
        [(header::SET_COOKIE, session::clear_cookie(pages.secure()))],
        Redirect::to("/signin"),
    )
        .into_response()
}
