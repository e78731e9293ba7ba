//! The guard in front of every route: a request for a path [`auth::access`] does not list
//! as public needs `Authorization: Bearer <token>` for an unrevoked token with the scope
//! the path needs. Missing, unknown or revoked: 401 with `WWW-Authenticate: Bearer`; valid
//! but without the scope: 403 naming it. Answers are JSON with an `error` sentence. A
//! browser asking for a page without a credential is sent to `/signin` instead (303), and a
//! signed session cookie (`http::session`) counts for reads: a token's session as its token,
//! a person's (signed in with Slack or an OpenID Connect provider) as a reader. A form posted
//! with a session must carry the session's CSRF token (403 otherwise).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::caller::ApiCaller;
use super::session::{self, Principal, Session, SessionKey};
use crate::auth::{self, Access, Challenge, Need, Scope, Scopes};
use crate::incident::{Actor, Identity, Source};
use crate::store::{ApiToken, Store};

/// What the guard needs: the tokens, and the key sessions are signed with.
#[derive(Clone)]
pub struct Guard {
    pub store: Store,
    pub sessions: Arc<SessionKey>,
}

/// A request made with a signed-in session (not an API token): who signed in, and the CSRF
/// token every form posted with it must carry (as the `csrf` field).
#[derive(Debug, Clone)]
pub struct SessionCaller {
    pub who: SignedIn,
    pub csrf: String,
}

/// The credential a request was let in with, kept on the request so a long answer (the
/// live timeline) can check now and then that it still lets its holder in.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A bearer token, by its hash.
    Bearer { hash: String },
    /// A signed session cookie, of a token or of a person.
    Session(Session),
}

impl Credential {
    /// When it ends by itself: a session's expiry.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        match self {
            Credential::Bearer { .. } => None,
            Credential::Session(s) => Some(s.expires),
        }
    }

    /// Whether it still lets its holder in at `now`: the token not revoked; the session not
    /// expired, not signed out, and its token (if it was made with one) not revoked.
    pub async fn still_valid(&self, store: &Store, now: DateTime<Utc>) -> anyhow::Result<bool> {
        match self {
            Credential::Bearer { hash } => Ok(store.token_by_hash(hash).await?.is_some()),
            Credential::Session(session) => {
                if now >= session.expires || store.session_ended(&session.nonce).await? {
                    return Ok(false);
                }
                match session.principal {
                    Principal::Token(id) => Ok(store.active_token_by_id(id).await?.is_some()),
                    Principal::Person { .. } => Ok(true),
                }
            }
        }
    }
}

/// Who a session belongs to.
#[derive(Debug, Clone)]
pub enum SignedIn {
    /// Signed in by pasting an API token: acts as that token (`api:<name>`), within its
    /// scopes.
    Token { name: String, scopes: Scopes },
    /// A person who signed in with Slack (`slack:U…`) or a generic OpenID Connect provider
    /// (`email:…`): acts as that identity, exactly as in chat, so `[permissions]` decides.
    Person { identity: Identity, name: String },
}

impl SessionCaller {
    /// The actor the session's forms run commands as; `[permissions]` then decides.
    pub fn actor(&self) -> Actor {
        match &self.who {
            SignedIn::Token { name, .. } => Actor::new(Source::Api, name.clone(), name.clone()),
            SignedIn::Person { identity, name } => {
                let source = match identity.platform() {
                    "slack" => Source::Slack,
                    _ => Source::Email,
                };
                Actor::new(source, identity.id(), name.clone())
            }
        }
    }

    /// Whether the session may use forms that need `scope` at all (a token session: the
    /// token's scopes; a person: reading, declaring and updating, `metrics` being for
    /// scrapers). `[permissions]` is checked after this, by the service.
    pub fn may(&self, scope: Scope) -> bool {
        match &self.who {
            SignedIn::Token { scopes, .. } => scopes.contains(scope),
            SignedIn::Person { .. } => {
                matches!(scope, Scope::Read | Scope::Declare | Scope::Update)
            }
        }
    }

    /// How the page header names who is signed in.
    pub fn describe(&self) -> String {
        match &self.who {
            SignedIn::Token { name, .. } => format!("Signed in with the token “{name}”"),
            SignedIn::Person { name, .. } => format!("Signed in as {name}"),
        }
    }
}

