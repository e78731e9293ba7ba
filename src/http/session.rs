//! Browser sessions: the signed cookie that names who signed in (an API token, or a person
//! who signed in with Slack or an OpenID Connect provider), the CSRF token derived from it,
//! the `Set-Cookie` values, and the checks on `next` and on `Origin`/`Referer`. The same key
//! signs the short-lived cookie a provider sign-in keeps its `state` in ([`SessionKey::sign`]).
//! Pure apart from [`SessionKey::from_env`] and making a nonce.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::incident::Identity;

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name.
pub const COOKIE: &str = "firebreak_session";

/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The environment variable holding the key sessions are signed with.
pub const KEY_ENV: &str = "FIREBREAK_SESSION_KEY";

/// A key shorter than this is refused: HMAC-SHA256 wants at least 32 bytes.
const MIN_KEY_LEN: usize = 32;

/// The HMAC key sessions and CSRF tokens are signed with. Never logged or shown.
#[derive(Clone)]
pub struct SessionKey {
    key: Vec<u8>,
    /// Made at start because `FIREBREAK_SESSION_KEY` was unset: sessions end at restart.
    pub generated: bool,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

impl SessionKey {
    /// `FIREBREAK_SESSION_KEY` when set (at least 32 characters), else a random key.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(KEY_ENV) {
            Ok(v) => Self::from_text(&v),
            Err(std::env::VarError::NotPresent) => Ok(Self::random()),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{KEY_ENV} is not valid UTF-8")),
        }
    }

    /// A key given as text.
    pub fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().len() < MIN_KEY_LEN {
            return Err(format!(
                "{KEY_ENV} is too short: give at least {MIN_KEY_LEN} random characters (for example `openssl rand -hex 32`)."
            ));
        }
        Ok(Self {
            key: text.trim().as_bytes().to_vec(),
            generated: false,
        })
    }

    /// 32 random bytes.
    pub fn random() -> Self {
        let mut key = vec![0u8; MIN_KEY_LEN];
        rand::rng().fill(&mut key[..]);
        Self {
            key,
            generated: true,
        }
    }

    fn mac(&self, purpose: &str, data: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        mac
    }

    /// A new cookie value for token `token_id`, lasting [`LIFETIME`] from `now`:
    /// `<token id>.<expiry, unix seconds>.<nonce>.<signature>`.
    pub fn issue(&self, token_id: i64, now: DateTime<Utc>) -> String {
        self.issue_body(&token_id.to_string(), now)
    }

    /// A new cookie value for a person who signed in with a provider, lasting [`LIFETIME`]:
    /// `p.<identity>.<name>.<expiry>.<nonce>.<signature>`, identity and name base64url.
    pub fn issue_person(&self, identity: &Identity, name: &str, now: DateTime<Utc>) -> String {
        let principal = format!(
            "{PERSON_MARK}.{}.{}",
            URL_SAFE_NO_PAD.encode(identity.as_str()),
            URL_SAFE_NO_PAD.encode(name)
        );
        self.issue_body(&principal, now)
    }

    fn issue_body(&self, principal: &str, now: DateTime<Utc>) -> String {
        let expires = now.timestamp() + LIFETIME.as_secs() as i64;
        let nonce: [u8; 16] = rand::rng().random();
        self.sign(
            "session",
            &format!("{principal}.{expires}.{}", hex::encode(nonce)),
        )
    }

    /// Who a cookie value names, if it is signed with this key and not expired.
    pub fn verify(&self, value: &str, now: DateTime<Utc>) -> Option<Principal> {
        self.session(value, now).map(|s| s.principal)
    }

    /// The session a cookie value is, if it is signed with this key and not expired.
    pub fn session(&self, value: &str, now: DateTime<Utc>) -> Option<Session> {
        let body = self.verified("session", value)?;
        let parts: Vec<&str> = body.split('.').collect();
        let (principal, expires, nonce) = match parts.as_slice() {
            [id, expires, nonce] => (Principal::Token(id.parse().ok()?), expires, nonce),
            [PERSON_MARK, identity, name, expires, nonce] => {
                let text = |b64: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(b64).ok()?).ok();
                let identity = Identity::parse(&text(identity)?).ok()?;
                (
                    Principal::Person {
                        identity,
                        name: text(name)?,
                    },
                    expires,
                    nonce,
                )
            }
            _ => return None,
        };
        let expires = DateTime::from_timestamp(expires.parse().ok()?, 0)?;
        (now < expires).then(|| Session {
            principal,
            nonce: nonce.to_string(),
            expires,
        })
    }

    /// `body` with its signature for `purpose` appended: `<body>.<signature>`.
    pub fn sign(&self, purpose: &str, body: &str) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(purpose, body).finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// The body of a value made by [`SessionKey::sign`] for `purpose`, if its signature holds.
    pub fn verified<'a>(&self, purpose: &str, value: &'a str) -> Option<&'a str> {
        let (body, sig) = value.rsplit_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(purpose, body).verify_slice(&sig).ok()?;
        Some(body)
    }

    /// The CSRF token of the session whose cookie value is `value`.
    pub fn csrf(&self, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac("csrf", value).finalize().into_bytes())
    }

    /// Whether `given` is the CSRF token of the session `value` (in constant time).
    pub fn csrf_ok(&self, value: &str, given: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(given.trim())
            .is_ok_and(|given| self.mac("csrf", value).verify_slice(&given).is_ok())
    }
}

