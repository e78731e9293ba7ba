//! `[github]` in the config, and the GitHub secrets from the environment.

use std::ffi::OsString;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{env_secret, env_secret_list};
use crate::incident::model::Severity;

/// Where the GitHub REST API lives unless `GITHUB_API_URL` says otherwise.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubConfig {
    /// Repositories to freeze: `owner/repo`, or `owner/*` for every repository of an org.
    pub repos: Vec<String>,
    /// Branches to freeze; empty means each repository's default branch.
    pub branches: Vec<String>,
    /// Freeze `owner/*` scopes with one organization ruleset (needs a plan with org rulesets).
    pub org_rulesets: bool,
    /// Who may still push to a frozen branch (a hotfix team, a release app).
    pub bypass: Vec<BypassActor>,
    /// With token auth: the bypass actor the token merges exempted pull requests as (e.g.
    /// `{ actor_id = 5, actor_type = "RepositoryRole" }` for a token of a repository admin).
    /// It is added to the freeze ruleset's bypass list. With GitHub App auth the App itself
    /// (`Integration`, the App's id) is added instead, and this is not needed.
    pub merge_actor: Option<BypassActor>,
    /// Severities whose declaration freezes merges.
    pub auto_freeze: Vec<Severity>,
    /// When an incident's freeze is lifted on its own.
    pub auto_unfreeze_on: AutoUnfreeze,
    /// How far back "what did we change last?" looks when an incident is declared.
    pub recent_changes_hours: u32,
    /// How often the reconciler re-checks GitHub for drift.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub pacing: Pacing,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self {
            repos: Vec::new(),
            branches: Vec::new(),
            org_rulesets: false,
            bypass: Vec::new(),
            merge_actor: None,
            auto_freeze: Vec::new(),
            auto_unfreeze_on: AutoUnfreeze::Resolved,
            recent_changes_hours: 24,
            reconcile_interval: Duration::from_secs(180),
            timeout: Duration::from_secs(10),
            pacing: Pacing::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoUnfreeze {
    Resolved,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BypassActor {
    pub actor_id: u64,
    /// `Team`, `Integration` (a GitHub App), `RepositoryRole` or `OrganizationAdmin`.
    pub actor_type: String,
    #[serde(default = "always")]
    pub bypass_mode: String,
}

fn always() -> String {
    "always".into()
}

/// GitHub's secondary limits on content-creating requests, which firebreak stays under.
/// `minute` exists so tests can scale time down; the hour is always 60 of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pacing {
    pub per_minute: u32,
    pub per_hour: u32,
    pub max_concurrent: u32,
    #[serde(with = "humantime_serde")]
    pub minute: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            per_minute: 80,
            per_hour: 500,
            max_concurrent: 100,
            minute: Duration::from_secs(60),
        }
    }
}

/// GitHub credentials from the environment: a token, or a GitHub App.
#[derive(Clone)]
pub struct GitHubSecrets {
    pub api_url: String,
    pub auth: GitHubAuth,
    /// `GITHUB_WEBHOOK_SECRET`, comma-separated to allow rotation.
    pub webhook_secrets: Vec<SecretString>,
}

#[derive(Clone)]
pub enum GitHubAuth {
    Token(SecretString),
    App {
        app_id: String,
        private_key: SecretString,
        installation_id: Option<u64>,
    },
}

impl GitHubSecrets {
    /// `Ok(None)` when GitHub is not configured.
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let api_url = var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_GITHUB_API_URL.into());
        // Secrets that are set must not be empty, checked even when GitHub ends up off.
        let webhook_secrets = env_secret_list("GITHUB_WEBHOOK_SECRET")?;
        let token = env_secret("GITHUB_TOKEN")?;
        let private_key = app_private_key(
            env_secret("GITHUB_APP_PRIVATE_KEY")?,
            std::env::var_os("GITHUB_APP_PRIVATE_KEY_FILE"),
        )?;
        let auth = match (token, var("GITHUB_APP_ID"), private_key) {
            (Some(token), None, _) => GitHubAuth::Token(token),
            (None, Some(app_id), Some(private_key)) => {
                GitHubAuth::App {
                    app_id,
                    private_key,
                    installation_id: match var("GITHUB_APP_INSTALLATION_ID") {
                        Some(v) => Some(v.parse().map_err(|_| {
                            "GITHUB_APP_INSTALLATION_ID must be a number".to_string()
                        })?),
                        None => None,
                    },
                }
            }
            (None, None, None) => return Ok(None),
            (Some(_), Some(_), _) => {
                return Err("set GITHUB_TOKEN or GITHUB_APP_ID, not both".into());
            }
            (None, Some(_), None) => {
                return Err("GITHUB_APP_ID is set but neither GITHUB_APP_PRIVATE_KEY nor GITHUB_APP_PRIVATE_KEY_FILE is".into());
            }
            (None, None, Some(_)) => {
                return Err("a GitHub App private key is set (GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE) but GITHUB_APP_ID is not".into());
            }
        };
        Ok(Some(Self {
            api_url: api_url.trim_end_matches('/').to_string(),
            auth,
            webhook_secrets,
        }))
    }
}

