//! The web pages, server-rendered with askama (HTML autoescaped): sign-in with an API token
//! (`signin`), the incidents list (`list`), one incident (`incident`), the merge freeze
//! (`freezes`) and the effects queue with its retry form (`effects`). The guard
//! (`http::guard`) has checked the session before a page handler runs; these handlers only
//! render, and make or end sessions. This module holds what they share: the state, the
//! router, the signed-in header and the answers for errors.

mod effects;
mod forms;
mod freezes;
mod incident;
mod list;
mod live;
pub(crate) mod signin;

use std::sync::Arc;

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};

use super::guard::SessionCaller;
use super::session::SessionKey;
use crate::effects::worker::Worker;
use crate::github::client::GitHubClient;
use crate::incident::IncidentService;
use crate::incident::permissions::Permissions;
use crate::incident::timeline::format_offset;
use crate::read::ReadModel;
use crate::store::Store;

/// What the pages need.
#[derive(Clone)]
pub struct PagesState {
    pub read: ReadModel,
    pub store: Store,
    pub sessions: Arc<SessionKey>,
    /// `server.public_url`: cookies are `Secure` when it is https, and it is a valid origin.
    pub public_url: Option<String>,
    /// For the rate-limit headroom on the freezes page, when GitHub is configured.
    pub github: Option<Arc<GitHubClient>>,
    /// `[permissions]`: who may retry effects (`effects::may_retry`).
    pub permissions: Arc<Permissions>,
    /// Names where each effect on the effects page goes, and is woken for a retried one.
    pub worker: Arc<Worker>,
    /// What the forms run their commands through.
    pub service: IncidentService,
    /// Cancelled when the server stops: live timelines end then.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The providers the sign-in page offers buttons for (`http::oidc`).
    pub sign_in: Arc<super::oidc::SignIn>,
    /// The Slack workspace (`web.slack_signin.team_id`), for links to incident channels.
    pub slack_team_id: Option<String>,
    /// The Discord server (`discord.guild_id`), for links to incident channels.
    pub discord_guild_id: Option<String>,
}

impl PagesState {
    fn secure(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// The pages' routes (the guard wraps them with everything else).
pub fn router(state: PagesState) -> Router {
    Router::new()
        .route("/", get(list::incidents_page))
        .route("/incidents/{number}", get(incident::incident_page))
        .route("/incidents", post(forms::declare))
        .route("/incidents/{number}/updates", post(forms::update))
        .route("/incidents/{number}/status", post(forms::status))
        .route("/incidents/{number}/resolve", post(forms::resolve))
        .route("/incidents/{number}/events", get(live::events))
        .route("/assets/live.js", get(live::script))
        .route("/signin", get(signin::sign_in_form).post(signin::sign_in))
        .route("/signout", post(signin::sign_out))
        .route("/freezes", get(freezes::freezes_page))
        .route("/effects", get(effects::effects_page))
        .route("/effects/{id}/retry", post(effects::retry))
        .with_state(state)
        .layer(axum::middleware::map_response(with_security_headers))
}

/// What every answer of the pages carries: not cached (pages show live incident data and a
/// CSRF token), never framed, no type sniffing, no referrer to other sites, and a content
/// policy that runs only this site's own script (`/assets/live.js`) and posts forms only
/// here. Inline `<style>` is allowed; nothing inline runs.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
];

async fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// Who is signed in, and their CSRF token, for the sign-out form in every page's header.
pub(super) struct Header {
    pub signed_in_as: String,
    pub csrf: String,
}

pub(super) fn header_of(caller: Option<Extension<SessionCaller>>) -> Option<Header> {
    caller.map(|Extension(c)| Header {
        signed_in_as: c.describe(),
        csrf: c.csrf,
    })
}

/// How long ago `at` was, in the timeline's units (`45s`, `2m`, `1h05m`, `1d02h`).
fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format_offset(now - at).trim_start_matches("T+").to_string()
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => internal("rendering a page", e.into()),
    }
}

fn plain(status: StatusCode, sentence: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        sentence,
    )
        .into_response()
}

fn internal(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "{what} failed");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something failed on the server; see its log.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_timeline_units() {
        let now = Utc::now();
        assert_eq!(age(now - chrono::TimeDelta::minutes(65), now), "1h05m");
    }
}
