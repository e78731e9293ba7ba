//! Stale-runbook detection end to end: a runbook naming a deleted repository, an unreachable
//! webhook and an archived Slack channel (beside a good repository, webhook and channel) is
//! flagged by `firebreak runbook check` and `firebreak config check` run as processes, and
//! by `serve`'s periodic check, which reports each problem once across ticks and restarts
//! (both databases). Bad runbook files are refused with file, line and key; `--offline`
//! calls nothing. No output ever holds a webhook URL.

mod common;

use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use common::fake_github::{FakeGitHub, Limits};
use common::fake_slack::FakeSlack;
use common::process::{Cli, free_port, stderr};
use common::receiver::Receiver;
use common::{Backend, eventually, queue_idle, spawn_app_with, test_config};
use firebreak::app::{App, Integrations};
use firebreak::chat::slack::SlackSecrets;
use firebreak::github::GitHubSecrets;
use firebreak::github::config::GitHubAuth;
use firebreak::runbook::watch::{Tick, Watch};

/// A secret part of every webhook URL: it must never be shown.
const SECRET: &str = "s3cr3t-hook-token";

const REGIONAL: &str = r#"
title = "Regional outage"
severities = ["sev1"]

[[step]]
id = "freeze"
title = "Freeze the API repositories"
at = "T+0"
action = "freeze"
repos = ["acme/api", "acme/old"]

[[step]]
id = "customers"
title = "Tell customers"
at = "T+5m"
action = "notify"
webhook = "statuspage"
text = "We are investigating."

[[step]]
id = "page-dba"
title = "Page the DBAs"
at = "T+2m"
action = "page"
webhook = "pager"
text = "The database is down."

[[step]]
id = "status"
title = "Post in the status channel"
at = "T+3m"
action = "notify"
channel = "{STATUS}"
text = "Regional outage under way."
"#;

const DATABASE: &str = r#"
title = "Database failover"
severities = ["sev1", "sev2"]

[[step]]
id = "freeze-all"
title = "Freeze everything of acme"
at = "T+0"
action = "freeze"
repos = ["acme/*"]

[[step]]
id = "tell-db"
title = "Tell the database channel"
at = "T+1m"
action = "notify"
channel = "{DB}"
text = "Failing over."
"#;

