//! The worker: claims due effects, runs them, and writes down what happened.
//!
//! `serve` runs [`Worker::run`] until shutdown; the CLI calls [`Worker::drain`] to deliver
//! just the effects its own command enqueued, with a bounded wait.
//!
//! Delivery policy (see [`next_step`](super::policy::next_step)): an effect is retried until it succeeds, fails
//! permanently, or has been failing for `give_up_after`. Waiting on an open circuit or a rate
//! limit spends no attempt, and neither does a failed breaker probe; when a target answers
//! again, everything waiting on it is released at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Effect;
use super::backoff::Backoff;
use super::breaker::Breakers;
use super::due::RetryTimes;
use super::handler::EffectHandler;
use super::inflight::InFlight;
use super::workers::{Identity, reap_dead};
use crate::store::Store;

mod attempt;
mod drain;

pub use drain::DrainReport;

/// An attempt running this long no longer holds one of the worker's slots.
const SLOW_AFTER: Duration = Duration::from_secs(2);

/// How long an attempt over its target's in-flight cap waits in memory for a place before
/// it is parked in the queue: long enough for the attempts ahead of it that end at once
/// (deferred by a rate limit, say), short enough that a target that hangs holds it briefly.
const ROOM_WAIT: Duration = Duration::from_millis(100);

/// Claims are at least this far apart: under a burst every command wakes the worker, and
/// one claim for what a few milliseconds of commands queued costs one transaction, not one
/// per command. (An effect starts at most this much later.)
const CLAIM_GAP: Duration = Duration::from_millis(10);

/// Tuning for the worker; see `[effects]` in the config.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Gives up after this many attempts that reached the target; `None` means no cap
    /// other than `give_up_after`.
    pub max_attempts: Option<u32>,
    /// How long an effect may keep failing transiently before it is marked failed.
    pub give_up_after: Duration,
    pub backoff: Backoff,
    pub poll_interval: Duration,
    /// How long a claim holds an effect; renewed every third of it while the attempt runs.
    pub lease: Duration,
    /// How long one attempt may run unless its handler says otherwise.
    pub attempt_timeout: Duration,
    pub concurrency: usize,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            max_attempts: None,
            give_up_after: Duration::from_secs(24 * 3600),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30),
            concurrency: 8,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(10),
        }
    }
}

