//! Wiring: [`App::build`] opens the store, builds the service, the effect handlers and the
//! worker from the config; [`App::serve`] runs the HTTP server and the worker until shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::chat::discord::api::{DiscordApi, serenity_http};
use crate::chat::discord::effects::DiscordEffects;
use crate::chat::discord::planner::DiscordPlanner;
use crate::chat::discord::verify::DiscordVerifier;
use crate::chat::discord::{DiscordEdge, DiscordSecrets};
use crate::chat::slack::SlackEdge;
use crate::chat::slack::api::SlackApi;
use crate::chat::slack::config::SlackConfig;
use crate::chat::slack::effects::SlackEffects;
use crate::chat::slack::planner::SlackPlanner;
pub use crate::config::Integrations;
use crate::config::{Config, ConfigError, Runtime};
use crate::effects::planner::{EffectPlanner, Planners};
use crate::effects::worker::Worker;
use crate::github::client::GitHubClient;
use crate::github::config::AutoUnfreeze;
use crate::github::handler::GitHubEffects;
use crate::github::planner::{FreezeRequests, PublishPlanner};
use crate::github::publish::Publisher;
use crate::github::webhook::GitHubEdge;
use crate::incident::freeze::FreezeSettings;
use crate::incident::{IncidentService, Policy};
use crate::notify::WebhookPlanner;
use crate::notify::webhook::{WebhookNotifier, http_client};
use crate::read::ReadModel;
use crate::runbook::check::Setup;
use crate::runbook::handler::RunbookEffects;
use crate::runbook::probe::Probes;
use crate::runbook::watch::{self, Watch};
use crate::store::Store;

mod background;
mod serve;

pub use serve::shutdown_signal;

/// Builds serenity's HTTP client for the gateway client (a fresh one for each start).
pub type GatewayHttp = Arc<dyn Fn() -> serenity::http::Http + Send + Sync>;

/// Everything a running firebreak holds.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    /// What every surface shows: incidents, the freeze, the queue.
    pub read: ReadModel,
    pub service: IncidentService,
    pub worker: Arc<Worker>,
    /// Present when Slack is configured (`SLACK_SIGNING_SECRET` and `SLACK_BOT_TOKEN`).
    pub slack: Option<Arc<SlackEdge>>,
    /// Present when Discord is configured (`DISCORD_PUBLIC_KEY` and `DISCORD_BOT_TOKEN`).
    pub discord: Option<Arc<DiscordEdge>>,
    /// How the Discord gateway client builds its HTTP client: present when Discord is
    /// configured and `[discord] gateway = true`.
    pub discord_gateway: Option<GatewayHttp>,
    /// Present when GitHub is configured (`GITHUB_TOKEN` or a GitHub App).
    pub github: Option<Arc<GitHubEdge>>,
    pub github_client: Option<Arc<GitHubClient>>,
    /// The key web sessions are signed with (`FIREBREAK_SESSION_KEY`, or random).
    pub sessions: Arc<crate::http::session::SessionKey>,
    /// The providers people may sign in to the web pages with (`[web]`).
    pub sign_in: Arc<crate::http::oidc::SignIn>,
    /// The periodic stale-runbook check: present when `[runbooks] dir` is set.
    pub runbook_watch: Option<Arc<Watch>>,
}

