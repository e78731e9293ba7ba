//! The delivery policy, pure: what the worker does after an attempt. An effect is retried
//! until it succeeds, fails permanently, or has been failing for `give_up_after`; waiting on
//! a rate limit spends no attempt, and neither does a failed breaker probe. Waiting for the
//! target to be ready (checks running) spends none either, and looks again after a tenth of
//! the time waited so far (within the backoff bounds), until `give_up_after`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Effect;
use super::handler::EffectError;
use super::worker::WorkerConfig;

/// What to do after an attempt (pure; see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Done(Option<String>),
    GiveUp(String),
    /// Back to the queue at `at`. `refund`: the attempt does not count. `waiting_on`: the
    /// target whose recovery should release it early.
    Retry {
        at: DateTime<Utc>,
        error: Option<String>,
        refund: bool,
        waiting_on: Option<String>,
    },
}

/// Decides the next step for `effect` after `outcome`. `probe`: this attempt was a breaker
/// probe. `delay`: the backoff the worker would wait before the next attempt.
pub fn next_step(
    effect: &Effect,
    outcome: Result<Option<String>, EffectError>,
    config: &WorkerConfig,
    target: &str,
    probe: bool,
    now: DateTime<Utc>,
    delay: Duration,
) -> Step {
    let reason = match outcome {
        Ok(description) => return Step::Done(description),
        Err(EffectError::Permanent { reason }) => return Step::GiveUp(reason),
        Err(EffectError::Deferred { wait }) => {
            return Step::Retry {
                at: now + chrono_duration(wait),
                error: None,
                refund: true,
                waiting_on: None,
            };
        }
        Err(EffectError::Waiting { reason }) => return wait_step(effect, reason, config, now),
        Err(EffectError::Retryable { reason, .. }) => reason,
    };
    let age = (now - effect.budget_from).to_std().unwrap_or_default();
    if age >= config.give_up_after {
        return Step::GiveUp(format!(
            "still failing after {}: {reason}",
            humantime::format_duration(round_secs(age))
        ));
    }
    if !probe
        && config
            .max_attempts
            .is_some_and(|max| effect.attempts >= max)
    {
        return Step::GiveUp(format!(
            "gave up after {} attempts: {reason}",
            effect.attempts
        ));
    }
    Step::Retry {
        at: now + chrono_duration(delay),
        error: Some(reason),
        refund: probe,
        waiting_on: Some(target.to_string()),
    }
}

/// The `outcome` label of `firebreak_effect_outcomes_total` for an attempt that ended in
/// `step`: `succeeded`, `failed` (for good), or, for an effect put back, what put it back:
/// `deferred` (a rate limit), `waiting` (not ready yet) or `retried` (a failure).
pub fn outcome_label(step: &Step, outcome: &Result<Option<String>, EffectError>) -> &'static str {
    match (step, outcome) {
        (Step::Done(_), _) => "succeeded",
        (Step::GiveUp(_), _) => "failed",
        (Step::Retry { .. }, Err(EffectError::Deferred { .. })) => "deferred",
        (Step::Retry { .. }, Err(EffectError::Waiting { .. })) => "waiting",
        (Step::Retry { .. }, _) => "retried",
    }
}

