//! Issue 10 against a fake GitHub that enforces rulesets on merges as GitHub does: a freeze
//! blocks merges, an exemption merges exactly that pull request at that head as a bypass
//! actor, and a push after the exemption is not merged; every field of the ruleset changed
//! by hand is repaired and recorded; a drill without `evaluate` enforces nothing. On SQLite
//! and Postgres.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{github_config, integrations};
use common::*;
use firebreak::github::freeze::{RULESET_NAME, STATUS_CONTEXT};
use serde_json::json;

on_both!(
    a_freeze_blocks_merges_and_an_exemption_merges_that_head_only,
    each_field_of_the_ruleset_changed_by_hand_is_repaired_and_recorded,
    a_drill_without_evaluate_enforces_nothing_and_says_so,
    lifting_a_real_freeze_under_a_drill_without_evaluate_unblocks_merges,
);

/// The token firebreak uses in tests, and the bypass actor it is configured to merge as.
const FIREBREAK_TOKEN: &str = "ghp_test";
const MERGE_ACTOR: &str = "merge_actor = { actor_id = 5, actor_type = \"RepositoryRole\" }";

/// A change made to the ruleset by hand.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

struct T {
    app: TestApp,
    gh: FakeGitHub,
}

async fn start(backend: Backend, extra: &str) -> T {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.set_token_actor(FIREBREAK_TOKEN, 5, "RepositoryRole");
    let config = test_config(&github_config("\"acme/api\"", "100ms", extra));
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

    fn ruleset(&self) -> Option<serde_json::Value> {
        self.gh
            .rulesets("acme/api")
            .into_iter()
            .find(|r| r["name"] == RULESET_NAME)
    }

    /// A periodic reconcile of its own (the app's are one per interval).
    async fn reconcile_now(&self, n: i64) {
        let generation = self.app.app.store.freeze_generation().await.unwrap();
        let effect = firebreak::github::effect::periodic_reconcile(generation, -n);
        self.app.app.service.enqueue(&effect).await.unwrap();
    }

    async fn timeline_texts(&self) -> Vec<String> {
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        timeline.into_iter().map(|e| e.text).collect()
    }
}

async fn a_freeze_blocks_merges_and_an_exemption_merges_that_head_only(backend: Backend) {
    let t = start(backend, MERGE_ACTOR).await;
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    t.gh.add_pull("acme/api", 5, &a, "main");
    t.gh.add_pull("acme/api", 6, &c, "main");
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let ruleset = t.ruleset().expect("ruleset in place");
    assert_eq!(
        ruleset["bypass_actors"],
        json!([{ "actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always" }]),
        "firebreak's own merge actor may bypass its ruleset"
    );
    assert_eq!(
        t.gh.try_merge("ghp_someone", "acme/api", 6, &c).await,
        405,
        "the freeze blocks a merge by anyone else"
    );

    // An exemption of #6 merges exactly #6, at its head, as the bypass actor.
    t.run("freeze exempt acme/api#6 --reason hotfix for the failover")
        .await;
    t.settle().await;
    assert_eq!(
        t.gh.merged("acme/api", 6),
        Some((5, "RepositoryRole".into(), c.clone()))
    );
    assert_eq!(t.gh.merged("acme/api", 5), None, "only the exempted PR");
    assert_eq!(
        t.gh.latest_status("acme/api", &c, STATUS_CONTEXT)
            .as_deref(),
        Some("success")
    );
    let texts = t.timeline_texts().await;
    assert!(
        texts
            .iter()
            .filter(|x| x.starts_with("acme/api#6 merged through the freeze at ccccccc"))
            .count()
            == 1,
        "{texts:#?}"
    );
    let merges =
        t.gh.requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with("/merge") && r.status == 200)
            .collect::<Vec<_>>();
    assert_eq!(merges.len(), 1);
    assert_eq!(
        merges[0].body["sha"],
        c.as_str(),
        "merged with the expected head"
    );

    // #5 waits for its checks; a push after the exemption is not merged.
    t.gh.add_check_run("acme/api", &a, "ci", "in_progress", None);
    t.run("freeze exempt acme/api#5 --reason second hotfix")
        .await;
    let store = t.app.app.store.clone();
    let waited = eventually(30, || {
        let store = store.clone();
        async move {
            store
                .list_effects(false, 50)
                .await
                .unwrap()
                .iter()
                .any(|e| {
                    e.kind == "github.merge_exempt"
                        && e.last_error
                            .as_deref()
                            .is_some_and(|m| m.contains("waiting for checks: ci"))
                })
        }
    })
    .await;
    assert!(waited, "the merge waits for the pending check");
    t.gh.push("acme/api", 5, &b);
    t.gh.add_check_run("acme/api", &a, "ci", "completed", Some("success"));
    t.gh.add_check_run("acme/api", &b, "ci", "completed", Some("success"));
    t.settle().await;
    assert_eq!(
        t.gh.merged("acme/api", 5),
        None,
        "a later push is not merged"
    );
    let texts = t.timeline_texts().await;
    assert!(
        texts
            .iter()
            // The push is seen either before the merge call ("its head moved from aaaaaaa to
            // bbbbbbb") or by GitHub refusing the merge at the pinned SHA (409): both end the
            // attempt and say to exempt the new head.
            .any(|x| x.starts_with("acme/api#5 was exempted but not merged")
                && (x.contains("moved from aaaaaaa to bbbbbbb")
                    || x.contains("its head is no longer aaaaaaa"))
                && x.ends_with("exempt it again to merge the new head")),
        "{texts:#?}"
    );
    assert_eq!(
        t.gh.try_merge(FIREBREAK_TOKEN, "acme/api", 5, &a).await,
        409,
        "GitHub refuses the exempted SHA once the head moved"
    );
    assert_eq!(
        t.gh.try_merge("ghp_someone", "acme/api", 5, &b).await,
        405,
        "the freeze still blocks everyone else"
    );
    assert!(t.ruleset().is_some());
}