pub struct Worker {
    store: Store,
    handlers: HashMap<&'static str, Arc<dyn EffectHandler>>,
    config: WorkerConfig,
    breakers: Breakers,
    inflight: InFlight,
    wake: Arc<Notify>,
    /// When effects this worker put back are due again (the soonest few thousand), so the
    /// claim loop looks then rather than at its next poll.
    retries: RetryTimes,
    me: Identity,
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig, wake: Arc<Notify>) -> Self {
        Self {
            store,
            handlers: HashMap::new(),
            breakers: Breakers::new(config.breaker_threshold, config.breaker_cooldown),
            inflight: InFlight::new(config.concurrency / 2),
            config,
            wake,
            retries: Default::default(),
            me: Identity::current(),
        }
    }

    pub fn with_handler(mut self, handler: Arc<dyn EffectHandler>) -> Self {
        self.replace_handler(handler);
        self
    }

    /// Runs `handler`'s kinds with it from now on, instead of whatever ran them.
    pub fn replace_handler(&mut self, handler: Arc<dyn EffectHandler>) {
        for kind in handler.kinds() {
            self.handlers.insert(kind, Arc::clone(&handler));
        }
    }

    /// Where `effect` goes (its handler's breaker key: `webhook:general`, `slack`, …);
    /// `None` when this worker has no handler for its kind.
    pub fn target_of(&self, effect: &Effect) -> Option<String> {
        self.handlers
            .get(effect.kind.as_str())
            .map(|h| h.target(effect))
    }

    /// Has the claim loop look for due effects now (an effect was queued again by hand).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// This worker's id, as recorded in the leases it holds.
    pub fn id(&self) -> &str {
        &self.me.id
    }

    /// Runs until `shutdown` fires, then gives effects already running up to `grace` to
    /// finish; whatever is still running then is handed back to the queue, due at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        self.register().await;
        let mut running: JoinSet<()> = JoinSet::new();
        let mut started: HashMap<tokio::task::Id, Instant> = HashMap::new();
        let mut housekeeping = tokio::time::interval(self.heartbeat_every());
        let mut claim_failures = 0u32;
        let mut last_claim = tokio::time::Instant::now() - CLAIM_GAP;
        // Whether due effects may be waiting: after a wake (something was queued or
        // released, or an effect finished), a poll, or a claim that filled every free slot.
        // An attempt that was only put back for later makes nothing due, so it claims nothing.
        let mut look = true;
        loop {
            let free = self.free_slots(&started);
            let mut pause = None;
            look |= self.retries.due();
            if free > 0 && look {
                tokio::time::sleep_until(last_claim + CLAIM_GAP).await;
                last_claim = tokio::time::Instant::now();
                match self.claim_and_start(free, &mut running, &mut started).await {
                    Ok(filled) => {
                        claim_failures = 0;
                        look = filled;
                    }
                    Err(e) => {
                        claim_failures += 1;
                        let backoff = self.claim_backoff(claim_failures);
                        pause = Some(backoff);
                        if claim_failures.is_power_of_two() {
                            tracing::error!(error = %format!("{e:#}"), failures = claim_failures,
                                retry_in_ms = backoff.as_millis() as u64, "claiming effects failed");
                        }
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified(), if claim_failures == 0 => look = true,
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    // Every attempt that ended meanwhile frees its slot before the next claim.
                    let ended = std::iter::once(done)
                        .chain(std::iter::from_fn(|| running.try_join_next_with_id()));
                    for done in ended {
                        started.remove(&done.map_or_else(|e| e.id(), |(id, ())| id));
                    }
                }
                // While the store refuses claims, the heartbeat would only fail too.
                _ = housekeeping.tick(), if claim_failures == 0 => self.housekeep().await,
                _ = tokio::time::sleep(pause.unwrap_or_else(|| self.retries.wait(self.config.poll_interval))) => look = true,
            }
        }
        self.stop(running, grace).await;
    }

    /// Claims up to `free` due effects and starts each; whether it filled every slot (so
    /// more may be due).
    async fn claim_and_start(
        self: &Arc<Self>,
        free: usize,
        running: &mut JoinSet<()>,
        started: &mut HashMap<tokio::task::Id, Instant>,
    ) -> anyhow::Result<bool> {
        let batch = self.claim(free, None).await?;
        let filled = batch.len() >= free;
        for effect in batch {
            let me = Arc::clone(self);
            let task = running.spawn(async move { me.execute(effect).await });
            started.insert(task.id(), Instant::now());
        }
        Ok(filled)
    }

    /// How many effects to claim now: `concurrency` less the attempts still running quickly.
    /// An attempt running longer than [`SLOW_AFTER`] is waiting on a target that hangs; it
    /// goes on, but stops holding a slot, so a few hanging targets (each capped at half the
    /// worker) cannot stall the rest. At most four times `concurrency` run at once.
    fn free_slots(&self, started: &HashMap<tokio::task::Id, Instant>) -> usize {
        let quick = started
            .values()
            .filter(|at| at.elapsed() < SLOW_AFTER)
            .count();
        let room = (self.config.concurrency * 4).saturating_sub(started.len());
        self.config.concurrency.saturating_sub(quick).min(room)
    }

    /// Waits up to `grace` for running effects, then releases the rest and retires.
    async fn stop(&self, mut running: JoinSet<()>, grace: Duration) {
        if !running.is_empty() {
            tracing::info!(
                in_flight = running.len(),
                "waiting for running effects to finish"
            );
        }
        let finished = tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            running.abort_all();
            while running.join_next().await.is_some() {}
            tracing::warn!(grace = ?grace, "effects still running at the end of the shutdown grace; handing them back to the queue");
        }
        self.retire().await;
    }

    /// How long the claim loop waits after its `failures`-th failure in a row (the store
    /// is down or read-only): doubling from the poll interval up to 30 s.
    fn claim_backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.min(6);
        (self.config.poll_interval * factor).min(Duration::from_secs(30))
    }

    fn heartbeat_every(&self) -> Duration {
        (self.config.lease / 6).clamp(Duration::from_millis(200), Duration::from_secs(5))
    }

    async fn register(&self) {
        let now = Utc::now();
        if let Err(e) = self
            .store
            .register_worker(&self.me.id, &self.me.hostname, self.me.pid, now)
            .await
        {
            tracing::warn!(error = %format!("{e:#}"), "registering the worker failed");
        }
        self.reap(now).await;
    }

    /// Heartbeat, and take over from dead workers.
    async fn housekeep(&self) {
        self.register().await;
    }

    async fn reap(&self, now: DateTime<Utc>) {
        match reap_dead(&self.store, &self.me, now, self.config.lease).await {
            Ok(0) => {}
            Ok(_) => self.wake.notify_one(),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "checking for dead workers failed"),
        }
    }

    async fn retire(&self) {
        match self.store.retire_worker(&self.me.id, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(effects = n, "handed unfinished effects back to the queue"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "retiring the worker failed; its leases will expire")
            }
        }
    }

    /// Claims only the kinds this worker has handlers for: a CLI run without a platform's
    /// credentials leaves that platform's effects pending for `serve`, rather than failing
    /// them.
    async fn claim(&self, limit: usize, only: Option<&[i64]>) -> anyhow::Result<Vec<Effect>> {
        let limit = i64::try_from(limit).unwrap_or(1);
        let kinds: Vec<&'static str> = self.handlers.keys().copied().collect();
        let (now, lease, me) = (Utc::now(), self.config.lease, &self.me.id);
        self.store
            .claim_effects_of(now, lease, limit, only, Some(&kinds), me)
            .await
    }
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
