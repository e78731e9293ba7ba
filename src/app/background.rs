//! The loops `serve` runs beside the HTTP server: overdue-update reminders (with due
//! runbook steps and expiring freeze holds), the runbook checks, and the periodic freeze
//! reconcile. Each logs its failures and tries again on its next tick.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::App;
use crate::incident::IncidentService;
use crate::runbook::watch::{self, Watch};

/// Checks for overdue status updates, runs due runbook steps, and ends expired freeze holds,
/// every `interval` until shutdown. Reminders are rows (`next_update_due`, `reminded_due`),
/// not timers, so a restart loses none.
pub(super) async fn remind_until(
    service: IncidentService,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match service.remind_overdue().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(incidents = n, "sent overdue-update reminders"),
            Err(e) => tracing::error!(error = %e, "checking for overdue updates failed"),
        }
        // Runbook steps whose wake-up effect was lost or late (a restart) fire on this tick.
        match service.run_runbooks().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(steps = n, "ran due runbook steps"),
            Err(e) => tracing::error!(error = %e, "running due runbook steps failed"),
        }
        // Freeze holds with an expiry (`freeze … --for 4h`) end on the same tick.
        match service.expire_holds().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(holds = n, "ended expired freeze holds"),
            Err(e) => tracing::error!(error = %e, "ending expired freeze holds failed"),
        }
    }
}

/// Checks the runbooks at start and then every `interval` until shutdown, reporting each
/// new problem once (see [`Watch`]); a failed tick is logged and tried again next time.
pub(super) async fn check_runbooks_every(
    watch: Arc<Watch>,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        match watch.tick(chrono::Utc::now()).await {
            Ok(tick) => log_tick(&tick),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "checking the runbooks failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

fn log_tick(tick: &watch::Tick) {
    for f in &tick.posted {
        tracing::warn!(runbook = %f.runbook, step = %f.step, problem = %f.problem, "stale runbook");
    }
    for f in &tick.cleared {
        tracing::info!(runbook = %f.runbook, step = %f.step, "stale runbook problem cleared");
    }
    for f in &tick.report.unchecked {
        tracing::debug!(runbook = %f.runbook, step = %f.step, why = %f.problem, "runbook target not checked");
    }
}

/// Queues a reconcile every `github.reconcile_interval` while anything is (or was) frozen,
/// so drift such as a hand-deleted ruleset is repaired. The queue's FIFO group and the
/// Postgres advisory lock keep replicas from reconciling at once.
pub(super) async fn reconcile_every(app: App, shutdown: CancellationToken) {
    if app.github_client.is_none() {
        return;
    }
    let interval = app.config.github.reconcile_interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = app.queue_reconcile().await {
            tracing::error!(error = %format!("{e:#}"), "queueing a periodic reconcile failed");
        }
    }
}

impl App {
    /// Queues one reconcile now (if any freeze state exists and none is already waiting).
    pub async fn queue_reconcile(&self) -> anyhow::Result<()> {
        if self.store.freeze_scopes().await?.is_empty() {
            return Ok(());
        }
        let generation = self.store.freeze_generation().await?;
        let bucket = chrono::Utc::now().timestamp()
            / self.config.github.reconcile_interval.as_secs().max(1) as i64;
        let effect = crate::github::effect::periodic_reconcile(generation, bucket);
        self.service
            .enqueue(&effect)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}
