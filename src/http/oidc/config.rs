//! `[web.slack_signin]` and `[web.oidc]`: which providers people may sign in to the web pages
//! with, and how each is reached. The client secrets come from the environment
//! (`SLACK_CLIENT_SECRET`, `OIDC_CLIENT_SECRET`) and never appear in `Debug` output or logs.

use secrecy::SecretString;
use serde::Deserialize;

use crate::chat::slack::api::DEFAULT_SLACK_API_URL;
use crate::config::env_secret;

/// `SLACK_CLIENT_SECRET`: the Slack app's client secret (Basic Information → App Credentials).
pub const SLACK_SECRET_ENV: &str = "SLACK_CLIENT_SECRET";
/// `OIDC_CLIENT_SECRET`: the generic provider's client secret.
pub const OIDC_SECRET_ENV: &str = "OIDC_CLIENT_SECRET";

/// `[web]`: the web pages' sign-in providers. Both may be set; neither leaves only API-token
/// sign-in.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `[web.slack_signin]`: Sign in with Slack, limited to one workspace.
    pub slack_signin: Option<SlackSignInConfig>,
    /// `[web.oidc]`: a generic OpenID Connect provider (Google, Okta, Keycloak, …).
    pub oidc: Option<OidcConfig>,
}

/// `[web.slack_signin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSignInConfig {
    /// The Slack app's client id (`123.456`).
    pub client_id: String,
    /// The workspace (team id, `T…`) people must belong to; a sign-in from any other
    /// workspace is refused.
    pub team_id: String,
    /// Where the ID tokens come from and the authorize page and keys live.
    #[serde(default = "default_slack_issuer")]
    pub issuer: String,
}

fn default_slack_issuer() -> String {
    "https://slack.com".into()
}

/// `[web.oidc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL; its `/.well-known/openid-configuration` names the endpoints.
    pub issuer: String,
    pub client_id: String,
    /// The button says "Sign in with <name>".
    #[serde(default = "default_oidc_name")]
    pub name: String,
}

fn default_oidc_name() -> String {
    "single sign-on".into()
}

/// The secrets and endpoints the environment gives sign-in.
#[derive(Clone, Default)]
pub struct SignInSecrets {
    pub slack_client_secret: Option<SecretString>,
    pub oidc_client_secret: Option<SecretString>,
    /// `SLACK_API_URL` (Slack's token endpoint is `{api}/openid.connect.token`).
    pub slack_api_url: Option<String>,
}

impl std::fmt::Debug for SignInSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInSecrets")
            .field("slack_client_secret", &self.slack_client_secret.is_some())
            .field("oidc_client_secret", &self.oidc_client_secret.is_some())
            .field("slack_api_url", &self.slack_api_url)
            .finish()
    }
}

impl SignInSecrets {
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            slack_client_secret: env_secret(SLACK_SECRET_ENV)?,
            oidc_client_secret: env_secret(OIDC_SECRET_ENV)?,
            slack_api_url: std::env::var("SLACK_API_URL").ok(),
        })
    }
}

/// Where a provider's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// Known up front (Slack).
    Fixed(ProviderUrls),
    /// Read from the issuer's discovery document, once, when first needed.
    Discover(String),
}

/// A provider's three endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUrls {
    pub authorize: String,
    pub token: String,
    pub jwks: String,
    /// Send the client secret as HTTP Basic (else as form fields, as Slack wants).
    pub basic_auth: bool,
}

/// Which provider, and what it alone checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Only people in this workspace (`https://slack.com/team_id`).
    Slack { team_id: String },
    /// Signed in by a verified email.
    Generic,
}

/// One provider, resolved from the config and the environment.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `slack` or `oidc`: its paths are `/signin/<slug>` and `/signin/<slug>/callback`.
    pub slug: &'static str,
    /// For sentences and the button: "Slack", "Google".
    pub name: String,
    pub kind: ProviderKind,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub endpoints: Endpoints,
    /// `{public_url}/signin/<slug>/callback`, to be registered with the provider.
    pub redirect_uri: String,
}

/// Every configured provider, resolved; a sentence naming the missing piece otherwise.
pub fn resolve(
    web: &WebConfig,
    public_url: Option<&str>,
    secrets: &SignInSecrets,
) -> Result<Vec<ProviderConfig>, String> {
    let mut providers = Vec::new();
    if let Some(slack) = &web.slack_signin {
        providers.push(slack_provider(slack, public_url, secrets)?);
    }
    if let Some(oidc) = &web.oidc {
        providers.push(generic_provider(oidc, public_url, secrets)?);
    }
    Ok(providers)
}

fn slack_provider(
    slack: &SlackSignInConfig,
    public_url: Option<&str>,
    secrets: &SignInSecrets,
) -> Result<ProviderConfig, String> {
    let team_id = slack.team_id.trim();
    if !(team_id.starts_with('T') || team_id.starts_with('E'))
        || !team_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(format!(
            "web.slack_signin.team_id \"{team_id}\" is not a Slack team id; it looks like T0123ABCD."
        ));
    }
    let issuer = base_url("web.slack_signin.issuer", &slack.issuer)?;
    let api = secrets
        .slack_api_url
        .as_deref()
        .unwrap_or(DEFAULT_SLACK_API_URL)
        .trim_end_matches('/');
    Ok(ProviderConfig {
        slug: "slack",
        name: "Slack".into(),
        kind: ProviderKind::Slack {
            team_id: team_id.to_string(),
        },
        endpoints: Endpoints::Fixed(ProviderUrls {
            authorize: format!("{issuer}/openid/connect/authorize"),
            token: format!("{api}/openid.connect.token"),
            jwks: format!("{issuer}/openid/connect/keys"),
            basic_auth: false,
        }),
        issuer,
        client_id: client_id("web.slack_signin.client_id", &slack.client_id)?,
        client_secret: secret(&secrets.slack_client_secret, SLACK_SECRET_ENV, "Slack")?,
        redirect_uri: redirect_uri(public_url, "slack")?,
    })
}

