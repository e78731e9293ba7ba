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
    the_scrape_aggregates_count_by_group,
);

/// One scrape, parsed just enough to read a sample by name and labels.
struct Scrape(String);

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let resp = app.get("/metrics").await.expect("scrape");
        assert_eq!(resp.status(), 200);
        Self(resp.text().await.unwrap())
    }

    /// The sample `name` whose labels include every pair of `labels`, summed over the
    /// series that match; 0 when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v.parse::<f64>().expect("a number"))
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0.lines().any(|l| l.starts_with(name))
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
    let slack = FakeSlack::start().await;
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    let github = common::github::github_config("\"acme/api\"", "100ms", "");
    let config = test_config(&format!("{SLACK_CONFIG}{github}"));
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
    assert!(after.has("firebreak_ack_seconds_bucket{platform=\"slack\",le=\"3\"}"));

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
        after.has("firebreak_github_rate_limit_remaining "),
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
