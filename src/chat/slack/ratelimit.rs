//! Pacing for Slack's published Web API rate tiers, with [`Pacer`]s (GCRA, like governor,
//! but handing each waiting effect its own future slot).
//!
//! Slack's tiers are per-minute budgets that tolerate short bursts (Tier 2 is "20+ per
//! minute"), so each tier gets a bucket of one minute's calls refilled at that rate: an
//! incident's first calls go out at once, and a storm is smoothed to the tier's rate.
//! `chat.postMessage` is limited per channel (about one message a second, short bursts
//! allowed). slack-morphism's own controller spaces every call evenly with no burst,
//! which would put a second between a declaration and its notice.
//!
//! Nothing here waits: [`SlackRateLimits::check`] says how long to wait, and the effect is
//! deferred for that long, so a throttled channel never holds a worker slot. A 429's
//! `Retry-After` is remembered per method (per channel for posts) with
//! [`SlackRateLimits::penalize`], so every effect calling it waits, not just the one
//! that was refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::effects::pacing::Pacer;

pub struct SlackRateLimits {
    tiers: [Pacer; 4],
    per_channel: Pacer,
    /// Slack said "not before then" (429 with `Retry-After`), per limiter key.
    refused_until: Mutex<HashMap<String, Instant>>,
}

impl Default for SlackRateLimits {
    fn default() -> Self {
        Self {
            tiers: [
                Pacer::per_minute(1),
                Pacer::per_minute(20),
                Pacer::per_minute(50),
                Pacer::per_minute(100),
            ],
            per_channel: Pacer::new(Duration::from_secs(1), 3),
            refused_until: Mutex::new(HashMap::new()),
        }
    }
}

impl SlackRateLimits {
    /// Takes a slot for calling `method` (in `channel`, for posts) now, or reserves the
    /// running effect's own future slot and says how long until it.
    pub fn check(&self, method: &str, channel: Option<&str>) -> Result<(), Duration> {
        let key = limiter_key(method, channel);
        if let Some(wait) = self.refused_for(&key, Instant::now()) {
            return Err(wait);
        }
        self.limiter(method).admit(&key)
    }

    /// [`check`](Self::check) without taking the slot: whether the call could go now, so
    /// an effect that must wait learns it before reading what the call needs.
    pub fn ahead(&self, method: &str, channel: Option<&str>) -> Result<(), Duration> {
        let key = limiter_key(method, channel);
        if let Some(wait) = self.refused_for(&key, Instant::now()) {
            return Err(wait);
        }
        self.limiter(method).ahead(&key)
    }

    /// A slot for an effect being planned, held by its idempotency key: the next free one,
    /// taken and kept for it; `Ok` if that is now, else the wait until it (see
    /// [`Pacer::book`]).
    pub fn book(&self, method: &str, channel: Option<&str>, holder: &str) -> Result<(), Duration> {
        let key = limiter_key(method, channel);
        if let Some(wait) = self.refused_for(&key, Instant::now()) {
            return Err(wait);
        }
        self.limiter(method).book(&key, holder)
    }

    /// Gives back the slot [`book`](Self::book) kept for `holder`.
    pub fn release(&self, method: &str, channel: Option<&str>, holder: &str) {
        self.limiter(method)
            .release(&limiter_key(method, channel), holder);
    }

    fn limiter(&self, method: &str) -> &Pacer {
        if method == "chat.postMessage" {
            &self.per_channel
        } else {
            &self.tiers[tier(method) - 1]
        }
    }

    /// Slack refused `method` with a 429: no call to it until `retry_after` has passed.
    pub fn penalize(&self, method: &str, channel: Option<&str>, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut map = self.refused_until.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(limiter_key(method, channel)).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn refused_for(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut map = self.refused_until.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }
}

/// Posts are limited per channel; every other method per method.
fn limiter_key(method: &str, channel: Option<&str>) -> String {
    if method == "chat.postMessage" {
        format!("{method}:{}", channel.unwrap_or(""))
    } else {
        method.to_string()
    }
}

/// Slack's documented tier for each method firebreak calls.
pub fn tier(method: &str) -> usize {
    match method {
        "conversations.create" | "conversations.setTopic" | "pins.add" => 2,
        "conversations.invite"
        | "chat.update"
        | "conversations.history"
        | "conversations.replies" => 3,
        "views.open" | "chat.postEphemeral" | "chat.getPermalink" | "users.info" => 4,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_go_out_at_once_then_the_caller_is_told_how_long_to_wait() {
        let limits = SlackRateLimits::default();
        for _ in 0..20 {
            assert_eq!(limits.check("conversations.create", None), Ok(()));
        }
        let wait = limits.check("conversations.create", None).unwrap_err();
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(3),
            "tier 2 refills one call every 3 s: {wait:?}"
        );
        for _ in 0..3 {
            assert_eq!(limits.check("chat.postMessage", Some("C1")), Ok(()));
        }
        let wait = limits.check("chat.postMessage", Some("C1")).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(
            limits.check("chat.postMessage", Some("C2")),
            Ok(()),
            "posts are limited per channel"
        );
    }

    #[test]
    fn a_retry_after_holds_back_every_call_to_that_method_and_channel() {
        let limits = SlackRateLimits::default();
        limits.penalize("chat.postMessage", Some("C1"), Duration::from_secs(30));
        let wait = limits.check("chat.postMessage", Some("C1")).unwrap_err();
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        assert_eq!(limits.check("chat.postMessage", Some("C2")), Ok(()));
        assert_eq!(limits.check("chat.update", None), Ok(()));
        limits.penalize("chat.update", None, Duration::ZERO);
        assert_eq!(limits.check("chat.update", None), Ok(()), "expired");
    }
}
