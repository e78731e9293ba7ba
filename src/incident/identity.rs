//! Who someone is, as stored: a platform and that platform's own id for them, written
//! `platform:id` (`slack:U024BE7LH`, `discord:80351110224678912`, `cli:alice`, and
//! `api:alertmanager` for a machine calling the HTTP API with the token of that name, and
//! `email:alice@example.com` for a person who signed in to the web pages with a generic
//! OpenID Connect provider that vouched for that email).
//!
//! Every actor and role holder is stored this way, never as a display name: names change and
//! collide, and a chat edge can only mention, invite or nudge someone by their id. Names are
//! resolved when showing, from the people cache (`store::people`), with the id as fallback.
//! Rows written before identities (plain names such as `alice`) are shown as they are.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::UserError;

/// The platforms an identity can belong to.
pub const PLATFORMS: &[&str] = &[
    "slack", "discord", "cli", "github", "system", "api", "email",
];

/// A stored identity, `platform:id`. Construct it with [`Identity::parse`],
/// [`Identity::from_user_arg`] or [`Identity::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identity(String);

impl Identity {
    /// An identity from its parts; `None` if either is not valid for the platform.
    pub fn new(platform: &str, id: &str) -> Option<Self> {
        (PLATFORMS.contains(&platform) && valid_id(platform, id))
            .then(|| Self(format!("{platform}:{id}")))
    }

    /// An identity for an actor the platform has already vouched for: characters that are
    /// not valid in an id are replaced with `_`, so it is always well formed.
    pub fn lossy(platform: &str, id: &str) -> Self {
        if let Some(ok) = Self::new(platform, id) {
            return ok;
        }
        let platform = if PLATFORMS.contains(&platform) {
            platform
        } else {
            "system"
        };
        let mut id: String = id
            .chars()
            .take(64)
            .map(|c| {
                let mut buf = [0; 4];
                if valid_id(platform, c.encode_utf8(&mut buf)) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if id.is_empty() {
            id.push('_');
        }
        Self::new(platform, &id).unwrap_or_else(|| Self(format!("{platform}:_")))
    }

    /// A Slack user (`U…` or `W…`).
    pub fn slack(user_id: &str) -> Option<Self> {
        Self::new("slack", user_id)
    }

    /// Parses a stored or typed `platform:id`.
    pub fn parse(s: &str) -> Result<Self, UserError> {
        let s = s.trim();
        let Some((platform, id)) = s.split_once(':') else {
            return Err(UserError::invalid(format!(
                "\"{}\" is not an identity; write it as platform:id, e.g. slack:U024BE7LH or cli:alice.",
                shown(s)
            )));
        };
        let platform = platform.to_ascii_lowercase();
        if !PLATFORMS.contains(&platform.as_str()) {
            return Err(UserError::invalid(format!(
                "\"{}\" is not a platform; use slack, discord, cli, api or email.",
                shown(&platform)
            )));
        }
        Self::new(&platform, id).ok_or_else(|| {
            UserError::invalid(match platform.as_str() {
                "slack" => format!(
                    "\"{}\" is not a Slack user id; it looks like U024BE7LH (Slack shows it under a profile's ⋮ menu, \"Copy member ID\").",
                    shown(id)
                ),
                "discord" => format!(
                    "\"{}\" is not a Discord user id; it is a number like 80351110224678912.",
                    shown(id)
                ),
                _ => format!("\"{}\" is not a valid {platform} name.", shown(id)),
            })
        })
    }

    /// A person named in a command typed outside chat (the CLI): `slack:U…`, `discord:…`
    /// and `cli:name` as written, and a bare name (`alice`, `@alice`) meaning `cli:alice`.
    pub fn from_user_arg(s: &str) -> Result<Self, UserError> {
        let s = s.trim();
        if s.contains(':') {
            return Self::parse(s);
        }
        let name = s.trim_start_matches('@');
        Self::new("cli", name).ok_or_else(|| {
            UserError::invalid(format!(
                "\"{}\" is not a user; name a local account (alice), or a chat user as slack:U024BE7LH or discord:80351110224678912.",
                shown(s)
            ))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn platform(&self) -> &str {
        self.0.split_once(':').map_or("", |(p, _)| p)
    }

    /// The platform's own id: `U024BE7LH`, a Discord snowflake, a local account name.
    pub fn id(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, id)| id)
    }

    /// The Slack user id, for a Slack identity.
    pub fn slack_user(&self) -> Option<&str> {
        (self.platform() == "slack").then(|| self.id())
    }

    /// How to show it when no display name is known: a local account, a GitHub login and
    /// firebreak itself by name; a chat user as `platform:id` (which can be pasted back
    /// into `assign`).
    pub fn fallback_name(&self) -> &str {
        match self.platform() {
            "cli" | "system" | "github" => self.id(),
            _ => self.as_str(),
        }
    }
}

/// Whether `id` is a well-formed id on `platform`.
fn valid_id(platform: &str, id: &str) -> bool {
    let longest = if platform == "email" { 254 } else { 64 };
    if id.is_empty() || id.len() > longest {
        return false;
    }
    match platform {
        // A verified address, lower-cased by whoever makes it: one `@`, no spaces or markup.
        "email" => {
            id.bytes().filter(|b| *b == b'@').count() == 1
                && !id.starts_with('@')
                && !id.ends_with('@')
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'@' | b'.' | b'_' | b'-' | b'+')
                })
        }
        // Slack ids are upper-case letters and digits (`U024BE7LH`, `W0123ABC`); test
        // fixtures use underscores too.
        "slack" => id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
        "discord" => id.bytes().all(|b| b.is_ascii_digit()),
        // Account names and logins: no spaces, no markup.
        _ => id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'$')),
    }
}

