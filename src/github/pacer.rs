//! Pacing for GitHub's secondary limits: at most `per_minute` content-creating requests in
//! any minute and `per_hour` in any hour (sliding windows, as GitHub documents them).
//!
//! A token bucket (governor's GCRA) would allow a full burst on top of the steady rate and
//! so exceed a sliding-window limit at the start; this keeps a log of recent requests and
//! hands out the earliest slot that keeps both windows within their limits. Each request is
//! logged at the moment its *response* arrived (`Ticket::done`), which is no earlier than
//! GitHub saw it, so network delay and scheduling jitter can only make us more careful.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::Pacing;

/// Stay this far under each limit, in case GitHub counts something we don't see.
const HEADROOM: f64 = 0.95;

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    /// Release time while in flight, response time once done.
    at: Instant,
    done: bool,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<Entry>,
    next_id: u64,
}

#[derive(Debug)]
pub struct Pacer {
    windows: [(Duration, usize); 2],
    log: Arc<Mutex<Log>>,
}

/// A slot taken from the pacer; report when the response came back.
#[must_use]
pub struct Ticket {
    id: u64,
    log: Arc<Mutex<Log>>,
}

impl Ticket {
    pub async fn done(self) {
        let mut log = self.log.lock().await;
        let now = Instant::now();
        if let Some(e) = log.entries.iter_mut().find(|e| e.id == self.id) {
            e.at = now;
            e.done = true;
        }
    }
}

impl Pacer {
    pub fn new(p: &Pacing) -> Self {
        let limit = |n: u32| ((f64::from(n) * HEADROOM).floor() as usize).max(1);
        Self {
            windows: [
                (p.minute, limit(p.per_minute)),
                (p.minute * 60, limit(p.per_hour)),
            ],
            log: Arc::new(Mutex::new(Log::default())),
        }
    }

    /// Waits for the next free slot and takes it.
    pub async fn acquire(&self) -> Ticket {
        loop {
            let wait_until = {
                let mut log = self.log.lock().await;
                let now = Instant::now();
                let longest = self.windows.iter().map(|w| w.0).max().unwrap_or_default();
                while log
                    .entries
                    .front()
                    .is_some_and(|e| e.done && now.saturating_duration_since(e.at) >= longest)
                {
                    log.entries.pop_front();
                }
                // A request still in flight may reach GitHub as late as now.
                let times: Vec<Instant> = log
                    .entries
                    .iter()
                    .map(|e| if e.done { e.at } else { now })
                    .collect();
                let at = earliest_slot(&self.windows, &times, now);
                if at <= now {
                    let id = log.next_id;
                    log.next_id += 1;
                    log.entries.push_back(Entry {
                        id,
                        at: now,
                        done: false,
                    });
                    return Ticket {
                        id,
                        log: Arc::clone(&self.log),
                    };
                }
                at
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }
}

/// The earliest time at which one more request keeps every window within its limit.
/// `times` are the logged requests, oldest first.
fn earliest_slot(windows: &[(Duration, usize)], times: &[Instant], now: Instant) -> Instant {
    let mut at = now;
    for &(window, limit) in windows {
        if times.len() >= limit {
            // The `limit`-th most recent request must have left the window by `at`.
            let mut recent: Vec<Instant> = times.to_vec();
            recent.sort();
            let blocking = recent[recent.len() - limit];
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
    let mut sent: Vec<Instant> = Vec::new();
    for _ in 0..n {
        let at = earliest_slot(&windows, &sent, start);
        sent.push(at);
    }
    sent.last()
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
            let ticket = pacer.acquire().await;
            times.push(Instant::now());
            tokio::time::sleep(Duration::from_millis(30)).await;
            ticket.done().await;
        }
        assert!(max_in_window(&times, Duration::from_secs(60)) <= 19);
        assert!(max_in_window(&times, Duration::from_secs(3600)) <= 47);
    }

    #[tokio::test(start_paused = true)]
    async fn a_minutes_worth_goes_out_at_once() {
        let pacer = Arc::new(Pacer::new(&pacing(80, 500)));
        let start = Instant::now();
        let tickets: Vec<Ticket> =
            futures::future::join_all((0..76).map(|_| pacer.acquire())).await;
        assert_eq!(
            Instant::now(),
            start,
            "enforcement is not delayed needlessly"
        );
        for t in tickets {
            t.done().await;
        }
        let _next = pacer.acquire().await;
        assert!(Instant::now() >= start + Duration::from_secs(60));
    }

    #[test]
    fn the_floor_follows_the_documented_limits() {
        let p = pacing(80, 500);
        assert_eq!(floor(&p, 80), Duration::ZERO);
        assert!(floor(&p, 81) > Duration::from_secs(60));
        assert!(
            floor(&p, 340) > Duration::from_secs(240) && floor(&p, 340) < Duration::from_secs(241)
        );
    }
}
