//! The GitHub merge freeze end to end against an in-process fake GitHub that enforces the
//! secondary limits (with a scaled-down minute), on SQLite and Postgres.

mod common;

use std::time::{Duration, Instant};

use common::fake_github::{FakeGitHub, Limits};
use common::github::{deliver, github_config, integrations, signed};
use common::*;
use firebreak::github::freeze::{RULESET_NAME, STATUS_CONTEXT};
use firebreak::incident::{Actor, EntryKind, IncidentNumber, Source};

on_both!(
    freeze_and_unfreeze_40_repos_with_300_prs_within_the_limits,
    real_webhook_payloads_mark_new_heads_while_frozen,
    reconciler_restores_a_ruleset_deleted_by_hand,
    racing_freeze_and_unfreeze_end_in_the_last_commands_state,
    declare_freezes_lists_recent_changes_and_resolve_lifts,
    exemptions_and_drills,
    postmortem_is_published_as_one_pull_request,
    slack_shows_freeze_progress_edited_in_place,
);

struct GitHubApp {
    app: TestApp,
    gh: FakeGitHub,
}

const MINUTE: Duration = Duration::from_millis(100);

async fn github_app(backend: Backend, repos: &str, extra: &str) -> GitHubApp {
    let gh = FakeGitHub::start(Limits {
        minute: MINUTE,
        ..Limits::default()
    })
    .await;
    let config = test_config(&github_config(repos, "100ms", extra));
    let app = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    GitHubApp { app, gh }
}

impl GitHubApp {
    async fn run(&self, line: &str) -> firebreak::incident::Outcome {
        let cmd = firebreak::incident::command::parse_line(line, Default::default()).unwrap();
        let actor = Actor::new(Source::Cli, "ops", "ops");
        self.app
            .app
            .service
            .apply(cmd, &actor)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    async fn settle(&self) {
        let idle = queue_idle(&self.app.app.store, 60).await;
        assert!(
            idle,
            "effects did not settle: {:?}",
            self.app.app.store.list_effects(false, 20).await.unwrap()
        );
        let failed = self.app.app.store.list_effects(true, 20).await.unwrap();
        assert!(
            failed.is_empty(),
            "effects failed: {:?}",
            failed.iter().map(|e| &e.last_error).collect::<Vec<_>>()
        );
    }

    fn ruleset(&self, repo: &str) -> Option<serde_json::Value> {
        self.gh
            .rulesets(repo)
            .into_iter()
            .find(|r| r["name"] == RULESET_NAME)
    }
}

async fn freeze_and_unfreeze_40_repos_with_300_prs_within_the_limits(backend: Backend) {
    let t = github_app(backend, "\"acme/*\"", "").await;
    let mut prs = Vec::new();
    for r in 0..40 {
        let repo = format!("acme/svc-{r:02}");
        t.gh.add_repo(&repo, "main");
        for p in 0..(if r < 20 { 8 } else { 7 }) {
            let sha = format!("{r:02}{p:02}{}", "a".repeat(36));
            t.gh.add_pull(&repo, 100 + p, &sha, "main");
            prs.push((repo.clone(), sha));
        }
        t.gh.add_pull(
            &repo,
            999,
            &format!("{r:02}ff{}", "b".repeat(36)),
            "feature-branch",
        );
    }
    assert_eq!(prs.len(), 300);

    let started = Instant::now();
    t.run("freeze --reason Region outage").await;
    t.settle().await;
    let freeze_took = started.elapsed();
    for r in 0..40 {
        let repo = format!("acme/svc-{r:02}");
        let ruleset = t
            .ruleset(&repo)
            .unwrap_or_else(|| panic!("no ruleset on {repo}"));
        assert_eq!(ruleset["enforcement"], "active");
        assert_eq!(ruleset["rules"][0]["type"], "update");
        assert_eq!(
            ruleset["conditions"]["ref_name"]["include"][0],
            "~DEFAULT_BRANCH"
        );
    }
    for (repo, sha) in &prs {
        assert_eq!(
            t.gh.latest_status(repo, sha, STATUS_CONTEXT).as_deref(),
            Some("failure"),
            "{repo} {sha}"
        );
    }
    let other = format!("00ff{}", "b".repeat(36));
    assert_eq!(
        t.gh.latest_status("acme/svc-00", &other, STATUS_CONTEXT),
        None,
        "PRs into other branches are left alone"
    );

    // Enforcement first: every ruleset was in place before the first status was written.
    let requests = t.gh.requests();
    let last_ruleset = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/rulesets") && r.status == 201)
        .map(|r| r.at)
        .max()
        .unwrap();
    let first_status = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/statuses/"))
        .map(|r| r.at)
        .min()
        .unwrap();
    assert!(
        last_ruleset < first_status,
        "a status was written before every ruleset was in place"
    );
    assert!(requests.iter().all(|r| {
        r.accept
            .as_deref()
            .is_some_and(|a| a.contains("application/vnd.github+json"))
            && r.api_version.is_some()
    }));

    t.run("unfreeze").await;
    t.settle().await;
    for r in 0..40 {
        assert!(t.ruleset(&format!("acme/svc-{r:02}")).is_none());
    }
    for (repo, sha) in &prs {
        assert_eq!(
            t.gh.latest_status(repo, sha, STATUS_CONTEXT).as_deref(),
            Some("success")
        );
    }
    assert_eq!(t.gh.violations(), 0, "no secondary-limit violations");
    // 340 content-creating requests each way is more than one scaled hour allows (500), so
    // the pacer had to hold requests back rather than let GitHub refuse them.
    assert!(
        started.elapsed() > MINUTE * 60,
        "paced across the hour window: {:?}",
        started.elapsed()
    );
    assert!(
        freeze_took < MINUTE * 50,
        "the freeze alone fits in the first hour window: {freeze_took:?}"
    );
    let applied = t
        .app
        .app
        .store
        .audit_log(200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::FreezeApplied)
        .count();
    assert_eq!(applied, 80, "every ruleset change is on the record");
}

async fn real_webhook_payloads_mark_new_heads_while_frozen(backend: Backend) {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-webhooks"
    );
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    for name in [
        "pull_request.opened.0",
        "pull_request.synchronize.22",
        "pull_request.reopened.18",
    ] {
        let t = github_app(backend, "\"Codertocat/Hello-World\"", "").await;
        t.gh.add_repo("Codertocat/Hello-World", "master");
        t.run("freeze").await;
        t.settle().await;
        let body = std::fs::read(format!("{fixtures}/{name}.json")).unwrap();
        let resp = deliver(&t.app, "pull_request", &body, signed(&body)).await;
        assert_eq!(resp.status(), 200, "{name}");
        t.settle().await;
        assert_eq!(
            t.gh.latest_status("Codertocat/Hello-World", sha, STATUS_CONTEXT)
                .as_deref(),
            Some("failure"),
            "{name}"
        );
    }

