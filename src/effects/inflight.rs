//! A cap on attempts running at once per target, so one target that hangs (a webhook that
//! never answers, until `notify.timeout`) can take at most part of the worker and never
//! stall the others. An effect over the cap first waits briefly in memory for a place
//! (under a storm most attempts end in microseconds, deferred by a rate limit, and parking
//! each in the database cost two writes); if none frees up it goes back to the queue,
//! waiting on its target, and the next success there brings it back at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    running: HashMap<String, usize>,
    /// Targets that turned an effect away since their last success.
    turned_away: HashSet<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a place is given back.
    freed: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct InFlight {
    limit: usize,
    shared: Arc<Shared>,
}

/// A running attempt's place; gives it back when dropped.
pub struct Slot {
    target: String,
    shared: Arc<Shared>,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            shared: Arc::default(),
        }
    }

    /// A place for an attempt on `target`, or `None` if it already has `limit` running.
    pub fn enter(&self, target: &str) -> Option<Slot> {
        let slot = self.try_enter(target);
        if slot.is_none() {
            self.shared.lock().turned_away.insert(target.to_string());
        }
        slot
    }

    /// [`enter`](Self::enter), waiting up to `wait` for a place to free up.
    pub async fn enter_within(&self, target: &str, wait: Duration) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a place freed in between is not missed.
            let freed = self.shared.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_enter(target) {
                return Some(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.enter(target);
            }
        }
    }

    fn try_enter(&self, target: &str) -> Option<Slot> {
        let mut state = self.shared.lock();
        let running = state.running.entry(target.to_string()).or_default();
        if *running >= self.limit {
            return None;
        }
        *running += 1;
        Some(Slot {
            target: target.to_string(),
            shared: Arc::clone(&self.shared),
        })
    }

    /// Whether an attempt on `target` could start now.
    pub fn has_room(&self, target: &str) -> bool {
        let state = self.shared.lock();
        state.running.get(target).copied().unwrap_or(0) < self.limit
    }

    /// After a success on `target`: whether effects were turned away from it meanwhile (and
    /// so wait to be released).
    pub fn take_turned_away(&self, target: &str) -> bool {
        self.shared.lock().turned_away.remove(target)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(n) = state.running.get_mut(&self.target) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.running.remove(&self.target);
            }
        }
        drop(state);
        self.shared.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_gets_at_most_its_share() {
        let inflight = InFlight::new(2);
        let a = inflight.enter("hook:h").unwrap();
        let _b = inflight.enter("hook:h").unwrap();
        assert!(inflight.enter("hook:h").is_none(), "the third waits");
        assert!(inflight.enter("hook:g").is_some(), "other targets are free");
        drop(a);
        assert!(
            inflight.enter("hook:h").is_some(),
            "a finished attempt frees a place"
        );
        assert!(inflight.take_turned_away("hook:h"));
        assert!(!inflight.take_turned_away("hook:h"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_over_the_cap_waits_briefly_for_a_place_before_it_is_turned_away() {
        let inflight = Arc::new(InFlight::new(1));
        let held = inflight.enter("slack").unwrap();
        let waiter = {
            let inflight = Arc::clone(&inflight);
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let slot = inflight
                    .enter_within("slack", Duration::from_millis(100))
                    .await;
                (slot.is_some(), started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(held);
        let (entered, waited) = waiter.await.unwrap();
        assert!(entered, "the freed place went to the waiter");
        assert_eq!(waited, Duration::from_millis(30));
        assert!(
            !inflight.take_turned_away("slack"),
            "nobody was turned away, so nothing waits to be released"
        );

        let _hung = inflight.enter("hook:h").unwrap();
        let started = tokio::time::Instant::now();
        let slot = inflight
            .enter_within("hook:h", Duration::from_millis(100))
            .await;
        assert!(slot.is_none(), "a target that hangs turns it away");
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        assert!(inflight.take_turned_away("hook:h"));
    }
}
