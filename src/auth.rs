//! API tokens and what each request needs: token scopes ([`Scope`], [`Scopes`]), making and
//! hashing tokens, and the access policy ([`access`]) that says which paths are public and
//! which scope every other one needs. Pure: the HTTP guard (`http::guard`) and the CLI
//! (`firebreak token …`) are the edges that use it.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every `GET` of the JSON API and the post-mortem pages.
    Read,
    /// Declaring incidents: `POST /api/incidents` and `POST /api/alertmanager`.
    Declare,
    /// Updates, status changes and resolving: `POST /api/incidents/{n}/updates`, `…/status`,
    /// `…/resolve`.
    Update,
    /// `GET /metrics` on the main port.
    Metrics,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Self::Read, Self::Declare, Self::Update, Self::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Declare => "declare",
            Self::Update => "update",
            Self::Metrics => "metrics",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's scopes: at least one, each once, shown in a fixed order (`read,declare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

/// Scopes that could not be read, in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScopeError(String);

impl Scopes {
    /// `read,declare` (commas, spaces around them allowed). An unknown or missing scope is
    /// refused with a sentence that lists the real ones.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut scopes = BTreeSet::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let scope = Scope::parse(&word.to_ascii_lowercase()).ok_or_else(|| {
                ScopeError(format!(
                    "\"{word}\" is not a scope; the scopes are {}.",
                    known_scopes()
                ))
            })?;
            scopes.insert(scope);
        }
        if scopes.is_empty() {
            return Err(ScopeError(format!(
                "Give at least one scope, for example --scope read; the scopes are {}.",
                known_scopes()
            )));
        }
        Ok(Self(scopes))
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Whether these scopes meet `need`.
    pub fn allow(&self, need: Need) -> bool {
        match need {
            Need::Scope(s) => self.contains(s),
            Need::Metrics => self.contains(Scope::Metrics) || self.contains(Scope::Read),
            Need::Nothing | Need::Session => false,
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&words.join(","))
    }
}

impl std::str::FromStr for Scopes {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn known_scopes() -> String {
    "read, declare, update and metrics".to_string()
}

/// Every token starts with this, so one pasted somewhere it should not be is recognisable
/// (and secret scanners can be taught it).
pub const TOKEN_PREFIX: &str = "fbk_";

/// Random characters after the prefix: 40 alphanumerics, about 238 bits.
const TOKEN_RANDOM_CHARS: usize = 40;

/// A new token: shown once; only its hash is stored.
pub fn new_token() -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(TOKEN_RANDOM_CHARS)
        .map(char::from)
        .collect();
    format!("{TOKEN_PREFIX}{random}")
}

/// What is stored for `token`, and what it is looked up by: hex SHA-256. Tokens are long and
/// random, so a plain hash is enough (no salt or slow hash is needed to resist guessing).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token name: 1 to 64 letters, digits, `.`, `_` or `-`, so it is safe to show and type.
pub fn check_token_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" cannot name a token: use 1 to 64 letters, digits, dots, underscores or dashes."
        ))
    }
}

/// `last_used_at` is written at most this often per token, so reads do not become writes.
pub const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Whether a use at `now` should be written, given the last one written.
pub fn last_use_due(last_used: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used.is_none_or(|at| now - at >= LAST_USED_EVERY)
}

/// What a request needs before it reaches a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open to anyone: the probes, and the platforms' endpoints, which check their own
    /// signatures.
    Public,
    /// A valid token that meets this.
    Token(Need),
}

/// What a token must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Scope(Scope),
    /// `metrics` or `read`.
    Metrics,
    /// No scope allows it (a write to a path nothing serves): any token gets 403.
    Nothing,
    /// A signed-in browser session, with its CSRF token (`POST /signout`): no API token
    /// allows it.
    Session,
}

impl Need {
    /// For the 403 sentence: "… needs the read scope".
    pub fn describe(self) -> String {
        match self {
            Self::Scope(s) => format!("the {s} scope"),
            Self::Metrics => "the metrics (or read) scope".into(),
            Self::Nothing => "a scope no token has: nothing is served here".into(),
            Self::Session => "a signed-in session (sign in at /signin), not an API token".into(),
        }
    }
}

