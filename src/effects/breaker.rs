//! A circuit breaker per target (one webhook, one API). After `threshold` consecutive
//! failures the circuit opens and effects for that target wait out `cooldown` without
//! spending attempts; then one probe goes through. A failed probe re-opens the circuit (and
//! spends no attempt either); a successful one closes it, and the worker then releases every
//! effect that was waiting on that target at once.
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

/// What the breaker says about a call to a target, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Closed,
    /// Go ahead as the one probe of a half-open circuit; everyone else waits for it.
    Probe,
    /// Wait until then without calling.
    Open(DateTime<Utc>),
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

    pub fn check(&self, target: &str, now: DateTime<Utc>) -> Gate {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        let Some(circuit) = map.get_mut(target) else {
            return Gate::Closed;
        };
        match circuit.open_until {
            Some(until) if until > now => Gate::Open(until),
            Some(_) => {
                // Half-open: let this call probe, and hold everyone else back for another round.
                circuit.open_until = Some(now + self.cooldown_chrono());
                Gate::Probe
            }
            None => Gate::Closed,
        }
    }

    /// Records a success; returns `true` if the target had been failing, so whatever waits
    /// on it can be released.
    pub fn record_success(&self, target: &str) -> bool {
        let mut map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(target).is_some()
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

    /// Whether the target has failed since its last success (its waiting effects need a
    /// release when it next succeeds).
    pub fn is_failing(&self, target: &str) -> bool {
        let map = self.circuits.lock().unwrap_or_else(|e| e.into_inner());
        map.contains_key(target)
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
            matches!(b.check("slack", t0), Gate::Open(_)),
            "open right after the third failure"
        );
        assert_eq!(
            b.check("github", t0),
            Gate::Closed,
            "other targets are unaffected"
        );
        let later = t0 + chrono::Duration::seconds(31);
        assert_eq!(
            b.check("slack", later),
            Gate::Probe,
            "one probe goes through"
        );
        assert!(
            matches!(b.check("slack", later), Gate::Open(_)),
            "the rest wait for the probe"
        );
        assert!(b.record_success("slack"), "a recovery is reported");
        assert_eq!(b.check("slack", later), Gate::Closed);
        assert!(!b.record_success("slack"), "a routine success is not");
    }

    #[test]
    fn a_failed_probe_reopens_without_reporting_a_new_opening() {
        let b = Breakers::new(1, Duration::from_secs(10));
        let t0 = Utc::now();
        assert!(b.record_failure("hook", t0));
        let later = t0 + chrono::Duration::seconds(11);
        assert_eq!(b.check("hook", later), Gate::Probe);
        assert!(!b.record_failure("hook", later));
        assert!(matches!(b.check("hook", later), Gate::Open(_)));
        assert!(b.is_failing("hook"));
    }
}
