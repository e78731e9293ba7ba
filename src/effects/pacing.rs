//! Rate limits that queue instead of wait. A [`Pacer`] is a GCRA (the algorithm behind
//! governor) per key that, when a call is over the limit, *reserves* the next free slot for
//! the effect asking and says how long until it. The effect goes back to the queue for that
//! long, holding no worker, and when it returns its reservation lets it through.
//!
//! Reserving matters: with a plain check, a hundred effects over the limit would all be told
//! "in one second", all come back together, and all but one be deferred again, over and
//! over. With reservations each comes back once, at its own slot. (governor can check or wait
//! for a slot, but cannot hand out future slots, hence this small piece.)
//!
//! Reservations live in memory, per process: after a restart, or on another replica, an
//! effect simply asks again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

tokio::task_local! {
    static RUNNING: i64;
}

/// Runs `fut` as effect `id`, so the pacers it calls can hold reservations for it.
pub async fn as_effect<F: std::future::Future>(id: i64, fut: F) -> F::Output {
    RUNNING.scope(id, fut).await
}

fn running_effect() -> Option<i64> {
    RUNNING.try_with(|id| *id).ok()
}

/// A reservation older than this is forgotten (its effect ran elsewhere or gave up).
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
struct State {
    /// The theoretical arrival time per key (GCRA).
    tat: HashMap<String, Instant>,
    /// Slots reserved for effects that were told to come back: (effect, key) → slot.
    reserved: HashMap<(i64, String), Instant>,
    /// When forgotten reservations were last swept out (at most once a [`SWEEP_EVERY`]: a
    /// storm holds thousands, and sweeping on every refusal cost a walk over all of them).
    swept: Option<Instant>,
}

