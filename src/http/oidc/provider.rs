//! Talking to a sign-in provider over HTTPS (reqwest, rustls): its discovery document (read
//! once), its signing keys (cached, fetched again when a token names a key not seen yet), and
//! exchanging an authorization code for an ID token, which is then checked by `verify`.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::config::{Endpoints, ProviderConfig, ProviderUrls};
use super::verify::{self, Expected, Person, Refused};

/// How long any one call to the provider may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys are fetched again for an unknown `kid` at most this often, so forged tokens cannot
/// make firebreak hammer the provider.
const REFETCH_EVERY: Duration = Duration::from_secs(30);

/// Why signing in with a provider did not work.
#[derive(Debug)]
pub enum Failure {
    /// The provider could not be reached or answered nonsense: logged, and "could not
    /// reach …" shown.
    Unreachable(anyhow::Error),
    /// The provider or its token said no: a sentence for the sign-in page.
    Refused(String),
}

/// A configured provider with its HTTP client and caches.
pub struct Provider {
    pub config: ProviderConfig,
    http: reqwest::Client,
    /// The discovered endpoints, once read (fixed ones are not kept here).
    urls: Mutex<Option<ProviderUrls>>,
    keys: Mutex<Option<(JwkSet, Instant)>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    /// Slack: `"ok": false` with `"error"`; others: `"error"` with a 4xx.
    #[serde(default)]
    error: Option<String>,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            config,
            http,
            urls: Mutex::new(None),
            keys: Mutex::new(None),
        })
    }

    /// The endpoints: fixed, or from the discovery document (read once it is read well).
    pub async fn urls(&self) -> Result<ProviderUrls, Failure> {
        let url = match &self.config.endpoints {
            Endpoints::Fixed(urls) => return Ok(urls.clone()),
            Endpoints::Discover(url) => url,
        };
        let mut cached = self.urls.lock().await;
        if let Some(urls) = cached.as_ref() {
            return Ok(urls.clone());
        }
        let doc: Discovery = self.get_json(url).await?;
        if doc.issuer.trim_end_matches('/') != self.config.issuer {
            return Err(Failure::Unreachable(anyhow::anyhow!(
                "the discovery document at {url} names the issuer {:?}, not the configured {:?}",
                doc.issuer,
                self.config.issuer
            )));
        }
        let basic_auth = doc
            .token_endpoint_auth_methods_supported
            .is_none_or(|m| m.iter().any(|m| m == "client_secret_basic"));
        let urls = ProviderUrls {
            authorize: doc.authorization_endpoint,
            token: doc.token_endpoint,
            jwks: doc.jwks_uri,
            basic_auth,
        };
        *cached = Some(urls.clone());
        Ok(urls)
    }

    /// Exchanges `code` for an ID token and checks it against `nonce`.
    pub async fn sign_in(&self, code: &str, nonce: &str) -> Result<Person, Failure> {
        let urls = self.urls().await?;
        let id_token = self.exchange(&urls, code).await?;
        let expected = Expected {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            nonce,
            kind: &self.config.kind,
        };
        let keys = self.keys(&urls, false).await?;
        let checked = match verify::verify_id_token(&id_token, &keys, &expected) {
            Err(Refused::UnknownKey) => {
                let keys = self.keys(&urls, true).await?;
                verify::verify_id_token(&id_token, &keys, &expected)
            }
            other => other,
        };
        checked.map_err(|refused| {
            match refused {
            Refused::UnknownKey => Failure::Refused(
                "The ID token was signed with a key {provider} does not publish, so it was refused."
                    .into(),
            ),
            Refused::Sentence(s) => Failure::Refused(s),
        }
        })
    }

    async fn exchange(&self, urls: &ProviderUrls, code: &str) -> Result<String, Failure> {
        let secret = self.config.client_secret.expose_secret();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_uri.as_str()),
        ];
        let mut request = self.http.post(&urls.token);
        if urls.basic_auth {
            request = request.basic_auth(&self.config.client_id, Some(secret));
        } else {
            form.push(("client_id", &self.config.client_id));
            form.push(("client_secret", secret));
        }
        let response =
            request.form(&form).send().await.map_err(|e| {
                Failure::Unreachable(anyhow::Error::new(e).context("the token call"))
            })?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Failure::Unreachable(anyhow::anyhow!(
                "the token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(self.code_refused(&status.to_string()));
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| {
            Failure::Unreachable(anyhow::Error::new(e).context("reading the token answer"))
        })?;
        match answer.id_token {
            Some(token) => Ok(token),
            None => Err(self.code_refused(answer.error.as_deref().unwrap_or("no id_token"))),
        }
    }

    fn code_refused(&self, why: &str) -> Failure {
        tracing::warn!(provider = %self.config.name, why, "the provider refused the authorization code");
        Failure::Refused(
            "{provider} did not accept this sign-in (the code was refused or has expired); start again."
                .into(),
        )
    }

    /// The provider's keys: cached, or fetched when there are none or `refresh` is asked for
    /// (and the last fetch is old enough).
    async fn keys(&self, urls: &ProviderUrls, refresh: bool) -> Result<JwkSet, Failure> {
        let mut cached = self.keys.lock().await;
        if let Some((keys, at)) = cached.as_ref()
            && (!refresh || at.elapsed() < REFETCH_EVERY)
        {
            return Ok(keys.clone());
        }
        let keys: JwkSet = self.get_json(&urls.jwks).await?;
        *cached = Some((keys.clone(), Instant::now()));
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Failure> {
        let unreachable = |e: anyhow::Error| Failure::Unreachable(e.context(format!("GET {url}")));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(e.into()))?;
        let response = response
            .error_for_status()
            .map_err(|e| unreachable(e.into()))?;
        response.json().await.map_err(|e| unreachable(e.into()))
    }
}
