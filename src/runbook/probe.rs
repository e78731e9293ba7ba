//! The live half of the runbook check: asks GitHub, Slack and each webhook whether what the
//! runbooks name still exists and answers, several at a time, without posting anything.
//! Each target gets its own [`Verdict`]: one failing never hides another. Webhook URLs are
//! credentials: a verdict names the webhook and the cause, never the URL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};

use super::Runbooks;
use super::check::{self, Reliance, Report, Setup, Target, Verdict};
use crate::chat::slack::api::{ChannelState, SlackApi, SlackCallError};
use crate::config::{Config, ConfigError, Integrations};
use crate::effects::handler::EffectError;
use crate::github::client::{GhError, GitHubClient, Repo};

/// Checks `runbooks`: against the config, then live through `probes` (`None`: offline, so
/// nothing is called).
pub async fn check(
    runbooks: &Runbooks,
    setup: &Setup,
    probes: Option<&Probes>,
) -> (Vec<Reliance>, Report) {
    let reliances = check::reliances(runbooks, setup);
    let verdicts = match probes {
        Some(p) => Some(p.verdicts(check::to_probe(&reliances)).await),
        None => None,
    };
    let report = check::report(&reliances, verdicts.as_ref());
    (reliances, report)
}

/// How many targets are asked at once.
const AT_ONCE: usize = 8;

/// The longest one target may take, pacing and retries included.
const PER_TARGET: Duration = Duration::from_secs(60);

/// How often a Slack rate limit is waited out before the channel counts as unchecked.
const SLACK_WAITS: usize = 3;

/// The clients the probes go through: the same paced GitHub client and Slack API as the
/// effects, when `serve` builds them.
pub struct Probes {
    pub github: Option<Arc<GitHubClient>>,
    pub slack: Option<SlackApi>,
    pub webhooks: HashMap<String, SecretString>,
    /// For webhooks: `notify.timeout`, no redirects followed.
    pub http: reqwest::Client,
    pub webhook_timeout: Duration,
}

impl Probes {
    /// Fresh clients from the config and the environment (the CLI's checks).
    pub fn from_config(config: &Config, integrations: &Integrations) -> anyhow::Result<Self> {
        let github = match &integrations.github {
            Some(gh) => Some(Arc::new(GitHubClient::new(
                gh,
                &config.github.pacing,
                config.github.timeout,
            )?)),
            None => None,
        };
        let slack = SlackApi::for_secrets(integrations.slack.as_ref(), config.slack.timeout)?;
        Self::with_clients(config, github, slack)
    }

    /// With clients already built (`serve`'s, so their pacing is shared).
    pub fn with_clients(
        config: &Config,
        github: Option<Arc<GitHubClient>>,
        slack: Option<SlackApi>,
    ) -> anyhow::Result<Self> {
        let webhooks = config
            .webhook_urls()
            .map_err(|ConfigError(e)| anyhow::anyhow!(e))?;
        Ok(Self {
            github,
            slack,
            webhooks,
            http: crate::notify::webhook::http_client(config.notify.timeout)?,
            webhook_timeout: config.notify.timeout,
        })
    }