/// The largest form the guard reads to find its CSRF token.
const FORM_LIMIT: usize = 64 * 1024;

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let need = match auth::access(&method, &path) {
        Access::Public => return next.run(request).await,
        Access::Token(need) => need,
    };
    if let Some(token) = bearer(request.headers()) {
        let hash = auth::token_hash(token);
        request
            .extensions_mut()
            .insert(Credential::Bearer { hash: hash.clone() });
        return with_token(&guard, request, next, need, &hash).await;
    }
    let cookie = session::cookie_value(
        request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
    .map(str::to_string);
    if let Some(cookie) = cookie
        && let Some(session) = guard.sessions.session(&cookie, Utc::now())
    {
        match guard.store.session_ended(&session.nonce).await {
            Ok(false) => {}
            Ok(true) => {
                return unauthenticated(
                    &request,
                    "Your session has ended: you signed out. Sign in again.",
                );
            }
            Err(e) => return lookup_failed(e),
        }
        let principal = session.principal.clone();
        request
            .extensions_mut()
            .insert(Credential::Session(session));
        return match principal {
            Principal::Token(token_id) => {
                with_session(&guard, request, next, need, &cookie, token_id).await
            }
            Principal::Person { identity, name } => {
                let who = SignedIn::Person { identity, name };
                with_person(&guard, request, next, need, &cookie, who).await
            }
        };
    }
    unauthenticated(
        &request,
        "This needs an API token: send it as `Authorization: Bearer <token>` (`firebreak token create` makes one).",
    )
}

/// A request with a bearer token: the token must be known, unrevoked and carry `need`.
async fn with_token(
    guard: &Guard,
    mut request: Request,
    next: Next,
    need: Need,
    hash: &str,
) -> Response {
    let found = match guard.store.token_by_hash(hash).await {
        Ok(found) => found,
        Err(e) => return lookup_failed(e),
    };
    let Some(found) = found else {
        return unauthenticated(
            &request,
            "That API token is not valid: it is unknown or has been revoked.",
        );
    };
    if !found.scopes.allow(need) {
        return forbidden(
            request.method().as_str(),
            request.uri().path(),
            &found,
            need,
        );
    }
    record_use(&guard.store, &found).await;
    // Who is calling, for the handlers that act as the token (`http::caller`).
    request.extensions_mut().insert(ApiCaller {
        name: found.name.clone(),
        scopes: found.scopes.clone(),
    });
    next.run(request).await
}

/// A request with a validly signed session cookie naming token `token_id`. The token must
/// still be active (revoking it ends its sessions). Reads count as the token's scopes; the
/// only writes a session makes are form posts to paths that need a session, each with the
/// session's CSRF token. Any other write with only a session is answered as if there were
/// no credential.
async fn with_session(
    guard: &Guard,
    request: Request,
    next: Next,
    need: Need,
    cookie: &str,
    token_id: i64,
) -> Response {
    let found = match guard.store.active_token_by_id(token_id).await {
        Ok(found) => found,
        Err(e) => return lookup_failed(e),
    };
    let Some(found) = found else {
        return unauthenticated(
            &request,
            "Your session has ended: the token it was made with has been revoked. Sign in again.",
        );
    };
    let read = matches!(request.method().as_str(), "GET" | "HEAD");
    let allowed = if read {
        found.scopes.allow(need)
    } else {
        need == Need::Session
    };
    if !allowed && !read {
        return unauthenticated(
            &request,
            "This needs an API token: a signed-in session only reads, and posts its own forms.",
        );
    }
    if !allowed {
        return forbidden(
            request.method().as_str(),
            request.uri().path(),
            &found,
            need,
        );
    }
    let mut request = if read {
        request
    } else {
        match csrf_checked(&guard.sessions, cookie, request).await {
            Ok(request) => request,
            Err(refused) => return refused,
        }
    };
    record_use(&guard.store, &found).await;
    request.extensions_mut().insert(SessionCaller {
        who: SignedIn::Token {
            name: found.name.clone(),
            scopes: found.scopes.clone(),
        },
        csrf: guard.sessions.csrf(cookie),
    });
    next.run(request).await
}

