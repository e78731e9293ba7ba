//! A circuit breaker per target (one webhook, one API). After `threshold` consecutive
//! failures the circuit opens and effects for that target wait out `cooldown` without
//! spending attempts; then one probe goes through, and its outcome closes or re-opens it.
//!
//! State lives in memory: after a restart every circuit starts closed, which costs at most
//! one round of failures and keeps the database out of the hot path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, Default)]
struct Circuit {
    consecutive_failures: u32,
    open_until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    cooldown: Duration,
    circuits: Mutex<HashMap<String, Circuit>>,
}

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            circuits: Mutex::new(HashMap::new()),
        }
    }

    /// `None` if a call to `target` may go ahead now, or when the circuit will let one through.
    pub fn check(&self, target: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        let circuit = map.get_mut(target)?;
        match circuit.open_until {
            Some(until) if until > now => Some(until),
            Some(_) => {
                // Half-open: let this call probe, and hold everyone else back for another round.
                circuit.open_until = Some(now + self.cooldown_chrono());
                None
            }
            None => None,
        }
    }

    pub fn record_success(&self, target: &str) {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(target);
    }

    /// Records a failure; returns `true` if this failure opened the circuit.
    pub fn record_failure(&self, target: &str, now: DateTime<Utc>) -> bool {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        let circuit = map.entry(target.to_string()).or_default();
        circuit.consecutive_failures += 1;
        if circuit.consecutive_failures >= self.threshold {
            let was_closed = circuit.open_until.is_none();
            circuit.open_until = Some(now + self.cooldown_chrono());
            return was_closed;
        }
        false
    }

    fn cooldown_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cooldown).unwrap_or(chrono::Duration::seconds(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_after_cooldown() {
        let b = Breakers::new(3, Duration::from_secs(30));
        let t0 = Utc::now();
        assert!(!b.record_failure("slack", t0));
        assert!(!b.record_failure("slack", t0));
        assert!(b.record_failure("slack", t0));
        assert!(
            b.check("slack", t0).is_some(),
            "open right after the third failure"
        );
        assert!(
            b.check("github", t0).is_none(),
            "other targets are unaffected"
        );
        let later = t0 + chrono::Duration::seconds(31);
        assert!(b.check("slack", later).is_none(), "one probe goes through");
        assert!(
            b.check("slack", later).is_some(),
            "the rest wait for the probe"
        );
        b.record_success("slack");
        assert!(b.check("slack", later).is_none());
    }
}
