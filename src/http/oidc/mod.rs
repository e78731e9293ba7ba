//! Signing in to the web pages with Slack (OpenID Connect) or a generic OpenID Connect
//! provider: `GET /signin/<provider>` sends the browser to the provider with a `state` and
//! `nonce` kept in a signed cookie (`state`); `GET /signin/<provider>/callback` exchanges the
//! code, checks the ID token (`provider`, `verify`), refuses a `state` used before, and makes
//! a person's session (`http::session`). Every refusal is a sentence on the sign-in page.

pub mod config;
mod provider;
mod state;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use self::config::{ProviderKind, SignInSecrets, WebConfig};
use self::provider::{Failure, Provider};
use self::state::Pending;
use super::pages::signin::sign_in_page;
use super::session::{self, SessionKey};
use crate::store::{Delivery, Store};

pub use self::verify::Person;

/// The configured providers (possibly none).
#[derive(Default)]
pub struct SignIn {
    providers: Vec<Arc<Provider>>,
}

/// A "Sign in with …" button on the sign-in page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// `/signin/<slug>` starts it.
    pub slug: &'static str,
    pub label: String,
}

impl SignIn {
    /// The providers `[web]` configures, with their secrets; a sentence naming what is
    /// missing otherwise.
    pub fn from_config(
        web: &WebConfig,
        public_url: Option<&str>,
        secrets: &SignInSecrets,
    ) -> anyhow::Result<Self> {
        let configs = config::resolve(web, public_url, secrets).map_err(anyhow::Error::msg)?;
        let providers = configs
            .into_iter()
            .map(|c| Provider::new(c).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { providers })
    }

    /// The buttons the sign-in page shows, one per configured provider.
    pub fn buttons(&self) -> Vec<Button> {
        self.providers
            .iter()
            .map(|p| Button {
                slug: p.config.slug,
                label: format!("Sign in with {}", p.config.name),
            })
            .collect()
    }

    fn provider(&self, slug: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.config.slug == slug)
    }
}

/// What the sign-in routes need.
#[derive(Clone)]
pub struct SignInState {
    pub sign_in: Arc<SignIn>,
    pub store: Store,
    pub sessions: Arc<SessionKey>,
    /// Cookies are `Secure` (`server.public_url` is https).
    pub secure: bool,
}

/// The provider sign-in routes (public: `auth::PUBLIC_PATHS` lists them).
pub fn router(state: SignInState) -> Router {
    Router::new()
        .route("/signin/slack", get(start_slack))
        .route("/signin/slack/callback", get(slack_callback))
        .route("/signin/oidc", get(start_oidc))
        .route("/signin/oidc/callback", get(oidc_callback))
        .with_state(state)
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// What a provider sends the browser back with.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn start_slack(s: State<SignInState>, q: Query<StartQuery>) -> Response {
    start(s, q, "slack").await
}

async fn start_oidc(s: State<SignInState>, q: Query<StartQuery>) -> Response {
    start(s, q, "oidc").await
}

async fn slack_callback(s: State<SignInState>, h: HeaderMap, q: Query<CallbackQuery>) -> Response {
    callback(s, h, q, "slack").await
}

async fn oidc_callback(s: State<SignInState>, h: HeaderMap, q: Query<CallbackQuery>) -> Response {
    callback(s, h, q, "oidc").await
}

/// `GET /signin/<slug>`: to the provider's authorize page, with the sign-in cookie set.
async fn start(State(st): State<SignInState>, Query(q): Query<StartQuery>, slug: &str) -> Response {
    let next = session::safe_next(q.next.as_deref());
    let Some(provider) = st.sign_in.provider(slug) else {
        return refuse(&st, StatusCode::NOT_FOUND, &next, &not_configured(slug));
    };
    let urls = match provider.urls().await {
        Ok(urls) => urls,
        Err(failure) => return failed(&st, provider, &next, failure),
    };
    let pending = Pending::start(slug, next.clone());
    let Some(location) = authorize_url(&urls.authorize, provider, &pending) else {
        tracing::error!(provider = %provider.config.name, url = %urls.authorize, "the authorize URL is not a URL");
        let sentence = format!(
            "Could not reach {} to sign in: its sign-in address is not valid. Tell whoever runs firebreak.",
            provider.config.name
        );
        return refuse(&st, StatusCode::BAD_GATEWAY, &next, &sentence);
    };
    let cookie = state::set_cookie(&pending.seal(&st.sessions, Utc::now()), st.secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to(&location)).into_response()
}

/// The provider's authorize page for `pending`.
fn authorize_url(authorize: &str, provider: &Provider, pending: &Pending) -> Option<String> {
    let mut url = reqwest::Url::parse(authorize).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.config.client_id)
            .append_pair("scope", "openid profile email")
            .append_pair("redirect_uri", &provider.config.redirect_uri)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce);
        if let ProviderKind::Slack { team_id } = &provider.config.kind {
            q.append_pair("team", team_id);
        }
    }
    Some(url.to_string())
}

