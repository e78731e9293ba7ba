//! `/metrics` end to end (issue 15): commands through a signed Slack command and the API
//! are counted by platform, verb and outcome; Slack's and GitHub's requests are timed;
//! open incidents are counted by severity with drills apart; a freeze shows on the freeze
//! target gauges; effects and GitHub's rate limit are reported. And the store's aggregate
//! functions a scrape reads (never the incidents themselves) count right. On both databases.
//!
//! Every app in this binary shares the process's recorder, so counters are compared before
//! and after (deltas), never as absolute values; the store's counts are per app.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::fake_slack::FakeSlack;
use common::slack::{SLACK_CONFIG, SlackSender};
use common::*;
use firebreak::app::Integrations;
use firebreak::store::{FreezeTargetCount, OpenIncidentCount};
use serde_json::json;

on_both!(
    commands_acks_incidents_and_freezes_show_on_metrics,
    every_family_shows_after_a_declare_a_failed_effect_and_a_freeze,
    the_scrape_aggregates_count_by_group,
);

/// One scrape, parsed by a Prometheus text-format parser (`prometheus-parse`): a line it
/// cannot read fails the test.
struct Scrape(String, Vec<prometheus_parse::Sample>);

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let resp = app.get("/metrics").await.expect("scrape");
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let value = line.rsplit_once(' ').map(|(_, v)| v);
            assert!(
                value.is_some_and(|v| v.parse::<f64>().is_ok() || v == "+Inf"),
                "not a sample line: {line}"
            );
        }
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("the text format parses");
        Self(text, parsed.samples)
    }

    fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a prometheus_parse::Sample> + 'a {
        self.1.iter().filter(move |s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    /// The sample `name` whose labels include every pair of `labels`, summed over the
    /// series that match; 0 when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        use prometheus_parse::Value;
        self.samples(name, labels)
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => panic!("{name} is not a single number"),
            })
            .sum()
    }

    /// Whether any series of the family `name` is present (a histogram's `_count` too).
    fn has(&self, name: &str) -> bool {
        self.1.iter().any(|s| {
            s.metric == name
                || s.metric
                    .strip_prefix(name)
                    .is_some_and(|r| r.starts_with('_'))
        })
    }

    /// The histogram `name` with `labels` counts an observation at or under `le`.
    fn has_bucket(&self, name: &str, labels: &[(&str, &str)], le: f64) -> bool {
        self.1.iter().any(|s| {
            (s.metric == name || s.metric == format!("{name}_bucket"))
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                && matches!(&s.value, prometheus_parse::Value::Histogram(b) if b.iter().any(|c| c.less_than == le))
        })
    }
}

struct T {
    app: TestApp,
    send: SlackSender,
    _slack: FakeSlack,
    _gh: FakeGitHub,
}

/// An app with Slack and GitHub (one repository, frozen for SEV1) on fakes.
async fn app(backend: Backend) -> T {
    app_with(backend, "").await
}

/// [`app`], with `extra` TOML appended to its config.
async fn app_with(backend: Backend, extra: &str) -> T {
    let slack = FakeSlack::start().await;
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    let github = common::github::github_config("\"acme/api\"", "100ms", "");
    let config = test_config(&format!("{SLACK_CONFIG}{github}{extra}"));
    let integrations = Integrations {
        slack: common::slack::integrations(&slack.url).slack,
        github: common::github::integrations(&gh.url).github,
        discord: None,
    };
    let app = spawn_app_with(backend, config, integrations, None).await;
    let send = SlackSender::new(&app);
    T {
        app,
        send,
        _slack: slack,
        _gh: gh,
    }
}

const COMMANDS: &str = "firebreak_commands_total";

/// Every family the README lists, by name.
const FAMILIES: [&str; 11] = [
    "firebreak_commands_total",
    "firebreak_ack_seconds",
    "firebreak_effect_outcomes_total",
    "firebreak_effect_attempt_seconds",
    "firebreak_effects",
    "firebreak_effects_oldest_due_seconds",
    "firebreak_breaker_state",
    "firebreak_github_rate_limit_remaining",
    "firebreak_freeze_targets",
    "firebreak_open_incidents",
    "firebreak_ack_seconds_count",
];

async fn every_family_shows_after_a_declare_a_failed_effect_and_a_freeze(backend: Backend) {
    let gone = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(410))
        .mount(&gone)
        .await;
    let t = app_with(
        backend,
        &webhook("status-page", &format!("{}/hook", gone.uri()), "SEV4"),
    )
    .await;
    let declared = t
        .send
        .command("declare sev1 Payments are down", "C_RANDOM", "U_ALICE")
        .await;
    assert!(declared.to_string().contains("INC-1"), "{declared}");
    assert!(queue_idle(&t.app.app.store, 30).await, "effects settle");
    let scrape = Scrape::of(&t.app).await;
    for family in FAMILIES {
        assert!(scrape.has(family), "{family} missing from:\n{}", scrape.0);
    }
    assert_eq!(
        scrape.value("firebreak_effects", &[("state", "failed")]),
        1.0,
        "the webhook's notice failed for good: {}",
        scrape.0
    );
    assert!(
        scrape.value(
            "firebreak_effect_outcomes_total",
            &[("target", "webhook:status-page"), ("outcome", "failed")]
        ) >= 1.0,
        "{}",
        scrape.0
    );
    assert_eq!(
        scrape.value("firebreak_freeze_targets", &[("state", "active")]),
        1.0,
        "{}",
        scrape.0
    );
    assert_eq!(
        scrape.value("firebreak_breaker_state", &[("target", "slack")]),
        0.0,
        "a target that answers is shown closed: {}",
        scrape.0
    );
    t.app.shutdown.cancel();
    t.app.handle.await.unwrap().unwrap();
}

