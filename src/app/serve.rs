//! Serving: the HTTP router with every adapter's endpoints, the metrics listener, and
//! [`App::serve`], which runs the server, the worker and the background loops until shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::App;
use super::background::{check_runbooks_every, reconcile_every, remind_until};
use crate::chat::discord::gateway::{self, PinSink};
use crate::http::HttpState;
use crate::http::machine::MachineState;
use crate::telemetry::ack::timed;

impl App {
    fn http_state(&self) -> HttpState {
        HttpState {
            read: self.read.clone(),
            postmortem_templates: self.config.postmortem.templates_dir.clone(),
            github: self.github_client.clone(),
        }
    }

    /// The HTTP API on its own state, with the platform adapters' endpoints merged in, all
    /// behind the API-token guard.
    pub fn router(&self) -> axum::Router {
        self.router_until(CancellationToken::new())
    }

    /// [`App::router`], whose long-lived answers (live timelines) end when `shutdown` is
    /// cancelled, so a graceful shutdown does not wait for them.
    pub fn router_until(&self, shutdown: CancellationToken) -> axum::Router {
        let state = self.http_state();
        let mut adapters = axum::Router::new();
        if let Some(slack) = &self.slack {
            adapters = adapters.merge(timed(
                crate::chat::slack::router(Arc::clone(slack)),
                "slack",
            ));
        }
        if let Some(discord) = &self.discord {
            adapters = adapters.merge(timed(
                crate::chat::discord::router(Arc::clone(discord)),
                "discord",
            ));
        }
        if let Some(github) = &self.github {
            adapters = adapters.merge(timed(crate::github::router(Arc::clone(github)), "github"));
        }
        adapters = adapters.merge(crate::http::machine::router(MachineState {
            service: self.service.clone(),
            read: self.read.clone(),
            alertmanager: self.config.alertmanager.clone(),
        }));
        adapters = adapters.merge(crate::http::pages::router(crate::http::pages::PagesState {
            read: self.read.clone(),
            store: self.store.clone(),
            sessions: Arc::clone(&self.sessions),
            public_url: self.config.server.public_url.clone(),
            github: self.github_client.clone(),
            permissions: Arc::new(self.config.permissions.clone()),
            worker: Arc::clone(&self.worker),
            service: self.service.clone(),
            shutdown,
            sign_in: Arc::clone(&self.sign_in),
            slack_team_id: self
                .config
                .web
                .slack_signin
                .as_ref()
                .map(|s| s.team_id.clone()),
            discord_guild_id: self.config.discord.guild_id.clone(),
        }));
        adapters = adapters.merge(crate::http::oidc::router(crate::http::oidc::SignInState {
            sign_in: Arc::clone(&self.sign_in),
            store: self.store.clone(),
            sessions: Arc::clone(&self.sessions),
            secure: self
                .config
                .server
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
        }));
        let guard = crate::http::Guard {
            store: self.store.clone(),
            sessions: Arc::clone(&self.sessions),
        };
        crate::http::router(state, guard, adapters)
    }

    /// Serves `/metrics` without a credential on `server.metrics_listen`, when set, until
    /// `shutdown`.
    async fn serve_metrics(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<JoinHandle<()>>> {
        let Some(addr) = self.config.server.metrics_listen else {
            return Ok(None);
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (server.metrics_listen)"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics without a token");
        let router = crate::http::metrics_router(self.http_state());
        let shutdown = shutdown.clone();
        Ok(Some(tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        })))
    }

    /// Serves HTTP on `listener` and runs the effects worker until `shutdown` fires. Then the
    /// server stops accepting, in-flight requests finish, and running effects get up to
    /// `server.shutdown_grace` to complete (anything cut off is retried after its lease).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let grace = self.config.server.shutdown_grace;
        if self.sessions.generated {
            tracing::warn!(
                "FIREBREAK_SESSION_KEY is not set: web sessions are signed with a key made at start, so they end when firebreak restarts"
            );
        }
        let metrics = self.serve_metrics(&shutdown).await?;
        let worker = tokio::spawn(Arc::clone(&self.worker).run(shutdown.clone(), grace));
        let reconciles = tokio::spawn(reconcile_every(self.clone(), shutdown.clone()));
        let gateway = self.spawn_gateway(&shutdown);
        let runbook_checks = self.runbook_watch.clone().map(|w| {
            let every = self.config.runbooks.check_interval;
            tokio::spawn(check_runbooks_every(w, every, shutdown.clone()))
        });
        let reminders = tokio::spawn(remind_until(
            self.service.clone(),
            self.config.incident.reminder_interval,
            shutdown.clone(),
        ));
        let router = self.router_until(shutdown.clone());
        tracing::info!(addr = %listener.local_addr()?, "firebreak is listening");
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await?;
        reminders.abort();
        reconciles.abort();
        if let Some(checks) = runbook_checks {
            checks.abort();
        }
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        if let Some(gateway) = gateway {
            // It stops on `shutdown` by itself; closing the websocket may take a moment.
            if tokio::time::timeout(grace, gateway).await.is_err() {
                tracing::warn!("the Discord gateway did not close within the grace");
            }
        }
        // The worker waits out the grace itself, then hands back what is still running.
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "the effects worker ended abnormally");
        }
        self.store.close().await;
        Ok(())
    }

    /// The Discord gateway client (📌 reactions onto the timeline), when configured: it runs
    /// beside the server until `shutdown`, and its failures only delay pins, never `serve`.
    fn spawn_gateway(&self, shutdown: &CancellationToken) -> Option<JoinHandle<()>> {
        let edge = self.discord.as_ref()?;
        let http = Arc::clone(self.discord_gateway.as_ref()?);
        let sink: Arc<dyn PinSink> = Arc::clone(edge) as Arc<dyn PinSink>;
        tracing::info!("starting the Discord gateway client");
        Some(tokio::spawn(gateway::run(
            move || http(),
            sink,
            shutdown.clone(),
        )))
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
