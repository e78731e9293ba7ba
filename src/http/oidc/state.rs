//! The short-lived cookie a provider sign-in keeps between leaving for the provider and
//! coming back: which provider, the `state` and `nonce` sent, where to go afterwards, and
//! when it expires, signed with the session key. Pure apart from making random values.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::Rng;

use crate::http::session::{self, SessionKey};

/// The cookie's name.
pub const COOKIE: &str = "firebreak_signin";

/// How long a sign-in may take at the provider.
pub const LIFETIME: Duration = Duration::from_secs(10 * 60);

const PURPOSE: &str = "signin-state";

/// One sign-in in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `slack` or `oidc`.
    pub provider: String,
    pub state: String,
    pub nonce: String,
    /// A path on this site (already checked by `session::safe_next`).
    pub next: String,
}

/// Why the cookie does not fit the callback, each a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    Missing,
    Expired,
    Other,
}

impl Mismatch {
    pub fn sentence(self) -> &'static str {
        match self {
            Self::Missing => {
                "This sign-in was not started in this browser (or its cookie was lost), so it was refused; start again."
            }
            Self::Expired => "This sign-in took too long and has expired; start again.",
            Self::Other => {
                "This sign-in does not match the one this browser started, so it was refused; start again."
            }
        }
    }
}

impl Pending {
    /// A new sign-in with `provider`, going to `next` afterwards.
    pub fn start(provider: &str, next: String) -> Self {
        Self {
            provider: provider.to_string(),
            state: random(),
            nonce: random(),
            next,
        }
    }

    /// The cookie value: `<provider>.<state>.<nonce>.<next, base64url>.<expiry>.<signature>`.
    pub fn seal(&self, key: &SessionKey, now: DateTime<Utc>) -> String {
        let expires = now.timestamp() + LIFETIME.as_secs() as i64;
        let body = format!(
            "{}.{}.{}.{}.{expires}",
            self.provider,
            self.state,
            self.nonce,
            URL_SAFE_NO_PAD.encode(&self.next)
        );
        key.sign(PURPOSE, &body)
    }

    /// The sign-in a cookie holds, if it is signed, unexpired, for `provider` and `state`.
    pub fn open(
        key: &SessionKey,
        cookie: Option<&str>,
        provider: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, Mismatch> {
        let body = key
            .verified(PURPOSE, cookie.ok_or(Mismatch::Missing)?)
            .ok_or(Mismatch::Other)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [p, s, n, next, expires] = parts.as_slice() else {
            return Err(Mismatch::Other);
        };
        let expires: i64 = expires.parse().map_err(|_| Mismatch::Other)?;
        if now.timestamp() >= expires {
            return Err(Mismatch::Expired);
        }
        if *p != provider || *s != state {
            return Err(Mismatch::Other);
        }
        let next = URL_SAFE_NO_PAD
            .decode(next)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(Mismatch::Other)?;
        Ok(Self {
            provider: provider.to_string(),
            state: state.to_string(),
            nonce: n.to_string(),
            next,
        })
    }
}

/// 32 random bytes, base64url.
fn random() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `Set-Cookie` for a sign-in in flight (sent back only to `/signin/…`).
pub fn set_cookie(value: &str, secure: bool) -> String {
    session::cookie_header(COOKIE, value, "/signin", LIFETIME.as_secs(), secure)
}

/// `Set-Cookie` that forgets it.
pub fn clear_cookie(secure: bool) -> String {
    session::cookie_header(COOKIE, "", "/signin", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_text(&"k".repeat(32)).unwrap()
    }

    #[test]
    fn a_sealed_sign_in_opens_only_for_its_provider_state_and_time() {
        let (k, now) = (key(), Utc::now());
        let p = Pending::start("slack", "/incidents/1?x=1".into());
        let v = p.seal(&k, now);
        assert_eq!(
            Pending::open(&k, Some(&v), "slack", &p.state, now),
            Ok(p.clone())
        );
        assert_eq!(
            Pending::open(&k, Some(&v), "oidc", &p.state, now),
            Err(Mismatch::Other)
        );
        assert_eq!(
            Pending::open(&k, Some(&v), "slack", "other", now),
            Err(Mismatch::Other)
        );
        let later = now + chrono::TimeDelta::minutes(11);
        assert_eq!(
            Pending::open(&k, Some(&v), "slack", &p.state, later),
            Err(Mismatch::Expired)
        );
        assert_eq!(
            Pending::open(&k, None, "slack", &p.state, now),
            Err(Mismatch::Missing)
        );
        let forged = v.replacen(&p.nonce, &Pending::start("slack", "/".into()).nonce, 1);
        assert_eq!(
            Pending::open(&k, Some(&forged), "slack", &p.state, now),
            Err(Mismatch::Other)
        );
        assert_ne!(p.state, p.nonce);
        assert!(set_cookie("v", true).contains("; Secure"));
        assert!(set_cookie("v", false).contains("HttpOnly; SameSite=Lax"));
    }
}