/// The paths anyone may reach, exactly as written (no prefixes, so `/slack/../api` is not
/// one). Everything else needs a token: a route added later is protected unless it is
/// added here.
pub const PUBLIC_PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/slack/commands",
    "/slack/events",
    "/slack/interactions",
    "/discord/interactions",
    "/github/webhook",
    "/signin",
];

/// What a request for `path` with `method` needs. Reads (`GET`, `HEAD`) need `read`, or
/// `metrics` for `/metrics`; writes need a scope named for them here, and a write no rule
/// names is refused to every token.
pub fn access(method: &str, path: &str) -> Access {
    if PUBLIC_PATHS.contains(&path) {
        return Access::Public;
    }
    let read = matches!(method, "GET" | "HEAD");
    Access::Token(match (read, path) {
        (true, "/metrics") => Need::Metrics,
        (true, _) => Need::Scope(Scope::Read),
        (false, _) if method == "POST" && session_form(path) => Need::Session,
        (false, _) if method == "POST" => write_scope(path).map_or(Need::Nothing, Need::Scope),
        (false, _) => Need::Nothing,
    })
}

/// Whether `path` takes only a signed-in session's form posts (with its CSRF token): sign
/// out, and the pages' forms (declare at `/incidents`; `/incidents/{n}/updates`, `…/status`,
/// `…/resolve`). An API token is refused there: machines use `/api/…`.
fn session_form(path: &str) -> bool {
    if matches!(path, "/signout" | "/incidents") {
        return true;
    }
    let Some((number, what)) = path
        .strip_prefix("/incidents/")
        .and_then(|rest| rest.split_once('/'))
    else {
        return false;
    };
    !number.is_empty() && matches!(what, "updates" | "status" | "resolve")
}

/// The scope a `POST` to `path` needs: `declare` to declare (`/api/incidents`, and
/// `/api/alertmanager`, which declares), `update` for a change to one incident
/// (`/api/incidents/{n}/updates`, `…/status`, `…/resolve`). `None`: no write is served
/// there.
fn write_scope(path: &str) -> Option<Scope> {
    match path {
        "/api/incidents" | "/api/alertmanager" => return Some(Scope::Declare),
        _ => {}
    }
    let rest = path.strip_prefix("/api/incidents/")?;
    let (number, what) = rest.split_once('/')?;
    let one_segment = !number.is_empty() && !number.contains('/');
    (one_segment && matches!(what, "updates" | "status" | "resolve")).then_some(Scope::Update)
}

/// How a request without a valid credential is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// 401 with `WWW-Authenticate: Bearer` and a JSON sentence: the API, `/metrics`, writes.
    Bearer,
    /// 303 to `/signin?next=<path>`: a browser asking for a page.
    SignIn,
}

