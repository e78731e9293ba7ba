//! When the effects a worker put back are due again, kept in memory so the claim loop
//! looks at that moment instead of at its next poll.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many times are kept: the soonest ones; the poll finds the rest.
const MAX_NOTED: usize = 4096;

#[derive(Debug, Default)]
pub struct RetryTimes(Mutex<BTreeSet<DateTime<Utc>>>);

impl RetryTimes {
    /// Remembers that an effect is due again at `at`.
    pub fn note(&self, at: DateTime<Utc>) {
        let mut times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        times.insert(at);
        if times.len() > MAX_NOTED {
            times.pop_last();
        }
    }

    /// Whether one is due by now (forgetting those that are).
    pub fn due(&self) -> bool {
        let mut times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        let mut due = false;
        while times.first().is_some_and(|at| *at <= now) {
            times.pop_first();
            due = true;
        }
        due
    }

    /// How long until the soonest is due, at most `poll`.
    pub fn wait(&self, poll: Duration) -> Duration {
        let times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        times.first().map_or(poll, |at| {
            (*at - Utc::now()).to_std().unwrap_or_default().min(poll)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soonest_time_sets_the_wait_and_each_is_due_once() {
        let times = RetryTimes::default();
        let poll = Duration::from_secs(10);
        assert_eq!(times.wait(poll), poll, "nothing noted: the poll");
        times.note(Utc::now() + chrono::Duration::seconds(60));
        assert_eq!(times.wait(poll), poll, "beyond the poll: the poll");
        times.note(Utc::now() - chrono::Duration::seconds(1));
        assert_eq!(times.wait(poll), Duration::ZERO);
        assert!(times.due());
        assert!(!times.due(), "forgotten once due");
        assert!(
            times.wait(poll) == poll,
            "the later one is still there, past the poll"
        );
    }
}