    let t = github_app(backend, "\"Codertocat/Hello-World\"", "").await;
    t.gh.add_repo("Codertocat/Hello-World", "master");
    t.run("freeze").await;
    t.settle().await;
    let writes = |t: &GitHubApp| {
        t.gh.requests()
            .iter()
            .filter(|r| r.path.contains("/statuses/"))
            .count()
    };
    let before = writes(&t);
    for (event, name) in [
        ("pull_request", "pull_request.closed.3"),
        ("pull_request", "pull_request.labeled.9"),
        ("push", "push.event.0"),
        ("status", "status.event.0"),
    ] {
        let body = std::fs::read(format!("{fixtures}/{name}.json")).unwrap();
        assert_eq!(
            deliver(&t.app, event, &body, signed(&body)).await.status(),
            202,
            "{name}"
        );
    }
    let ping = std::fs::read(format!("{fixtures}/ping.event.0.json")).unwrap();
    let pong: serde_json::Value = deliver(&t.app, "ping", &ping, signed(&ping))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pong["msg"], "pong");
    let body = std::fs::read(format!("{fixtures}/pull_request.opened.0.json")).unwrap();
    assert_eq!(
        deliver(&t.app, "pull_request", &body, None).await.status(),
        400,
        "missing signature"
    );
    assert_eq!(
        deliver(&t.app, "pull_request", &body, Some("sha256=00".into()))
            .await
            .status(),
        401,
        "bad signature"
    );
    t.settle().await;
    assert_eq!(
        writes(&t),
        before,
        "other actions, other events and bad deliveries change nothing"
    );
    assert_eq!(
        t.gh.latest_status("Codertocat/Hello-World", sha, STATUS_CONTEXT),
        None
    );
}

