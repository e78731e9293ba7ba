//! Benchmark of the GitHub merge freeze against the in-process fake GitHub (which enforces
//! the secondary limits):
//!
//! 1. an org-level freeze (one organization ruleset) enforced, with 100 ms added to every
//!    GitHub call (target: under 2 s from the command);
//! 2. a 40-repository freeze with 300 open pull requests (340 content-creating requests),
//!    compared with the pacing floor GitHub's limits impose (target: within 10%). The
//!    "minute" is scaled to 5 s so the run takes seconds, not minutes; the arithmetic is
//!    the same at 60 s.
//!
//! Run with `cargo bench --bench freeze`.

#[path = "../tests/common/fake_github.rs"]
mod fake_github;

use std::time::{Duration, Instant};

use fake_github::{FakeGitHub, Limits};
use firebreak::app::{App, Integrations};
use firebreak::config::Config;
use firebreak::github::GitHubSecrets;
use firebreak::github::config::{GitHubAuth, Pacing};
use firebreak::github::freeze::RULESET_NAME;
use firebreak::github::pacer::floor;
use firebreak::incident::{Actor, Source, command};
use firebreak::store::Store;
use tokio_util::sync::CancellationToken;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        org_freeze().await;
        forty_repos().await;
    });
}

async fn start(gh: &FakeGitHub, config: &str) -> (App, CancellationToken, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    let integrations = Integrations {
        slack: None,
        discord: None,
        github: Some(GitHubSecrets {
            api_url: gh.url.clone(),
            auth: GitHubAuth::Token("ghp_bench".to_string().into()),
            webhook_secrets: vec![],
        }),
    };
    let app = App::with_store(Config::parse(config).unwrap(), store, integrations).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    (app, shutdown, dir)
}

async fn run(app: &App, line: &str) {
    let cmd = command::parse_line(line, Default::default()).unwrap();
    app.service
        .apply(cmd, &Actor::new(Source::Cli, "bench", "bench"))
        .await
        .unwrap();
}

async fn org_freeze() {
    let gh = FakeGitHub::start(Limits::default()).await;
    gh.set_latency(Duration::from_millis(100));
    for r in 0..40 {
        gh.add_repo(&format!("acme/svc-{r:02}"), "main");
    }
    let config = "[effects]\npoll_interval = \"50ms\"\n[github]\nrepos = [\"acme/*\"]\norg_rulesets = true\n";
    let (app, shutdown, _dir) = start(&gh, config).await;
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        run(&app, "freeze").await;
        while !gh
            .org_rulesets("acme")
            .iter()
            .any(|r| r["name"] == RULESET_NAME)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
        run(&app, "unfreeze").await;
        while gh
            .org_rulesets("acme")
            .iter()
            .any(|r| r["name"] == RULESET_NAME)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    samples.sort();
    println!(
        "org-level freeze enforced (GitHub +100 ms/call): median {:.0} ms, max {:.0} ms",
        samples[samples.len() / 2].as_secs_f64() * 1000.0,
        samples.last().unwrap().as_secs_f64() * 1000.0
    );
    shutdown.cancel();
}

async fn forty_repos() {
    let minute = Duration::from_secs(5);
    let gh = FakeGitHub::start(Limits {
        minute,
        ..Limits::default()
    })
    .await;
    gh.set_latency(Duration::from_millis(20));
    let mut shas = Vec::new();
    for r in 0..40 {
        let repo = format!("acme/svc-{r:02}");
        gh.add_repo(&repo, "main");
        for p in 0..(if r < 20 { 8 } else { 7 }) {
            let sha = format!("{r:02}{p:02}{}", "c".repeat(36));
            gh.add_pull(&repo, 10 + p, &sha, "main");
            shas.push((repo.clone(), sha));
        }
    }
    let config = "[effects]\npoll_interval = \"50ms\"\n[github]\nrepos = [\"acme/*\"]\n[github.pacing]\nminute = \"5s\"\n";
    let (app, shutdown, _dir) = start(&gh, config).await;
    let started = Instant::now();
    run(&app, "freeze").await;
    while !shas.iter().all(|(repo, sha)| {
        gh.latest_status(repo, sha, "firebreak/merge-freeze")
            .is_some()
    }) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let pacing = Pacing {
        minute,
        ..Pacing::default()
    };
    let writes = 40 + shas.len();
    let floor = floor(&pacing, writes);
    println!(
        "40-repo freeze, {} content-creating requests: {:.2} s; pacing floor {:.2} s (+{:.1}%); {} limit violations",
        writes,
        took.as_secs_f64(),
        floor.as_secs_f64(),
        (took.as_secs_f64() / floor.as_secs_f64() - 1.0) * 100.0,
        gh.violations()
    );
    shutdown.cancel();
}
