//! One attempt: run a claimed effect through its handler (behind its target's breaker and
//! in-flight cap), decide the next step, and write it down.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{ROOM_WAIT, Worker};
use crate::effects::Effect;
use crate::effects::breaker::Gate;
use crate::effects::handler::{EffectError, EffectHandler};
use crate::effects::pacing::as_effect;
use crate::effects::policy::{Step, chrono_duration, next_step, outcome_label};
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::telemetry;

impl Worker {
    /// Runs one claimed effect and records the outcome. Errors writing the outcome are
    /// logged; the lease then expires and the effect is retried, so nothing is lost.
    pub(super) async fn execute(&self, effect: Effect) {
        let id = effect.id;
        if let Err(e) = self.try_execute(effect).await {
            tracing::error!(effect = id, error = %format!("{e:#}"), "recording an effect outcome failed");
        }
    }

    async fn try_execute(&self, effect: Effect) -> anyhow::Result<()> {
        let Some((&kind, handler)) = self.handlers.get_key_value(effect.kind.as_str()) else {
            telemetry::effect_outcome("unhandled", "none", "failed");
            let reason = format!("no handler is configured for {} effects", effect.kind);
            return self.give_up(&effect, &reason).await;
        };
        let handler = Arc::clone(handler);
        let target = handler.target(&effect);
        let now = Utc::now();
        let probe = match self.breakers.check(&target, now) {
            Gate::Open(until) => {
                telemetry::effect_outcome(kind, &target, "held");
                let closed = || !self.breakers.is_failing(&target);
                return self.park(&effect, &target, until, closed).await;
            }
            Gate::Probe => true,
            Gate::Closed => false,
        };
        let Some(slot) = self.inflight.enter_within(&target, ROOM_WAIT).await else {
            // Half the worker is busy with this target: wait for one of those to succeed
            // (or, at the latest, an attempt timeout).
            telemetry::effect_outcome(kind, &target, "held");
            let until = now + chrono_duration(self.config.attempt_timeout);
            let room = || self.inflight.has_room(&target);
            return self.park(&effect, &target, until, room).await;
        };
        let started = Instant::now();
        let outcome = self.attempt(handler.as_ref(), &effect).await;
        telemetry::effect_attempt(&target, started.elapsed());
        drop(slot);
        let now = Utc::now();
        let retry_after = match &outcome {
            // A permanent error is an answer too (`channel_not_found`, a 404), and so is "not
            // ready yet": the target is up.
            Ok(_) | Err(EffectError::Permanent { .. }) | Err(EffectError::Waiting { .. }) => {
                self.on_success(&target, now).await;
                None
            }
            Err(EffectError::Retryable { retry_after, .. }) => {
                if self.breakers.record_failure(&target, now) {
                    tracing::warn!(effect_target = %target, "circuit opened after repeated failures");
                }
                *retry_after
            }
            Err(_) => None,
        };
        let delay = self
            .config
            .backoff
            .delay(effect.attempts, retry_after, &mut rand::rng());
        let shown = outcome.clone();
        let step = next_step(&effect, outcome, &self.config, &target, probe, now, delay);
        telemetry::effect_outcome(kind, &target, outcome_label(&step, &shown));
        self.record(&effect, step).await
    }

    /// Puts an effect back, waiting on `target`, until `until` at the latest, without
    /// spending an attempt. `cleared` re-checks whether what it waits for (an open circuit, a
    /// busy target) already passed: if the release ran before this write, release again.
    async fn park(
        &self,
        effect: &Effect,
        target: &str,
        until: DateTime<Utc>,
        cleared: impl Fn() -> bool,
    ) -> anyhow::Result<()> {
        tracing::debug!(effect = effect.id, effect_target = %target, until = %until, "effect waits on its target");
        self.store
            .reschedule_effect(effect.id, until, None, true, Some(target))
            .await?;
        self.retries.note(until);
        if cleared() {
            self.store.release_waiting(target, Utc::now()).await?;
            self.wake.notify_one();
        }
        Ok(())
    }

    /// One attempt, bounded by its timeout, with the lease renewed while it runs.
    async fn attempt(
        &self,
        handler: &dyn EffectHandler,
        effect: &Effect,
    ) -> Result<Option<String>, EffectError> {
        let limit = handler
            .max_duration(effect)
            .unwrap_or(self.config.attempt_timeout);
        let holder = effect.idempotency_key.as_str().into();
        tokio::select! {
            r = tokio::time::timeout(limit, as_effect(holder, handler.run(effect))) => {
                r.unwrap_or_else(|_| Err(EffectError::retryable(format!("timed out after {}", humantime::format_duration(limit)))))
            }
            _ = self.keep_leased(effect.id) => unreachable!("the heartbeat never ends"),
        }
    }

    /// Closes the target's circuit; if it had been failing, releases everything waiting on it.
    async fn on_success(&self, target: &str, now: DateTime<Utc>) {
        let recovered = self.breakers.record_success(target);
        if self.inflight.take_turned_away(target) | recovered {
            match self.store.release_waiting(target, now).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(effect_target = %target, released = n, "target answered again; released the effects waiting on it");
                    self.wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(effect_target = %target, error = %format!("{e:#}"), "releasing waiting effects failed")
                }
            }
        }
    }

    /// Writes down what `step` says. A finished effect may have let the next of its ordering
    /// key run, or queued follow-ups (a fan-out's children): the claim loop is woken to look.
    async fn record(&self, effect: &Effect, step: Step) -> anyhow::Result<()> {
        let retry_at = match &step {
            Step::Retry { at, .. } => Some(*at),
            Step::Done(_) | Step::GiveUp(_) => None,
        };
        let recorded = self.write_step(effect, step).await;
        match retry_at {
            Some(at) => self.retries.note(at),
            None => self.wake.notify_one(),
        }
        recorded
    }

    async fn write_step(&self, effect: &Effect, step: Step) -> anyhow::Result<()> {
        match step {
            Step::Done(description) => {
                let entry = description
                    .as_ref()
                    .map(|d| outcome_entry(effect, EntryKind::EffectSucceeded, d.clone()));
                let result = description.as_deref().unwrap_or("ok");
                if !self
                    .store
                    .complete_effect(effect.id, result, entry.as_ref())
                    .await?
                {
                    tracing::warn!(
                        effect = effect.id,
                        "effect finished after its lease was taken over"
                    );
                }
                Ok(())
            }
            Step::GiveUp(reason) => self.give_up(effect, &reason).await,
            Step::Retry {
                at,
                error,
                refund,
                waiting_on,
            } => {
                if let Some(reason) = &error {
                    tracing::info!(effect = effect.id, kind = %effect.kind, attempt = effect.attempts,
                        retry_at = %at, reason = %reason, "effect will be retried");
                }
                self.store
                    .reschedule_effect(
                        effect.id,
                        at,
                        error.as_deref(),
                        refund,
                        waiting_on.as_deref(),
                    )
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
                .extend_lease(id, Utc::now(), self.config.lease, &self.me.id)
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
        actor: crate::incident::Actor::system().identity().to_string(),
        source: Source::System,
        kind,
        text,
    }
}
