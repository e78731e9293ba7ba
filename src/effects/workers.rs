//! Who holds a lease. Each worker (a `serve`, or a CLI draining its own effects) registers
//! with its host and pid, under an id that starts with a token drawn once per process. A
//! worker that finds a dead one on its own host (its pid gone, or its pid taken by another
//! process, as after a container restart where both are pid 1) hands that worker's effects
//! back at once, so a crash costs seconds, not a lease. Workers on other hosts are judged by
//! their heartbeat; their leases also expire on their own.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{Store, WorkerRow};

/// This process as a worker.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub hostname: String,
    pub pid: u32,
}

impl Identity {
    /// A new worker in this process: `PROCESS-TOKEN/N`.
    pub fn current() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            id: format!("{}/{n}", process_token()),
            hostname: hostname(),
            pid: std::process::id(),
        }
    }

    fn process(&self) -> &str {
        process_of(&self.id)
    }
}

/// Drawn once per process, so two workers of one process (tests run several) never take
/// each other for dead, while a new process that got an old one's pid can tell it apart.
fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

fn process_of(id: &str) -> &str {
    id.split_once('/').map_or(id, |(process, _)| process)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a live process with this pid exists on this host (Linux: `/proc/PID/stat`, where
/// a killed process not yet reaped by its parent shows as a zombie, `Z`, and counts as
/// dead). Elsewhere we cannot tell, and say it is alive, leaving it to the heartbeat and
/// the lease.
pub fn pid_alive(pid: i64) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !is_zombie(&stat),
        Err(_) => false,
    }
}

/// The state field of `/proc/PID/stat` follows the command name, which is in parentheses
/// and may itself contain spaces or parentheses.
fn is_zombie(stat: &str) -> bool {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

/// Pure policy: is `other` dead, as seen by `me`?
pub fn is_dead(
    other: &WorkerRow,
    me: &Identity,
    now: DateTime<Utc>,
    stale_after: Duration,
    alive: impl Fn(i64) -> bool,
) -> bool {
    if other.id == me.id {
        return false;
    }
    let stale_ms = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX / 2);
    if now.timestamp_millis() - other.heartbeat_at > stale_ms {
        return true;
    }
    if other.hostname != me.hostname || process_of(&other.id) == me.process() {
        return false;
    }
    other.pid == i64::from(me.pid) || !alive(other.pid)
}

/// Retires every dead worker, handing their effects back. Returns how many effects.
pub async fn reap_dead(
    store: &Store,
    me: &Identity,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> anyhow::Result<u64> {
    let mut released = 0;
    for other in store.workers().await? {
        if is_dead(&other, me, now, stale_after, pid_alive) {
            let n = store.retire_worker(&other.id, now).await?;
            if n > 0 {
                tracing::info!(worker = %other.id, host = %other.hostname, pid = other.pid, effects = n,
                    "took over the effects of a worker that is gone");
            }
            released += n;
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, host: &str, pid: i64, heartbeat_at: i64) -> WorkerRow {
        WorkerRow {
            id: id.into(),
            hostname: host.into(),
            pid,
            heartbeat_at,
        }
    }

    #[test]
    fn zombies_count_as_dead() {
        assert!(is_zombie("4242 (firebreak) Z 1 4242 4242 0 -1"));
        assert!(!is_zombie("4242 (fire break) (x) S 1 4242 4242 0 -1"));
        assert!(pid_alive(i64::from(std::process::id())));
    }

    #[test]
    fn dead_workers_are_recognised() {
        let me = Identity {
            id: "p1/1".into(),
            hostname: "h1".into(),
            pid: 1,
        };
        let now = Utc::now();
        let fresh = now.timestamp_millis();
        let stale = Duration::from_secs(60);
        let alive = |_| true;
        let gone = |_| false;
        assert!(!is_dead(
            &row("p1/1", "h1", 1, fresh),
            &me,
            now,
            stale,
            alive
        ));
        assert!(
            !is_dead(&row("p1/2", "h1", 1, fresh), &me, now, stale, gone),
            "another worker of my own process is alive"
        );
        assert!(
            is_dead(&row("p0/1", "h1", 1, fresh), &me, now, stale, alive),
            "my own pid in another process: I replaced it (a container restart)"
        );
        assert!(is_dead(
            &row("p2/1", "h1", 77, fresh),
            &me,
            now,
            stale,
            gone
        ));
        assert!(
            !is_dead(&row("p2/1", "h2", 77, fresh), &me, now, stale, gone),
            "another host's pids mean nothing here"
        );
        let old = fresh - 61_000;
        assert!(is_dead(&row("p2/1", "h2", 77, old), &me, now, stale, alive));
    }
}
