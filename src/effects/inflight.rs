//! A cap on attempts running at once per target, so one target that hangs (a webhook that
//! never answers, until `notify.timeout`) can take at most part of the worker and never
//! stall the others. An effect over the cap goes back to the queue, waiting on its target;
//! the next success there brings it back at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    running: HashMap<String, usize>,
    /// Targets that turned an effect away since their last success.
    turned_away: HashSet<String>,
}

pub struct InFlight {
    limit: usize,
    state: Arc<Mutex<State>>,
}

/// A running attempt's place; gives it back when dropped.
pub struct Slot {
    target: String,
    state: Arc<Mutex<State>>,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            state: Arc::default(),
        }
    }

    /// A place for an attempt on `target`, or `None` if it already has `limit` running.
    pub fn enter(&self, target: &str) -> Option<Slot> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let running = state.running.entry(target.to_string()).or_default();
        if *running >= self.limit {
            state.turned_away.insert(target.to_string());
            return None;
        }
        *running += 1;
        Some(Slot {
            target: target.to_string(),
            state: Arc::clone(&self.state),
        })
    }

    /// Whether an attempt on `target` could start now.
    pub fn has_room(&self, target: &str) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.running.get(target).copied().unwrap_or(0) < self.limit
    }

    /// After a success on `target`: whether effects were turned away from it meanwhile (and
    /// so wait to be released).
    pub fn take_turned_away(&self, target: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.turned_away.remove(target)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = state.running.get_mut(&self.target) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.running.remove(&self.target);
            }
        }
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
}