fn generic_provider(
    oidc: &OidcConfig,
    public_url: Option<&str>,
    secrets: &SignInSecrets,
) -> Result<ProviderConfig, String> {
    let issuer = base_url("web.oidc.issuer", &oidc.issuer)?;
    let name = oidc.name.trim();
    if name.is_empty() || name.chars().count() > 40 {
        return Err(
            "web.oidc.name must be 1 to 40 characters (it reads \"Sign in with <name>\").".into(),
        );
    }
    Ok(ProviderConfig {
        slug: "oidc",
        name: name.to_string(),
        kind: ProviderKind::Generic,
        endpoints: Endpoints::Discover(format!("{issuer}/.well-known/openid-configuration")),
        issuer,
        client_id: client_id("web.oidc.client_id", &oidc.client_id)?,
        client_secret: secret(&secrets.oidc_client_secret, OIDC_SECRET_ENV, name)?,
        redirect_uri: redirect_uri(public_url, "oidc")?,
    })
}

/// An http(s) URL without its trailing `/`.
fn base_url(key: &str, url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
            Ok(url.to_string())
        }
        _ => Err(format!("{key} \"{url}\" is not an http(s) URL.")),
    }
}

fn client_id(key: &str, id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err(format!(
            "{key} is empty; copy it from the provider's app settings."
        ));
    }
    Ok(id.to_string())
}

fn secret(value: &Option<SecretString>, env: &str, who: &str) -> Result<SecretString, String> {
    value.clone().ok_or_else(|| {
        format!("Sign-in with {who} is configured but {env} is not set; set it to the app's client secret.")
    })
}

fn redirect_uri(public_url: Option<&str>, slug: &str) -> Result<String, String> {
    let public = public_url.map(|u| u.trim().trim_end_matches('/'));
    match public {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            Ok(format!("{u}/signin/{slug}/callback"))
        }
        _ => Err(
            "Signing in with a provider needs server.public_url (the address people reach firebreak at): the provider sends them back to <public_url>/signin/…/callback."
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SignInSecrets {
        SignInSecrets {
            slack_client_secret: Some(SecretString::from("s3cret")),
            oidc_client_secret: Some(SecretString::from("0idc")),
            slack_api_url: Some("http://fake/api/".into()),
        }
    }

    fn web(toml_text: &str) -> WebConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn slack_endpoints_derive_from_the_issuer_and_the_api_url() {
        let w = web("[slack_signin]\nclient_id = \"1.2\"\nteam_id = \"T123\"\n");
        let p = resolve(&w, Some("https://fb.example.com/"), &secrets()).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].issuer, "https://slack.com");
        assert_eq!(
            p[0].endpoints,
            Endpoints::Fixed(ProviderUrls {
                authorize: "https://slack.com/openid/connect/authorize".into(),
                token: "http://fake/api/openid.connect.token".into(),
                jwks: "https://slack.com/openid/connect/keys".into(),
                basic_auth: false,
            })
        );
        assert_eq!(
            p[0].redirect_uri,
            "https://fb.example.com/signin/slack/callback"
        );
        assert!(!format!("{:?} {:?}", p[0], secrets()).contains("s3cret"));
    }

    #[test]
    fn a_generic_provider_is_discovered_and_both_may_be_set() {
        let w = web(
            "[slack_signin]\nclient_id = \"1.2\"\nteam_id = \"T123\"\n[oidc]\nissuer = \"https://accounts.google.com/\"\nclient_id = \"abc\"\nname = \"Google\"\n",
        );
        let p = resolve(&w, Some("http://127.0.0.1:8080"), &secrets()).unwrap();
        assert_eq!(p[1].name, "Google");
        assert_eq!(
            p[1].endpoints,
            Endpoints::Discover(
                "https://accounts.google.com/.well-known/openid-configuration".into()
            )
        );
    }

    #[test]
    fn missing_pieces_are_named_in_a_sentence() {
        let w = web("[slack_signin]\nclient_id = \"1.2\"\nteam_id = \"T123\"\n");
        let e = resolve(&w, None, &secrets()).unwrap_err();
        assert!(e.contains("server.public_url"), "{e}");
        let e = resolve(&w, Some("https://x"), &SignInSecrets::default()).unwrap_err();
        assert!(e.contains("SLACK_CLIENT_SECRET"), "{e}");
        let w = web("[slack_signin]\nclient_id = \"1.2\"\nteam_id = \"acme\"\n");
        assert!(
            resolve(&w, Some("https://x"), &secrets())
                .unwrap_err()
                .contains("team id")
        );
        let w = web("[oidc]\nissuer = \"not a url\"\nclient_id = \"a\"\n");
        assert!(
            resolve(&w, Some("https://x"), &secrets())
                .unwrap_err()
                .contains("web.oidc.issuer")
        );
        assert!(
            toml::from_str::<WebConfig>(
                "[oidc]\nissuer = \"https://x\"\nclient_id = \"a\"\nclient_secret = \"no\"\n"
            )
            .is_err()
        );
    }
}
