//! Issue 10, the black-box attack on the merge freeze: a rule's parameters changed by hand
//! are repaired (GitHub echoing its defaults is not drift), a ruleset renamed by hand is
//! still firebreak's (renamed back, and deleted when the freeze lifts), and an org freeze
//! with org rulesets writes statuses on every repository of the org. On SQLite and Postgres.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{github_config, integrations};
use common::*;
use firebreak::github::freeze::{RULESET_NAME, STATUS_CONTEXT};
use serde_json::{Value, json};

on_both!(
    a_rule_s_parameters_changed_by_hand_are_repaired_and_defaults_are_not_drift,
    a_ruleset_renamed_by_hand_is_renamed_back_not_duplicated,
    a_ruleset_renamed_by_hand_is_deleted_when_the_freeze_lifts,
    an_org_ruleset_freeze_writes_statuses_on_every_repository_of_the_org,
);

struct T {
    app: TestApp,
    gh: FakeGitHub,
}

async fn start(backend: Backend, repos: &str, extra: &str) -> T {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.add_repo("acme/web", "main");
    let config = test_config(&github_config(repos, "100ms", extra));
    let app = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    T { app, gh }
}

impl T {
    async fn run(&self, line: &str) {
        common::github::run_as_ops(&self.app, line).await;
    }

    async fn settle(&self) {
        common::github::settle_without_failures(&self.app).await;
    }

    /// A periodic reconcile of its own (the app's are one per interval).
    async fn reconcile_now(&self, n: i64) {
        let generation = self.app.app.store.freeze_generation().await.unwrap();
        let effect = firebreak::github::effect::periodic_reconcile(generation, -n);
        let id = self.app.app.service.enqueue(&effect).await.unwrap();
        let store = self.app.app.store.clone();
        let done = eventually(30, || {
            let store = store.clone();
            async move {
                let effect = store.effect(id).await.unwrap();
                effect.is_some_and(|e| e.state == firebreak::effects::EffectState::Done)
            }
        })
        .await;
        assert!(done, "reconcile {n} done");
        self.settle().await;
    }

    fn api_rulesets(&self) -> Vec<Value> {
        self.gh.rulesets("acme/api")
    }

    fn ruleset_writes(&self) -> usize {
        self.gh
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && r.path.contains("/rulesets"))
            .count()
    }

    async fn timeline_texts(&self) -> Vec<String> {
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        timeline.into_iter().map(|e| e.text).collect()
    }
}

async fn a_rule_s_parameters_changed_by_hand_are_repaired_and_defaults_are_not_drift(
    backend: Backend,
) {
    let t = start(backend, "\"acme/api\"", "branches = [\"main\"]").await;
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let wanted = t.api_rulesets()[0]["rules"].clone();
    let edits = [
        (
            "update (update_allows_fetch_and_merge: true)",
            json!([{ "type": "update", "parameters": { "update_allows_fetch_and_merge": true } }]),
        ),
        (
            "deletion",
            json!([{ "type": "update" }, { "type": "deletion" }]),
        ),
    ];
    for (n, (found, rules)) in edits.into_iter().enumerate() {
        assert!(t.gh.edit_ruleset("acme/api", RULESET_NAME, |v| v["rules"] = rules));
        t.reconcile_now(n as i64 + 1).await;
        assert_eq!(t.api_rulesets()[0]["rules"], wanted, "{found}: repaired");
        let texts = t.timeline_texts().await;
        assert!(
            texts
                .iter()
                .any(|x| x.contains("was changed by hand and was repaired")
                    && x.contains("rules: wanted")
                    && x.contains(found)),
            "{found} recorded: {texts:#?}"
        );
    }
    // GitHub answers with the defaults spelled out: the same ruleset, nothing to write.
    assert!(t.gh.edit_ruleset("acme/api", RULESET_NAME, |v| {
        v["rules"] =
            json!([{ "type": "update", "parameters": { "update_allows_fetch_and_merge": false } }])
    }));
    let before = t.ruleset_writes();
    t.reconcile_now(10).await;
    t.reconcile_now(11).await;
    assert_eq!(t.ruleset_writes(), before, "defaults echoed are not drift");
}

async fn a_ruleset_renamed_by_hand_is_renamed_back_not_duplicated(backend: Backend) {
    let t = start(backend, "\"acme/api\"", "branches = [\"main\"]").await;
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let id = t.api_rulesets()[0]["id"].clone();
    assert!(t.gh.edit_ruleset("acme/api", RULESET_NAME, |v| {
        v["name"] = json!("freeze-renamed")
    }));
    t.reconcile_now(1).await;
    let now = t.api_rulesets();
    assert_eq!(now.len(), 1, "one ruleset: {now:#?}");
    assert_eq!(
        (&now[0]["id"], &now[0]["name"]),
        (&id, &json!(RULESET_NAME))
    );
    let texts = t.timeline_texts().await;
    assert!(
        texts
            .iter()
            .any(|x| x.contains("was changed by hand and was repaired")
                && x.contains("name: wanted")
                && x.contains("freeze-renamed")),
        "recorded as drift: {texts:#?}"
    );
}

async fn a_ruleset_renamed_by_hand_is_deleted_when_the_freeze_lifts(backend: Backend) {
    let t = start(backend, "\"acme/api\"", "branches = [\"main\"]").await;
    let sha = "a".repeat(40);
    t.gh.add_pull("acme/api", 5, &sha, "main");
    t.run("freeze acme/api").await;
    t.settle().await;
    let id = t.api_rulesets()[0]["id"].clone();
    assert!(t.gh.edit_ruleset("acme/api", RULESET_NAME, |v| {
        v["name"] = json!("freeze-renamed")
    }));
    t.run("unfreeze --all").await;
    t.settle().await;
    let left = t.api_rulesets();
    assert!(
        left.iter().all(|r| r["id"] != id),
        "the renamed ruleset is lifted too: {left:#?}"
    );
    assert_eq!(
        t.gh.try_merge("ghp_someone", "acme/api", 5, &sha).await,
        200,
        "merges go through"
    );
}

async fn an_org_ruleset_freeze_writes_statuses_on_every_repository_of_the_org(backend: Backend) {
    let t = start(
        backend,
        "\"acme/*\", \"acme/api\"",
        "branches = [\"main\"]\norg_rulesets = true",
    )
    .await;
    let (api, web) = ("a".repeat(40), "b".repeat(40));
    t.gh.add_pull("acme/api", 5, &api, "main");
    t.gh.add_pull("acme/web", 6, &web, "main");
    t.run("freeze acme/*").await;
    t.settle().await;
    let status = |repo: &str, sha: &str| t.gh.latest_status(repo, sha, STATUS_CONTEXT);
    assert_eq!(status("acme/api", &api).as_deref(), Some("failure"));
    assert_eq!(status("acme/web", &web).as_deref(), Some("failure"));
    let org = t.gh.org_rulesets("acme");
    assert_eq!(org.len(), 1, "one org ruleset: {org:#?}");
    assert!(t.api_rulesets().is_empty() && t.gh.rulesets("acme/web").is_empty());
    t.run("unfreeze acme/*").await;
    t.settle().await;
    assert_eq!(status("acme/api", &api).as_deref(), Some("success"));
    assert_eq!(status("acme/web", &web).as_deref(), Some("success"));
    assert!(t.gh.org_rulesets("acme").is_empty());
}