/// How often forgotten reservations are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// `burst` calls at once, then one every `interval`, per key.
pub struct Pacer {
    interval: Duration,
    tolerance: Duration,
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            state: Mutex::new(State::default()),
        }
    }

    /// `n` calls a minute, all of them allowed at once (Slack's per-minute tiers).
    pub fn per_minute(n: u32) -> Self {
        Self::new(Duration::from_secs(60) / n.max(1), n.max(1))
    }

    /// `Ok` to call now (the slot is taken), or how long to wait (a slot is reserved for the
    /// running effect, so coming back after that long goes through).
    pub fn admit(&self, key: &str) -> Result<(), Duration> {
        self.admit_at(key, Instant::now(), running_effect())
    }

    /// Whether a call now would go through, *without* taking the slot (the call itself
    /// takes it): lets an effect find out it must wait before it reads what the call needs.
    /// When it must wait, its own future slot is reserved, as [`admit`](Self::admit) does.
    pub fn ahead(&self, key: &str) -> Result<(), Duration> {
        self.ahead_at(key, Instant::now(), running_effect())
    }

    fn ahead_at(&self, key: &str, now: Instant, effect: Option<i64>) -> Result<(), Duration> {
        {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let reserved = effect.and_then(|id| state.reserved.get(&(id, key.to_string())));
            if let Some(slot) = reserved {
                return if *slot <= now {
                    Ok(())
                } else {
                    Err(*slot - now)
                };
            }
            let tat = state.tat.get(key).copied().unwrap_or(now).max(now);
            if tat.checked_sub(self.tolerance).unwrap_or(now) <= now {
                return Ok(());
            }
        }
        // Over the limit: the same as a refused call (a slot of its own, reserved).
        self.admit_at(key, now, effect)
    }

    fn admit_at(&self, key: &str, now: Instant, effect: Option<i64>) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = effect {
            if let Some(slot) = state.reserved.remove(&(id, key.to_string())) {
                if slot <= now {
                    return Ok(());
                }
                // Back early (released by a recovery): keep the slot, wait for it.
                state.reserved.insert((id, key.to_string()), slot);
                return Err(slot - now);
            }
        }
        let tat = state.tat.get(key).copied().unwrap_or(now).max(now);
        let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(now).max(now);
        if allowed_at <= now {
            state.tat.insert(key.to_string(), tat + self.interval);
            return Ok(());
        }
        let Some(id) = effect else {
            return Err(allowed_at - now);
        };
        state.tat.insert(key.to_string(), tat + self.interval);
        if state.swept.is_none_or(|at| at + SWEEP_EVERY <= now) {
            state.reserved.retain(|_, slot| *slot + FORGET_AFTER > now);
            state.swept = Some(now);
        }
        state.reserved.insert((id, key.to_string()), allowed_at);
        Err(allowed_at - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_each_waiter_gets_its_own_slot() {
        let pacer = Pacer::new(Duration::from_secs(1), 3);
        let t0 = Instant::now();
        for id in 0..3 {
            assert_eq!(pacer.admit_at("C1", t0, Some(id)), Ok(()));
        }
        let waits: Vec<Duration> = (3..6)
            .map(|id| pacer.admit_at("C1", t0, Some(id)).unwrap_err())
            .collect();
        assert_eq!(
            waits,
            [1, 2, 3].map(Duration::from_secs),
            "one slot each, not one shared 'in a second'"
        );
        assert_eq!(
            pacer.admit_at("C2", t0, Some(9)),
            Ok(()),
            "keys are separate"
        );
        // Each comes back at its slot and goes through on its reservation.
        let back = t0 + Duration::from_secs(2);
        assert_eq!(pacer.admit_at("C1", back, Some(4)), Ok(()));
        assert_eq!(
            pacer.admit_at("C1", back, Some(5)),
            Err(Duration::from_secs(1)),
            "early: still waits for its own slot"
        );
        assert!(
            pacer.admit_at("C1", back, Some(42)).unwrap_err() >= Duration::from_secs(2),
            "a newcomer queues behind the reservations"
        );
    }

    #[test]
    fn looking_ahead_takes_no_slot_but_a_refusal_reserves_one() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        assert_eq!(pacer.ahead_at("C1", t0, Some(1)), Ok(()));
        assert_eq!(pacer.ahead_at("C1", t0, Some(1)), Ok(()), "still free");
        assert_eq!(
            pacer.admit_at("C1", t0, Some(1)),
            Ok(()),
            "the call takes it"
        );
        let wait = pacer.ahead_at("C1", t0, Some(2)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        let back = t0 + wait;
        assert_eq!(
            pacer.ahead_at("C1", back, Some(2)),
            Ok(()),
            "its slot is due"
        );
        assert_eq!(
            pacer.admit_at("C1", back, Some(2)),
            Ok(()),
            "and the call goes through on the reservation"
        );
        assert!(
            pacer.admit_at("C1", back, Some(3)).is_err(),
            "one call, one slot"
        );
    }

    #[test]
    fn forgotten_reservations_are_swept_out_now_and_then_not_on_every_refusal() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let held = |p: &Pacer| p.state.lock().unwrap().reserved.len();
        // On `key`: effect `id` goes through, then `id + 1` is refused and reserves a slot.
        let refuse = |key: &str, now: Instant, id: i64| {
            assert_eq!(pacer.admit_at(key, now, Some(id)), Ok(()));
            assert!(pacer.admit_at(key, now, Some(id + 1)).is_err());
        };
        refuse("C1", at(0), 1); // reserves C1 at t0+1 s (and sweeps: the first refusal)
        refuse("C2", at(590), 10); // a sweep: nothing is 600 s past its slot yet
        assert_eq!(held(&pacer), 2);
        refuse("C3", at(620), 20); // C1's slot is long past, but the last sweep was 30 s ago
        assert_eq!(held(&pacer), 3, "no sweep on every refusal");
        refuse("C4", at(651), 30); // a minute after the last sweep: C1's is forgotten
        assert_eq!(held(&pacer), 3, "C2, C3 and C4 kept, C1 forgotten");
    }

    #[test]
    fn outside_an_effect_nothing_is_reserved() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        assert_eq!(pacer.admit_at("k", t0, None), Ok(()));
        assert_eq!(pacer.admit_at("k", t0, None), Err(Duration::from_secs(1)));
        assert_eq!(pacer.admit_at("k", t0, None), Err(Duration::from_secs(1)));
    }
}