/// The challenge for `method` `path` (see [`Challenge`]): a `GET` or `HEAD` of a page (not
/// under `/api/`, not `/metrics`) is sent to sign in; everything else gets 401.
pub fn challenge(method: &str, path: &str) -> Challenge {
    let read = matches!(method, "GET" | "HEAD");
    let api = path == "/api" || path.starts_with("/api/") || path == "/metrics";
    if read && !api {
        Challenge::SignIn
    } else {
        Challenge::Bearer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_need_the_scope_named_for_them() {
        let post = |path| access("POST", path);
        let declare = Access::Token(Need::Scope(Scope::Declare));
        let update = Access::Token(Need::Scope(Scope::Update));
        let nothing = Access::Token(Need::Nothing);
        assert_eq!(post("/api/incidents"), declare);
        assert_eq!(post("/api/alertmanager"), declare);
        for path in [
            "/api/incidents/INC-1/updates",
            "/api/incidents/2/status",
            "/api/incidents/2/resolve",
        ] {
            assert_eq!(post(path), update, "{path}");
        }
        for path in [
            "/api/incidents/",
            "/api/incidents/1",
            "/api/incidents/1/notes",
            "/api/incidents/1/x/updates",
            "/api/incidents//status",
            "/api/incidents/1/updates/",
            "/api/freeze",
        ] {
            assert_eq!(post(path), nothing, "{path}");
        }
        assert_eq!(access("PUT", "/api/incidents"), nothing);
        assert_eq!(access("DELETE", "/api/incidents/1/status"), nothing);
    }

    #[test]
    fn scopes_parse_and_show_in_a_fixed_order() {
        let s = Scopes::parse(" declare , read,read").unwrap();
        assert_eq!(s.to_string(), "read,declare");
        assert!(s.contains(Scope::Read) && !s.contains(Scope::Update));
        let all = Scopes::parse("metrics,update,declare,read").unwrap();
        assert_eq!(all.to_string(), "read,declare,update,metrics");
    }

    #[test]
    fn unknown_or_missing_scopes_are_sentences() {
        let e = Scopes::parse("read,wrte").unwrap_err().to_string();
        assert_eq!(
            e,
            "\"wrte\" is not a scope; the scopes are read, declare, update and metrics."
        );
        let e = Scopes::parse(" , ").unwrap_err().to_string();
        assert!(e.starts_with("Give at least one scope"), "{e}");
    }

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("fbk_") && a.len() == 44, "{a}");
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn token_names_are_plain() {
        assert!(check_token_name("alertmanager-prod.1").is_ok());
        for bad in ["", "a b", "ü", &"x".repeat(65)] {
            let e = check_token_name(bad).unwrap_err();
            assert!(e.ends_with("dashes."), "{e}");
        }
    }

    #[test]
    fn last_use_is_written_at_most_once_a_minute() {
        let t = Utc::now();
        assert!(last_use_due(None, t));
        assert!(!last_use_due(Some(t), t + chrono::TimeDelta::seconds(59)));
        assert!(last_use_due(Some(t), t + chrono::TimeDelta::seconds(60)));
    }

    #[test]
    fn only_listed_paths_are_public_and_exactly() {
        assert_eq!(access("GET", "/healthz"), Access::Public);
        assert_eq!(access("POST", "/slack/events"), Access::Public);
        for path in [
            "/healthz/",
            "/slack/events/../../api/incidents",
            "/slack",
            "/",
        ] {
            assert_ne!(access("GET", path), Access::Public, "{path}");
        }
        assert_eq!(
            access("GET", "/api/incidents"),
            Access::Token(Need::Scope(Scope::Read))
        );
        assert_eq!(access("HEAD", "/metrics"), Access::Token(Need::Metrics));
        assert_eq!(
            access("POST", "/api/incidents"),
            Access::Token(Need::Scope(Scope::Declare))
        );
        assert_eq!(access("POST", "/api/audit"), Access::Token(Need::Nothing));
        assert_eq!(access("POST", "/signin"), Access::Public);
        assert_eq!(access("POST", "/signout"), Access::Token(Need::Session));
        for path in [
            "/incidents",
            "/incidents/INC-1/updates",
            "/incidents/1/status",
            "/incidents/1/resolve",
        ] {
            assert_eq!(access("POST", path), Access::Token(Need::Session), "{path}");
        }
        for path in [
            "/incidents/",
            "/incidents/1",
            "/incidents//status",
            "/incidents/1/x/updates",
            "/incidents/1/notes",
        ] {
            assert_eq!(access("POST", path), Access::Token(Need::Nothing), "{path}");
        }
        assert_eq!(
            access("GET", "/signout"),
            Access::Token(Need::Scope(Scope::Read))
        );
    }

    #[test]
    fn pages_are_challenged_with_sign_in_and_the_api_with_401() {
        for path in [
            "/",
            "/incidents/1",
            "/incidents/INC-1/postmortem.html",
            "/nowhere",
        ] {
            assert_eq!(challenge("GET", path), Challenge::SignIn, "{path}");
        }
        for path in ["/api/incidents", "/api", "/metrics"] {
            assert_eq!(challenge("GET", path), Challenge::Bearer, "{path}");
        }
        assert_eq!(challenge("POST", "/signout"), Challenge::Bearer);
        assert_eq!(challenge("POST", "/"), Challenge::Bearer);
    }

    #[test]
    fn metrics_takes_metrics_or_read_and_nothing_takes_no_token() {
        let read = Scopes::parse("read").unwrap();
        let metrics = Scopes::parse("metrics").unwrap();
        let declare = Scopes::parse("declare").unwrap();
        assert!(read.allow(Need::Metrics) && metrics.allow(Need::Metrics));
        assert!(!declare.allow(Need::Metrics));
        assert!(!metrics.allow(Need::Scope(Scope::Read)));
        let all = Scopes::parse("read,declare,update,metrics").unwrap();
        assert!(!all.allow(Need::Nothing));
    }
}