impl App {
    /// Opens (and migrates) the database and builds every component from `config`.
    pub async fn build(config: Config, runtime: &Runtime) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let store = Store::open(runtime.database_url.expose_secret()).await?;
        Self::with_store(config, store, runtime.integrations.clone())
    }

    /// Builds on an already opened store (tests use this with a fresh database each).
    pub fn with_store(
        config: Config,
        store: Store,
        integrations: Integrations,
    ) -> anyhow::Result<Self> {
        crate::telemetry::install();
        let hooks = config
            .webhooks()
            .map_err(|ConfigError(e)| anyhow::anyhow!(e))?;
        let wake = Arc::new(Notify::new());
        let mut planners: Vec<Arc<dyn EffectPlanner>> = vec![Arc::new(WebhookPlanner {
            routes: config.notice_routes(),
            public_url: config.server.public_url.clone(),
            drill_route: config.runbooks.drill_webhook.clone(),
        })];
        let notifier = WebhookNotifier::new(http_client(config.notify.timeout)?, hooks);
        let mut worker = Worker::new(store.clone(), config.effects.worker(), Arc::clone(&wake))
            .with_handler(Arc::new(notifier));
        // A platform is planned for when this process can reach it or the config names it;
        // without its credentials here, its effects wait in the queue for `serve`.
        let slack_api = SlackApi::for_secrets(integrations.slack.as_ref(), config.slack.timeout)?;
        if integrations.slack.is_some() || config.slack.is_configured() {
            planners.push(Arc::new(SlackPlanner {
                config: SlackConfig {
                    drill_channel: config.runbooks.drill_channel.clone(),
                    ..config.slack.clone()
                },
                public_url: config.server.public_url.clone(),
                pacing: slack_api.as_ref().map(SlackApi::pacing),
            }));
        }
        if let Some(api) = &slack_api {
            worker = worker.with_handler(Arc::new(SlackEffects {
                api: api.clone(),
                store: store.clone(),
                config: config.slack.clone(),
                public_url: config.server.public_url.clone(),
            }));
        }
        if integrations.discord.is_some() || config.discord.is_configured() {
            planners.push(Arc::new(DiscordPlanner {
                config: config.discord.clone(),
                public_url: config.server.public_url.clone(),
            }));
        }
        if let Some(discord) = &integrations.discord {
            worker = worker.with_handler(Arc::new(DiscordEffects {
                api: DiscordApi::new(discord, config.discord.timeout)?,
                store: store.clone(),
                config: config.discord.clone(),
            }));
        }
        let github_client = match &integrations.github {
            Some(gh) => Some(Arc::new(GitHubClient::new(
                gh,
                &config.github.pacing,
                config.github.timeout,
            )?)),
            None => None,
        };
        let publish = github_client
            .as_ref()
            .zip(config.postmortem.github.as_ref());
        if let Some((client, publish)) = publish {
            planners.push(Arc::new(PublishPlanner));
            worker = worker.with_handler(Arc::new(Publisher {
                client: Arc::clone(client),
                store: store.clone(),
                config: publish.clone(),
                templates: config.postmortem.templates_dir.clone(),
            }));
        }
        if let Some(client) = &github_client {
            worker = worker.with_handler(Arc::new(GitHubEffects {
                client: Arc::clone(client),
                store: store.clone(),
                config: config.github.clone(),
                // Reports to incident rooms go out as neutral intents, through every planner.
                chat: Planners(planners.clone()),
                public_url: config.server.public_url.clone(),
            }));
        }
        let planners = Planners(planners);
        let runbooks = runbook_settings(&config)?;
        let runbook_watch = match &runbooks {
            Some(settings) => Some(Arc::new(Watch {
                runbooks: settings.library.clone(),
                setup: Setup::new(&config, &integrations),
                probes: Probes::with_clients(&config, github_client.clone(), slack_api)?,
                store: store.clone(),
                planners: planners.clone(),
                report_to: watch::destinations(&config.runbooks),
                wake: Arc::clone(&wake),
            })),
            None => None,
        };
        let policy = Policy {
            permissions: config.permissions.clone(),
            planners,
            cadence: Box::new(config.incident.update_cadence.clone()),
            public_url: config.server.public_url.clone(),
            postmortem_templates: config.postmortem.templates_dir.clone(),
            publish_postmortems: publish.is_some(),
            runbooks,
            freeze: integrations.github.as_ref().map(|_| FreezeSettings {
                scopes: config.github.repos.clone(),
                auto_freeze: config.github.auto_freeze.clone(),
                auto_unfreeze: config.github.auto_unfreeze_on == AutoUnfreeze::Resolved,
                planner: Arc::new(FreezeRequests),
            }),
        };
        let service = IncidentService::new(store.clone(), policy, wake);
        let worker = worker.with_handler(Arc::new(RunbookEffects {
            service: service.clone(),
        }));
        let slack = integrations.slack.map(|s| {
            Arc::new(SlackEdge {
                service: service.clone(),
                read: ReadModel::new(store.clone()),
                signing_secret: s.signing_secret,
                noted: Default::default(),
            })
        });
        let discord = match &integrations.discord {
            Some(d) => Some(Arc::new(DiscordEdge {
                service: service.clone(),
                read: ReadModel::new(store.clone()),
                verifier: DiscordVerifier::new(&d.public_key).map_err(anyhow::Error::msg)?,
                noted: Default::default(),
            })),
            None => None,
        };
        let discord_gateway = match &integrations.discord {
            Some(d) if config.discord.gateway => Some(gateway_http(d, config.discord.timeout)?),
            _ => None,
        };
        let github = integrations.github.map(|g| {
            Arc::new(GitHubEdge {
                service: service.clone(),
                secrets: g.webhook_secrets,
            })
        });
        Ok(Self {
            config: Arc::new(config),
            read: ReadModel::new(store.clone()),
            store,
            service,
            worker: Arc::new(worker),
            slack,
            discord,
            discord_gateway,
            github,
            github_client,
            sessions: Arc::new(
                crate::http::session::SessionKey::from_env().map_err(anyhow::Error::msg)?,
            ),
            sign_in: Arc::default(),
            runbook_watch,
        })
    }

    /// Switches on the sign-in providers `[web]` configures, with their secrets from the
    /// environment (`serve` does this; other commands need no client secret). A provider
    /// configured without its secret or `server.public_url` stops the start with a sentence.
    pub fn with_sign_in_from_env(mut self) -> anyhow::Result<Self> {
        let secrets =
            crate::http::oidc::config::SignInSecrets::from_env().map_err(anyhow::Error::msg)?;
        let sign_in = crate::http::oidc::SignIn::from_config(
            &self.config.web,
            self.config.server.public_url.as_deref(),
            &secrets,
        )?;
        self.sign_in = Arc::new(sign_in);
        Ok(self)
    }

    /// Replaces the clock everywhere the service is used (tests drive time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn crate::incident::clock::Clock>) -> Self {
        self.service = self.service.clone().with_clock(clock);
        if let Some(worker) = Arc::get_mut(&mut self.worker) {
            worker.replace_handler(Arc::new(RunbookEffects {
                service: self.service.clone(),
            }));
        }
        self.github = self.github.map(|edge| {
            Arc::new(GitHubEdge {
                service: self.service.clone(),
                secrets: edge.secrets.clone(),
            })
        });
        self.slack = self.slack.map(|edge| {
            Arc::new(SlackEdge {
                service: self.service.clone(),
                read: edge.read.clone(),
                signing_secret: edge.signing_secret.clone(),
                noted: Default::default(),
            })
        });
        self.discord = self.discord.map(|edge| {
            Arc::new(DiscordEdge {
                service: self.service.clone(),
                read: edge.read.clone(),
                verifier: edge.verifier.clone(),
                noted: Default::default(),
            })
        });
        self
    }
}

/// serenity's HTTP client for the gateway, built like [`DiscordApi`]'s: the bot token, the
/// configured origin, serenity's rate limiter off.
fn gateway_http(secrets: &DiscordSecrets, timeout: Duration) -> anyhow::Result<GatewayHttp> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .use_rustls_tls()
        .build()?;
    let secrets = secrets.clone();
    Ok(Arc::new(move || serenity_http(&secrets, client.clone())))
}

/// `[runbooks]` for the core: the runbooks read from `dir`, or `None` when it is not set.
fn runbook_settings(
    config: &Config,
) -> anyhow::Result<Option<crate::incident::runbook::RunbookSettings>> {
    let r = &config.runbooks;
    if r.dir.is_none() {
        return Ok(None);
    }
    Ok(Some(crate::incident::runbook::RunbookSettings {
        library: r.load().map_err(anyhow::Error::msg)?,
        drill_webhook: r.drill_webhook.clone(),
        drill_channel: r.drill_channel.clone(),
        nudge_after: r.nudge_after,
    }))
}
