//! Checking an ID token and reading who it names: the signature against the provider's keys
//! (RSA and ECDSA only, never `none` or a shared secret), `iss`, `aud`, `exp` (with a minute
//! of leeway), the `nonce` this browser's sign-in was started with, and for Slack the
//! workspace. Pure: the keys are given, fetched by `provider`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::Value;

use super::config::ProviderKind;
use crate::incident::Identity;

/// Clock difference allowed between us and the provider, in seconds.
const LEEWAY_SECS: u64 = 60;

/// Algorithms an ID token may be signed with.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// What the token must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub kind: &'a ProviderKind,
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub identity: Identity,
    pub name: String,
}

/// Why a token was refused. [`Refused::UnknownKey`] may be worth fetching the keys again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No key with the token's `kid`.
    UnknownKey,
    /// Anything else, as a sentence for the sign-in page (`{provider}` is filled in).
    Sentence(String),
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Value>,
    #[serde(rename = "https://slack.com/user_id", default)]
    slack_user: Option<String>,
    #[serde(rename = "https://slack.com/team_id", default)]
    slack_team: Option<String>,
}

/// The person `token` names, when it holds up against `keys` and `expected`.
pub fn verify_id_token(
    token: &str,
    keys: &JwkSet,
    expected: &Expected<'_>,
) -> Result<Person, Refused> {
    let refused = |s: &str| Refused::Sentence(s.to_string());
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| refused("{provider} sent an ID token that could not be read."))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refused(
            "{provider} sent an ID token signed in a way firebreak does not accept.",
        ));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(Refused::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| Refused::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    // The issuer as configured, or with the trailing `/` some providers put in `iss`.
    validation.set_issuer(&[expected.issuer.to_string(), format!("{}/", expected.issuer)]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| Refused::Sentence(decode_refusal(e.kind()).to_string()))?
        .claims;
    if claims.nonce.as_deref() != Some(expected.nonce) {
        return Err(refused(
            "This sign-in's ID token was not made for the sign-in this browser started (its nonce differs), so it was refused; start again.",
        ));
    }
    person(claims, expected.kind)
}

fn decode_refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => {
            "The ID token's signature does not match {provider}'s keys, so it was refused."
        }
        ErrorKind::ExpiredSignature => "The ID token from {provider} has expired; start again.",
        ErrorKind::ImmatureSignature => {
            "The ID token from {provider} is not valid yet; check the server's clock."
        }
        ErrorKind::InvalidIssuer => {
            "The ID token was not issued by the configured {provider} issuer, so it was refused."
        }
        ErrorKind::InvalidAudience => {
            "The ID token was made for another application (its audience is not this client id), so it was refused."
        }
        ErrorKind::MissingRequiredClaim(_) => {
            "The ID token from {provider} lacks a required claim (iss, aud, exp or sub), so it was refused."
        }
        _ => "The ID token from {provider} could not be verified, so it was refused.",
    }
}

/// The identity the claims give: `slack:<user id>` in the configured workspace, or
/// `email:<address>` when the provider says the address is verified.
fn person(claims: Claims, kind: &ProviderKind) -> Result<Person, Refused> {
    let refused = |s: String| Refused::Sentence(s);
    match kind {
        ProviderKind::Slack { team_id } => {
            if claims.slack_team.as_deref() != Some(team_id.as_str()) {
                return Err(refused(format!(
                    "That Slack account belongs to another workspace; sign in with your account in the workspace {team_id}."
                )));
            }
            let user = claims.slack_user.or(claims.sub).unwrap_or_default();
            let identity = Identity::slack(&user).ok_or_else(|| {
                refused(
                    "Slack did not say which user signed in, so the sign-in was refused.".into(),
                )
            })?;
            let name = shown_name(claims.name.as_deref(), identity.as_str());
            Ok(Person { identity, name })
        }
        ProviderKind::Generic => {
            let verified = matches!(claims.email_verified, Some(Value::Bool(true)))
                || matches!(&claims.email_verified, Some(Value::String(s)) if s == "true");
            let email = claims.email.map(|e| e.trim().to_ascii_lowercase());
            let identity = match (email, verified) {
                (Some(email), true) => Identity::new("email", &email),
                _ => None,
            }
            .ok_or_else(|| {
                refused(
                    "{provider} did not vouch for your email address (no verified email in the ID token), so you are not signed in."
                        .into(),
                )
            })?;
            let name = shown_name(claims.name.as_deref(), identity.id());
            Ok(Person { identity, name })
        }
    }
}

