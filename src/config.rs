//! Typed configuration: a TOML file (`--config`, `FIREBREAK_CONFIG`, or `./firebreak.toml`)
//! plus environment overrides. Unknown keys are errors that name the key and its line, so a
//! typo can't silently turn a setting off. Secrets never live in the typed config's `Debug`
//! output: webhook URLs and `database.url` are `SecretString`s; the other secrets come from
//! the environment, and one that is set but empty stops the start with its name.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::chat::discord::{DiscordConfig, DiscordSecrets};
use crate::chat::slack::{SlackConfig, SlackSecrets};
use crate::effects::backoff::Backoff;
use crate::effects::worker::WorkerConfig;
use crate::github::{GitHubConfig, GitHubSecrets};
use crate::incident::model::Severity;
use crate::incident::permissions::Permissions;
use crate::incident::rules::UpdateCadence;
use crate::notify::NoticeRoute;
use crate::notify::webhook::Webhook;

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostmortemConfig {
    /// A directory with `postmortem.md` and/or `postmortem.html` overriding the built-in
    /// templates (Jinja syntax, rendered with minijinja).
    pub templates_dir: Option<PathBuf>,
    /// Publish each post-mortem as a pull request (`[postmortem.github]`).
    pub github: Option<PublishConfig>,
}

impl PostmortemConfig {
    /// A `templates_dir` that is not a directory is a typo that would quietly give the
    /// built-in templates instead of the team's.
    fn validate(&self) -> Result<(), ConfigError> {
        match &self.templates_dir {
            Some(dir) if !dir.is_dir() => Err(ConfigError(format!(
                "postmortem.templates_dir {} is not a directory (relative paths count from where firebreak runs); \
                 fix the path, or export the built-in templates there with `firebreak postmortem templates export {}`",
                dir.display(),
                dir.display()
            ))),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// `owner/repo` that collects post-mortems.
    pub repo: String,
    /// Where the file goes; `{date}` (declaration date), `{number}` and `{slug}` are filled in.
    #[serde(default = "default_publish_path")]
    pub path: String,
}

fn default_publish_path() -> String {
    "postmortems/{date}-{slug}.md".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Overridden by `FIREBREAK_LISTEN`.
    pub listen: SocketAddr,
    /// How long `serve` waits for running effects after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The URL people reach `serve` at, for links in chat (post-mortem pages).
    pub public_url: Option<String>,
    /// A second address serving `/metrics` with no credential, for a scraper on a private
    /// network. Unset: `/metrics` is only on `listen`, where it needs an API token.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            metrics_listen: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// `[database]`: where the data lives when `FIREBREAK_DATABASE_URL` does not say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite:///abs/path/firebreak.db` or `postgres://…`. A Postgres URL may hold a
    /// password, so it is kept secret; the environment is still the better place for one.
    /// Unset: `$XDG_DATA_HOME/firebreak/firebreak.db` (else `~/.local/share/…`).
    pub url: Option<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EffectsConfig {
    /// Optional cap on attempts that reached the target. Unset: only `give_up_after` ends
    /// the retries of a transient failure.
    pub max_attempts: Option<u32>,
    /// How long an effect may keep failing transiently before it is marked failed.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// How long one attempt may take (an API call that hangs); separate from the lease.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub base_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    pub concurrency: usize,
    pub breaker_threshold: u32,
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// How long a CLI write waits for its own effects before exiting.
    #[serde(with = "humantime_serde")]
    pub cli_wait: Duration,
}

impl Default for EffectsConfig {
    fn default() -> Self {
        let w = WorkerConfig::default();
        Self {
            max_attempts: w.max_attempts,
            give_up_after: w.give_up_after,
            attempt_timeout: w.attempt_timeout,
            base_backoff: w.backoff.base,
            max_backoff: w.backoff.max,
            poll_interval: w.poll_interval,
            lease: w.lease,
            concurrency: w.concurrency,
            breaker_threshold: w.breaker_threshold,
            breaker_cooldown: w.breaker_cooldown,
            cli_wait: Duration::from_secs(15),
        }
    }
}

impl EffectsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let zero = |key: &str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError(format!(
                    "effects.{key} must be longer than zero"
                )))
            } else {
                Ok(())
            }
        };
        zero("lease", self.lease)?;
        zero("attempt_timeout", self.attempt_timeout)?;
        zero("poll_interval", self.poll_interval)?;
        zero("base_backoff", self.base_backoff)?;
        zero("give_up_after", self.give_up_after)?;
        if self.max_attempts == Some(0) {
            return Err(ConfigError(
                "effects.max_attempts must be at least 1 (or left out: retries then end after give_up_after)".into(),
            ));
        }
        if self.breaker_threshold == 0 {
            return Err(ConfigError(
                "effects.breaker_threshold must be at least 1".into(),
            ));
        }
        if self.concurrency == 0 {
            return Err(ConfigError("effects.concurrency must be at least 1".into()));
        }
        if self.lease <= self.attempt_timeout {
            return Err(ConfigError(format!(
                "effects.lease ({}) must be longer than effects.attempt_timeout ({}), or a slow attempt could run twice",
                humantime::format_duration(self.lease),
                humantime::format_duration(self.attempt_timeout)
            )));
        }
        if self.max_backoff < self.base_backoff {
            return Err(ConfigError(
                "effects.max_backoff must not be shorter than effects.base_backoff".into(),
            ));
        }
        Ok(())
    }

    pub fn worker(&self) -> WorkerConfig {
        WorkerConfig {
            max_attempts: self.max_attempts,
            give_up_after: self.give_up_after,
            attempt_timeout: self.attempt_timeout,
            backoff: Backoff {
                base: self.base_backoff,
                max: self.max_backoff,
            },
            poll_interval: self.poll_interval,
            lease: self.lease,
            concurrency: self.concurrency.max(1),
            breaker_threshold: self.breaker_threshold,
            breaker_cooldown: self.breaker_cooldown,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    pub update_cadence: CadenceConfig,
    /// How often `serve` looks for overdue status updates.
    #[serde(with = "humantime_serde")]
    pub reminder_interval: Duration,
}

impl IncidentConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.reminder_interval.is_zero() {
            return Err(ConfigError(
                "incident.reminder_interval must be longer than zero".into(),
            ));
        }
        let c = &self.update_cadence;
        for (name, d) in [
            ("SEV1", c.sev1),
            ("SEV2", c.sev2),
            ("SEV3", c.sev3),
            ("SEV4", c.sev4),
        ] {
            if d.is_zero() {
                return Err(ConfigError(format!(
                    "incident.update_cadence.{name} must be longer than zero"
                )));
            }
        }
        Ok(())
    }
}

