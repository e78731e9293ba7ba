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

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

tokio::task_local! {
    static RUNNING: Arc<str>;
}

/// Runs `fut` as the effect with idempotency key `holder`, so the pacers it calls can hold
/// reservations for it. Reservations are held by the key, not the row's id, so a planner
/// can book a slot for an effect before it is queued ([`Pacer::book`]).
pub async fn as_effect<F: std::future::Future>(holder: Arc<str>, fut: F) -> F::Output {
    RUNNING.scope(holder, fut).await
}

fn running_effect() -> Option<Arc<str>> {
    RUNNING.try_with(Arc::clone).ok()
}

/// A reservation older than this is forgotten (its effect ran elsewhere or gave up).
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
struct State {
    /// The theoretical arrival time per key (GCRA).
    tat: HashMap<String, Instant>,
    /// Slots reserved for effects that were told to come back, by [`Reservation`].
    reserved: HashMap<Reservation, Instant>,
    /// Reserved slots given back (their effect was never queued), per key, for the next
    /// taker; a slot given back that has passed is dropped.
    returned: HashMap<String, BTreeSet<Instant>>,
    /// When forgotten reservations were last swept out (at most once a [`SWEEP_EVERY`]: a
    /// storm holds thousands, and sweeping on every refusal cost a walk over all of them).
    swept: Option<Instant>,
}

/// How often forgotten reservations are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// `burst` calls at once, then one every `interval`, per key.
pub struct Pacer {
    /// Hashes holders and keys into [`Reservation`]s (keyed per pacer).
    hasher: RandomState,
    interval: Duration,
    tolerance: Duration,
    /// At most this many reservations are held at once by [`book`](Pacer::book).
    max_booked: usize,
    state: Mutex<State>,
}

/// A reservation's map key: its holder's and its key's hashes. 32 bytes with its slot, where
/// the two strings cost about 200 (a storm books tens of thousands); a collision of both
/// 64-bit hashes would only share a slot.
type Reservation = (u64, u64);

/// How many slots a pacer books ahead at most (about 2 MB of reservations): past that, a
/// storm's effects are queued for the next free slot unbooked, and the worker defers any
/// that find it taken, as it did before booking. Memory stays bounded however long the
/// storm.
const MAX_BOOKED: usize = 50_000;