/// The name to show: the token's `name` without control characters, at most 80 characters,
/// else `fallback`.
fn shown_name(name: Option<&str>, fallback: &str) -> String {
    let cleaned: String = name
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn keys() -> JwkSet {
        let jwk = include_str!("../../../tests/fixtures/oidc/provider-jwk.json");
        serde_json::from_str(&format!("{{\"keys\": [{jwk}]}}")).unwrap()
    }

    fn signed(header: Header, key: &EncodingKey, iss: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": iss, "aud": "cid", "sub": "U1", "exp": now + 60, "nonce": "n1",
            "https://slack.com/team_id": "T1", "https://slack.com/user_id": "U1",
        });
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    #[test]
    fn a_good_token_passes_and_a_shared_secret_token_does_not() {
        let kind = ProviderKind::Slack {
            team_id: "T1".into(),
        };
        let expected = Expected {
            issuer: "https://idp.example",
            client_id: "cid",
            nonce: "n1",
            kind: &kind,
        };
        let pem = include_str!("../../../tests/fixtures/oidc/provider-key.pem");
        let rsa = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let mut rs256 = Header::new(Algorithm::RS256);
        rs256.kid = Some("provider-1".into());
        for iss in ["https://idp.example", "https://idp.example/"] {
            let token = signed(rs256.clone(), &rsa, iss);
            assert!(verify_id_token(&token, &keys(), &expected).is_ok(), "{iss}");
        }
        let token = signed(rs256.clone(), &rsa, "https://idp.example.evil");
        assert!(verify_id_token(&token, &keys(), &expected).is_err());
        // The classic confusion: HS256 with the public key's text as the shared secret.
        let jwk = include_str!("../../../tests/fixtures/oidc/provider-jwk.json");
        let mut hs256 = Header::new(Algorithm::HS256);
        hs256.kid = Some("provider-1".into());
        let token = signed(
            hs256,
            &EncodingKey::from_secret(jwk.as_bytes()),
            "https://idp.example",
        );
        let Err(Refused::Sentence(s)) = verify_id_token(&token, &keys(), &expected) else {
            panic!("an HS256 token was accepted")
        };
        assert!(s.contains("does not accept"), "{s}");
        let mut unknown = rs256;
        unknown.kid = Some("rotated-2".into());
        let token = signed(unknown, &rsa, "https://idp.example");
        assert_eq!(
            verify_id_token(&token, &keys(), &expected),
            Err(Refused::UnknownKey)
        );
    }

    #[test]
    fn names_are_cleaned_and_fall_back() {
        assert_eq!(shown_name(Some(" Ada\u{7}\n "), "x"), "Ada");
        assert_eq!(shown_name(Some(""), "slack:U1"), "slack:U1");
        assert_eq!(shown_name(None, "a@b.c"), "a@b.c");
        assert_eq!(shown_name(Some(&"é".repeat(200)), "x").chars().count(), 80);
    }

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn slack_needs_the_configured_workspace() {
        let kind = ProviderKind::Slack {
            team_id: "T1".into(),
        };
        let ok = claims(serde_json::json!({
            "https://slack.com/team_id": "T1", "https://slack.com/user_id": "U9", "name": "Ada"
        }));
        assert_eq!(
            person(ok, &kind).unwrap(),
            Person {
                identity: Identity::slack("U9").unwrap(),
                name: "Ada".into()
            }
        );
        let other = claims(serde_json::json!({
            "https://slack.com/team_id": "T2", "https://slack.com/user_id": "U9"
        }));
        let Err(Refused::Sentence(s)) = person(other, &kind) else {
            panic!("another workspace was let in")
        };
        assert!(s.contains("another workspace"), "{s}");
    }

    #[test]
    fn a_generic_provider_must_verify_the_email() {
        let ok = claims(serde_json::json!({"email": "Ada@Example.com", "email_verified": true}));
        assert_eq!(
            person(ok, &ProviderKind::Generic)
                .unwrap()
                .identity
                .as_str(),
            "email:ada@example.com"
        );
        let as_text = claims(serde_json::json!({"email": "a@b.c", "email_verified": "true"}));
        assert!(person(as_text, &ProviderKind::Generic).is_ok());
        for unverified in [
            serde_json::json!({"email": "a@b.c", "email_verified": false}),
            serde_json::json!({"email": "a@b.c"}),
            serde_json::json!({"email_verified": true}),
            serde_json::json!({"email": "not an email", "email_verified": true}),
        ] {
            assert!(person(claims(unverified), &ProviderKind::Generic).is_err());
        }
    }
}