/// `GET /signin/<slug>/callback`: a person's session, or the sign-in page with why not.
async fn callback(
    State(st): State<SignInState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
    slug: &str,
) -> Response {
    let Some(provider) = st.sign_in.provider(slug) else {
        return refuse(&st, StatusCode::NOT_FOUND, "/", &not_configured(slug));
    };
    let name = &provider.config.name;
    if let Some(error) = q.error.as_deref() {
        return refuse(
            &st,
            StatusCode::FORBIDDEN,
            "/",
            &provider_error(name, error),
        );
    }
    let (Some(code), Some(state)) = (q.code.as_deref(), q.state.as_deref()) else {
        let sentence = format!("{name} sent you back without a sign-in code; start again.");
        return refuse(&st, StatusCode::BAD_REQUEST, "/", &sentence);
    };
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let cookie = session::named_cookie(cookies, state::COOKIE);
    let pending = match Pending::open(&st.sessions, cookie, slug, state, Utc::now()) {
        Ok(pending) => pending,
        Err(mismatch) => return refuse(&st, StatusCode::FORBIDDEN, "/", mismatch.sentence()),
    };
    let next = pending.next.clone();
    match first_use(&st.store, &pending).await {
        Ok(true) => {}
        Ok(false) => {
            let sentence = "This sign-in has already been used, so it was refused; start again.";
            return refuse(&st, StatusCode::FORBIDDEN, &next, sentence);
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "recording a sign-in's nonce failed");
            let sentence = "Signing in failed on the server; try again shortly.";
            return refuse(&st, StatusCode::INTERNAL_SERVER_ERROR, &next, sentence);
        }
    }
    match provider.sign_in(code, &pending.nonce).await {
        Ok(person) => signed_in(&st, provider, person, &next).await,
        Err(failure) => failed(&st, provider, &next, failure),
    }
}

/// Records the sign-in's nonce as used; `false` when it was used before (a replay).
async fn first_use(store: &Store, pending: &Pending) -> anyhow::Result<bool> {
    let delivery = Delivery::within("signin", pending.nonce.clone(), state::LIFETIME);
    let mut tx = store.begin().await?;
    let first = tx.record_delivery(&delivery).await?;
    tx.commit().await?;
    Ok(first)
}

/// The session cookie for `person`, and on to `next`.
async fn signed_in(st: &SignInState, provider: &Provider, person: Person, next: &str) -> Response {
    if let Err(e) = st.store.hint_person(&person.identity, &person.name).await {
        tracing::warn!(error = %format!("{e:#}"), "remembering a signed-in person's name failed");
    }
    tracing::info!(identity = %person.identity, provider = %provider.config.name, "signed in to the web pages");
    let value = st
        .sessions
        .issue_person(&person.identity, &person.name, Utc::now());
    (
        AppendHeaders([
            (header::SET_COOKIE, session::set_cookie(&value, st.secure)),
            (header::SET_COOKIE, state::clear_cookie(st.secure)),
        ]),
        Redirect::to(next),
    )
        .into_response()
}

fn failed(st: &SignInState, provider: &Provider, next: &str, failure: Failure) -> Response {
    let name = &provider.config.name;
    match failure {
        Failure::Unreachable(e) => {
            tracing::error!(error = %format!("{e:#}"), provider = %name, "signing in with a provider failed");
            let sentence = format!("Could not reach {name} to sign you in; try again shortly.");
            refuse(st, StatusCode::BAD_GATEWAY, next, &sentence)
        }
        Failure::Refused(sentence) => {
            tracing::warn!(provider = %name, refused = %sentence, "a provider sign-in was refused");
            refuse(
                st,
                StatusCode::FORBIDDEN,
                next,
                &sentence.replace("{provider}", name),
            )
        }
    }
}

/// The sign-in page with `sentence`, and the sign-in cookie forgotten.
fn refuse(st: &SignInState, status: StatusCode, next: &str, sentence: &str) -> Response {
    let mut response = sign_in_page(next, Some(sentence), &st.sign_in.buttons());
    *response.status_mut() = status;
    if let Ok(v) = state::clear_cookie(st.secure).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn not_configured(slug: &str) -> String {
    let what = if slug == "slack" {
        "Slack"
    } else {
        "a single sign-on provider"
    };
    format!("Signing in with {what} is not set up on this server; sign in with an API token.")
}

/// The sentence for an `error` the provider sent back instead of a code. Its own words are
/// not shown (they are the provider's, not ours), only a known code.
fn provider_error(name: &str, error: &str) -> String {
    match error {
        "access_denied" => {
            format!(
                "You did not allow firebreak to sign you in with {name}, so you are not signed in."
            )
        }
        "login_required" | "consent_required" | "interaction_required" => {
            format!("{name} needs you to sign in there first; start again.")
        }
        _ => format!(
            "{name} could not sign you in; start again, or ask whoever runs firebreak to check the app's settings."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_are_sentences_without_their_words() {
        assert!(provider_error("Slack", "access_denied").contains("did not allow"));
        let odd = provider_error("Slack", "<script>x</script>");
        assert!(!odd.contains("script"), "{odd}");
    }
}