/// A verified session cookie: who it names, its nonce (what signing out lists as ended) and
/// when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    pub nonce: String,
    pub expires: DateTime<Utc>,
}

/// Who a session cookie names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The id of the API token it was made with (revoking the token ends it).
    Token(i64),
    /// A person who signed in with a provider: `slack:U…` or `email:…`, and their name.
    Person { identity: Identity, name: String },
}

/// Marks a person's session cookie (a token's starts with its numeric id).
const PERSON_MARK: &str = "p";

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_value<'a>(cookie_headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    named_cookie(cookie_headers, COOKIE)
}

/// The value of the cookie called `name` among a request's `Cookie` headers.
pub fn named_cookie<'a>(
    cookie_headers: impl Iterator<Item = &'a str>,
    name: &str,
) -> Option<&'a str> {
    cookie_headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(value: &str, secure: bool) -> String {
    cookie_header(COOKIE, value, "/", LIFETIME.as_secs(), secure)
}

/// `Set-Cookie` that ends the session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    cookie_header(COOKIE, "", "/", 0, secure)
}

/// `Set-Cookie` for an `HttpOnly`, `SameSite=Lax` cookie on `path`, `Secure` when asked.
pub fn cookie_header(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Where to go after signing in: `next` when it is a path on this site (`/incidents/1`), else
/// `/`. `//evil.example`, `/\evil`, absolute URLs, and anything but visible ASCII (a
/// request's own path is percent-encoded; a `Location` header must be ASCII) are refused.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// `/signin?next=<path and query>`.
pub fn sign_in_location(path_and_query: &str) -> String {
    match path_and_query {
        "/" | "" => "/signin".to_string(),
        p => format!(
            "/signin?{}",
            serde_urlencoded::to_string([("next", p)]).unwrap_or_default()
        ),
    }
}

/// Whether an `Origin` or `Referer` value is this site: its host (and port) is `host` (the
/// request's `Host`) or `public_url`'s. Anything unreadable is not.
pub fn same_origin(url: &str, host: Option<&str>, public_url: Option<&str>) -> bool {
    let authority = |u: &str| -> Option<String> {
        let rest = u.split_once("://")?.1;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Some(rest[..end].to_ascii_lowercase())
    };
    let Some(theirs) = authority(url) else {
        return false;
    };
    host.is_some_and(|h| h.eq_ignore_ascii_case(&theirs))
        || public_url.and_then(authority).is_some_and(|p| p == theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_text(&"k".repeat(32)).unwrap()
    }

    #[test]
    fn a_session_verifies_until_it_expires_and_not_when_tampered() {
        let now = Utc::now();
        let k = key();
        let v = k.issue(7, now);
        assert_eq!(k.verify(&v, now), Some(Principal::Token(7)));
        assert_eq!(k.verify(&v, now + chrono::TimeDelta::hours(12)), None);
        assert_eq!(k.verify(&v.replacen('7', "8", 1), now), None);
        assert_eq!(k.verify(&format!("{v}x"), now), None);
        assert_eq!(k.verify("", now), None);
        let other = SessionKey::from_text(&"j".repeat(32)).unwrap();
        assert_eq!(other.verify(&v, now), None);
        assert_ne!(k.issue(7, now), v, "each session has its own nonce");
    }

    #[test]
    fn a_person_session_carries_who_signed_in_and_is_signed() {
        let now = Utc::now();
        let k = key();
        let alice = Identity::slack("U123").unwrap();
        let v = k.issue_person(&alice, "Alice B. <x>", now);
        assert_eq!(
            k.verify(&v, now),
            Some(Principal::Person {
                identity: alice.clone(),
                name: "Alice B. <x>".into()
            })
        );
        assert_eq!(k.verify(&v, now + chrono::TimeDelta::hours(12)), None);
        let mallory = URL_SAFE_NO_PAD.encode("slack:U999");
        let forged = v.replacen(&URL_SAFE_NO_PAD.encode("slack:U123"), &mallory, 1);
        assert_ne!(forged, v);
        assert_eq!(
            k.verify(&forged, now),
            None,
            "the identity is under the HMAC"
        );
        let other = SessionKey::from_text(&"j".repeat(32)).unwrap();
        assert_eq!(other.verify(&v, now), None);
        let signed = k.sign("oidc-state", "a.b");
        assert_eq!(k.verified("oidc-state", &signed), Some("a.b"));
        assert_eq!(k.verified("session", &signed), None, "purposes do not mix");
    }

    #[test]
    fn csrf_belongs_to_its_session() {
        let k = key();
        let (a, b) = (k.issue(1, Utc::now()), k.issue(1, Utc::now()));
        assert!(k.csrf_ok(&a, &k.csrf(&a)));
        assert!(!k.csrf_ok(&a, &k.csrf(&b)));
        assert!(!k.csrf_ok(&a, ""));
        assert!(!k.csrf_ok(&a, "not base64!"));
    }

    #[test]
    fn short_keys_are_refused_in_a_sentence() {
        let e = SessionKey::from_text("short").unwrap_err();
        assert!(e.starts_with("FIREBREAK_SESSION_KEY is too short"), "{e}");
        assert!(format!("{:?}", key()).contains("generated"));
        assert!(!format!("{:?}", key()).contains("kkkk"));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_with_its_attributes() {
        let headers = ["a=1; firebreak_session=abc.def", "b=2"];
        assert_eq!(cookie_value(headers.into_iter()), Some("abc.def"));
        assert_eq!(cookie_value(["x=1"].into_iter()), None);
        let c = set_cookie("v", true);
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=43200",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie("v", false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn only_same_site_paths_are_followed() {
        assert_eq!(safe_next(Some("/incidents/2?x=1")), "/incidents/2?x=1");
        for bad in [
            "//evil.example",
            "/\\evil",
            "https://evil.example/",
            "x",
            "/a\nb",
            "/é",
            "/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(sign_in_location("/"), "/signin");
        assert_eq!(
            sign_in_location("/incidents/1?open=1&x=2"),
            "/signin?next=%2Fincidents%2F1%3Fopen%3D1%26x%3D2"
        );
    }

    #[test]
    fn origins_must_be_this_site() {
        let host = Some("127.0.0.1:8080");
        assert!(same_origin("http://127.0.0.1:8080", host, None));
        assert!(same_origin("http://127.0.0.1:8080/signin?x", host, None));
        assert!(!same_origin("http://evil.example", host, None));
        assert!(!same_origin("null", host, None));
        let public = Some("https://fb.example.com");
        assert!(same_origin(
            "https://fb.example.com",
            Some("10.0.0.1"),
            public
        ));
        assert!(!same_origin("https://fb.example.com.evil", None, public));
    }
}
