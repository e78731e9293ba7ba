//! Pacing for Slack's published Web API rate tiers, with governor's GCRA limiters.
//!
//! Slack's tiers are per-minute budgets that tolerate short bursts (Tier 2 is "20+ per
//! minute"), so each tier gets a bucket of one minute's calls refilled at that rate: an
//! incident's first calls go out at once, and a storm is smoothed to the tier's rate.
//! `chat.postMessage` is limited per channel (about one message a second, short bursts
//! allowed). slack-morphism's own controller spaces every call evenly with no burst,
//! which would put a second between a declaration and its notice.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct SlackRateLimits {
    tiers: [DefaultKeyedRateLimiter<String>; 4],
    per_channel: DefaultKeyedRateLimiter<String>,
}

impl Default for SlackRateLimits {
    fn default() -> Self {
        let per_minute =
            |n: u32| RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(n).expect("non-zero")));
        Self {
            tiers: [
                per_minute(1),
                per_minute(20),
                per_minute(50),
                per_minute(100),
            ],
            per_channel: RateLimiter::keyed(
                Quota::per_second(NonZeroU32::MIN)
                    .allow_burst(NonZeroU32::new(3).expect("non-zero")),
            ),
        }
    }
}

impl SlackRateLimits {
    /// Waits until `method` (in `channel`, for posts) may be called.
    pub async fn wait(&self, method: &str, channel: Option<&str>) {
        if method == "chat.postMessage" {
            let key = channel.unwrap_or("").to_string();
            self.per_channel.until_key_ready(&key).await;
            return;
        }
        let tier = tier(method);
        self.tiers[tier - 1]
            .until_key_ready(&method.to_string())
            .await;
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
        "views.open" | "chat.postEphemeral" | "chat.getPermalink" => 4,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn bursts_go_out_at_once_then_the_tier_rate_applies() {
        let limits = SlackRateLimits::default();
        let start = Instant::now();
        for _ in 0..20 {
            limits.wait("conversations.create", None).await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "a tier-2 burst of 20 is not delayed"
        );
        for _ in 0..3 {
            limits.wait("chat.postMessage", Some("C1")).await;
        }
        limits.wait("chat.postMessage", Some("C2")).await;
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "posts are limited per channel"
        );
    }
}