async fn reconciler_restores_a_ruleset_deleted_by_hand(backend: Backend) {
    let t = github_app(backend, "\"acme/api\"", "").await;
    t.gh.add_repo("acme/api", "main");
    let out = t.run("declare sev1 Payments down").await;
    assert!(out.effects.len() >= 2);
    t.settle().await;
    assert!(t.ruleset("acme/api").is_some());
    assert!(t.gh.delete_ruleset_by_name("acme/api", RULESET_NAME));

    t.app.app.queue_reconcile().await.unwrap();
    t.settle().await;
    assert!(
        t.ruleset("acme/api").is_some(),
        "the periodic reconciler repaired the drift"
    );
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let repair = timeline
        .iter()
        .find(|e| e.kind == EntryKind::FreezeApplied && e.text.contains("was missing"))
        .expect("repair on the timeline");
    assert!(
        repair.text.contains("acme/api") && repair.text.contains("GitHub 201"),
        "{}",
        repair.text
    );
    let targets = t.app.app.store.freeze_targets().await.unwrap();
    assert_eq!(targets[0].actual, "active");
}

async fn racing_freeze_and_unfreeze_end_in_the_last_commands_state(backend: Backend) {
    let t = github_app(backend, "\"acme/api\"", "").await;
    t.gh.add_repo("acme/api", "main");
    for round in 0..3 {
        let (a, b) = tokio::join!(t.run("freeze acme/api"), t.run("unfreeze acme/api"));
        drop((a, b));
        t.settle().await;
        let scope = t
            .app
            .app
            .store
            .freeze_scopes()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.scope == "acme/api")
            .unwrap();
        assert_eq!(
            t.ruleset("acme/api").is_some(),
            scope.frozen,
            "round {round}: GitHub matches the newest command"
        );
        t.run("freeze acme/api").await;
        t.run("unfreeze acme/api").await;
        t.settle().await;
        assert!(
            t.ruleset("acme/api").is_none(),
            "round {round}: the later unfreeze wins"
        );
        t.run("unfreeze acme/api").await;
        t.run("freeze acme/api").await;
        t.settle().await;
        assert!(
            t.ruleset("acme/api").is_some(),
            "round {round}: the later freeze wins"
        );
        t.run("unfreeze acme/api").await;
        t.settle().await;
    }
}

async fn declare_freezes_lists_recent_changes_and_resolve_lifts(backend: Backend) {
    let t = github_app(
        backend,
        "\"acme/api\", \"acme/web\"",
        "recent_changes_hours = 6",
    )
    .await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_repo("acme/web", "main");
    let now = chrono::Utc::now();
    t.gh.add_merged_pull(
        "acme/api",
        41,
        "Bump connection pool to 200",
        "alice",
        "main",
        now - chrono::Duration::minutes(35),
    );
    t.gh.add_merged_pull(
        "acme/web",
        7,
        "New checkout button",
        "bob",
        "main",
        now - chrono::Duration::hours(2),
    );
    t.gh.add_merged_pull(
        "acme/web",
        6,
        "Old change",
        "carol",
        "main",
        now - chrono::Duration::hours(30),
    );
    t.run("declare sev3 Minor thing").await;
    t.settle().await;
    assert!(
        t.ruleset("acme/api").is_none(),
        "SEV3 is not in auto_freeze"
    );

    t.run("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    assert!(t.ruleset("acme/api").is_some() && t.ruleset("acme/web").is_some());
    let (inc, timeline) = incident_timeline(&t.app.app.store, 2).await;
    let changes: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::RecentChange)
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes[0]
            .text
            .starts_with("acme/web#7 “New checkout button” merged by bob"),
        "{}",
        changes[0].text
    );
    assert_eq!(
        changes[1].offset_from(inc.declared_at),
        "T-35m",
        "at its merge time, before the declaration"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == EntryKind::FreezeRequested)
    );

    t.run("resolve INC-2 Rolled back").await;
    t.settle().await;
    assert!(
        t.ruleset("acme/api").is_none() && t.ruleset("acme/web").is_none(),
        "auto_unfreeze_on = resolved"
    );
    let status: serde_json::Value = t
        .app
        .get("/api/freeze")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        status["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["actual"] == "absent" && t["desired"] == "unfrozen"),
        "{status}"
    );
    assert!(status["targets"][0]["verified_at"].as_str().is_some());
}

