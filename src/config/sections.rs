//! The sections of `firebreak.toml` other than the integrations' own: `[server]`,
//! `[database]`, `[effects]`, `[incident]`, `[notify]` and `[postmortem]`, with their defaults
//! and the checks each can make on itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::ConfigError;
use crate::effects::backoff::Backoff;
use crate::effects::worker::WorkerConfig;
use crate::incident::model::Severity;
use crate::incident::rules::UpdateCadence;

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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