async fn each_field_of_the_ruleset_changed_by_hand_is_repaired_and_recorded(backend: Backend) {
    let t = start(backend, &format!("branches = [\"main\"]\n{MERGE_ACTOR}")).await;
    t.run("declare sev1 Payments down").await;
    t.settle().await;
    let wanted = t.ruleset().expect("ruleset in place");
    let edits: Vec<(&str, Edit)> = vec![
        (
            "rules",
            Box::new(|v| v["rules"] = json!([{ "type": "deletion" }])),
        ),
        (
            "conditions.ref_name.include",
            Box::new(|v| v["conditions"]["ref_name"]["include"] = json!(["refs/heads/nothing"])),
        ),
        (
            "conditions.ref_name.exclude",
            Box::new(|v| v["conditions"]["ref_name"]["exclude"] = json!(["refs/heads/main"])),
        ),
        (
            "bypass_actors",
            Box::new(|v| {
                v["bypass_actors"] =
                    json!([{ "actor_id": 9, "actor_type": "Team", "bypass_mode": "always" }])
            }),
        ),
        (
            "enforcement",
            Box::new(|v| v["enforcement"] = json!("disabled")),
        ),
        ("target", Box::new(|v| v["target"] = json!("tag"))),
    ];
    for (n, (field, edit)) in edits.into_iter().enumerate() {
        assert!(t.gh.edit_ruleset("acme/api", RULESET_NAME, |v| edit(v)));
        t.reconcile_now(n as i64 + 1).await;
        t.settle().await;
        let now = t.ruleset().unwrap();
        for key in [
            "target",
            "enforcement",
            "conditions",
            "rules",
            "bypass_actors",
        ] {
            assert_eq!(now[key], wanted[key], "{field}: {key} repaired");
        }
        let texts = t.timeline_texts().await;
        assert!(
            texts
                .iter()
                .any(|x| x.contains("was changed by hand and was repaired")
                    && x.contains(&format!("{field}: wanted"))),
            "{field} recorded: {texts:#?}"
        );
        let targets = t.app.app.store.freeze_targets().await.unwrap();
        assert_eq!(targets[0].actual, "active", "{field}");
    }
    // Nothing changed: nothing is written.
    let writes = |gh: &FakeGitHub| {
        gh.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/rulesets/"))
            .count()
    };
    let before = writes(&t.gh);
    t.reconcile_now(100).await;
    t.settle().await;
    assert_eq!(writes(&t.gh), before, "no drift, no update");
}

async fn a_drill_without_evaluate_enforces_nothing_and_says_so(backend: Backend) {
    let t = start(backend, MERGE_ACTOR).await;
    t.gh.set_evaluate_available(false);
    let sha = "d".repeat(40);
    t.gh.add_pull("acme/api", 7, &sha, "main");
    t.run("declare sev1 Database failover --drill").await;
    t.settle().await;
    assert!(t.ruleset().is_none(), "nothing is enforced");
    let statuses = t.gh.statuses("acme/api", &sha);
    let last = statuses.last().expect("a drill status");
    assert!(
        last["description"].as_str().unwrap().starts_with("DRILL"),
        "{last}"
    );
    let texts = t.timeline_texts().await;
    assert!(
        texts
            .iter()
            .any(|x| x.starts_with("Drill: GitHub does not offer `evaluate`")),
        "{texts:#?}"
    );
    let targets = t.app.app.store.freeze_targets().await.unwrap();
    assert_eq!(targets[0].actual, "statuses-only");
    // The probe is made once: a later reconcile does not try `evaluate` again.
    let evaluates = |gh: &FakeGitHub| {
        gh.requests()
            .iter()
            .filter(|r| r.body["enforcement"] == "evaluate")
            .count()
    };
    assert_eq!(evaluates(&t.gh), 1);
    t.reconcile_now(1).await;
    t.settle().await;
    assert_eq!(evaluates(&t.gh), 1);
    assert_eq!(
        t.gh.try_merge("ghp_someone", "acme/api", 7, &sha).await,
        200,
        "a drill blocks nothing"
    );
}

/// A real freeze and a drill on one repository, on a GitHub without `evaluate`: when the
/// real freeze lifts, the drill takes the target, the probe learns `evaluate` is missing,
/// and the real freeze's ruleset comes off at once (not at the next periodic pass).
async fn lifting_a_real_freeze_under_a_drill_without_evaluate_unblocks_merges(backend: Backend) {
    let t = start(backend, MERGE_ACTOR).await;
    t.gh.set_evaluate_available(false);
    let sha = "e".repeat(40);
    t.gh.add_pull("acme/api", 8, &sha, "main");
    t.run("freeze acme/api --reason release week").await;
    t.settle().await;
    assert!(t.ruleset().is_some(), "the real freeze is enforced");
    t.run("declare sev1 Database failover --drill").await;
    t.settle().await;
    assert!(t.ruleset().is_some(), "a drill never weakens a real freeze");
    t.run("unfreeze acme/api").await;
    t.settle().await;
    assert!(
        t.ruleset().is_none(),
        "the drill left the real ruleset in place"
    );
    assert_eq!(
        t.gh.try_merge("ghp_someone", "acme/api", 8, &sha).await,
        200,
        "a drill blocks nothing"
    );
}