/// After [`EffectError::Waiting`]: look again after a tenth of the time waited so far, within
/// the backoff bounds, spending no attempt and waiting on no target; give up at the budget.
fn wait_step(effect: &Effect, reason: String, config: &WorkerConfig, now: DateTime<Utc>) -> Step {
    let age = (now - effect.budget_from).to_std().unwrap_or_default();
    if age >= config.give_up_after {
        return Step::GiveUp(format!(
            "still waiting after {}: {reason}",
            humantime::format_duration(round_secs(age))
        ));
    }
    let pause = (age / 10).clamp(config.backoff.base, config.backoff.max);
    Step::Retry {
        at: now + chrono_duration(pause),
        error: Some(reason),
        refund: true,
        waiting_on: None,
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

pub(super) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(attempts: u32, age: chrono::Duration, now: DateTime<Utc>) -> Effect {
        let row = crate::effects::NewEffect {
            incident_id: None,
            kind: "notify.webhook".into(),
            payload: serde_json::Value::Null,
            idempotency_key: "k".into(),
            ordering_key: None,
            audience: None,
            not_before: None,
            records: Vec::new(),
        };
        Effect {
            attempts,
            created_at: now - age,
            budget_from: now - age,
            ..Effect::as_claimed(&row)
        }
    }

    /// The step after `outcome`, at `now`, with a 1 s backoff.
    fn step(
        e: &Effect,
        outcome: Result<Option<String>, EffectError>,
        config: &WorkerConfig,
        probe: bool,
        now: DateTime<Utc>,
    ) -> Step {
        next_step(e, outcome, config, "t", probe, now, Duration::from_secs(1))
    }

    #[test]
    fn transient_failures_retry_until_the_age_budget_not_an_attempt_count() {
        let config = WorkerConfig::default();
        let now = Utc::now();
        let fail = || Err(EffectError::retryable("HTTP 503"));
        let young = effect(500, chrono::Duration::hours(23), now);
        let s = step(&young, fail(), &config, false, now);
        assert!(
            matches!(s, Step::Retry { refund: false, ref waiting_on, .. } if waiting_on.as_deref() == Some("t")),
            "{s:?}"
        );
        let old = effect(3, chrono::Duration::hours(25), now);
        let s = step(&old, fail(), &config, false, now);
        assert!(
            matches!(s, Step::GiveUp(ref r) if r.starts_with("still failing after 1day 1h")),
            "{s:?}"
        );
    }

    #[test]
    fn probes_and_deferrals_spend_no_attempt() {
        let config = WorkerConfig {
            max_attempts: Some(2),
            ..WorkerConfig::default()
        };
        let now = Utc::now();
        let e = effect(2, chrono::Duration::minutes(5), now);
        let down = || Err(EffectError::retryable("down"));
        let s = step(&e, down(), &config, true, now);
        assert!(
            matches!(s, Step::Retry { refund: true, .. }),
            "a failed probe is refunded: {s:?}"
        );
        let s = step(&e, down(), &config, false, now);
        assert!(matches!(s, Step::GiveUp(_)), "a real attempt counts: {s:?}");
        let wait = Duration::from_secs(2);
        let s = step(&e, Err(EffectError::Deferred { wait }), &config, false, now);
        let back = Step::Retry {
            at: now + chrono::Duration::seconds(2),
            error: None,
            refund: true,
            waiting_on: None,
        };
        assert_eq!(s, back);
        let checks = || Err(EffectError::waiting("waiting for checks: ci"));
        let s = step(&e, checks(), &config, false, now);
        assert_eq!(
            s,
            Step::Retry {
                at: now + chrono::Duration::seconds(30),
                error: Some("waiting for checks: ci".into()),
                refund: true,
                waiting_on: None,
            },
            "a tenth of the 5 minutes waited, spending nothing"
        );
        let old = effect(2, chrono::Duration::hours(25), now);
        let s = step(&old, checks(), &config, false, now);
        assert!(
            matches!(s, Step::GiveUp(ref r) if r.starts_with("still waiting after 1day 1h")),
            "{s:?}"
        );
        let label = |s: &Step, o| outcome_label(s, &o);
        assert_eq!(
            label(&back, Err(EffectError::Deferred { wait })),
            "deferred"
        );
        assert_eq!(label(&back, Err(EffectError::retryable("503"))), "retried");
        assert_eq!(label(&Step::Done(None), Ok(None)), "succeeded");
        let gone = Err(EffectError::permanent("channel_not_found"));
        assert_eq!(
            step(&e, gone, &config, false, now),
            Step::GiveUp("channel_not_found".into())
        );
    }
}
