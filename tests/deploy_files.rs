//! `deploy/`: the Grafana dashboard is JSON Grafana can import (panels with queries on a
//! Prometheus data source variable), and every metric the dashboard and the Prometheus
//! rules name is one firebreak exposes (a histogram's `_bucket`, `_count` and `_sum` too).

use std::path::Path;

use firebreak::telemetry::{self, scrape};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every name firebreak exposes, with the series a histogram adds.
fn exposed() -> Vec<String> {
    let mut names: Vec<String> = [
        telemetry::COMMANDS,
        telemetry::EFFECT_OUTCOMES,
        telemetry::BREAKER_STATE,
        telemetry::GITHUB_RATE_REMAINING,
        scrape::OPEN_INCIDENTS,
        scrape::EFFECTS,
        scrape::OLDEST_DUE,
        scrape::FREEZE_TARGETS,
    ]
    .map(String::from)
    .to_vec();
    for histogram in [telemetry::ACK_SECONDS, telemetry::EFFECT_ATTEMPT_SECONDS] {
        for suffix in ["_bucket", "_count", "_sum"] {
            names.push(format!("{histogram}{suffix}"));
        }
    }
    names
}

/// The `firebreak_…` words in `text`.
fn metric_names(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("firebreak_"))
        .collect()
}

fn assert_all_exposed(path: &str, text: &str) {
    let names = metric_names(text);
    assert!(!names.is_empty(), "{path} names no metric");
    let exposed = exposed();
    for name in names {
        assert!(
            exposed.iter().any(|e| e == name),
            "{path} uses {name}, which firebreak does not expose"
        );
    }
}

#[test]
fn the_dashboard_is_importable_and_uses_exposed_metrics() {
    let path = "deploy/grafana/firebreak-dashboard.json";
    let text = read(path);
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut exprs = String::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("each panel has queries");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for t in targets {
            exprs.push_str(t["expr"].as_str().expect("a PromQL expr"));
            exprs.push('\n');
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
    }
    for wanted in [
        "firebreak_commands_total",
        "firebreak_ack_seconds_bucket",
        "firebreak_effects",
        "firebreak_effects_oldest_due_seconds",
        "firebreak_breaker_state",
        "firebreak_github_rate_limit_remaining",
        "firebreak_open_incidents",
    ] {
        assert!(
            metric_names(&exprs).contains(&wanted),
            "no panel on {wanted}"
        );
    }
    assert!(
        exprs.contains("outcome=\"failed\""),
        "a panel on failed effects"
    );
    assert_all_exposed(path, &exprs);
}

#[test]
fn the_alert_rules_use_exposed_metrics() {
    let path = "deploy/prometheus/alerts.yaml";
    let text = read(path);
    let exprs: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for alert in [
        "FirebreakQueueStuck",
        "FirebreakBreakerOpen",
        "FirebreakNoticeFailed",
        "FirebreakGitHubRateLimitLow",
    ] {
        assert!(text.contains(&format!("alert: {alert}")), "{alert}");
    }
    assert_all_exposed(path, &exprs);
}
