//! Bounded delivery for one-shot CLI commands: [`Worker::drain`] delivers the effects a
//! command enqueued (and what they cause) with a bounded wait, then says what is left.

use std::time::Duration;

use chrono::Utc;

use super::Worker;
use crate::effects::{Effect, EffectState};

/// What a bounded drain left behind.
#[derive(Debug, Default)]
pub struct DrainReport {
    pub delivered: Vec<Effect>,
    pub failed: Vec<Effect>,
    pub pending: Vec<Effect>,
    /// Effects of kinds this process has no handler for (no credentials for that platform
    /// here); `serve` delivers them.
    pub left_for_serve: Vec<Effect>,
}

impl Worker {
    /// Claims and runs one batch of due effects (among `only`, if given); returns how many ran.
    pub async fn run_batch(&self, only: Option<&[i64]>) -> anyhow::Result<usize> {
        let batch = self.claim(self.config.concurrency, only).await?;
        let n = batch.len();
        let runs = batch.into_iter().map(|e| self.execute(e));
        futures::future::join_all(runs).await;
        Ok(n)
    }

    /// Delivers the given effects, starting no attempt after `timeout` (retries included).
    /// An attempt already running is let finish (at most `attempt_timeout`) rather than
    /// abandoned: an abandoned call that did reach the API would be made twice.
    pub async fn drain(&self, ids: &[i64], timeout: Duration) -> anyhow::Result<DrainReport> {
        if ids.is_empty() {
            return Ok(DrainReport::default());
        }
        self.register().await;
        let report = self.drain_registered(ids, timeout).await;
        self.retire().await;
        report
    }

    /// Drains `ids` and what they cause: effects queued for the same incidents since the
    /// drain began (a fan-out's one effect per channel), so a CLI write delivers them too.
    async fn drain_registered(
        &self,
        ids: &[i64],
        timeout: Duration,
    ) -> anyhow::Result<DrainReport> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ids = ids.to_vec();
        let own = self.store.effects_by_ids(&ids).await?;
        let since = own
            .iter()
            .map(|e| e.created_at)
            .min()
            .unwrap_or_else(Utc::now);
        let incidents: Vec<_> = own.into_iter().filter_map(|e| e.incident_id).collect();
        loop {
            self.run_batch(Some(&ids)).await?;
            for id in self.store.effect_ids_since(&incidents, since).await? {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let ids = ids.as_slice();
            let effects = self.store.effects_by_ids(ids).await?;
            let handled = |e: &Effect| self.handlers.contains_key(e.kind.as_str());
            let all_finished = effects.iter().all(|e| e.state.is_finished() || !handled(e));
            let now = tokio::time::Instant::now();
            if all_finished || now >= deadline {
                return Ok(report(effects, handled));
            }
            let next = self.store.next_due(Some(ids)).await?;
            let wait = next
                .map(|t| (t - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_millis(100))
                .max(Duration::from_millis(20));
            tokio::time::sleep_until((now + wait).min(deadline)).await;
        }
    }
}

fn report(effects: Vec<Effect>, handled: impl Fn(&Effect) -> bool) -> DrainReport {
    let mut r = DrainReport::default();
    for e in effects {
        match e.state {
            EffectState::Done => r.delivered.push(e),
            EffectState::Failed => r.failed.push(e),
            EffectState::Pending if !handled(&e) => r.left_for_serve.push(e),
            EffectState::Pending | EffectState::Running => r.pending.push(e),
        }
    }
    r
}