impl Pacer {
    pub fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            hasher: RandomState::new(),
            max_booked: MAX_BOOKED,
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
        self.admit_at(key, Instant::now(), running_effect().as_deref())
    }

    /// Whether a call now would go through, *without* taking the slot (the call itself
    /// takes it): lets an effect find out it must wait before it reads what the call needs.
    /// When it must wait, its own future slot is reserved, as [`admit`](Self::admit) does.
    pub fn ahead(&self, key: &str) -> Result<(), Duration> {
        self.ahead_at(key, Instant::now(), running_effect().as_deref())
    }

    /// A slot for an effect not queued yet, held by its idempotency key `holder`: the next
    /// free one, taken now and kept for it (so effects planned together each get their own,
    /// even before any of them has run). `Ok` if it is free now, else how long until it, so
    /// the effect can be queued for then and claimed once. Booking again returns the same
    /// slot.
    pub fn book(&self, key: &str, holder: &str) -> Result<(), Duration> {
        self.book_at(key, Instant::now(), holder)
    }

    fn book_at(&self, key: &str, now: Instant, holder: &str) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match state.reserved.get(&self.reservation(holder, key)) {
            Some(slot) => *slot,
            None if state.reserved.len() >= self.max_booked => self.next_free(&state, key, now),
            None => {
                let slot = self.take_slot(&mut state, key, now);
                self.reserve(&mut state, holder, key, slot, now);
                slot
            }
        };
        wait_for(slot, now)
    }

    /// When the next free slot on `key` comes, without taking it.
    fn next_free(&self, state: &State, key: &str, now: Instant) -> Instant {
        let tat = state.tat.get(key).copied().unwrap_or(now).max(now);
        tat.checked_sub(self.tolerance).unwrap_or(now).max(now)
    }

    /// Gives back the slot on `key` booked for `holder` (its effect will not be queued): the
    /// next effect to need a slot on `key` takes it, so a failed or duplicate command costs
    /// the others nothing. A slot still ahead is handed on as it is; one that has come (a
    /// burst's "now", given back moments later) is taken back off the tier's count.
    pub fn release(&self, key: &str, holder: &str) {
        self.release_at(key, Instant::now(), holder);
    }

    fn release_at(&self, key: &str, now: Instant, holder: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = state.reserved.remove(&self.reservation(holder, key)) else {
            return;
        };
        if slot > now {
            state
                .returned
                .entry(key.to_string())
                .or_default()
                .insert(slot);
        } else if slot + self.interval > now {
            // Removing one call from what GCRA admitted leaves it admissible; the next
            // caller gets the room. (Only for a slot this recent: after a lull the count
            // has started again and holds no trace of it.)
            if let Some(tat) = state.tat.get_mut(key) {
                *tat = tat.checked_sub(self.interval).unwrap_or(now).max(now);
            }
        }
    }

    fn ahead_at(&self, key: &str, now: Instant, effect: Option<&str>) -> Result<(), Duration> {
        {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let reserved = effect.and_then(|id| state.reserved.get(&self.reservation(id, key)));
            if let Some(slot) = reserved.filter(|slot| !self.missed(**slot, now)) {
                return wait_for(*slot, now);
            }
            if self.next_free(&state, key, now) <= now {
                return Ok(());
            }
        }
        // Over the limit: the same as a refused call (a slot of its own, reserved).
        self.admit_at(key, now, effect)
    }

    fn admit_at(&self, key: &str, now: Instant, effect: Option<&str>) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = effect {
            let held = self.reservation(id, key);
            match state.reserved.remove(&held) {
                Some(slot) if slot > now => {
                    // Back early (released by a recovery): keep the slot, wait for it.
                    state.reserved.insert(held, slot);
                    return Err(slot - now);
                }
                Some(slot) if !self.missed(slot, now) => return Ok(()),
                // Missed (the target was down when it came). Honoured late, every slot
                // that passed during an outage would go at once when the target answered
                // again; so it is given up, with the others missed on this key, and the
                // effect takes a fresh slot like any other.
                Some(_) => self.forget_missed(&mut state, key, now),
                None => {}
            }
        }
        let allowed_at = self.next_free(&state, key, now);
        if allowed_at > now && effect.is_none() {
            return Err(allowed_at - now);
        }
        let slot = self.take_slot(&mut state, key, now);
        if let Some(id) = effect.filter(|_| slot > now) {
            self.reserve(&mut state, id, key, slot, now);
        }
        wait_for(slot, now)
    }

    /// Whether a reserved `slot` is more than one interval past: its effect did not call
    /// then, and calling now would add to whatever the pace allows now.
    fn missed(&self, slot: Instant, now: Instant) -> bool {
        now.saturating_duration_since(slot) > self.interval
    }

    /// Drops every reservation on `key` missed by more than an interval, besides the one
    /// already taken out, and takes their calls back off the count (they never happened),
    /// keeping the count at least past the latest slot still reserved.
    fn forget_missed(&self, state: &mut State, key: &str, now: Instant) {
        let key_hash = self.hasher.hash_one(key);
        let mut forgotten = 1u32;
        let mut latest_kept = None::<Instant>;
        state.reserved.retain(|(_, k), slot| {
            if *k != key_hash {
                return true;
            }
            if self.missed(*slot, now) {
                forgotten += 1;
                return false;
            }
            latest_kept = latest_kept.max(Some(*slot));
            true
        });
        if let Some(tat) = state.tat.get_mut(key) {
            let back = tat.checked_sub(self.interval * forgotten).unwrap_or(now);
            let kept = latest_kept.map_or(now, |slot| slot + self.interval);
            *tat = back.max(kept).max(now);
        }
    }

    /// The map key of `holder`'s reservation on `key`.
    fn reservation(&self, holder: &str, key: &str) -> Reservation {
        (self.hasher.hash_one(holder), self.hasher.hash_one(key))
    }

    /// Takes the next free slot on `key`: one given back that is still ahead, else the next
    /// by GCRA (which moves its theoretical arrival time on).
    fn take_slot(&self, state: &mut State, key: &str, now: Instant) -> Instant {
        if let Some(slot) = take_returned(state, key, now) {
            return slot;
        }
        let slot = self.next_free(state, key, now);
        let tat = state.tat.get(key).copied().unwrap_or(now).max(now);
        state.tat.insert(key.to_string(), tat + self.interval);
        slot
    }

    /// Keeps `slot` on `key` for `holder`, now and then forgetting old reservations.
    fn reserve(&self, state: &mut State, holder: &str, key: &str, slot: Instant, now: Instant) {
        if state.swept.is_none_or(|at| at + SWEEP_EVERY <= now) {
            state.reserved.retain(|_, slot| *slot + FORGET_AFTER > now);
            state
                .returned
                .retain(|_, slots| slots.last().is_some_and(|s| *s > now));
            state.swept = Some(now);
        }
        state.reserved.insert(self.reservation(holder, key), slot);
    }
}

