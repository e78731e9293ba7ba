//! When to try again: exponential backoff with full jitter, bounded, and never sooner than
//! the server asked for with `Retry-After`.
//!
//! Full jitter (a uniform pick in `[0, base·2ⁿ]`) spreads retries from many workers apart,
//! which is what stops a recovering API from being knocked over again by a synchronized
//! retry storm.

use std::time::Duration;

use rand::Rng;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before the next attempt, after `attempts` attempts have failed (1-based).
    /// `retry_after` is a floor set by the server.
    pub fn delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ceiling = self.ceiling(attempts);
        let jittered = Duration::from_millis(rng.random_range(0..=ceiling.as_millis() as u64));
        // Never retry immediately: at least a tenth of the base keeps a hot loop impossible.
        let jittered = jittered.max(self.base / 10);
        match retry_after {
            Some(hint) => jittered.max(hint).min(self.max.max(hint)),
            None => jittered,
        }
    }

    /// The upper bound for attempt `attempts`: `base · 2^(attempts-1)`, capped at `max`.
    pub fn ceiling(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << exp).min(self.max)
    }
}

/// Parses a `Retry-After` header: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate_parse(value)?;
    Some(when.duration_since(now).unwrap_or_default())
}

fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    let t = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };

    #[test]
    fn ceiling_doubles_and_caps() {
        assert_eq!(B.ceiling(1), Duration::from_secs(1));
        assert_eq!(B.ceiling(4), Duration::from_secs(8));
        assert_eq!(B.ceiling(30), Duration::from_secs(300));
    }

    #[test]
    fn delays_stay_within_bounds_and_honour_retry_after() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..12 {
            let d = B.delay(attempt, None, &mut rng);
            assert!(
                d <= B.ceiling(attempt) && d >= Duration::from_millis(100),
                "{d:?}"
            );
            let d = B.delay(attempt, Some(Duration::from_secs(42)), &mut rng);
            assert!(d >= Duration::from_secs(42));
        }
        // A hint longer than the cap still wins: the server knows when it will be back.
        assert_eq!(
            B.delay(1, Some(Duration::from_secs(900)), &mut rng),
            Duration::from_secs(900)
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
