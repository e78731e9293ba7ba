//! Issue 10's exemption defects against a fake GitHub that enforces rulesets on merges:
//! exempting again after a push or a check gone green merges again (once), a double submit
//! while a merge waits is one effect, an exemption does not carry into a new head or a new
//! freeze, waiting for checks does not open GitHub's circuit breaker, an unfrozen repository
//! is refused at the door, and a pull request that does not exist ends with a sentence. On
//! SQLite and Postgres.

mod common;

use std::time::{Duration, Instant};

use common::fake_github::{FakeGitHub, Limits};
use common::github::{deliver, github_config, integrations, signed};
use common::*;
use firebreak::config::Config;
use firebreak::effects::EffectState;
use firebreak::github::effect::{EXEMPT, MERGE_EXEMPT};
use firebreak::github::freeze::STATUS_CONTEXT;
use firebreak::incident::{Actor, Source};
use firebreak::store::NewAttempt;
use serde_json::json;

on_both!(
    exempting_again_after_a_push_or_a_green_check_merges_that_head_once,
    a_double_submit_while_the_merge_waits_is_one_effect,
    an_exemption_does_not_carry_into_a_new_head_or_a_new_freeze,
    waiting_for_checks_longer_than_the_breaker_threshold_does_not_open_it,
    exempting_a_repository_that_is_not_frozen_is_refused_and_stores_nothing,
    a_pull_request_that_does_not_exist_ends_the_exemption_with_a_sentence,
    a_merge_waiting_through_a_new_freeze_is_not_made,
);

const FIREBREAK_TOKEN: &str = "ghp_test";
const MERGE_ACTOR: &str = "merge_actor = { actor_id = 5, actor_type = \"RepositoryRole\" }";
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/github-webhooks"
);

struct T {
    app: TestApp,
    gh: FakeGitHub,
}