impl Default for IncidentConfig {
    fn default() -> Self {
        Self {
            update_cadence: CadenceConfig::default(),
            reminder_interval: Duration::from_secs(30),
        }
    }
}

/// How often each severity promises a status update.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CadenceConfig {
    #[serde(rename = "SEV1", with = "humantime_serde")]
    pub sev1: Duration,
    #[serde(rename = "SEV2", with = "humantime_serde")]
    pub sev2: Duration,
    #[serde(rename = "SEV3", with = "humantime_serde")]
    pub sev3: Duration,
    #[serde(rename = "SEV4", with = "humantime_serde")]
    pub sev4: Duration,
}

impl Default for CadenceConfig {
    fn default() -> Self {
        Self {
            sev1: Duration::from_secs(30 * 60),
            sev2: Duration::from_secs(60 * 60),
            sev3: Duration::from_secs(4 * 3600),
            sev4: Duration::from_secs(24 * 3600),
        }
    }
}

impl UpdateCadence for CadenceConfig {
    fn cadence(&self, severity: Severity) -> Duration {
        match severity {
            Severity::Sev1 => self.sev1,
            Severity::Sev2 => self.sev2,
            Severity::Sev3 => self.sev3,
            Severity::Sev4 => self.sev4,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub webhook: Vec<WebhookConfig>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhook: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Defaults to `webhook-N` (1-based position).
    pub name: Option<String>,
    /// The URL itself. Prefer `url_env`: incoming-webhook URLs are credentials.
    pub url: Option<SecretString>,
    /// The name of an environment variable holding the URL.
    pub url_env: Option<String>,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Sustained posts per second to this webhook (Slack allows one, with short bursts).
    #[serde(default = "default_per_second")]
    pub per_second: u32,
    /// Posts that may go at once before `per_second` applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_per_second() -> u32 {
    1
}

fn default_burst() -> u32 {
    10
}

fn default_min_severity() -> Severity {
    Severity::Sev2
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

/// A secret read from the environment: `None` when the variable is unset. Set but empty
/// (or only whitespace) is an error naming the variable: an edit left half-done must stop
/// the start, not quietly switch an integration off or sign with an empty key. The value
/// itself never appears in an error.
pub fn env_secret(name: &str) -> Result<Option<SecretString>, String> {
    secret_value(name, env_value(name)?)
}

/// A comma-separated list of secrets (`GITHUB_WEBHOOK_SECRET`, which holds the old and the
/// new secret during a rotation). Empty when unset; an empty entry (`s3cret,`) is an error
/// that says which one, since an empty HMAC key would let anyone sign.
pub fn env_secret_list(name: &str) -> Result<Vec<SecretString>, String> {
    secret_list_value(name, env_value(name)?)
}

fn env_value(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

fn secret_value(name: &str, value: Option<String>) -> Result<Option<SecretString>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(format!(
            "{name} is set but empty; give it a value, or unset it"
        )),
        Some(v) => Ok(Some(SecretString::from(v))),
    }
}

fn secret_list_value(name: &str, value: Option<String>) -> Result<Vec<SecretString>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    if value.trim().is_empty() {
        return Err(format!(
            "{name} is set but empty; give it a value, or unset it"
        ));
    }
    value
        .split(',')
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.trim();
            if entry.is_empty() {
                Err(format!(
                    "{name} has an empty entry (the {}); remove the stray comma.",
                    ordinal(i + 1)
                ))
            } else {
                Ok(SecretString::from(entry.to_string()))
            }
        })
        .collect()
}