/// Fakes for everything the runbooks name, and the runbook files.
struct World {
    gh: FakeGitHub,
    slack: FakeSlack,
    /// The good webhook (`statuspage`).
    good: Receiver,
    /// Where reports go (`reports`).
    reports: Receiver,
    /// Nothing listens here (`pager`).
    dead_port: u16,
    report_channel: String,
    status_channel: String,
    runbooks: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let gh = FakeGitHub::start(Limits::default()).await;
        gh.add_repo("acme/api", "main");
        let slack = FakeSlack::start().await;
        let report_channel = slack.add_channel("ops-reports");
        let status_channel = slack.add_channel("status");
        slack.archive_channel(&status_channel);
        let db_channel = slack.add_channel("db-status");
        let runbooks = tempfile::tempdir().unwrap();
        let regional = REGIONAL.replace("{STATUS}", &status_channel);
        std::fs::write(runbooks.path().join("regional.toml"), regional).unwrap();
        let database = DATABASE.replace("{DB}", &db_channel);
        std::fs::write(runbooks.path().join("database.toml"), database).unwrap();
        Self {
            gh,
            slack,
            good: Receiver::start().await,
            reports: Receiver::start().await,
            dead_port: free_port(),
            report_channel,
            status_channel,
            runbooks,
        }
    }

    fn config(&self) -> String {
        let hook = |name: &str, url: String| {
            format!(
                "[[notify.webhook]]\nname = \"{name}\"\nurl = \"{url}\"\nmin_severity = \"SEV1\"\n"
            )
        };
        format!(
            "{}{}{}[github]\nrepos = [\"acme/api\"]\n\n[runbooks]\ndir = \"{}\"\nreport_webhook = \"reports\"\nreport_channel = \"{}\"\n",
            hook("statuspage", self.good.url(&format!("/hooks/{SECRET}"))),
            hook(
                "pager",
                format!("http://127.0.0.1:{}/hooks/{SECRET}", self.dead_port)
            ),
            hook("reports", self.reports.url(&format!("/hooks/{SECRET}"))),
            self.runbooks.path().display(),
            self.report_channel,
        )
    }

    fn integrations(&self) -> Integrations {
        Integrations {
            slack: Some(SlackSecrets {
                signing_secret: "signing".to_string().into(),
                bot_token: "xoxb-test-token".to_string().into(),
                api_url: self.slack.url.clone(),
            }),
            discord: None,
            github: Some(GitHubSecrets {
                api_url: self.gh.url.clone(),
                auth: GitHubAuth::Token("ghp_test".to_string().into()),
                webhook_secrets: vec![],
            }),
        }
    }

    /// A CLI with this world's config and the fakes' credentials in its environment.
    async fn cli(&self, backend: Backend) -> Cli {
        Cli::new(backend, &self.config()).await
    }

    async fn run(&self, cli: &Cli, args: &[&str]) -> Output {
        let mut cmd = cli.command(args);
        cmd.env("GITHUB_TOKEN", "ghp_test")
            .env("GITHUB_API_URL", &self.gh.url)
            .env("SLACK_BOT_TOKEN", "xoxb-test-token")
            .env("SLACK_SIGNING_SECRET", "signing")
            .env("SLACK_API_URL", &self.slack.url);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// The three problems, as each surface names them.
    fn expected(&self) -> [String; 3] {
        [
            "runbook regional, step freeze: repository acme/old does not exist or the token cannot see it."
                .into(),
            "runbook regional, step page-dba: webhook \"pager\" is unreachable: the connection was refused."
                .into(),
            format!(
                "runbook regional, step status: Slack channel {} is archived.",
                self.status_channel
            ),
        ]
    }

    fn slack_reports(&self) -> Vec<String> {
        let channel = &self.report_channel;
        let messages = self.slack.messages();
        messages
            .into_iter()
            .filter(|m| &m.channel == channel)
            .map(|m| m.text)
            .collect()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Nothing a user or a channel sees names a webhook's URL.
fn assert_no_url(text: &str, world: &World) {
    assert!(!text.contains(SECRET), "a webhook URL was shown:\n{text}");
    let dead = format!("127.0.0.1:{}", world.dead_port);
    assert!(!text.contains(&dead), "a webhook URL was shown:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_check_names_each_stale_step_and_exits_4() {
    let world = World::start().await;
    let cli = world.cli(Backend::Sqlite).await;
    let out = world.run(&cli, &["runbook", "check"]).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(4),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    for line in world.expected() {
        assert!(
            text.contains(&format!("✗ {line}")),
            "missing {line:?} in:\n{text}"
        );
    }
    assert_eq!(text.matches('✗').count(), 3, "{text}");
    assert!(
        text.contains(
            "✓ database (Database failover): 2 steps; names 1 repository and 1 Slack channel"
        ),
        "{text}"
    );
    assert!(text.contains("3 problems: fix the runbooks"), "{text}");
    assert_no_url(&format!("{text}{err}"), &world);
    assert!(world.good.probes() >= 1, "the good webhook was asked");
    assert!(
        world.good.log().is_empty() && world.reports.log().is_empty(),
        "nothing was posted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_has_a_runbooks_line_with_each_problem() {
    let world = World::start().await;
    let cli = world.cli(Backend::Sqlite).await;
    let out = world.run(&cli, &["config", "check"]).await;
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{err}"
    );
    let head = format!(
        "runbooks: 2 in {} (database, regional); 3 problems (details: firebreak runbook check):",
        world.runbooks.path().display()
    );
    assert!(text.contains(&head), "{text}");
    for line in world.expected() {
        assert!(
            text.contains(&format!("  ✗ {line}")),
            "missing {line:?} in:\n{text}"
        );
    }
    assert_no_url(&format!("{text}{err}"), &world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_checks_call_nothing() {
    let world = World::start().await;
    let cli = world.cli(Backend::Sqlite).await;
    let out = world.run(&cli, &["runbook", "check", "--offline"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("--offline: nothing was called"), "{text}");
    assert!(
        text.contains("✓ regional (Regional outage): 4 steps"),
        "{text}"
    );
    let out = world.run(&cli, &["config", "check", "--offline"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(--offline: nothing was called)"));
    assert!(world.gh.requests().is_empty(), "GitHub was called");
    assert!(world.slack.calls().is_empty(), "Slack was called");
    assert_eq!(
        world.good.probes() + world.reports.probes(),
        0,
        "a webhook was called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_runbook_files_are_refused_with_file_line_and_key() {
    let world = World::start().await;
    let dir = world.runbooks.path();
    let unknown = REGIONAL.replace("at = \"T+5m\"", "at = \"T+5m\"\nwhen = \"soon\"");
    std::fs::write(dir.join("unknown-key.toml"), unknown).unwrap();
    let no_at = DATABASE.replace("at = \"T+1m\"\n", "");
    std::fs::write(dir.join("no-target.toml"), no_at).unwrap();
    let twice = DATABASE.replace("id = \"tell-db\"", "id = \"freeze-all\"");
    std::fs::write(dir.join("duplicate.toml"), twice).unwrap();
    let cli = world.cli(Backend::Sqlite).await;
    let out = world.run(&cli, &["runbook", "check"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let at = |file: &str, line: usize, start: &str| {
        let want = format!("error: {}:{line}: {start}", dir.join(file).display());
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    };
    at("unknown-key.toml", 16, "when: unknown key");
    at("no-target.toml", 12, "at: missing key");
    at(
        "duplicate.toml",
        13,
        "id: step id \"freeze-all\" is used twice",
    );
    assert!(err.contains("3 runbook files cannot be used"), "{err}");
    assert!(
        world.gh.requests().is_empty(),
        "nothing is called for bad files"
    );
}

/// A tick that must report nothing new.
async fn quiet_tick(watch: &Watch) -> Tick {
    let tick = watch.tick(Utc::now()).await.unwrap();
    assert!(
        tick.posted.is_empty() && tick.effects.is_empty(),
        "{tick:?}"
    );
    tick
}

async fn the_periodic_check_reports_each_problem_once(backend: Backend) {
    let world = World::start().await;
    let config = || test_config(&world.config());
    let app = spawn_app_with(backend, config(), world.integrations(), None).await;
    // `serve` checks at start; its reports go out through the queue.
    let reports = || world.reports.accepted();
    assert!(
        eventually(20, || async { reports().len() >= 3 }).await,
        "three reports: {:?}",
        reports()
    );
    let watch = Arc::clone(
        app.app
            .runbook_watch
            .as_ref()
            .expect("runbooks are watched"),
    );
    for _ in 0..2 {
        assert_eq!(quiet_tick(&watch).await.report.findings.len(), 3);
    }
    // A restart (a second replica, the same database) reports nothing again.
    let again = App::with_store(config(), app.db.store().await, world.integrations()).unwrap();
    quiet_tick(again.runbook_watch.as_ref().unwrap()).await;
    assert!(queue_idle(&app.app.store, 20).await);
    let texts: Vec<String> = reports().into_iter().map(|r| r.text).collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    for line in world.expected() {
        let posted = format!("⚠️ Stale runbook: {line}");
        assert_eq!(
            texts.iter().filter(|t| t.starts_with(&posted)).count(),
            1,
            "{posted:?} in {texts:#?}"
        );
    }
    assert_no_url(&texts.join("\n"), &world);
    assert_eq!(
        world.slack_reports().len(),
        3,
        "{:#?}",
        world.slack_reports()
    );

    // acme/old comes back: cleared, once; it goes again: reported again, once.
    world.gh.add_repo("acme/old", "main");
    let tick = watch.tick(Utc::now()).await.unwrap();
    assert_eq!(tick.cleared.len(), 1, "{tick:?}");
    quiet_tick(&watch).await;
    world.gh.fail("GET", "/repos/acme/old", 404);
    let tick = watch.tick(Utc::now()).await.unwrap();
    assert_eq!(tick.posted.len(), 1, "{tick:?}");
    quiet_tick(&watch).await;
    // GitHub down: nothing can be said of the repositories, so nothing clears or posts.
    world.gh.go_down(503);
    let tick = quiet_tick(&watch).await;
    assert!(
        tick.cleared.is_empty() && !tick.report.unchecked.is_empty(),
        "{tick:?}"
    );
    world.gh.heal();

    assert!(queue_idle(&app.app.store, 20).await);
    let texts: Vec<String> = reports().into_iter().map(|r| r.text).collect();
    assert_eq!(texts.len(), 5, "{texts:#?}");
    assert!(
        texts[3].starts_with("✅ Runbook problem cleared: runbook regional, step freeze"),
        "{}",
        texts[3]
    );
    assert!(texts[4].starts_with(&format!("⚠️ Stale runbook: {}", world.expected()[0])));
    let rows = app.app.store.runbook_findings().await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.posted_at.is_some() && r.cleared_at.is_none())
    );
    app.shutdown.cancel();
}

/// Two replicas checking at the same moment on one database: each problem is claimed by
/// one of them.
async fn two_replicas_at_once_report_each_problem_once(backend: Backend) {
    let world = World::start().await;
    let db = common::TestDb::new(backend).await;
    let replica =
        |store| App::with_store(test_config(&world.config()), store, world.integrations());
    let a = replica(db.store().await).unwrap();
    let b = replica(db.store().await).unwrap();
    let (wa, wb) = (a.runbook_watch.unwrap(), b.runbook_watch.unwrap());
    let (ta, tb) = tokio::join!(wa.tick(Utc::now()), wb.tick(Utc::now()));
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta.posted.len() + tb.posted.len(), 3, "{ta:?}\n{tb:?}");
    // One report to the channel and one to the webhook for each.
    assert_eq!(ta.effects.len() + tb.effects.len(), 6);
    quiet_tick(&wa).await;
    quiet_tick(&wb).await;
}

on_both!(
    the_periodic_check_reports_each_problem_once,
    two_replicas_at_once_report_each_problem_once
);