/// A request with a validly signed session cookie of a person. Reads are allowed; the only
/// writes are form posts to paths that need a session, each with the session's CSRF token.
async fn with_person(
    guard: &Guard,
    request: Request,
    next: Next,
    need: Need,
    cookie: &str,
    who: SignedIn,
) -> Response {
    let read = matches!(request.method().as_str(), "GET" | "HEAD");
    let mut request = if read {
        request
    } else if need == Need::Session {
        match csrf_checked(&guard.sessions, cookie, request).await {
            Ok(request) => request,
            Err(refused) => return refused,
        }
    } else {
        return unauthenticated(
            &request,
            "This needs an API token: a signed-in session only reads, and posts its own forms.",
        );
    };
    request.extensions_mut().insert(SessionCaller {
        who,
        csrf: guard.sessions.csrf(cookie),
    });
    next.run(request).await
}

/// Whether a request says it carries a form (`application/x-www-form-urlencoded`), or says
/// nothing (an empty post, such as sign-out from a script).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}

/// The request again when its form's `csrf` field is the session's CSRF token; 403 with a
/// sentence when it is missing or wrong.
async fn csrf_checked(
    key: &SessionKey,
    cookie: &str,
    request: Request,
) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let sentence = |status: StatusCode, sentence: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            sentence.to_string(),
        )
            .into_response()
    };
    let refused = |text: &str| sentence(StatusCode::FORBIDDEN, text);
    if !is_form(&parts.headers) {
        return Err(sentence(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The pages' forms are sent as application/x-www-form-urlencoded; machines use /api/… with JSON.",
        ));
    }
    // A body that cannot be read whole is one over the limit (or a client that went away).
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return Err(sentence(
            StatusCode::PAYLOAD_TOO_LARGE,
            "This form is larger than 64 KB; shorten the text and send it again.",
        ));
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let given = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, v)| v.as_str());
    match given {
        Some(given) if key.csrf_ok(cookie, given) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        Some(_) => Err(refused(
            "This form's CSRF token does not belong to your session; reload the page and try again.",
        )),
        None => Err(refused(
            "This form came without its CSRF token, so it was refused; reload the page and try again.",
        )),
    }
}

fn lookup_failed(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "looking up an API token failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "internal error; see the server log" })),
    )
        .into_response()
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

fn unauthenticated(request: &Request, sentence: &str) -> Response {
    let method = request.method().as_str();
    let uri = request.uri();
    match auth::challenge(method, uri.path()) {
        Challenge::Bearer => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            Json(json!({ "error": sentence })),
        )
            .into_response(),
        Challenge::SignIn => {
            let here = uri.path_and_query().map_or("/", |pq| pq.as_str());
            Redirect::to(&session::sign_in_location(here)).into_response()
        }
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
    use crate::incident::permissions::{Action, Permissions};

    fn person(identity: &str, name: &str) -> SessionCaller {
        SessionCaller {
            who: SignedIn::Person {
                identity: Identity::parse(identity).unwrap(),
                name: name.into(),
            },
            csrf: String::new(),
        }
    }

    #[test]
    fn a_person_acts_as_their_identity_and_permissions_decide() {
        let ada = person("slack:U0ADA", "Ada");
        assert_eq!(ada.actor().identity().as_str(), "slack:U0ADA");
        assert_eq!(ada.actor().source, Source::Slack);
        assert_eq!(ada.describe(), "Signed in as Ada");
        let grace = person("email:grace@example.com", "Grace");
        assert_eq!(grace.actor().identity().as_str(), "email:grace@example.com");
        assert_eq!(grace.actor().source, Source::Email);
        for scope in [Scope::Read, Scope::Declare, Scope::Update] {
            assert!(ada.may(scope), "{scope}");
        }
        assert!(!ada.may(Scope::Metrics));
        let only_ada = Permissions {
            declare: Some(vec!["slack:U0ADA".into(), "email:*".into()]),
            respond: Some(vec!["slack:U0ADA".into()]),
            ..Permissions::default()
        };
        assert!(only_ada.allows(&ada.actor(), Action::Respond));
        assert!(!only_ada.allows(&grace.actor(), Action::Respond));
        assert!(
            only_ada.allows(&grace.actor(), Action::Declare),
            "email:* covers her"
        );
    }

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