/// `1st`, `2nd`, `3rd`, `4th`, … `11th`, `12th`, `13th`, … `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The external integrations switched on by secrets in the environment.
#[derive(Debug, Clone, Default)]
pub struct Integrations {
    pub slack: Option<SlackSecrets>,
    pub discord: Option<DiscordSecrets>,
    pub github: Option<GitHubSecrets>,
}

impl Integrations {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            slack: SlackSecrets::from_env().map_err(ConfigError)?,
            discord: DiscordSecrets::from_env().map_err(ConfigError)?,
            github: GitHubSecrets::from_env().map_err(ConfigError)?,
        })
    }
}

/// Where to find the database and where to listen, from the environment.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub database_url: SecretString,
    /// Which setting chose the database, for `config check`.
    pub database_from: DatabaseFrom,
    pub listen: SocketAddr,
    pub integrations: Integrations,
}

/// Which setting chose the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFrom {
    /// `FIREBREAK_DATABASE_URL`.
    Env,
    /// `[database] url` in the config file.
    File,
    /// The per-user default under `$XDG_DATA_HOME` or `~/.local/share`.
    Default,
}

impl Runtime {
    pub fn from_env(config: &Config) -> Result<Self, ConfigError> {
        let (database_url, database_from) =
            match env_secret("FIREBREAK_DATABASE_URL").map_err(ConfigError)? {
                Some(url) => (url, DatabaseFrom::Env),
                None => match &config.database.url {
                    Some(url) if url.expose_secret().trim().is_empty() => {
                        return Err(ConfigError(
                            "database.url is empty; give a URL or leave the key out".into(),
                        ));
                    }
                    Some(url) => (url.clone(), DatabaseFrom::File),
                    None => (default_database_url()?, DatabaseFrom::Default),
                },
            };
        check_database_url(database_url.expose_secret(), database_from)?;
        let listen = match std::env::var("FIREBREAK_LISTEN") {
            Ok(v) => v.parse().map_err(|_| {
                ConfigError(format!(
                    "FIREBREAK_LISTEN=\"{v}\" is not an address like 127.0.0.1:8080"
                ))
            })?,
            Err(_) => config.server.listen,
        };
        Ok(Self {
            database_url,
            database_from,
            listen,
            integrations: Integrations::from_env()?,
        })
    }

