//! Discord's rate limits, honoured by firebreak itself (serenity's own limiter is switched
//! off, because it ignores a custom origin). Discord tells every caller where it stands:
//!
//! - `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After: 1.2` means this route (per
//!   major parameter: the channel or guild) has no calls left for 1.2 s;
//! - a 429 carries `retry_after` (seconds, a float) in its body and `Retry-After` as a
//!   header, and `"global": true` (or `X-RateLimit-Global` / `X-RateLimit-Scope: global`)
//!   when the whole bot must wait, not just the route.
//!
//! Nothing here waits: [`DiscordRateLimits::check`] says how long until a route may be
//! called, and the effect is deferred for that long, so a throttled channel holds no worker.
//! [`DiscordRateLimits::observe`] learns from every answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// What one answer said about rate limits (pure, from its status, headers and body).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitInfo {
    /// The route's bucket is empty for this long (`X-RateLimit-Remaining: 0`).
    pub exhausted_for: Option<Duration>,
    /// A 429: wait this long before calling again.
    pub retry_after: Option<Duration>,
    /// The 429 applies to every route (the global limit).
    pub global: bool,
}

impl RateLimitInfo {
    /// Reads the headers, and for a 429 the JSON body (`retry_after`, `global`).
    pub fn read(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let seconds = |name: &str| header(name).and_then(parse_seconds);
        let exhausted_for = match header("x-ratelimit-remaining") {
            Some("0") => seconds("x-ratelimit-reset-after"),
            _ => None,
        };
        if status != 429 {
            return Self {
                exhausted_for,
                ..Self::default()
            };
        }
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let retry_after = json
            .get("retry_after")
            .and_then(serde_json::Value::as_f64)
            .and_then(seconds_f64)
            .or_else(|| seconds("retry-after"))
            .or(exhausted_for)
            // A 429 with no hint still means "not now".
            .or(Some(Duration::from_secs(1)));
        let global = json.get("global").and_then(serde_json::Value::as_bool) == Some(true)
            || header("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || header("x-ratelimit-scope") == Some("global");
        Self {
            exhausted_for,
            retry_after,
            global,
        }
    }
}

fn parse_seconds(value: &str) -> Option<Duration> {
    seconds_f64(value.trim().parse().ok()?)
}

fn seconds_f64(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// Routes Discord has closed for a while, and the global limit.
#[derive(Default)]
pub struct DiscordRateLimits {
    closed: Mutex<HashMap<String, Instant>>,
}

/// The key the global limit is stored under (no route is named like it).
const GLOBAL: &str = "*global*";

impl DiscordRateLimits {
    /// `Ok` if `route` may be called now, else how long until it may.
    pub fn check(&self, route: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        let wait = [GLOBAL, route]
            .iter()
            .filter_map(|k| map.get(*k))
            .max()
            .map(|until| *until - now);
        wait.map_or(Ok(()), Err)
    }

    /// Learns from an answer on `route`.
    pub fn observe(&self, route: &str, info: &RateLimitInfo) {
        let now = Instant::now();
        if let Some(wait) = info.exhausted_for {
            self.close(route, now + wait);
        }
        if let Some(wait) = info.retry_after {
            let key = if info.global { GLOBAL } else { route };
            self.close(key, now + wait);
        }
    }

    fn close(&self, key: &str, until: Instant) {
        let mut map = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(key.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_bodies_and_headers() {
        let body = br#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#;
        let info = RateLimitInfo::read(429, &HeaderMap::new(), body);
        assert_eq!(info.retry_after, Some(Duration::from_millis(1500)));
        assert!(!info.global);
        let info = RateLimitInfo::read(429, &headers(&[("x-ratelimit-scope", "global")]), b"");
        assert!(info.global);
        assert_eq!(info.retry_after, Some(Duration::from_secs(1)));
        let h = headers(&[("retry-after", "3"), ("x-ratelimit-global", "true")]);
        let info = RateLimitInfo::read(429, &h, b"not json");
        assert_eq!(
            (info.retry_after, info.global),
            (Some(Duration::from_secs(3)), true)
        );
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "0.25"),
        ]);
        let info = RateLimitInfo::read(200, &h, b"");
        assert_eq!(info.exhausted_for, Some(Duration::from_millis(250)));
        assert_eq!(info.retry_after, None);
        let h = headers(&[("x-ratelimit-remaining", "4")]);
        assert_eq!(RateLimitInfo::read(200, &h, b""), RateLimitInfo::default());
    }

    #[test]
    fn a_route_limit_holds_that_route_and_a_global_one_holds_all() {
        let limits = DiscordRateLimits::default();
        let route = RateLimitInfo {
            retry_after: Some(Duration::from_secs(30)),
            ..RateLimitInfo::default()
        };
        limits.observe("messages:1", &route);
        let wait = limits.check("messages:1").unwrap_err();
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        assert_eq!(limits.check("messages:2"), Ok(()));
        let global = RateLimitInfo {
            global: true,
            ..route
        };
        limits.observe("messages:1", &global);
        assert!(
            limits.check("channels:9").is_err(),
            "global waits everywhere"
        );
        let empty = DiscordRateLimits::default();
        let spent = RateLimitInfo {
            exhausted_for: Some(Duration::ZERO),
            ..RateLimitInfo::default()
        };
        empty.observe("pin:1", &spent);
        assert_eq!(empty.check("pin:1"), Ok(()), "expired");
    }
}
