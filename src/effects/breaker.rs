//! A circuit breaker per target (one webhook, one API). After `threshold` consecutive
//! failures the circuit opens and effects for that target wait out `cooldown` without
//! spending attempts; then one probe goes through. A failed probe re-opens the circuit (and
//! spends no attempt either); a successful one closes it, and the worker then releases every
//! effect that was waiting on that target at once.
//!
//! State lives in memory: after a restart every circuit starts closed, which costs at most
//! one round of failures and keeps the database out of the hot path. Every transition sets
//! `firebreak_breaker_state{target}` (see [`BreakerState`]) for the target's bounded label.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::telemetry::{breaker_state, target_label};

/// A circuit's state as the gauge shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreakerState {
    #[default]
    Closed = 0,
    /// Half-open: one probe is through, everyone else waits for it.
    Probing = 1,
    Open = 2,
}

#[derive(Debug, Clone, Copy, Default)]
struct Circuit {
    consecutive_failures: u32,
    open_until: Option<DateTime<Utc>>,
    state: BreakerState,
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
    /// The gauge labels shown so far: a target is shown closed (0) from its first call, so
    /// the family lists every target, not only those that ever opened.
    shown: Mutex<std::collections::HashSet<String>>,
}

type Circuits = HashMap<String, Circuit>;

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            circuits: Mutex::new(HashMap::new()),
            shown: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Circuits> {
        self.circuits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn check(&self, target: &str, now: DateTime<Utc>) -> Gate {
        let mut map = self.lock();
        let Some(circuit) = map.get_mut(target) else {
            return Gate::Closed;
        };
        match circuit.open_until {
            Some(until) if until > now => Gate::Open(until),
            Some(_) => {
                // Half-open: let this call probe, and hold everyone else back for another round.
                circuit.open_until = Some(now + self.cooldown_chrono());
                circuit.state = BreakerState::Probing;
                publish(&map, target);
                Gate::Probe
            }
            None => Gate::Closed,
        }
    }

    /// Records a success; returns `true` if the target had been failing, so whatever waits
    /// on it can be released.
    pub fn record_success(&self, target: &str) -> bool {
        self.show(target);
        let mut map = self.lock();
        let removed = map.remove(target);
        if removed.is_some_and(|c| c.state != BreakerState::Closed) {
            publish(&map, target);
        }
        removed.is_some()
    }

    /// Records a failure; returns `true` if this failure opened the circuit.
    pub fn record_failure(&self, target: &str, now: DateTime<Utc>) -> bool {
        self.show(target);
        let mut map = self.lock();
        let circuit = map.entry(target.to_string()).or_default();
        circuit.consecutive_failures += 1;
        if circuit.consecutive_failures < self.threshold {
            return false;
        }
        let was_closed = circuit.open_until.is_none();
        circuit.open_until = Some(now + self.cooldown_chrono());
        if circuit.state != BreakerState::Open {
            circuit.state = BreakerState::Open;
            publish(&map, target);
        }
        was_closed
    }

    /// Whether the target has failed since its last success (its waiting effects need a
    /// release when it next succeeds).
    pub fn is_failing(&self, target: &str) -> bool {
        self.lock().contains_key(target)
    }

    /// The state of `target`'s circuit as last set by a transition.
    pub fn state(&self, target: &str) -> BreakerState {
        self.lock().get(target).map(|c| c.state).unwrap_or_default()
    }

    /// Shows `target`'s label as closed the first time it is called.
    fn show(&self, target: &str) {
        let label = target_label(target);
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        if !shown.contains(&label) {
            shown.insert(label.clone());
            breaker_state(label, 0.0);
        }
    }

    fn cooldown_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cooldown).unwrap_or(chrono::Duration::seconds(30))
    }
}

/// Sets the gauge of `target`'s label: the worst state among the circuits that share it
/// (every Discord announcement channel is `discord.notice`).
fn publish(map: &Circuits, target: &str) {
    let label = target_label(target);
    let worst = map
        .iter()
        .filter(|(t, _)| target_label(t) == label)
        .map(|(_, c)| c.state)
        .max()
        .unwrap_or_default();
    breaker_state(label, worst as u8 as f64);
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

    /// The gauge each transition leaves, read from a recorder local to this test.
    #[test]
    fn transitions_set_the_gauge() {
        let recorder = crate::telemetry::builder().build_recorder();
        let handle = recorder.handle();
        let gauge = |label: &str| {
            let line = format!("firebreak_breaker_state{{target=\"{label}\"}} ");
            let text = handle.render();
            text.lines()
                .find_map(|l| l.strip_prefix(line.as_str()).map(str::to_string))
                .unwrap_or_else(|| panic!("no {line} in\n{text}"))
        };
        metrics::with_local_recorder(&recorder, || {
            let b = Breakers::new(2, Duration::from_secs(10));
            let t0 = Utc::now();
            let later = t0 + chrono::Duration::seconds(11);
            b.record_failure("webhook:ops", t0);
            assert_eq!(b.state("webhook:ops"), BreakerState::Closed);
            b.record_failure("webhook:ops", t0);
            assert_eq!(gauge("webhook:ops"), "2", "open after the threshold");
            assert_eq!(b.check("webhook:ops", later), Gate::Probe);
            assert_eq!(gauge("webhook:ops"), "1", "half-open while probing");
            b.record_failure("webhook:ops", later);
            assert_eq!(gauge("webhook:ops"), "2", "a failed probe re-opens");
            b.record_success("webhook:ops");
            assert_eq!(gauge("webhook:ops"), "0", "closed on success");
            assert_eq!(b.state("webhook:ops"), BreakerState::Closed);
        });
    }

    #[test]
    fn channels_share_a_label_and_it_shows_the_worst() {
        let recorder = crate::telemetry::builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let b = Breakers::new(1, Duration::from_secs(10));
            let t0 = Utc::now();
            b.record_failure("discord.notice:111", t0);
            b.record_failure("discord.notice:222", t0);
            b.record_success("discord.notice:111");
        });
        let text = handle.render();
        assert!(
            text.contains("firebreak_breaker_state{target=\"discord.notice\"} 2"),
            "one channel still open: {text}"
        );
        assert!(!text.contains("222"), "no channel id in a label: {text}");
    }
}
