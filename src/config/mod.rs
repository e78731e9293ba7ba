//! Typed configuration: a TOML file (`--config`, `FIREBREAK_CONFIG`, or `./firebreak.toml`)
//! plus environment overrides. Unknown keys are errors that name the key and its line, so a
//! typo can't silently turn a setting off. Secrets never live in the typed config's `Debug`
//! output: webhook URLs and `database.url` are `SecretString`s; the other secrets come from
//! the environment, and one that is set but empty stops the start with its name.

mod runtime;
mod secrets;
mod sections;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::chat::discord::DiscordConfig;
use crate::chat::slack::SlackConfig;
use crate::github::GitHubConfig;
use crate::incident::permissions::Permissions;
use crate::notify::NoticeRoute;
use crate::notify::webhook::Webhook;

pub(crate) use runtime::sqlite_path;
pub use runtime::{DatabaseFrom, Integrations, Runtime, default_database_path, sqlite_creates};
pub use secrets::{env_secret, env_secret_list};
pub use sections::{
    CadenceConfig, DatabaseConfig, EffectsConfig, IncidentConfig, NotifyConfig, PostmortemConfig,
    PublishConfig, ServerConfig, WebhookConfig,
};

/// The whole `firebreak.toml`. Every key is documented in `firebreak.example.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub effects: EffectsConfig,
    pub incident: IncidentConfig,
    pub permissions: Permissions,
    pub notify: NotifyConfig,
    pub slack: SlackConfig,
    pub discord: DiscordConfig,
    pub github: GitHubConfig,
    pub postmortem: PostmortemConfig,
    /// `[alertmanager]`: how `POST /api/alertmanager` maps alert groups to incidents.
    pub alertmanager: crate::alerts::AlertmanagerConfig,
    /// `[web]`: signing in to the web pages with Slack or an OpenID Connect provider.
    pub web: crate::http::oidc::config::WebConfig,
    /// `[runbooks]`: the runbook files, where drills send, where stale runbooks are reported.
    pub runbooks: crate::runbook::RunbooksConfig,
}