/// An app freezing `acme/api`, merging as the configured bypass actor; `breaker` replaces the
/// test default (50 failures, never reached) when given as `(threshold, cooldown)`.
async fn start(backend: Backend, breaker: Option<(u32, &str)>) -> T {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.set_token_actor(FIREBREAK_TOKEN, 5, "RepositoryRole");
    let github = github_config("\"acme/api\"", "100ms", MERGE_ACTOR);
    let config = match breaker {
        None => test_config(&github),
        Some((threshold, cooldown)) => Config::parse(&format!(
            "[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\n\
             lease = \"5s\"\nattempt_timeout = \"4s\"\nbreaker_threshold = {threshold}\n\
             breaker_cooldown = \"{cooldown}\"\ncli_wait = \"5s\"\n{github}"
        ))
        .expect("config parses"),
    };
    let app = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    T { app, gh }
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

impl T {
    async fn try_run(&self, line: &str) -> Result<firebreak::incident::service::Outcome, String> {
        let cmd = firebreak::incident::command::parse_line(line, Default::default()).unwrap();
        let actor = Actor::new(Source::Cli, "ops", "ops");
        self.app
            .app
            .service
            .apply(cmd, &actor)
            .await
            .map_err(|e| e.user_message())
    }

    async fn run(&self, line: &str) -> firebreak::incident::service::Outcome {
        self.try_run(line)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    async fn settle(&self) {
        common::github::settle_without_failures(&self.app).await;
    }

    async fn effects(&self, kind: &str) -> Vec<firebreak::effects::Effect> {
        let all = self.app.app.store.list_effects(false, 200).await.unwrap();
        all.into_iter().filter(|e| e.kind == kind).collect()
    }

    /// Successful merge calls for pull request `n`, with the SHA each asked for.
    fn merges(&self, n: u64) -> Vec<String> {
        let path = format!("/repos/acme/api/pulls/{n}/merge");
        self.gh
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path == path && r.status == 200)
            .map(|r| r.body["sha"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn status(&self, sha: &str) -> Option<String> {
        self.gh.latest_status("acme/api", sha, STATUS_CONTEXT)
    }

    async fn texts(&self) -> Vec<String> {
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        timeline.into_iter().map(|e| e.text).collect()
    }

    /// Waits until the merge of `n` has reported "waiting for checks" `times` times.
    async fn merge_waits(&self, sha: &str, times: usize) -> bool {
        let path = format!("/repos/acme/api/commits/{sha}/check-runs");
        eventually(20, || {
            let n = self
                .gh
                .requests()
                .iter()
                .filter(|r| r.method == "GET" && r.path == path)
                .count();
            async move { n >= times }
        })
        .await
    }

    /// A `pull_request` `synchronize` delivery announcing head `sha` for pull request `n`.
    async fn deliver_push(&self, n: u64, sha: &str) {
        let text = std::fs::read_to_string(format!("{FIXTURES}/pull_request.synchronize.22.json"))
            .unwrap();
        let mut p: serde_json::Value = serde_json::from_str(&text).unwrap();
        for path in [
            "/repository",
            "/pull_request/base/repo",
            "/pull_request/head/repo",
        ] {
            let r = p.pointer_mut(path).unwrap();
            r["full_name"] = json!("acme/api");
            r["name"] = json!("api");
            r["owner"]["login"] = json!("acme");
            r["default_branch"] = json!("main");
        }
        p["number"] = json!(n);
        p["pull_request"]["number"] = json!(n);
        p["pull_request"]["base"]["ref"] = json!("main");
        p["pull_request"]["head"]["sha"] = json!(sha);
        let body = serde_json::to_vec(&p).unwrap();
        let resp = deliver(&self.app, "pull_request", &body, signed(&body)).await;
        assert_eq!(resp.status(), 200);
    }
}

async fn exempting_again_after_a_push_or_a_green_check_merges_that_head_once(backend: Backend) {
    let t = start(backend, None).await;
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    t.gh.add_pull("acme/api", 5, &a, "main");
    t.gh.add_pull("acme/api", 6, &c, "main");
    t.gh.add_check_run("acme/api", &c, "ci", "completed", Some("failure"));
    t.run("declare sev1 Payments down").await;
    t.settle().await;

    // #5: exempted, then pushed to before its merge: not merged; exempted again: merged at
    // the new head.
    t.gh.add_check_run("acme/api", &a, "ci", "in_progress", None);
    t.run("freeze exempt acme/api#5 --reason hotfix").await;
    assert!(t.merge_waits(&a, 2).await, "the merge waits for ci");
    t.gh.push("acme/api", 5, &b);
    t.settle().await;
    assert_eq!(t.gh.merged("acme/api", 5), None);
    t.run("freeze exempt acme/api#5 --reason hotfix, pushed again")
        .await;
    t.settle().await;
    assert_eq!(
        t.gh.merged("acme/api", 5),
        Some((5, "RepositoryRole".into(), b.clone()))
    );
    assert_eq!(t.merges(5), vec![b.clone()], "merged once, at the new head");

    // #6: refused for a failed check; the same head, once green, merges on a new exemption.
    t.run("freeze exempt acme/api#6 --reason second fix").await;
    t.settle().await;
    assert_eq!(t.gh.merged("acme/api", 6), None);
    assert!(
        t.texts()
            .await
            .iter()
            .any(|x| x.starts_with("acme/api#6 was exempted but not merged: checks are not green")),
        "{:#?}",
        t.texts().await
    );
    t.gh.add_check_run("acme/api", &c, "ci", "completed", Some("success"));
    let again = t
        .run("freeze exempt acme/api#6 --reason ci is green now")
        .await;
    assert!(
        again.reply.text.contains("exempted again"),
        "{}",
        again.reply.text
    );
    t.settle().await;
    assert_eq!(t.merges(6), vec![c.clone()], "merged once, at its head");

    // Exempting a merged pull request again merges nothing more.
    t.run("freeze exempt acme/api#6").await;
    t.settle().await;
    assert_eq!(t.merges(6).len(), 1);
    assert_eq!(t.merges(5).len(), 1);
}

async fn a_double_submit_while_the_merge_waits_is_one_effect(backend: Backend) {
    let t = start(backend, None).await;
    let a = sha('a');
    t.gh.add_pull("acme/api", 5, &a, "main");
    t.gh.add_check_run("acme/api", &a, "ci", "in_progress", None);
    t.run("declare sev1 Payments down").await;
    t.settle().await;

    let first = t.run("freeze exempt acme/api#5 --reason hotfix").await;
    assert!(t.merge_waits(&a, 2).await, "the merge waits for ci");
    let again = t.run("freeze exempt acme/api#5 --reason hotfix").await;
    assert_eq!(
        first.effects, again.effects,
        "a double submit is one effect"
    );
    assert!(
        again.reply.text.contains("already exempted"),
        "{}",
        again.reply.text
    );
    assert_eq!(t.effects(EXEMPT).await.len(), 1);
    assert_eq!(t.effects(MERGE_EXEMPT).await.len(), 1);
    t.gh.add_check_run("acme/api", &a, "ci", "completed", Some("success"));
    t.settle().await;
    assert_eq!(t.merges(5), vec![a]);
    let exempted = t
        .texts()
        .await
        .into_iter()
        .filter(|x| x.starts_with("acme/api#5 exempted from the merge freeze"))
        .count();
    assert_eq!(exempted, 1, "one exemption on the timeline");
}

async fn an_exemption_does_not_carry_into_a_new_head_or_a_new_freeze(backend: Backend) {
    let t = start(backend, None).await;
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    // Failing checks: the exemptions stay unmerged, their heads exempted.
    t.gh.add_pull("acme/api", 5, &a, "main");
    t.gh.add_pull("acme/api", 6, &c, "main");
    for head in [&a, &b, &c] {
        t.gh.add_check_run("acme/api", head, "ci", "completed", Some("failure"));
    }
    t.run("freeze --reason release week").await;
    t.settle().await;
    t.run("freeze exempt acme/api#5").await;
    t.run("freeze exempt acme/api#6").await;
    t.settle().await;
    assert_eq!(t.status(&a).as_deref(), Some("success"));
    assert_eq!(t.status(&c).as_deref(), Some("success"));

    // A push: the new head is frozen again, by webhook and by reconcile alike.
    t.gh.push("acme/api", 5, &b);
    t.deliver_push(5, &b).await;
    t.settle().await;
    assert_eq!(t.status(&b).as_deref(), Some("failure"), "webhook path");
    t.app.app.queue_reconcile().await.unwrap();
    t.settle().await;
    assert_eq!(t.status(&b).as_deref(), Some("failure"), "reconcile path");
    assert_eq!(
        t.status(&c).as_deref(),
        Some("success"),
        "#6 is still exempt"
    );

    // The freeze ends and a new one starts: the old exemption no longer applies.
    t.run("unfreeze").await;
    t.settle().await;
    t.run("freeze --reason another week").await;
    t.settle().await;
    assert_eq!(t.status(&c).as_deref(), Some("failure"), "a new freeze");
    assert_eq!(t.status(&b).as_deref(), Some("failure"));
    // Exempting again in the new freeze applies to it.
    t.run("freeze exempt acme/api#6").await;
    t.settle().await;
    assert_eq!(t.status(&c).as_deref(), Some("success"));
    t.app.app.queue_reconcile().await.unwrap();
    t.settle().await;
    assert_eq!(t.status(&c).as_deref(), Some("success"));
}

async fn waiting_for_checks_longer_than_the_breaker_threshold_does_not_open_it(backend: Backend) {
    let t = start(backend, Some((3, "30s"))).await;
    let (a, c) = (sha('a'), sha('c'));
    t.gh.add_pull("acme/api", 5, &a, "main");
    t.gh.add_pull("acme/api", 6, &c, "main");
    t.gh.add_check_run("acme/api", &a, "ci", "in_progress", None);
    t.run("declare sev1 Payments down").await;
    t.settle().await;

    t.run("freeze exempt acme/api#5 --reason hotfix").await;
    assert!(
        t.merge_waits(&a, 8).await,
        "the merge looked at the pending checks more often than the breaker's threshold"
    );
    // Other GitHub effects still run at once, not after the 30 s cooldown.
    let started = Instant::now();
    t.run("freeze exempt acme/api#6 --reason other fix").await;
    let merged = eventually(10, || {
        let done = t.gh.merged("acme/api", 6).is_some();
        async move { done }
    })
    .await;
    assert!(merged, "#6 merged while #5 waits");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let waiting = t.effects(MERGE_EXEMPT).await;
    let five = waiting
        .iter()
        .find(|e| e.idempotency_key.contains("#5"))
        .unwrap();
    // Waiting between looks (or caught in the middle of one), never failed or given up.
    assert!(
        matches!(five.state, EffectState::Pending | EffectState::Running),
        "#5 still waits, it did not fail: {:?}",
        five.state
    );
    // A claim counts the attempt in flight; a wait hands it back when it ends.
    let in_flight = u32::from(five.state == EffectState::Running);
    assert_eq!(five.attempts, in_flight, "waiting spends no attempt");
    t.gh.add_check_run("acme/api", &a, "ci", "completed", Some("success"));
    t.settle().await;
    assert_eq!(t.merges(5), vec![a]);
}

async fn exempting_a_repository_that_is_not_frozen_is_refused_and_stores_nothing(backend: Backend) {
    let t = start(backend, None).await;
    t.gh.add_repo("acme/web", "main");
    t.gh.add_pull("acme/api", 5, &sha('a'), "main");
    t.gh.add_pull("acme/web", 1, &sha('b'), "main");
    let err = t.try_run("freeze exempt acme/api#5").await.unwrap_err();
    assert_eq!(
        err,
        "acme/api is not frozen now, so there is nothing to exempt acme/api#5 from: anyone may merge it."
    );
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let err = t
        .try_run("freeze exempt acme/web#1 --reason hotfix")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "acme/web is not frozen and not one of the repositories firebreak freezes ([github] repos), so acme/web#1 cannot be exempted."
    );
    let store = &t.app.app.store;
    assert!(store.exemptions("acme/web").await.unwrap().is_empty());
    assert!(store.exemptions("acme/api").await.unwrap().is_empty());
    assert!(t.effects(EXEMPT).await.is_empty(), "nothing queued");
    // Any case of a frozen repository's name is that repository.
    t.run("freeze exempt Acme/API#5").await;
    t.settle().await;
    assert_eq!(t.merges(5).len(), 1);
}

async fn a_pull_request_that_does_not_exist_ends_the_exemption_with_a_sentence(backend: Backend) {
    let t = start(backend, None).await;
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let first = t.run("freeze exempt acme/api#99 --reason hotfix").await;
    assert!(queue_idle(&t.app.app.store, 30).await);
    let failed = t.app.app.store.list_effects(true, 20).await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("PR #99 does not exist in acme/api")
    );
    let texts = t.texts().await;
    assert!(
        texts
            .iter()
            .any(|x| x.starts_with("github.exempt failed: PR #99 does not exist in acme/api")),
        "{texts:#?}"
    );
    let exemption = t.app.app.store.exemptions("acme/api").await.unwrap();
    assert_eq!(exemption[0].state, "failed");
    assert_eq!(
        exemption[0].outcome.as_deref(),
        Some("PR #99 does not exist in acme/api")
    );
    // Ended, not pending forever: asking again is a new attempt, one for two racing asks.
    let line = "freeze exempt acme/api#99 --reason hotfix";
    let (again, racing) = tokio::join!(t.run(line), t.run(line));
    assert_ne!(first.effects, again.effects);
    assert_eq!(
        again.effects, racing.effects,
        "two racing asks start one attempt"
    );
    assert_eq!(t.effects(EXEMPT).await.len(), 2);
    let started = t.texts().await;
    let started = started
        .iter()
        .filter(|x| x.starts_with("acme/api#99 exempted again"));
    assert_eq!(started.count(), 1, "one new attempt on the timeline");
    assert!(queue_idle(&t.app.app.store, 30).await);
    let exemption = t.app.app.store.exemptions("acme/api").await.unwrap();
    assert_eq!(
        (exemption[0].attempt, exemption[0].state.as_str()),
        (2, "failed")
    );
    // The compare-and-set two replicas race on: attempt 2 exists, so starting it again
    // (from a stale read of attempt 1) starts nothing.
    let mut tx = t.app.app.store.begin().await.unwrap();
    let stale = NewAttempt {
        repo: "acme/api",
        pr_number: 99,
        allowed_by: "cli:ops",
        reason: None,
        scope: "acme/api",
        frozen_since: Some(1),
        effect_key: "stale",
        at: chrono::Utc::now(),
    };
    assert!(!tx.start_exemption(&stale, 2).await.unwrap());
    assert!(tx.start_exemption(&stale, 3).await.unwrap());
    tx.rollback().await.unwrap();
}

/// Check at the moment of use: the freeze ends and another begins while the exempted merge
/// waits for its checks; when they go green, the old exemption does not merge through the
/// new freeze, and the timeline says why.
async fn a_merge_waiting_through_a_new_freeze_is_not_made(backend: Backend) {
    let t = start(backend, None).await;
    let a = sha('a');
    t.gh.add_pull("acme/api", 5, &a, "main");
    t.gh.add_check_run("acme/api", &a, "ci", "in_progress", None);
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    t.run("freeze exempt acme/api#5 --reason hotfix").await;
    assert!(t.merge_waits(&a, 2).await, "the merge waits for ci");

    t.run("unfreeze INC-1").await;
    t.run("freeze acme/api --reason release week").await;
    t.gh.add_check_run("acme/api", &a, "ci", "completed", Some("success"));
    t.settle().await;
    assert!(
        t.merges(5).is_empty(),
        "merged through a freeze it was not exempted from"
    );
    let said = t.texts().await;
    assert!(
        said.iter()
            .any(|x| x.contains("the freeze it was exempted from has ended")),
        "{said:#?}"
    );
}