/// The GitHub App's private key (PEM): given inline in `GITHUB_APP_PRIVATE_KEY` (with `\n`
/// written for line breaks where a setting can't hold them), or read from the file that
/// `GITHUB_APP_PRIVATE_KEY_FILE` names (a mounted Kubernetes or Docker secret). Both at once
/// is refused rather than guessing which one is current. Errors name the variable or the path,
/// never the key.
fn app_private_key(
    inline: Option<SecretString>,
    file: Option<OsString>,
) -> Result<Option<SecretString>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            Err("set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE, not both".into())
        }
        (Some(key), None) => Ok(Some(key.expose_secret().replace("\\n", "\n").into())),
        (None, Some(path)) if path.to_string_lossy().trim().is_empty() => {
            Err("GITHUB_APP_PRIVATE_KEY_FILE is set but empty; give it a path, or unset it".into())
        }
        (None, Some(path)) => {
            let path = std::path::PathBuf::from(path);
            let key = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read the GitHub App private key from {} (GITHUB_APP_PRIVATE_KEY_FILE): {e}",
                    path.display()
                )
            })?;
            if key.trim().is_empty() {
                return Err(format!(
                    "{} (GITHUB_APP_PRIVATE_KEY_FILE) is empty; it should hold the App's private key in PEM form",
                    path.display()
                ));
            }
            Ok(Some(SecretString::from(key)))
        }
        (None, None) => Ok(None),
    }
}

impl std::fmt::Debug for GitHubSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSecrets")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = include_str!("../../tests/fixtures/github-app-test-key.pem");

    #[test]
    fn the_private_key_may_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pem");
        std::fs::write(&path, PEM).unwrap();
        let key = app_private_key(None, Some(path.into_os_string()))
            .unwrap()
            .unwrap();
        assert_eq!(key.expose_secret(), PEM);
        // The key read from a file signs: it is what GitHub App auth is given.
        crate::github::auth::AppAuth::new("1", &key, None).unwrap();
    }

    #[test]
    fn the_inline_key_keeps_its_escaped_line_breaks_working() {
        let inline = SecretString::from(PEM.replace('\n', "\\n"));
        let key = app_private_key(Some(inline), None).unwrap().unwrap();
        assert_eq!(key.expose_secret(), PEM);
        assert!(app_private_key(None, None).unwrap().is_none());
    }

    #[test]
    fn the_key_and_its_file_together_are_refused() {
        let err = app_private_key(
            Some(SecretString::from("-----BEGIN RSA PRIVATE KEY-----hunter2")),
            Some(OsString::from("/run/secrets/app.pem")),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE, not both"
        );
    }

    #[test]
    fn an_unreadable_key_file_is_named_and_the_key_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-key.pem");
        let err = app_private_key(None, Some(missing.clone().into_os_string())).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "cannot read the GitHub App private key from {} (GITHUB_APP_PRIVATE_KEY_FILE): ",
                missing.display()
            )),
            "{err}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "\n").unwrap();
        let err = app_private_key(None, Some(empty.clone().into_os_string())).unwrap_err();
        assert!(err.contains(&empty.display().to_string()), "{err}");

        let err = app_private_key(None, Some(OsString::from(" "))).unwrap_err();
        assert_eq!(
            err,
            "GITHUB_APP_PRIVATE_KEY_FILE is set but empty; give it a path, or unset it"
        );

        // A file that is not text (a DER key, say) is refused without echoing its bytes.
        let binary = dir.path().join("key.der");
        std::fs::write(&binary, [0x30, 0x82, 0xff, 0xfe, b'h', b'u', b'n']).unwrap();
        let err = app_private_key(None, Some(binary.clone().into_os_string())).unwrap_err();
        assert!(err.contains(&binary.display().to_string()), "{err}");
        assert!(!err.contains("hun"), "{err}");
    }
}