/// A config file that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Finds and parses the config. An explicitly named file must exist; without one,
    /// `./firebreak.toml` is used if present, else built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("firebreak.toml")).filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok((Self::default(), None));
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the config file: {e}",
                path.display()
            ))
        })?;
        let config =
            Self::parse(&text).map_err(|e| ConfigError(format!("{}:{e}", path.display())))?;
        Ok((config, Some(path)))
    }

    /// Parses TOML text. Errors read `LINE: message`, e.g. ``3: unknown field `lissten` ``.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            ConfigError(format!("{line}: {}", e.message().trim()))
        })
    }

    /// Checks what parsing can't: webhook URLs present and well-formed, names unique.
    /// Returns the resolved webhook URLs by name.
    pub fn webhook_urls(&self) -> Result<HashMap<String, SecretString>, ConfigError> {
        let mut urls = HashMap::new();
        let mut seen = HashSet::new();
        for (i, hook) in self.notify.webhook.iter().enumerate() {
            let name = webhook_name(i, hook);
            if name.chars().any(char::is_control) {
                return Err(ConfigError(format!(
                    "notify.webhook[{}]: a name may not hold control characters (a line break, a tab); it labels logs and metrics",
                    i + 1
                )));
            }
            let key = format!("notify.webhook[{}] ({name})", i + 1);
            if !seen.insert(name.clone()) {
                return Err(ConfigError(format!(
                    "{key}: the name \"{name}\" is used twice"
                )));
            }
            let url = match (&hook.url, &hook.url_env) {
                (Some(u), None) => u.clone(),
                (None, Some(var)) => env_secret(var)
                    .map_err(|e| ConfigError(format!("{key}: {e}")))?
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "{key}: url_env names {var}, which is not set in the environment"
                        ))
                    })?,
                _ => {
                    return Err(ConfigError(format!(
                        "{key}: set exactly one of url or url_env"
                    )));
                }
            };
            let parsed = reqwest::Url::parse(url.expose_secret())
                .map_err(|_| ConfigError(format!("{key}: the URL is not a valid http(s) URL")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError(format!("{key}: the URL must be http or https")));
            }
            urls.insert(name, url);
        }
        Ok(urls)
    }

    /// The webhooks to deliver to, by name, each with its URL and rate limit.
    pub fn webhooks(&self) -> Result<HashMap<String, Webhook>, ConfigError> {
        let mut urls = self.webhook_urls()?;
        let mut hooks = HashMap::new();
        for (i, hook) in self.notify.webhook.iter().enumerate() {
            let name = webhook_name(i, hook);
            let key = format!("notify.webhook[{}] ({name})", i + 1);
            let per_second = NonZeroU32::new(hook.per_second)
                .ok_or_else(|| ConfigError(format!("{key}: per_second must be at least 1")))?;
            let burst = NonZeroU32::new(hook.burst)
                .ok_or_else(|| ConfigError(format!("{key}: burst must be at least 1")))?;
            if let Some(url) = urls.remove(&name) {
                hooks.insert(name, Webhook::new(url, per_second, burst));
            }
        }
        Ok(hooks)
    }

    /// Everything `config check` and `serve` refuse beyond what parsing catches: bad
    /// webhooks, and timings that contradict each other. Each error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.webhooks()?;
        self.effects.validate()?;
        self.incident.validate()?;
        self.postmortem.validate()?;
        self.names_and_urls()?;
        self.call_timeouts_fit()?;
        let names: Vec<String> = self.notice_routes().into_iter().map(|r| r.name).collect();
        self.runbooks.validate(&names).map_err(ConfigError)?;
        self.runbooks.load().map(drop).map_err(ConfigError)
    }

    /// Repository names in GitHub's shape and URLs that parse as http(s).
    fn names_and_urls(&self) -> Result<(), ConfigError> {
        for (i, repo) in self.github.repos.iter().enumerate() {
            check_repo(repo, true)
                .map_err(|why| ConfigError(format!("github.repos[{}]: {why}", i + 1)))?;
        }
        if let Some(publish) = &self.postmortem.github {
            check_repo(&publish.repo, false)
                .map_err(|why| ConfigError(format!("postmortem.github.repo: {why}")))?;
        }
        if let Some(url) = &self.server.public_url {
            check_url(url).map_err(|why| ConfigError(format!("server.public_url: {why}")))?;
        }
        if self.github.reconcile_interval.is_zero() {
            return Err(ConfigError(
                "github.reconcile_interval must be longer than zero".into(),
            ));
        }
        Ok(())
    }

    /// Every API call's timeout is above zero and fits in one attempt.
    fn call_timeouts_fit(&self) -> Result<(), ConfigError> {
        let attempt = self.effects.attempt_timeout;
        for (key, timeout) in [
            ("notify.timeout", self.notify.timeout),
            ("slack.timeout", self.slack.timeout),
            ("discord.timeout", self.discord.timeout),
            ("github.timeout", self.github.timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError(format!("{key} must be longer than zero")));
            }
            if timeout > attempt {
                return Err(ConfigError(format!(
                    "{key} ({}) must not be longer than effects.attempt_timeout ({}), or the attempt is cut off before the call can time out",
                    humantime::format_duration(timeout),
                    humantime::format_duration(attempt)
                )));
            }
        }
        Ok(())
    }

    pub fn notice_routes(&self) -> Vec<NoticeRoute> {
        self.notify
            .webhook
            .iter()
            .enumerate()
            .map(|(i, hook)| NoticeRoute {
                name: webhook_name(i, hook),
                min_severity: hook.min_severity,
            })
            .collect()
    }
}

/// `owner/repo` as GitHub allows it (`owner/*`, every repository of an owner, with
/// `wildcard`): the owner is letters, digits and single hyphens inside (at most 39); the
/// repository is letters, digits, `-`, `_` and `.` (at most 100, not `.` or `..`). The
/// error is a clause that quotes the value.
pub fn check_repo(name: &str, wildcard: bool) -> Result<(), String> {
    let owner_ok = |o: &str| {
        !o.is_empty()
            && o.len() <= 39
            && !o.starts_with('-')
            && !o.ends_with('-')
            && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let repo_ok = |r: &str| {
        !r.is_empty()
            && r.len() <= 100
            && r != "."
            && r != ".."
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match name.split_once('/') {
        Some((owner, repo)) if owner_ok(owner) && (repo_ok(repo) || (wildcard && repo == "*")) => {
            Ok(())
        }
        _ => Err(format!(
            "\"{name}\" is not a repository name; write it as owner/repo{} (letters, digits and \
             hyphens in the owner; letters, digits, -, _ and . in the repository)",
            if wildcard { " or owner/*" } else { "" }
        )),
    }
}

/// An absolute `http` or `https` URL. The error is a clause that quotes the value.
pub fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(u) => Err(format!(
            "\"{url}\" must be an http or https URL, not {}",
            u.scheme()
        )),
        Err(e) => Err(format!("\"{url}\" is not a URL ({e})")),
    }
}

fn webhook_name(index: usize, hook: &WebhookConfig) -> String {
    hook.name
        .clone()
        .unwrap_or_else(|| format!("webhook-{}", index + 1))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |t| {
        t.lines().count().max(1) + usize::from(t.ends_with('\n'))
    })
}
