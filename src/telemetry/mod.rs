//! Prometheus metrics through the `metrics` facade, rendered on firebreak's own `/metrics`.
//!
//! One recorder per process ([`install`], behind a `OnceLock`): what happens as it happens is
//! recorded there (commands at the service's front door, platform acknowledgement latency
//! in the HTTP layer, effect attempts in the worker, breaker transitions, GitHub's rate-limit
//! headroom). What the database holds (open incidents, freeze targets, the queue) is counted
//! at scrape time with one aggregate query each and rendered by [`scrape`], per app: never
//! through the global recorder, so two apps in one process (the tests) never see each
//! other's counts.
//!
//! Labels are bounded: platforms, verbs and effect kinds are names in the code, and a target
//! is reduced to its platform or configured webhook by [`target_label`].

pub mod ack;
pub mod scrape;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::incident::{ServiceError, UserError};

/// Commands at the front door, by `platform`, `verb` and `outcome`.
pub const COMMANDS: &str = "firebreak_commands_total";
/// Time to answer a platform's request (Slack, Discord, GitHub), by `platform`.
pub const ACK_SECONDS: &str = "firebreak_ack_seconds";
/// Effect attempts and deferrals as they end, by `kind`, `target` and `outcome`.
pub const EFFECT_OUTCOMES: &str = "firebreak_effect_outcomes_total";
/// How long one effect attempt took, by `target`.
pub const EFFECT_ATTEMPT_SECONDS: &str = "firebreak_effect_attempt_seconds";
/// Circuit breaker state by `target`: 0 closed, 1 half-open (probing), 2 open.
pub const BREAKER_STATE: &str = "firebreak_breaker_state";
/// `x-ratelimit-remaining` as GitHub last sent it.
pub const GITHUB_RATE_REMAINING: &str = "firebreak_github_rate_limit_remaining";

/// Slack wants an answer within 3 s, Discord within 3 s too.
const ACK_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0,
];
const ATTEMPT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder the first time (later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only counts");
        }
        describe();
        upkeep(handle.clone());
        handle
    })
}

/// The recorder's settings: true histograms (with buckets) for the two latencies.
pub fn builder() -> PrometheusBuilder {
    let buckets = |b: PrometheusBuilder, name: &str, values: &[f64]| {
        b.set_buckets_for_metric(Matcher::Full(name.into()), values)
            .expect("bucket lists are not empty")
    };
    let b = buckets(PrometheusBuilder::new(), ACK_SECONDS, ACK_BUCKETS);
    buckets(b, EFFECT_ATTEMPT_SECONDS, ATTEMPT_BUCKETS)
}

/// The text exposition: the recorder's metrics, then the store's counts.
pub fn render(counts: &scrape::Aggregates) -> String {
    let mut out = install().render();
    scrape::render_into(&mut out, counts);
    out
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        COMMANDS,
        "Commands at the service's front door, by platform, verb and outcome."
    );
    describe_histogram!(
        ACK_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer a platform's request, by platform."
    );
    describe_counter!(
        EFFECT_OUTCOMES,
        "Effect attempts and deferrals, by kind, target and outcome."
    );
    describe_histogram!(
        EFFECT_ATTEMPT_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one effect attempt, by target."
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker per target: 0 closed, 1 half-open (probing), 2 open."
    );
    describe_gauge!(
        GITHUB_RATE_REMAINING,
        "GitHub's primary rate limit: requests remaining, as last reported."
    );
}

/// Histograms are buffered until upkeep drains them; the listener that would do it is not
/// built (we render on our own route), so a thread does, every few seconds.
fn upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
    }
}

/// Counts one command that reached [`IncidentService::apply_checked`](crate::incident::IncidentService::apply_checked).
pub fn command<T>(platform: &'static str, verb: &'static str, result: &Result<T, ServiceError>) {
    let outcome = command_outcome(result);
    metrics::counter!(COMMANDS, "platform" => platform, "verb" => verb, "outcome" => outcome)
        .increment(1);
}

/// `ok`, `user_error`, `conflict`, `forbidden`, `duplicate` or `internal`.
pub fn command_outcome<T>(result: &Result<T, ServiceError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ServiceError::User(UserError::Conflict { .. })) => "conflict",
        Err(ServiceError::User(UserError::Forbidden { .. })) => "forbidden",
        Err(ServiceError::User(_)) => "user_error",
        Err(ServiceError::Duplicate) => "duplicate",
        Err(ServiceError::Internal(_)) => "internal",
    }
}

/// A breaker target as a label: its platform (`slack`, `discord.notice`, `github`), or
/// `webhook:<name>` for a configured webhook. Never a channel id or a URL.
pub fn target_label(target: &str) -> String {
    match target.split_once(':') {
        Some(("webhook", name)) => format!("webhook:{name}"),
        Some((platform, _)) => platform.to_string(),
        None => target.to_string(),
    }
}

/// One effect attempt (or deferral) ended with `outcome`.
pub fn effect_outcome(kind: &'static str, target: &str, outcome: &'static str) {
    let target = target_label(target);
    metrics::counter!(EFFECT_OUTCOMES, "kind" => kind, "target" => target, "outcome" => outcome)
        .increment(1);
}

/// One effect attempt against `target` took `took`.
pub fn effect_attempt(target: &str, took: Duration) {
    metrics::histogram!(EFFECT_ATTEMPT_SECONDS, "target" => target_label(target))
        .record(took.as_secs_f64());
}

/// The breaker state of the targets labelled `label` (see [`target_label`]).
pub fn breaker_state(label: String, state: f64) {
    metrics::gauge!(BREAKER_STATE, "target" => label).set(state);
}

/// GitHub's `x-ratelimit-remaining`, as just read.
pub fn github_rate_remaining(remaining: u64) {
    metrics::gauge!(GITHUB_RATE_REMAINING).set(remaining as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_bounded_labels() {
        assert_eq!(target_label("slack"), "slack");
        assert_eq!(target_label("slack.people"), "slack.people");
        assert_eq!(
            target_label("discord.notice:123456789012"),
            "discord.notice"
        );
        assert_eq!(target_label("webhook:general"), "webhook:general");
        assert_eq!(target_label("github"), "github");
    }

    #[test]
    fn service_errors_map_to_outcomes() {
        let n = crate::incident::IncidentNumber(1);
        let conflict = UserError::Conflict {
            number: n,
            seen: 1,
            current: 2,
        };
        let cases: [(Result<(), ServiceError>, &str); 5] = [
            (Ok(()), "ok"),
            (Err(UserError::NotFound(n).into()), "user_error"),
            (Err(conflict.into()), "conflict"),
            (Err(ServiceError::Duplicate), "duplicate"),
            (Err(anyhow::anyhow!("db down").into()), "internal"),
        ];
        for (result, expected) in cases {
            assert_eq!(command_outcome(&result), expected);
        }
    }
}
