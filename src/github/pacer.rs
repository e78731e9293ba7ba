//! Pacing for GitHub's secondary limits: at most `per_minute` content-creating requests in
//! any minute and `per_hour` in any hour (sliding windows, as GitHub documents them).
//!
//! A token bucket (governor's GCRA) would allow a full burst on top of the steady rate and
//! so exceed a sliding-window limit at the start; this keeps the log of recent send times
//! instead and hands out the earliest slot that keeps both windows within their limits.
//! Slots are reserved under the lock, so concurrent callers never take the same one.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::Pacing;

/// Stay this far under each limit: requests reach GitHub a little later than we release
/// them, and the clocks are not the same.
const HEADROOM: f64 = 0.95;

#[derive(Debug)]
pub struct Pacer {
    windows: [(Duration, usize); 2],
    sent: Mutex<VecDeque<Instant>>,
}

impl Pacer {
    pub fn new(p: &Pacing) -> Self {
        let limit = |n: u32| ((f64::from(n) * HEADROOM).floor() as usize).max(1);
        Self {
            windows: [
                (p.minute, limit(p.per_minute)),
                (p.minute * 60, limit(p.per_hour)),
            ],
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits for the next free slot and takes it.
    pub async fn acquire(&self) {
        let at = {
            let mut sent = self.sent.lock().await;
            let now = Instant::now();
            let longest = self.windows.iter().map(|w| w.0).max().unwrap_or_default();
            while sent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= longest)
            {
                sent.pop_front();
            }
            let at = self.earliest_slot(&sent, now);
            sent.push_back(at);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    fn earliest_slot(&self, sent: &VecDeque<Instant>, now: Instant) -> Instant {
        earliest_slot(&self.windows, sent, now)
    }
}

/// The earliest time at which one more request keeps every window within its limit.
fn earliest_slot(windows: &[(Duration, usize)], sent: &VecDeque<Instant>, now: Instant) -> Instant {
    let mut at = now.max(sent.back().copied().unwrap_or(now));
    for &(window, limit) in windows {
        if sent.len() >= limit {
            // The request `limit` places back must have left the window by `at`.
            let blocking = sent[sent.len() - limit];
            at = at.max(blocking + window + Duration::from_millis(1));
        }
    }
    at
}

/// The pacing floor GitHub's limits impose: the earliest the last of `n` content-creating
/// requests may be sent, starting from an empty window, at exactly the documented limits.
pub fn floor(p: &Pacing, n: usize) -> Duration {
    let windows = [
        (p.minute, p.per_minute as usize),
        (p.minute * 60, p.per_hour as usize),
    ];
    let start = Instant::now();
    let mut sent = VecDeque::new();
    for _ in 0..n {
        let at = earliest_slot(&windows, &sent, start);
        sent.push_back(at);
    }
    sent.back()
        .map_or(Duration::ZERO, |t| t.duration_since(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(per_minute: u32, per_hour: u32) -> Pacing {
        Pacing {
            per_minute,
            per_hour,
            max_concurrent: 10,
            minute: Duration::from_secs(60),
        }
    }

    /// Counts the most sends in any half-open window of length `w`.
    fn max_in_window(times: &[Instant], w: Duration) -> usize {
        times
            .iter()
            .map(|t| times.iter().filter(|u| **u >= *t && **u < *t + w).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_exceeds_either_window() {
        let pacer = Pacer::new(&pacing(20, 50));
        let mut times = Vec::new();
        for _ in 0..120 {
            pacer.acquire().await;
            times.push(Instant::now());
        }
        assert!(max_in_window(&times, Duration::from_secs(60)) <= 19);
        assert!(max_in_window(&times, Duration::from_secs(3600)) <= 47);
        // The first minute's worth goes out at once: enforcement is not delayed needlessly.
        assert_eq!(times[18], times[0]);
    }
}