    /// The SQLite file the database URL names, made absolute; `None` for Postgres and for
    /// in-memory SQLite. A file path is not a secret, so this may be shown.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        sqlite_path(self.database_url.expose_secret())
    }

    /// Where the data lives, for people: the SQLite file, or "Postgres" without the URL
    /// (which may hold a password).
    pub fn database_description(&self) -> String {
        let from = match self.database_from {
            DatabaseFrom::Env => "FIREBREAK_DATABASE_URL",
            DatabaseFrom::File => "database.url",
            DatabaseFrom::Default => "the per-user default",
        };
        match self.sqlite_path() {
            Some(path) => format!("SQLite at {} (from {from})", path.display()),
            None if self.database_url.expose_secret().starts_with("sqlite:") => {
                format!("in-memory SQLite (from {from})")
            }
            None => format!("Postgres (from {from})"),
        }
    }
}

/// Refuses a URL naming a database firebreak cannot use, naming where it came from and its
/// scheme only (the rest may hold a password).
fn check_database_url(url: &str, from: DatabaseFrom) -> Result<(), ConfigError> {
    const SUPPORTED: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];
    let key = match from {
        DatabaseFrom::Env => "FIREBREAK_DATABASE_URL",
        DatabaseFrom::File | DatabaseFrom::Default => "database.url",
    };
    if url.starts_with("sqlite:") && sqlite_path(url).is_none() {
        return Err(ConfigError(format!(
            "{key} names an in-memory SQLite database, which would lose every incident when the command ends; give a file (sqlite:///path/firebreak.db)"
        )));
    }
    if SUPPORTED.iter().any(|s| url.starts_with(s)) {
        return Ok(());
    }
    let scheme = match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() && scheme.len() <= 20 => format!("a {scheme}: URL"),
        _ => "not a URL".to_string(),
    };
    Err(ConfigError(format!(
        "{key} is {scheme}; firebreak stores its data in SQLite (sqlite:///path/firebreak.db) or Postgres (postgres://user@host/db)"
    )))
}

/// The per-user default database: `$XDG_DATA_HOME/firebreak/firebreak.db`, else
/// `$HOME/.local/share/firebreak/firebreak.db`, the same file from any directory.
pub fn default_database_path() -> Result<PathBuf, ConfigError> {
    data_home(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
        .map(|dir| dir.join("firebreak").join("firebreak.db"))
        .ok_or_else(|| {
            ConfigError(
                "no place for the default database: HOME is not set (nor XDG_DATA_HOME); set FIREBREAK_DATABASE_URL or database.url in the config".into(),
            )
        })
}

/// The XDG data directory. Relative values are ignored, as the XDG spec says.
fn data_home(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    xdg.and_then(absolute).or_else(|| {
        home.and_then(absolute)
            .map(|h| h.join(".local").join("share"))
    })
}

fn default_database_url() -> Result<SecretString, ConfigError> {
    let path = default_database_path()?;
    let text = path.to_str().ok_or_else(|| {
        ConfigError(format!(
            "the default database path {} is not UTF-8; set FIREBREAK_DATABASE_URL",
            path.display()
        ))
    })?;
    Ok(SecretString::from(sqlite_url_for(text)))
}

/// `sqlite://` and the path, with the characters sqlx would decode or split on escaped.
fn sqlite_url_for(path: &str) -> String {
    let mut url = String::from("sqlite://");
    for c in path.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url
}

/// The file a `sqlite:` URL names, absolute (relative paths are from the working directory).
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() {
        return None;
    }
    std::path::absolute(file).ok()
}