/// The earliest slot given back on `key` that is still ahead of `now`, dropping those past.
fn take_returned(state: &mut State, key: &str, now: Instant) -> Option<Instant> {
    let returned = state.returned.get_mut(key)?;
    let slot = loop {
        match returned.pop_first() {
            Some(slot) if slot > now => break Some(slot),
            Some(_) => continue,
            None => break None,
        }
    };
    if returned.is_empty() {
        state.returned.remove(key);
    }
    slot
}

/// `Ok` if `slot` has come, else how long until it.
fn wait_for(slot: Instant, now: Instant) -> Result<(), Duration> {
    if slot <= now { Ok(()) } else { Err(slot - now) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_each_waiter_gets_its_own_slot() {
        let pacer = Pacer::new(Duration::from_secs(1), 3);
        let t0 = Instant::now();
        for id in 0..3 {
            assert_eq!(pacer.admit_at("C1", t0, Some(&id.to_string())), Ok(()));
        }
        let waits: Vec<Duration> = (3..6)
            .map(|id: i32| pacer.admit_at("C1", t0, Some(&id.to_string())).unwrap_err())
            .collect();
        assert_eq!(
            waits,
            [1, 2, 3].map(Duration::from_secs),
            "one slot each, not one shared 'in a second'"
        );
        assert_eq!(
            pacer.admit_at("C2", t0, Some("9")),
            Ok(()),
            "keys are separate"
        );
        // Each comes back at its slot and goes through on its reservation.
        let back = t0 + Duration::from_secs(2);
        assert_eq!(pacer.admit_at("C1", back, Some("4")), Ok(()));
        assert_eq!(
            pacer.admit_at("C1", back, Some("5")),
            Err(Duration::from_secs(1)),
            "early: still waits for its own slot"
        );
        assert!(
            pacer.admit_at("C1", back, Some("42")).unwrap_err() >= Duration::from_secs(2),
            "a newcomer queues behind the reservations"
        );
    }

    #[test]
    fn looking_ahead_takes_no_slot_but_a_refusal_reserves_one() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        assert_eq!(pacer.ahead_at("C1", t0, Some("1")), Ok(()));
        assert_eq!(pacer.ahead_at("C1", t0, Some("1")), Ok(()), "still free");
        assert_eq!(
            pacer.admit_at("C1", t0, Some("1")),
            Ok(()),
            "the call takes it"
        );
        let wait = pacer.ahead_at("C1", t0, Some("2")).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        let back = t0 + wait;
        assert_eq!(
            pacer.ahead_at("C1", back, Some("2")),
            Ok(()),
            "its slot is due"
        );
        assert_eq!(
            pacer.admit_at("C1", back, Some("2")),
            Ok(()),
            "and the call goes through on the reservation"
        );
        assert!(
            pacer.admit_at("C1", back, Some("3")).is_err(),
            "one call, one slot"
        );
    }

    #[test]
    fn a_slot_booked_before_queueing_lets_the_effect_through_at_its_time() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        // Effects planned together each book their own slot by key, before they are rows
        // and before any of them has run: the first one's is free now, and taken.
        assert_eq!(pacer.book_at("C1", t0, "first"), Ok(()));
        let a = pacer.book_at("C1", t0, "a").unwrap_err();
        let b = pacer.book_at("C1", t0, "b").unwrap_err();
        assert_eq!((a, b), (Duration::from_secs(1), Duration::from_secs(2)));
        assert_eq!(
            pacer.book_at("C1", t0, "a"),
            Err(a),
            "booking again: the same slot"
        );
        assert_eq!(pacer.ahead_at("C1", t0, Some("first")), Ok(()));
        assert_eq!(
            pacer.admit_at("C1", t0, Some("first")),
            Ok(()),
            "the first goes through on its booking"
        );
        // At its slot the effect, running under its key, looks ahead and calls.
        let at_a = t0 + a;
        assert_eq!(pacer.ahead_at("C1", at_a, Some("a")), Ok(()));
        assert_eq!(pacer.admit_at("C1", at_a, Some("a")), Ok(()));
        assert!(
            pacer.admit_at("C1", at_a, Some("late")).unwrap_err() > Duration::from_secs(1),
            "b's slot is still b's"
        );
    }

    #[test]
    fn a_slot_given_back_goes_to_the_next_taker_and_not_once_it_has_passed() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        assert_eq!(pacer.book_at("C1", t0, "lost"), Ok(()));
        pacer.release_at("C1", t0, "lost");
        assert_eq!(
            pacer.book_at("C1", t0, "a"),
            Ok(()),
            "a slot that has come, given back at once: free again"
        );
        assert_eq!(pacer.book_at("C1", t0, "dup"), Err(Duration::from_secs(1)));
        assert_eq!(pacer.book_at("C1", t0, "b"), Err(Duration::from_secs(2)));
        pacer.release_at("C1", t0, "dup");
        pacer.release_at("C1", t0, "never-booked");
        assert_eq!(
            pacer.book_at("C1", t0, "c"),
            Err(Duration::from_secs(1)),
            "the duplicate's slot, not one after b's"
        );
        assert_eq!(pacer.book_at("C1", t0, "d"), Err(Duration::from_secs(3)));
        pacer.release_at("C1", t0, "d");
        let late = t0 + Duration::from_secs(4);
        assert_eq!(
            pacer.book_at("C1", late, "e"),
            Ok(()),
            "d's slot has passed: dropped, and e goes at once on the tier"
        );
        assert!(pacer.state.lock().unwrap().returned.is_empty());
    }

    #[test]
    fn past_the_booking_limit_slots_are_told_not_taken() {
        let mut pacer = Pacer::new(Duration::from_secs(1), 1);
        pacer.max_booked = 2;
        let t0 = Instant::now();
        assert_eq!(pacer.book_at("C1", t0, "a"), Ok(()));
        assert_eq!(pacer.book_at("C1", t0, "b"), Err(Duration::from_secs(1)));
        let told = Err(Duration::from_secs(2));
        assert_eq!(pacer.book_at("C1", t0, "c"), told, "the next free slot");
        assert_eq!(pacer.book_at("C1", t0, "d"), told, "still free: not taken");
        assert_eq!(pacer.book_at("C1", t0, "b"), Err(Duration::from_secs(1)));
        assert_eq!(pacer.state.lock().unwrap().reserved.len(), 2);
    }

    #[test]
    fn forgotten_reservations_are_swept_out_now_and_then_not_on_every_refusal() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let held = |p: &Pacer| p.state.lock().unwrap().reserved.len();
        // On `key`: effect `id` goes through, then `id + 1` is refused and reserves a slot.
        let refuse = |key: &str, now: Instant, id: i64| {
            assert_eq!(pacer.admit_at(key, now, Some(&id.to_string())), Ok(()));
            assert!(
                pacer
                    .admit_at(key, now, Some(&(id + 1).to_string()))
                    .is_err()
            );
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
    fn a_slot_missed_during_an_outage_is_not_honoured_late() {
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        let t0 = Instant::now();
        for id in 0..5 {
            let _ = pacer.book_at("C1", t0, &id.to_string());
        }
        // The target was down for the first four slots; it answers again at t0 + 4.5 s.
        let back = t0 + Duration::from_millis(4500);
        let let_through = (0..5)
            .filter(|id| pacer.admit_at("C1", back, Some(&id.to_string())).is_ok())
            .count();
        assert_eq!(
            let_through, 1,
            "only the slot that just came (t0 + 4 s) goes"
        );
        // A tier of twenty a minute, all booked at once just before the outage: once the
        // target answers, the burst is there again, not one call every three seconds.
        let tier = Pacer::new(Duration::from_secs(3), 20);
        for id in 0..22 {
            let _ = tier.book_at("T2", t0, &id.to_string());
        }
        let back = t0 + Duration::from_secs(5);
        let went = (0..22)
            .filter(|id| tier.admit_at("T2", back, Some(&id.to_string())).is_ok())
            .count();
        assert!((18..=20).contains(&went), "{went} went at once");
        // A slot a little late (the worker was busy) still goes.
        let pacer = Pacer::new(Duration::from_secs(1), 1);
        assert_eq!(pacer.book_at("C1", t0, "a"), Ok(()));
        let late = t0 + Duration::from_millis(900);
        assert_eq!(pacer.admit_at("C1", late, Some("a")), Ok(()));
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
