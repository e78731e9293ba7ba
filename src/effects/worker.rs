//! The worker: claims due effects, runs them, and writes down what happened.
//!
//! `serve` runs [`Worker::run`] until shutdown; the CLI calls [`Worker::drain`] to deliver
//! just the effects its own command enqueued, with a bounded wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::breaker::Breakers;
use super::handler::{EffectError, EffectHandler};
use super::{Effect, EffectState};
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::store::Store;

/// Tuning for the worker; see `[effects]` in the config.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub concurrency: usize,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            concurrency: 8,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// What a bounded drain left behind.
#[derive(Debug, Default)]
pub struct DrainReport {
    pub delivered: Vec<Effect>,
    pub failed: Vec<Effect>,
    pub pending: Vec<Effect>,
}

pub struct Worker {
    store: Store,
    handlers: HashMap<&'static str, Arc<dyn EffectHandler>>,
    config: WorkerConfig,
    breakers: Breakers,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig, wake: Arc<Notify>) -> Self {
        Self {
            store,
            handlers: HashMap::new(),
            breakers: Breakers::new(config.breaker_threshold, config.breaker_cooldown),
            config,
            wake,
        }
    }

    pub fn with_handler(mut self, handler: Arc<dyn EffectHandler>) -> Self {
        for kind in handler.kinds() {
            self.handlers.insert(kind, Arc::clone(&handler));
        }
        self
    }

    /// Runs until `shutdown` fires, then lets effects already running finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            let free = self.config.concurrency.saturating_sub(running.len());
            if free > 0 {
                match self.claim(free, None).await {
                    Ok(batch) => {
                        for effect in batch {
                            let me = Arc::clone(&self);
                            running.spawn(async move { me.execute(effect).await });
                        }
                    }
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "claiming effects failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        if !running.is_empty() {
            tracing::info!(
                in_flight = running.len(),
                "waiting for running effects to finish"
            );
        }
        while running.join_next().await.is_some() {}
    }

    /// Claims and runs one batch of due effects (among `only`, if given); returns how many ran.
    pub async fn run_batch(&self, only: Option<&[i64]>) -> anyhow::Result<usize> {
        let batch = self.claim(self.config.concurrency, only).await?;
        let n = batch.len();
        let runs = batch.into_iter().map(|e| self.execute(e));
        futures::future::join_all(runs).await;
        Ok(n)
    }

    /// Delivers the given effects, waiting at most `timeout` (retries included).
    pub async fn drain(&self, ids: &[i64], timeout: Duration) -> anyhow::Result<DrainReport> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.run_batch(Some(ids)).await?;
            let effects = self.store.effects_by_ids(ids).await?;
            let all_finished = effects.iter().all(|e| e.state.is_finished());
            let now = tokio::time::Instant::now();
            if all_finished || now >= deadline {
                return Ok(report(effects));
            }
            let next = self.store.next_due(Some(ids)).await?;
            let wait = next
                .map(|t| (t - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_millis(100))
                .max(Duration::from_millis(20));
            tokio::time::sleep_until((now + wait).min(deadline)).await;
        }
    }

    async fn claim(&self, limit: usize, only: Option<&[i64]>) -> anyhow::Result<Vec<Effect>> {
        let limit = i64::try_from(limit).unwrap_or(1);
        self.store
            .claim_effects(Utc::now(), self.config.lease, limit, only)
            .await
    }

    /// Runs one claimed effect and records the outcome. Errors writing the outcome are
    /// logged; the lease then expires and the effect is retried, so nothing is lost.
    async fn execute(&self, effect: Effect) {
        let id = effect.id;
        if let Err(e) = self.try_execute(effect).await {
            tracing::error!(effect = id, error = %format!("{e:#}"), "recording an effect outcome failed");
        }
    }

    async fn try_execute(&self, effect: Effect) -> anyhow::Result<()> {
        let Some(handler) = self.handlers.get(effect.kind.as_str()).cloned() else {
            let reason = format!("no handler is configured for {} effects", effect.kind);
            return self.give_up(&effect, &reason).await;
        };
        let target = handler.target(&effect);
        let now = Utc::now();
        if let Some(until) = self.breakers.check(&target, now) {
            tracing::debug!(effect = effect.id, target = %target, "circuit open; effect held back");
            return self
                .store
                .reschedule_effect(effect.id, until, None, true)
                .await;
        }
        let limit = handler.max_duration(&effect).unwrap_or(self.config.lease);
        let outcome = tokio::select! {
            r = tokio::time::timeout(limit, handler.run(&effect)) => {
                r.unwrap_or_else(|_| Err(EffectError::retryable(format!("timed out after {}", humantime::format_duration(limit)))))
            }
            _ = self.keep_leased(effect.id) => unreachable!("the heartbeat never ends"),
        };
        match outcome {
            Ok(description) => {
                self.breakers.record_success(&target);
                let entry = description
                    .as_ref()
                    .map(|d| outcome_entry(&effect, EntryKind::EffectSucceeded, d.clone()));
                let result = description.as_deref().unwrap_or("ok");
                if !self
                    .store
                    .complete_effect(effect.id, result, entry.as_ref())
                    .await?
                {
                    tracing::warn!(
                        effect = effect.id,
                        "effect finished after its lease expired"
                    );
                }
                Ok(())
            }
            Err(EffectError::Permanent { reason }) => self.give_up(&effect, &reason).await,
            Err(EffectError::Retryable {
                reason,
                retry_after,
            }) => {
                if self.breakers.record_failure(&target, now) {
                    tracing::warn!(target = %target, "circuit opened after repeated failures");
                }
                if effect.attempts >= effect.max_attempts {
                    let why = format!("gave up after {} attempts: {reason}", effect.attempts);
                    return self.give_up(&effect, &why).await;
                }
                let delay =
                    self.config
                        .backoff
                        .delay(effect.attempts, retry_after, &mut rand::rng());
                let at =
                    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
                tracing::info!(effect = effect.id, kind = %effect.kind, attempt = effect.attempts,
                    retry_in_ms = delay.as_millis() as u64, reason = %reason, "effect will be retried");
                self.store
                    .reschedule_effect(effect.id, at, Some(&reason), false)
                    .await
            }
        }
    }

    /// Extends the lease of a running effect every third of a lease, forever.
    async fn keep_leased(&self, id: i64) {
        let every = self.config.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self
                .store
                .extend_lease(id, Utc::now(), self.config.lease)
                .await
            {
                tracing::warn!(effect = id, error = %format!("{e:#}"), "extending an effect's lease failed");
            }
        }
    }

    async fn give_up(&self, effect: &Effect, reason: &str) -> anyhow::Result<()> {
        tracing::warn!(effect = effect.id, kind = %effect.kind, reason = %reason, "effect failed for good");
        let text = format!(
            "{} failed: {reason} (see `firebreak effects list --failed`, effect {})",
            effect.kind, effect.id
        );
        let entry = outcome_entry(effect, EntryKind::EffectFailed, text);
        self.store
            .fail_effect(effect.id, reason, Some(&entry))
            .await?;
        Ok(())
    }
}

fn outcome_entry(effect: &Effect, kind: EntryKind, text: String) -> NewEntry {
    NewEntry {
        incident_id: effect.incident_id.clone(),
        occurred_at: Utc::now(),
        actor: "firebreak".into(),
        source: Source::System,
        kind,
        text,
    }
}

fn report(effects: Vec<Effect>) -> DrainReport {
    let mut r = DrainReport::default();
    for e in effects {
        match e.state {
            EffectState::Done => r.delivered.push(e),
            EffectState::Failed => r.failed.push(e),
            EffectState::Pending | EffectState::Running => r.pending.push(e),
        }
    }
    r
}

/// When an effect is due, for display.
pub fn due_in(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    if secs <= 0 {
        "now".into()
    } else {
        format!(
            "in {}",
            humantime::format_duration(Duration::from_secs(secs as u64))
        )
    }
}
