//! The interface between the queue and whatever performs an effect (a webhook POST, a Slack
//! call, a GitHub call). Handlers classify their failures; the worker decides what to do.

use std::time::Duration;

use async_trait::async_trait;

use super::Effect;

/// How an attempt went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// Worth trying again (timeouts, 5xx, 429). `retry_after` is the server's hint.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help (404 on a deleted webhook, a rejected payload).
    #[error("{reason}")]
    Permanent { reason: String },
    /// Not now, and nothing went wrong: the target's own rate limit says wait `wait`. The
    /// effect goes back to the queue without spending an attempt or tripping the breaker.
    #[error("deferred for {wait:?}")]
    Deferred { wait: Duration },
    /// Not yet, and nothing went wrong: the target answered that what the effect waits for
    /// (a pull request's checks) is not ready. The target counts as up for its breaker, no
    /// attempt is spent, and the effect looks again later, less often the longer it waits,
    /// until `give_up_after`.
    #[error("{reason}")]
    Waiting { reason: String },
}

impl EffectError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn waiting(reason: impl Into<String>) -> Self {
        Self::Waiting {
            reason: reason.into(),
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }
}

/// Performs one kind of effect.
#[async_trait]
pub trait EffectHandler: Send + Sync {
    /// The effect kinds this handler runs (`notify.webhook`, `slack.sync_channel`, …).
    fn kinds(&self) -> &'static [&'static str];

    /// The circuit-breaker key for this effect: one per downstream endpoint.
    fn target(&self, effect: &Effect) -> String;

    /// How long one attempt may run before it is abandoned and retried. `None` means the
    /// queue's `attempt_timeout`. The worker keeps the lease alive while an attempt runs, so a
    /// long attempt (a paced freeze of hundreds of repositories) is never claimed twice.
    fn max_duration(&self, _effect: &Effect) -> Option<std::time::Duration> {
        None
    }

    /// Runs the effect once. On success, returns a short description for the timeline
    /// ("Notice posted to webhook general"), or `None` for routine work not worth a
    /// timeline entry (re-rendering a card that already exists). Failures are always recorded.
    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError>;
}