async fn commands_acks_incidents_and_freezes_show_on_metrics(backend: Backend) {
    let t = app(backend).await;
    let before = Scrape::of(&t.app).await;
    let declared = t
        .send
        .command("declare sev1 Checkout is down", "C_RANDOM", "U_ALICE")
        .await;
    assert!(declared.to_string().contains("INC-1"), "{declared}");
    let refused = t.send.command("ack INC-999", "C_RANDOM", "U_ALICE").await;
    assert!(
        refused.to_string().contains("no incident INC-999"),
        "{refused}"
    );
    let drill = json!({ "title": "Game day", "severity": "SEV3", "drill": true });
    let resp = t
        .app
        .client()
        .post(t.app.url("/api/incidents"))
        .json(&drill)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let signed = common::github::signed(ping);
    let pinged = common::github::deliver(&t.app, "ping", ping, signed).await;
    assert!(pinged.status().is_success(), "{}", pinged.status());
    assert!(queue_idle(&t.app.app.store, 30).await, "effects settle");
    let after = Scrape::of(&t.app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let count = |platform, verb, outcome| {
        moved(
            COMMANDS,
            &[("platform", platform), ("verb", verb), ("outcome", outcome)],
        )
    };
    assert!(count("slack", "declare", "ok") >= 1.0, "{}", after.0);
    assert!(count("slack", "ack", "user_error") >= 1.0, "{}", after.0);
    assert!(count("api", "declare", "ok") >= 1.0, "{}", after.0);
    let acks = moved("firebreak_ack_seconds_count", &[("platform", "slack")]);
    assert!(acks >= 2.0, "both slash commands timed: {}", after.0);
    let hooks = moved("firebreak_ack_seconds_count", &[("platform", "github")]);
    assert!(hooks >= 1.0, "the webhook timed: {}", after.0);
    assert!(
        after.has_bucket("firebreak_ack_seconds", &[("platform", "slack")], 3.0),
        "{}",
        after.0
    );

    let open = |sev, drill| {
        after.value(
            "firebreak_open_incidents",
            &[("severity", sev), ("drill", drill)],
        )
    };
    assert_eq!(open("SEV1", "false"), 1.0, "{}", after.0);
    assert_eq!(open("SEV3", "true"), 1.0, "the drill apart: {}", after.0);
    assert_eq!(open("SEV3", "false"), 0.0, "{}", after.0);
    assert_eq!(
        after.value("firebreak_freeze_targets", &[("state", "active")]),
        1.0
    );
    assert_eq!(
        after.value("firebreak_effects", &[("state", "pending")]),
        0.0
    );
    let delivered = moved(
        "firebreak_effect_outcomes_total",
        &[
            ("kind", "github.reconcile"),
            ("target", "github"),
            ("outcome", "succeeded"),
        ],
    );
    assert!(delivered >= 1.0, "the freeze was delivered: {}", after.0);
    assert!(
        moved(
            "firebreak_effect_attempt_seconds_count",
            &[("target", "slack")]
        ) >= 1.0
    );
    assert!(
        after.has("firebreak_github_rate_limit_remaining"),
        "{}",
        after.0
    );

    t.app.ok("resolve INC-1 Rolled back").await;
    let resolved = Scrape::of(&t.app).await;
    let open = |sev, drill| {
        resolved.value(
            "firebreak_open_incidents",
            &[("severity", sev), ("drill", drill)],
        )
    };
    assert_eq!(open("SEV1", "false"), 0.0, "{}", resolved.0);
    assert_eq!(open("SEV3", "true"), 1.0, "{}", resolved.0);
    t.app.shutdown.cancel();
    t.app.handle.await.unwrap().unwrap();
}

/// The functions a scrape reads the store through are aggregates: checked here by their
/// results, group by group, on a store with incidents of every kind and freeze targets.
async fn the_scrape_aggregates_count_by_group(backend: Backend) {
    let s = service(backend, test_config("")).await;
    for line in [
        "declare sev2 Cache stampede",
        "declare sev2 Queue backlog",
        "declare sev2 Failover drill --drill",
        "declare sev4 Typo on status page",
    ] {
        s.ok(line).await;
    }
    s.ok("resolve INC-4 Fixed").await;
    let store = &s.app.store;
    let open = store.open_incident_counts().await.unwrap();
    let row = |severity: &str, drill, count| OpenIncidentCount {
        severity: severity.into(),
        drill,
        count,
    };
    assert_eq!(open, vec![row("SEV2", false, 2), row("SEV2", true, 1)]);
    assert_eq!(store.freeze_target_counts().await.unwrap(), vec![]);
    for (name, actual) in [
        ("acme/api", "active"),
        ("acme/web", "active"),
        ("acme/ops", "error"),
    ] {
        assert!(store.record_target(&target(name, actual)).await.unwrap());
    }
    let freeze = store.freeze_target_counts().await.unwrap();
    let state = |state: &str, count| FreezeTargetCount {
        state: state.into(),
        count,
    };
    assert_eq!(freeze, vec![state("active", 2), state("error", 1)]);
    let counts = s.app.read.metric_counts(chrono::Utc::now()).await.unwrap();
    assert_eq!((counts.open, counts.freeze), (open, freeze));
}

fn target(name: &str, actual: &str) -> firebreak::store::FreezeTarget {
    firebreak::store::FreezeTarget {
        target: name.into(),
        scope: name.into(),
        desired: "frozen".into(),
        actual: actual.into(),
        ruleset_id: None,
        applied_generation: 1,
        verified_at: 0,
        last_error: None,
        error_at: None,
        retry_at: None,
    }
}