async fn exemptions_and_drills(backend: Backend) {
    let t = github_app(backend, "\"acme/api\"", "").await;
    t.gh.add_repo("acme/api", "main");
    let (hotfix, other) = ("1".repeat(40), "2".repeat(40));
    t.gh.add_pull("acme/api", 5, &hotfix, "main");
    t.gh.add_pull("acme/api", 6, &other, "main");
    t.run("declare sev1 Database failover --drill").await;
    t.settle().await;
    assert_eq!(
        t.ruleset("acme/api").unwrap()["enforcement"],
        "evaluate",
        "drills do not block"
    );
    // A drill's status blocks nothing, even where it is a required check: `success`,
    // saying DRILL and what a real freeze would do.
    assert_eq!(
        t.gh.latest_status("acme/api", &hotfix, STATUS_CONTEXT)
            .as_deref(),
        Some("success")
    );
    let drill =
        t.gh.statuses("acme/api", &other)
            .into_iter()
            .last()
            .unwrap();
    assert!(
        drill["description"]
            .as_str()
            .unwrap()
            .starts_with("DRILL (nothing blocked)"),
        "{drill}"
    );

    t.run("freeze exempt acme/api#5 --reason hotfix for the failover")
        .await;
    t.settle().await;
    assert_eq!(
        t.gh.latest_status("acme/api", &hotfix, STATUS_CONTEXT)
            .as_deref(),
        Some("success")
    );
    assert_eq!(
        t.gh.latest_status("acme/api", &other, STATUS_CONTEXT)
            .as_deref(),
        Some("success")
    );
    let last =
        t.gh.statuses("acme/api", &hotfix)
            .into_iter()
            .last()
            .unwrap();
    assert!(
        last["description"]
            .as_str()
            .unwrap()
            .contains("Exempted from the merge freeze by ops"),
        "{last}"
    );
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let entry = timeline
        .iter()
        .find(|e| e.kind == EntryKind::FreezeExempted)
        .expect("exemption on the timeline");
    assert_eq!(
        entry.text,
        "acme/api#5 exempted from the merge freeze by ops: hotfix for the failover"
    );
    // A later reconcile keeps the exemption.
    t.app.app.queue_reconcile().await.unwrap();
    t.settle().await;
    assert_eq!(
        t.gh.latest_status("acme/api", &hotfix, STATUS_CONTEXT)
            .as_deref(),
        Some("success")
    );
}

#[tokio::test]
async fn github_app_auth_signs_a_jwt_and_refreshes_the_installation_token() {
    use firebreak::github::GitHubSecrets;
    use firebreak::github::client::GitHubClient;
    use firebreak::github::config::{GitHubAuth, Pacing};

    let gh = FakeGitHub::start(Limits::default()).await;
    gh.add_repo("acme/api", "main");
    // Installation tokens live 5m01s, so with the 5-minute refresh margin the cached one
    // goes stale after about a second.
    gh.enable_app_auth(
        "12345",
        include_str!("fixtures/github-app-test-key.pub.pem"),
        Duration::from_secs(301),
    );
    let secrets = GitHubSecrets {
        api_url: gh.url.clone(),
        auth: GitHubAuth::App {
            app_id: "12345".into(),
            private_key: include_str!("fixtures/github-app-test-key.pem")
                .to_string()
                .into(),
            installation_id: None,
        },
        webhook_secrets: vec![],
    };
    let client = GitHubClient::new(&secrets, &Pacing::default(), Duration::from_secs(5)).unwrap();
    assert_eq!(
        client.repo("acme/api").await.unwrap().default_branch,
        "main"
    );
    client.repo("acme/api").await.unwrap();
    assert_eq!(
        gh.issued_tokens().len(),
        1,
        "the installation token is cached"
    );
    let jwt_calls: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/app/"))
        .collect();
    assert_eq!(
        jwt_calls.len(),
        2,
        "installation discovered, then a token: {jwt_calls:?}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.repo("acme/api").await.unwrap();
    assert_eq!(gh.issued_tokens().len(), 2, "refreshed before it expired");
    let last = gh.requests().into_iter().last().unwrap();
    assert_eq!(
        last.auth.as_deref(),
        Some(format!("Bearer {}", gh.issued_tokens()[1]).as_str())
    );

    let wrong = GitHubSecrets {
        auth: GitHubAuth::App {
            app_id: "999".into(),
            private_key: include_str!("fixtures/github-app-test-key.pem")
                .to_string()
                .into(),
            installation_id: Some(4242),
        },
        ..secrets
    };
    let client = GitHubClient::new(&wrong, &Pacing::default(), Duration::from_secs(5)).unwrap();
    let err = client.repo("acme/api").await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(401),
        "a JWT for another app is refused: {err}"
    );
}