fn shown(s: &str) -> String {
    s.chars().take(40).collect()
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Identity {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Self, UserError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Identity {
    type Error = UserError;
    fn try_from(s: String) -> Result<Self, UserError> {
        Self::parse(&s)
    }
}

impl From<Identity> for String {
    fn from(i: Identity) -> String {
        i.0
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Identity {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Identity {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// How to show a stored actor or role holder when no display name is cached: an identity by
/// [`Identity::fallback_name`], and a value written before identities (a plain name) as it is.
pub fn fallback_name(stored: &str) -> &str {
    match Identity::parse(stored) {
        Ok(_) => match stored.split_once(':') {
            Some(("cli" | "system" | "github", name)) => name,
            _ => stored,
        },
        Err(_) => stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_platform_and_id() {
        let i = Identity::parse("slack:U024BE7LH").unwrap();
        assert_eq!(i.to_string(), "slack:U024BE7LH");
        assert_eq!((i.platform(), i.id()), ("slack", "U024BE7LH"));
        assert_eq!(i.slack_user(), Some("U024BE7LH"));
        assert_eq!(
            Identity::parse("discord:80351110224678912").unwrap().id(),
            "80351110224678912"
        );
        assert_eq!(Identity::parse("cli:alice").unwrap().slack_user(), None);
        assert_eq!(
            Identity::parse("SLACK:U1").unwrap().as_str(),
            "slack:U1",
            "the platform is case-insensitive"
        );
    }

    #[test]
    fn email_identities_are_one_lower_case_address() {
        let i = Identity::parse("email:alice+ops@example.co.uk").unwrap();
        assert_eq!((i.platform(), i.id()), ("email", "alice+ops@example.co.uk"));
        for bad in [
            "email:alice",
            "email:a@b@c",
            "email:@example.com",
            "email:Alice@example.com",
            "email:a b@example.com",
            "email:<a>@example.com",
        ] {
            assert!(Identity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_malformed_identities_with_a_sentence() {
        for bad in [
            "alice",
            "slack:",
            "slack:bob",
            "slack:<@U1>",
            "discord:abc",
            "irc:bob",
            "cli:two words",
            "cli:<b>",
        ] {
            let e = Identity::parse(bad).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(
            Identity::parse("slack:bob")
                .unwrap_err()
                .to_string()
                .contains("not a Slack user id")
        );
    }

    #[test]
    fn a_bare_name_typed_in_the_cli_is_a_local_account() {
        assert_eq!(
            Identity::from_user_arg("dave").unwrap().as_str(),
            "cli:dave"
        );
        assert_eq!(
            Identity::from_user_arg("@dave").unwrap().as_str(),
            "cli:dave"
        );
        assert_eq!(
            Identity::from_user_arg("slack:U1").unwrap().as_str(),
            "slack:U1"
        );
        assert!(Identity::from_user_arg("<@U1|bob>").is_err());
        assert!(Identity::from_user_arg("slack:nope").is_err());
    }

    #[test]
    fn fallback_names() {
        assert_eq!(fallback_name("cli:carol"), "carol");
        assert_eq!(fallback_name("system:firebreak"), "firebreak");
        assert_eq!(fallback_name("github:octocat"), "octocat");
        assert_eq!(fallback_name("slack:U1"), "slack:U1");
        assert_eq!(
            fallback_name("alice"),
            "alice",
            "rows from before identities"
        );
        assert_eq!(fallback_name("<@U1>"), "<@U1>");
    }

    #[test]
    fn serializes_as_its_string() {
        let i = Identity::parse("slack:U1").unwrap();
        assert_eq!(serde_json::to_string(&i).unwrap(), "\"slack:U1\"");
        let back: Identity = serde_json::from_str("\"cli:bob\"").unwrap();
        assert_eq!(back.as_str(), "cli:bob");
        assert!(serde_json::from_str::<Identity>("\"bob\"").is_err());
    }
}