/// Whether opening this URL may create the SQLite file (no `mode=`, or `mode=rwc`).
pub fn sqlite_creates(url: &str) -> bool {
    !url.contains("mode=") || url.contains("mode=rwc")
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_names_follow_githubs_rules() {
        use super::check_repo;
        for ok in ["acme/api", "Acme-2/web.site_v2", "a/b", "acme/.github"] {
            assert_eq!(check_repo(ok, false), Ok(()), "{ok}");
        }
        assert_eq!(check_repo("acme/*", true), Ok(()));
        for bad in [
            "not a repo",
            "acme",
            "acme/",
            "/api",
            "acme/api/x",
            "-acme/api",
            "acme-/api",
            "ac_me/api",
            "acme/a pi",
            "acme/..",
            "acme/*",
        ] {
            let err = check_repo(bad, false).unwrap_err();
            assert!(err.contains(&format!("\"{bad}\"")), "{err}");
        }
        assert!(check_repo(&format!("{}/x", "a".repeat(40)), false).is_err());
        assert!(check_repo(&format!("a/{}", "x".repeat(101)), false).is_err());
    }

    #[test]
    fn urls_must_be_http_or_https() {
        use super::check_url;
        assert_eq!(check_url("https://firebreak.example.com/"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:8080"), Ok(()));
        assert!(
            check_url("ftp://example.com")
                .unwrap_err()
                .contains("not ftp")
        );
        assert!(
            check_url("firebreak.example.com")
                .unwrap_err()
                .contains("is not a URL")
        );
        assert!(check_url("mailto:ops@example.com").is_err());
    }

    use super::*;

    #[test]
    fn a_webhook_name_with_a_line_break_is_refused() {
        let config =
            Config::parse("[[notify.webhook]]\nname = \"a\\nb\"\nurl = \"http://127.0.0.1:1/h\"\n")
                .unwrap();
        let err = config.webhook_urls().unwrap_err();
        assert!(err.0.contains("control characters"), "{err}");
    }

    #[test]
    fn database_urls_other_than_sqlite_and_postgres_are_refused_without_their_secrets() {
        for ok in ["sqlite:///x.db", "postgres://u@h/db", "postgresql://h/db"] {
            assert!(check_database_url(ok, DatabaseFrom::Env).is_ok(), "{ok}");
        }
        let err = check_database_url("mysql://root:hunter2@db/x", DatabaseFrom::Env).unwrap_err();
        assert!(
            err.0.starts_with("FIREBREAK_DATABASE_URL is a mysql: URL;"),
            "{err}"
        );
        assert!(!err.0.contains("hunter2"), "{err}");
        let err = check_database_url("firebreak.db", DatabaseFrom::File).unwrap_err();
        assert!(err.0.starts_with("database.url is not a URL;"), "{err}");
        for memory in [
            "sqlite::memory:",
            "sqlite:",
            "sqlite://",
            "sqlite://x.db?mode=memory",
        ] {
            let err = check_database_url(memory, DatabaseFrom::Env).unwrap_err();
            assert!(err.0.contains("in-memory SQLite"), "{memory}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err =
            Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n\n[effects]\nmax_atempts = 3\n")
                .unwrap_err();
        assert!(err.0.starts_with("5: "), "{err}");
        assert!(err.0.contains("max_atempts"), "{err}");
    }

    #[test]
    fn a_templates_dir_that_is_not_a_directory_is_refused() {
        let config =
            Config::parse("[postmortem]\ntemplates_dir = \"/no/such/templates\"\n").unwrap();
        let err = config.validate().unwrap_err();
        assert!(
            err.0.contains("/no/such/templates is not a directory"),
            "{err}"
        );
        let here = std::env::temp_dir();
        let ok = format!(
            "[postmortem]\ntemplates_dir = {:?}\n",
            here.display().to_string()
        );
        Config::parse(&ok).unwrap().validate().unwrap();
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../firebreak.example.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(
            config.incident.update_cadence.cadence(Severity::Sev1),
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn webhooks_need_exactly_one_url_source() {
        let c = Config::parse("[[notify.webhook]]\nname = \"a\"\n").unwrap();
        assert!(
            c.webhook_urls()
                .unwrap_err()
                .0
                .contains("exactly one of url or url_env")
        );
        let c = Config::parse("[[notify.webhook]]\nurl = \"ftp://x\"\n").unwrap();
        assert!(c.webhook_urls().unwrap_err().0.contains("http or https"));
        let c = Config::parse(
            "[[notify.webhook]]\nurl = \"https://hooks.example/x\"\nmin_severity = \"SEV1\"\n",
        )
        .unwrap();
        assert_eq!(
            c.notice_routes()[0],
            NoticeRoute {
                name: "webhook-1".into(),
                min_severity: Severity::Sev1
            }
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Config::parse("[[notify.webhook]]\nurl = \"https://hooks.example/T000/SECRET\"\n")
            .unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
    }

    #[test]
    fn an_empty_entry_in_a_secret_list_is_refused_by_name_and_position() {
        let name = "GITHUB_WEBHOOK_SECRET";
        let err = |v: &str| secret_list_value(name, Some(v.into())).unwrap_err();
        assert_eq!(
            err("s3cret,"),
            "GITHUB_WEBHOOK_SECRET has an empty entry (the 2nd); remove the stray comma."
        );
        assert!(err(",s3cret").contains("(the 1st)"));
        assert!(err("old, ,new").contains("(the 2nd)"));
        assert!(err("a,b,").contains("(the 3rd)"));
        for v in ["", "  "] {
            assert_eq!(
                err(v),
                "GITHUB_WEBHOOK_SECRET is set but empty; give it a value, or unset it"
            );
        }
        for v in ["s3cret,", ",s3cret", "s3cret, ,other"] {
            assert!(!err(v).contains("s3cret"), "the value is never shown");
        }
        let ok = secret_list_value(name, Some("old, new".into())).unwrap();
        let ok: Vec<&str> = ok.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(ok, ["old", "new"]);
        assert!(secret_list_value(name, None).unwrap().is_empty());
    }

    #[test]
    fn a_single_secret_set_but_empty_is_refused_by_name() {
        for v in ["", " ", "\t\n"] {
            let err = secret_value("SLACK_SIGNING_SECRET", Some(v.into())).unwrap_err();
            assert_eq!(
                err,
                "SLACK_SIGNING_SECRET is set but empty; give it a value, or unset it"
            );
        }
        assert!(secret_value("SLACK_BOT_TOKEN", None).unwrap().is_none());
        let set = secret_value("SLACK_BOT_TOKEN", Some("xoxb-1".into())).unwrap();
        assert_eq!(set.unwrap().expose_secret(), "xoxb-1");
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }

    #[test]
    fn the_default_database_lives_under_the_xdg_data_home() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            data_home(os("/data"), os("/home/alice")),
            Some(PathBuf::from("/data"))
        );
        // Unset, empty or relative: the XDG spec says to ignore it.
        for xdg in [None, os(""), os("relative/dir")] {
            assert_eq!(
                data_home(xdg, os("/home/alice")),
                Some(PathBuf::from("/home/alice/.local/share"))
            );
        }
        assert_eq!(data_home(None, None), None);
        assert_eq!(data_home(None, os("")), None);
    }

    #[test]
    fn a_default_path_survives_the_trip_through_a_url() {
        for path in [
            "/home/alice/.local/share/firebreak/firebreak.db",
            "/tmp/with space/50% done?#/firebreak.db",
        ] {
            let url = sqlite_url_for(path);
            assert!(url.starts_with("sqlite:///"), "{url}");
            assert_eq!(sqlite_path(&url), Some(PathBuf::from(path)), "{url}");
        }
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u:p@h/db"), None);
        let relative = sqlite_path("sqlite://firebreak.db?mode=rwc").unwrap();
        assert!(relative.is_absolute() && relative.ends_with("firebreak.db"));
        assert!(sqlite_creates("sqlite:///x.db"));
        assert!(sqlite_creates("sqlite:///x.db?mode=rwc"));
        assert!(!sqlite_creates("sqlite:///x.db?mode=ro"));
    }

    #[test]
    fn the_database_url_may_be_in_the_file_but_is_kept_secret() {
        let c = Config::parse("[database]\nurl = \"postgres://u:hunter2@db/firebreak\"\n").unwrap();
        assert_eq!(
            c.database.url.as_ref().unwrap().expose_secret(),
            "postgres://u:hunter2@db/firebreak"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(Config::parse("[database]\nurl = \"sqlite:///x.db\"\npath = \"x\"\n").is_err());
    }
}
