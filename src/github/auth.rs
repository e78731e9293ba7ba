//! GitHub authentication: a plain token, or a GitHub App. An App signs a short-lived JWT
//! (RS256) with its private key and trades it for an installation token, which is cached
//! and refreshed five minutes before it expires.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Refresh installation tokens this long before GitHub says they expire.
const REFRESH_MARGIN_MINUTES: i64 = 5;

#[derive(Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// Signs the App JWT GitHub expects: issued a minute in the past (clock drift), valid nine
/// minutes (GitHub's maximum is ten).
pub fn app_jwt(app_id: &str, key: &EncodingKey, now: DateTime<Utc>) -> anyhow::Result<String> {
    let claims = Claims {
        iat: (now - Duration::seconds(60)).timestamp(),
        exp: (now + Duration::minutes(9)).timestamp(),
        iss: app_id.to_string(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        key,
    )?)
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A GitHub App's credentials and its cached installation token.
pub struct AppAuth {
    pub app_id: String,
    pub key: EncodingKey,
    pub installation_id: Mutex<Option<u64>>,
    cached: Mutex<Option<InstallationToken>>,
}

impl AppAuth {
    pub fn new(
        app_id: &str,
        private_key: &SecretString,
        installation_id: Option<u64>,
    ) -> anyhow::Result<Self> {
        let key =
            EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes()).map_err(|_| {
                anyhow::anyhow!(
                    "the GitHub App private key (GITHUB_APP_PRIVATE_KEY, or the file GITHUB_APP_PRIVATE_KEY_FILE names) is not an RSA private key in PEM form"
                )
            })?;
        Ok(Self {
            app_id: app_id.to_string(),
            key,
            installation_id: Mutex::new(installation_id),
            cached: Mutex::new(None),
        })
    }

    /// The cached token if it is still good for a while.
    pub async fn fresh_token(&self, now: DateTime<Utc>) -> Option<String> {
        let cached = self.cached.lock().await;
        cached
            .as_ref()
            .filter(|t| t.expires_at - Duration::minutes(REFRESH_MARGIN_MINUTES) > now)
            .map(|t| t.token.clone())
    }

    pub async fn store(&self, token: InstallationToken) {
        *self.cached.lock().await = Some(token);
    }

    /// Forgets the token (GitHub answered 401 with it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn jwt_is_rs256_with_github_claims() {
        let pem = include_str!("../../tests/fixtures/github-app-test-key.pem");
        let public = include_str!("../../tests/fixtures/github-app-test-key.pub.pem");
        let now = Utc::now();
        let jwt = app_jwt(
            "12345",
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            now,
        )
        .unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&["12345"]);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &jwt,
            &DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(
            decoded.claims["exp"].as_i64().unwrap() - decoded.claims["iat"].as_i64().unwrap(),
            600
        );
    }
}