async fn slack_shows_freeze_progress_edited_in_place(backend: Backend) {
    use common::fake_slack::FakeSlack;
    let gh = FakeGitHub::start(Limits {
        minute: MINUTE,
        ..Limits::default()
    })
    .await;
    let slack = FakeSlack::start().await;
    for r in 0..8 {
        gh.add_repo(&format!("acme/svc-{r}"), "main");
    }
    gh.add_merged_pull(
        "acme/svc-3",
        77,
        "Raise timeouts",
        "dana",
        "main",
        chrono::Utc::now() - chrono::Duration::minutes(20),
    );
    let mut integrations = integrations(&gh.url);
    integrations.slack = common::slack::integrations(&slack.url).slack;
    let config = test_config(&format!(
        "{}{}",
        github_config("\"acme/*\"", "100ms", ""),
        common::slack::SLACK_CONFIG
    ));
    let app = spawn_app_with(backend, config, integrations, None).await;
    let send = common::slack::SlackSender::new(&app);
    let reply = send
        .command("declare sev1 Everything is slow", "C_ORIGIN", "U0ALICE")
        .await;
    assert_eq!(reply["response_type"], "in_channel");
    let t = GitHubApp { app, gh };
    t.settle().await;
    assert!((0..8).all(|r| t.ruleset(&format!("acme/svc-{r}")).is_some()));
    let channel = slack
        .channels()
        .into_iter()
        .find(|c| c.1.starts_with("inc-1-"))
        .unwrap()
        .0;
    let progress: Vec<_> = slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == channel && m.text.contains("Merge freeze"))
        .collect();
    assert_eq!(
        progress.len(),
        1,
        "one progress message, edited in place: {progress:?}"
    );
    assert!(progress[0].edits >= 2, "edited as repos complete");
    assert!(
        progress[0].text.contains("ruleset active on 8/8 targets"),
        "{}",
        progress[0].text
    );
    let changes = slack
        .messages()
        .into_iter()
        .find(|m| m.channel == channel && m.text.contains("Merged in the 24h"))
        .expect("recent changes posted");
    assert!(
        changes.text.contains("acme/svc-3#77 Raise timeouts"),
        "{}",
        changes.text
    );
}

async fn postmortem_is_published_as_one_pull_request(backend: Backend) {
    let gh = FakeGitHub::start(Limits {
        minute: MINUTE,
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/postmortems", "main");
    let config = test_config(&format!(
        "{}[postmortem.github]\nrepo = \"acme/postmortems\"\n",
        github_config("\"acme/api\"", "100ms", "")
    ));
    let app = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    let t = GitHubApp { app, gh };
    t.run("declare sev2 Search index stale").await;
    t.run("update INC-1 Reindexing").await;
    t.run("resolve INC-1 Reindexed").await;
    t.settle().await;
    let today = chrono::Utc::now().format("%Y-%m-%d");
    let path = format!("postmortems/{today}-search-index-stale.md");
    let branch = "firebreak/postmortem-inc-1";
    let first =
        t.gh.file("acme/postmortems", branch, &path)
            .expect("the post-mortem is committed on its branch");
    assert!(first.contains("\n# INC-1: Search index stale\n"), "{first}");
    assert_eq!(t.gh.open_pulls("acme/postmortems").len(), 1);

    t.run("postmortem set INC-1 root-cause The nightly job skipped a shard")
        .await;
    t.run("postmortem publish INC-1").await;
    t.settle().await;
    let pulls = t.gh.open_pulls("acme/postmortems");
    assert_eq!(
        pulls.len(),
        1,
        "re-publishing reuses the pull request: {pulls:?}"
    );
    assert_eq!(pulls[0].1, branch);
    assert_eq!(pulls[0].2, "Post-mortem: INC-1 Search index stale");
    let second = t.gh.file("acme/postmortems", branch, &path).unwrap();
    assert!(
        second.contains("The nightly job skipped a shard"),
        "the same file is updated"
    );
    let inc = t
        .app
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let notes: Vec<String> = t
        .app
        .app
        .store
        .timeline(&inc.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .filter(|t| t.starts_with("Post-mortem "))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("Post-mortem opened as acme/postmortems#")
            && notes[1].starts_with("Post-mortem updated as acme/postmortems#"),
        "{notes:?}"
    );
}