    /// A verdict for every target, asking [`AT_ONCE`] at a time.
    pub async fn verdicts(&self, targets: Vec<Target>) -> HashMap<Target, Verdict> {
        futures::stream::iter(targets)
            .map(|t| async move {
                let verdict = match tokio::time::timeout(PER_TARGET, self.probe(&t)).await {
                    Ok(v) => v,
                    Err(_) => Verdict::Unknown(format!(
                        "checking {} took longer than {}s",
                        t.label(),
                        PER_TARGET.as_secs()
                    )),
                };
                (t, verdict)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await
    }

    async fn probe(&self, target: &Target) -> Verdict {
        match target {
            Target::Repo(name) => match &self.github {
                Some(gh) => repo_verdict(name, gh.repo(name).await),
                None => not_here("GitHub", target),
            },
            Target::Owner(login) => match &self.github {
                Some(gh) => owner_verdict(login, gh.owner(login).await.map(drop)),
                None => not_here("GitHub", target),
            },
            Target::Webhook(name) => self.webhook(name).await,
            Target::SlackChannel(id) => match &self.slack {
                Some(api) => channel_verdict(id, channel_info(api, id).await),
                None => not_here("Slack (SLACK_BOT_TOKEN)", target),
            },
            Target::GitHub => Verdict::Fine,
        }
    }

    /// A GET that posts nothing: any answer but 404 or 410 means the webhook is there.
    async fn webhook(&self, name: &str) -> Verdict {
        let Some(url) = self.webhooks.get(name) else {
            return Verdict::Stale(format!(
                "webhook \"{name}\" is not a configured [[notify.webhook]]"
            ));
        };
        let answer = self.http.get(url.expose_secret()).send().await;
        let transport = match answer {
            Ok(resp) => Transport::Answered(resp.status().as_u16()),
            Err(e) => Transport::of(&e),
        };
        webhook_verdict(name, transport, self.webhook_timeout)
    }
}

fn not_here(what: &str, target: &Target) -> Verdict {
    Verdict::Unknown(format!(
        "{what} is not configured here, so {} was not checked",
        target.label()
    ))
}

/// `conversations.info`, waiting out Slack's rate tier a few times.
async fn channel_info(api: &SlackApi, id: &str) -> Result<ChannelState, SlackCallError> {
    let mut waits = 0;
    loop {
        match api.channel_info(id).await {
            Err(SlackCallError {
                error: EffectError::Deferred { wait },
                ..
            }) if waits < SLACK_WAITS => {
                waits += 1;
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// What became of a webhook's GET, without the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Answered(u16),
    TimedOut,
    Refused,
    NoSuchHost,
    Failed,
}

impl Transport {
    /// Reads the cause from reqwest's error chain; the chain's text is only matched, never
    /// shown (it may hold the host).
    fn of(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return Self::TimedOut;
        }
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut text = String::new();
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Self::Refused,
                    std::io::ErrorKind::TimedOut => return Self::TimedOut,
                    _ => {}
                }
            }
            text.push_str(&err.to_string().to_lowercase());
            source = err.source();
        }
        if text.contains("dns error") || text.contains("failed to lookup address") {
            Self::NoSuchHost
        } else if text.contains("connection refused") {
            Self::Refused
        } else {
            Self::Failed
        }
    }
}

/// A webhook's verdict (pure): gone on 404 and 410, unreachable when nothing answered.
pub fn webhook_verdict(name: &str, t: Transport, timeout: Duration) -> Verdict {
    let unreachable =
        |why: &str| Verdict::Stale(format!("webhook \"{name}\" is unreachable: {why}"));
    match t {
        Transport::Answered(status @ (404 | 410)) => Verdict::Stale(format!(
            "webhook \"{name}\" is gone: it answered HTTP {status}"
        )),
        Transport::Answered(_) => Verdict::Fine,
        Transport::TimedOut => unreachable(&format!(
            "it did not answer within {} (notify.timeout)",
            humantime::format_duration(timeout)
        )),
        Transport::Refused => unreachable("the connection was refused"),
        Transport::NoSuchHost => unreachable("its host name does not resolve"),
        Transport::Failed => unreachable("the connection failed (network or TLS)"),
    }
}

/// A repository's verdict (pure).
pub fn repo_verdict(name: &str, answer: Result<Repo, GhError>) -> Verdict {
    match answer {
        Ok(repo) if repo.archived => Verdict::Stale(format!(
            "repository {name} is archived, so there is nothing to freeze"
        )),
        Ok(_) => Verdict::Fine,
        Err(e) => github_failure(&format!("repository {name}"), e),
    }
}

/// An owner's verdict (pure), for `owner/*`.
pub fn owner_verdict(login: &str, answer: Result<(), GhError>) -> Verdict {
    match answer {
        Ok(()) => Verdict::Fine,
        Err(e) => github_failure(&format!("owner {login}"), e),
    }
}

fn github_failure(what: &str, e: GhError) -> Verdict {
    match e.status() {
        Some(404) => Verdict::Stale(format!("{what} does not exist or the token cannot see it")),
        Some(403) if !e.is_retryable() => Verdict::Stale(format!(
            "the token may not read {what} (GitHub answered HTTP 403)"
        )),
        _ => Verdict::Unknown(format!("{what} could not be checked: {e}")),
    }
}

/// A Slack channel's verdict (pure).
pub fn channel_verdict(id: &str, answer: Result<ChannelState, SlackCallError>) -> Verdict {
    match answer {
        Ok(ChannelState { archived: true }) => {
            Verdict::Stale(format!("Slack channel {id} is archived"))
        }
        Ok(_) => Verdict::Fine,
        Err(e) if e.is("channel_not_found") => Verdict::Stale(format!(
            "Slack channel {id} does not exist or the bot cannot see it"
        )),
        Err(e) => Verdict::Unknown(format!(
            "Slack channel {id} could not be checked: {}",
            e.error
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_gone_on_404_and_410_and_unreachable_without_an_answer() {
        let t = Duration::from_secs(10);
        assert_eq!(
            webhook_verdict("w", Transport::Answered(405), t),
            Verdict::Fine
        );
        assert_eq!(
            webhook_verdict("w", Transport::Answered(400), t),
            Verdict::Fine
        );
        assert_eq!(
            webhook_verdict("w", Transport::Answered(410), t),
            Verdict::Stale("webhook \"w\" is gone: it answered HTTP 410".into())
        );
        assert_eq!(
            webhook_verdict("w", Transport::Refused, t),
            Verdict::Stale("webhook \"w\" is unreachable: the connection was refused".into())
        );
        assert_eq!(
            webhook_verdict("w", Transport::TimedOut, t),
            Verdict::Stale(
                "webhook \"w\" is unreachable: it did not answer within 10s (notify.timeout)"
                    .into()
            )
        );
    }

    #[test]
    fn github_404_is_stale_and_an_outage_is_unknown() {
        let status = |status| GhError::Status {
            status,
            message: "x".into(),
            retry_after: None,
        };
        assert_eq!(
            repo_verdict("acme/old", Err(status(404))),
            Verdict::Stale("repository acme/old does not exist or the token cannot see it".into())
        );
        assert!(matches!(
            repo_verdict("acme/old", Err(status(503))),
            Verdict::Unknown(_)
        ));
        assert!(matches!(
            owner_verdict("acme", Err(GhError::Network("refused".into()))),
            Verdict::Unknown(_)
        ));
    }
}
