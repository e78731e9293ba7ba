//! An honest `freeze status` and audit (issue 10, the black-box pass): waits GitHub asks for
//! on any retryable answer, read times that only move on a successful read, generations
//! recorded only when GitHub confirmed them, `unfreeze --all` on every lifted incident's
//! timeline, drills that never take over a real freeze, holders apart from reasons, errors
//! that end with what was wanted, drift repairs in every holder's log, and `--limit 0`.
//! Against the fake GitHub, on both databases; two drive the built binary.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::fake_github::{FakeGitHub, Limits};
use common::github::{github_config, integrations};
use common::process::Cli;
use common::*;
use firebreak::github::effect::RECONCILE;
use firebreak::github::freeze::{RULESET_NAME, STATUS_CONTEXT};
use firebreak::incident::{Actor, EntryKind, Outcome, Source};
use firebreak::store::FreezeTarget;
use serde_json::{Value, json};

on_both!(
    a_503_that_asks_to_wait_is_waited_for,
    the_read_time_stays_put_while_github_fails,
    a_failed_unfreeze_leaves_the_confirmed_generation,
    unfreeze_all_is_on_each_lifted_incidents_timeline,
    a_real_freeze_takes_the_status_from_a_drill_and_drills_are_listed_apart,
    an_incident_freeze_shows_its_title_as_holder_and_its_own_reason,
    the_binary_shows_a_gone_repository_s_error_as_past_once_unfrozen,
    a_drift_repair_is_audited_when_a_person_holds_the_scope_too,
    the_binary_and_the_api_show_no_audit_entry_for_limit_0,
);

struct T {
    app: TestApp,
    gh: FakeGitHub,
}

async fn app(backend: Backend, extra: &str) -> T {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.add_repo("acme/web", "main");
    let config = test_config(&format!(
        "[incident]\nreminder_interval = \"1h\"\n{}",
        github_config("\"acme/api\", \"acme/web\"", "100ms", extra)
    ));
    let app = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    T { app, gh }
}

fn bob() -> Actor {
    Actor::new(Source::Slack, "U_BOB", "bob")
}

impl T {
    async fn as_(&self, actor: &Actor, line: &str) -> Outcome {
        let cmd = firebreak::incident::command::parse_line(line, Default::default())
            .unwrap_or_else(|e| panic!("`{line}` does not parse: {e}"));
        self.app
            .app
            .service
            .apply(cmd, actor)
            .await
            .unwrap_or_else(|e| panic!("`{line}` failed: {e}"))
    }

    async fn settle(&self) {
        let store = &self.app.app.store;
        assert!(queue_idle(store, 60).await, "effects did not settle");
        let failed = store.list_effects(true, 20).await.unwrap();
        assert!(failed.is_empty(), "effects failed: {failed:?}");
    }

    async fn target(&self, name: &str) -> FreezeTarget {
        let targets = self.app.app.store.freeze_targets().await.unwrap();
        targets
            .into_iter()
            .find(|t| t.target == name)
            .unwrap_or_else(|| panic!("no target {name}"))
    }

    async fn api_freeze(&self) -> Value {
        self.app
            .get("/api/freeze")
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn status_text(&self) -> String {
        self.as_(&bob(), "freeze status").await.reply.text
    }

    fn frozen(&self, repo: &str) -> bool {
        self.gh
            .rulesets(repo)
            .iter()
            .any(|r| r["name"] == RULESET_NAME)
    }

    /// Queues one periodic reconcile (of its own interval bucket).
    async fn queue_periodic(&self, bucket: i64) {
        let generation = self.app.app.store.freeze_generation().await.unwrap();
        let effect = firebreak::github::effect::periodic_reconcile(generation, bucket);
        self.app.app.service.enqueue(&effect).await.unwrap();
    }

    /// One periodic reconcile, run to the end.
    async fn periodic(&self, bucket: i64) {
        self.queue_periodic(bucket).await;
        self.settle().await;
    }
}

fn api_target<'a>(freeze: &'a Value, name: &str) -> &'a Value {
    freeze["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == name)
        .unwrap_or_else(|| panic!("no target {name}: {freeze}"))
}

/// Defect 1: a 503 with `Retry-After` is waited for, as a 429's is.
async fn a_503_that_asks_to_wait_is_waited_for(backend: Backend) {
    let t = app(backend, "").await;
    t.gh.fail_asking_to_wait("GET", "/repos/acme/api/rulesets", 503, Some(120));
    let asked = Utc::now();
    t.as_(&bob(), "freeze acme/api --reason release week").await;
    let store = &t.app.app.store;
    let waiting = eventually(20, || async {
        store
            .list_effects(false, 50)
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == RECONCILE && e.attempts >= 1 && e.last_error.is_some())
    })
    .await;
    assert!(waiting, "the reconcile met the 503");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reconcile = store
        .list_effects(false, 50)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == RECONCILE)
        .unwrap();
    assert_eq!(
        reconcile.attempts, 1,
        "no retry before the wait: {reconcile:?}"
    );
    assert!(
        reconcile.run_at >= asked + chrono::Duration::seconds(110),
        "run_at {} honours Retry-After: 120 (asked at {asked})",
        reconcile.run_at
    );
    let freeze = t.api_freeze().await;
    let target = api_target(&freeze, "acme/api");
    assert_eq!(target["error_retryable"], true, "{target}");
    let next: chrono::DateTime<Utc> = target["next_retry_at"]
        .as_str()
        .unwrap_or_else(|| panic!("next retry shown: {target}"))
        .parse()
        .unwrap();
    assert!(next >= asked + chrono::Duration::seconds(110), "{target}");
    assert_eq!(target["read_at"], Value::Null, "never read: {target}");
}

/// Defect 2: a failure records its error, time and next retry; the read time stays that of
/// the last successful read.
async fn the_read_time_stays_put_while_github_fails(backend: Backend) {
    let t = app(backend, "").await;
    t.as_(&bob(), "freeze acme/api --reason release week").await;
    t.settle().await;
    let read = t.target("acme/api").await;
    assert!(
        read.verified_at > 0 && read.last_error.is_none(),
        "{read:?}"
    );

    tokio::time::sleep(Duration::from_millis(50)).await;
    t.gh.fail("GET", "/repos/acme/api/rulesets", 502);
    t.queue_periodic(1).await;
    let store = &t.app.app.store;
    let failed = eventually(20, || async {
        let targets = store.freeze_targets().await.unwrap();
        targets
            .iter()
            .any(|x| x.target == "acme/api" && x.error_at.is_some())
    })
    .await;
    assert!(failed, "the 502 is recorded");
    let during = t.target("acme/api").await;
    assert_eq!(during.verified_at, read.verified_at, "read time unmoved");
    assert_eq!(during.actual, "active", "actual as last read");
    assert!(during.error_at.unwrap() > read.verified_at);
    assert!(
        during
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("will retry") && e.contains("502")),
        "{during:?}"
    );
    let text = t.status_text().await;
    assert!(text.contains("Retrying: acme/api"), "{text}");
    // GitHub named no wait: the next retry is when the waiting reconcile is due.
    let scheduled = eventually(10, || async {
        api_target(&t.api_freeze().await, "acme/api")["next_retry_at"].is_string()
    })
    .await;
    assert!(
        scheduled,
        "the next retry is shown without a wait from GitHub"
    );

    // A permanent failure does not move it either.
    t.gh.heal();
    t.gh.fail("GET", "/repos/acme/api/rulesets", 403);
    t.periodic(2).await;
    let refused = t.target("acme/api").await;
    assert_eq!(refused.verified_at, read.verified_at, "{refused:?}");
    assert!(refused.last_error.as_deref().unwrap().contains("403"));
    assert!(refused.error_at.unwrap() >= during.error_at.unwrap());
    let freeze = t.api_freeze().await;
    let target = api_target(&freeze, "acme/api");
    assert_eq!(target["error_retryable"], false, "{target}");
    assert!(target["error_at"].is_string(), "{target}");

    t.gh.heal();
    t.periodic(3).await;
    let back = t.target("acme/api").await;
    assert!(back.verified_at > read.verified_at, "{back:?}");
    assert_eq!((back.last_error, back.error_at), (None, None));
}

/// Defect 3: an unfreeze GitHub refused leaves `applied_generation` at the freeze it
/// confirmed.
async fn a_failed_unfreeze_leaves_the_confirmed_generation(backend: Backend) {
    let t = app(backend, "").await;
    t.as_(&bob(), "freeze acme/api --reason release week").await;
    t.settle().await;
    let frozen_at = t.app.app.store.freeze_generation().await.unwrap();
    assert_eq!(t.target("acme/api").await.applied_generation, frozen_at);

    t.gh.fail("DELETE", "/repos/acme/api/rulesets/", 422);
    t.as_(&bob(), "unfreeze").await;
    t.settle().await;
    let unfrozen_at = t.app.app.store.freeze_generation().await.unwrap();
    assert!(unfrozen_at > frozen_at);
    assert!(t.frozen("acme/api"), "GitHub refused the removal");
    let target = t.target("acme/api").await;
    assert_eq!(
        target.applied_generation, frozen_at,
        "the refused unfreeze is not applied: {target:?}"
    );
    assert!(target.last_error.as_deref().unwrap().contains("422"));
    let freeze = t.api_freeze().await;
    assert_eq!(
        api_target(&freeze, "acme/api")["applied_generation"],
        frozen_at
    );
}

/// Defect 4: `unfreeze --all` says who lifted each incident's hold on that incident.
async fn unfreeze_all_is_on_each_lifted_incidents_timeline(backend: Backend) {
    let t = app(backend, "[permissions]\nunfreeze_all = [\"slack:U_BOB\"]\n").await;
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.app.ok("declare sev1 Search is slow").await;
    t.as_(&bob(), "freeze acme/api --reason release week").await;
    t.settle().await;

    t.as_(&bob(), "unfreeze --all").await;
    t.settle().await;
    assert!(!t.frozen("acme/api") && !t.frozen("acme/web"));
    for n in [1, 2] {
        let (_, timeline) = incident_timeline(&t.app.app.store, n).await;
        let lifted: Vec<&str> = timeline
            .iter()
            .filter(|e| e.kind == EntryKind::UnfreezeRequested)
            .map(|e| e.text.as_str())
            .collect();
        assert!(
            lifted.iter().any(|text| text.starts_with(
                "bob lifted this incident's merge freeze hold on acme/api, acme/web with `unfreeze --all`"
            )),
            "INC-{n}: {lifted:?}"
        );
        let by_bob = timeline
            .iter()
            .filter(|e| e.kind == EntryKind::UnfreezeRequested)
            .all(|e| e.actor == "slack:U_BOB");
        assert!(by_bob, "INC-{n}");
    }
}

/// Defect 5: a drill's status says its key once; a real freeze on the same pull request
/// replaces it; drill-only scopes are listed apart from what is frozen.
async fn a_real_freeze_takes_the_status_from_a_drill_and_drills_are_listed_apart(backend: Backend) {
    let t = app(backend, "").await;
    let sha = "d".repeat(40);
    t.gh.add_pull("acme/api", 7, &sha, "main");
    t.app.ok("declare sev1 Database failover --drill").await;
    t.settle().await;
    let described = |t: &T| {
        let statuses = t.gh.statuses("acme/api", &sha);
        let last = statuses
            .iter()
            .rev()
            .find(|s| s["context"] == STATUS_CONTEXT)
            .expect("a freeze status");
        last["description"].as_str().unwrap().to_string()
    };
    let drill = described(&t);
    assert!(drill.starts_with("DRILL"), "{drill}");
    assert_eq!(drill.matches("INC-1").count(), 1, "{drill}");
    let text = t.status_text().await;
    assert!(!text.contains("Frozen:"), "{text}");
    assert!(text.contains("Drill ("), "{text}");
    assert!(text.contains("acme/api, acme/web"), "{text}");

    t.as_(&bob(), "freeze acme/api --reason release week").await;
    t.settle().await;
    let real = described(&t);
    assert!(
        !real.contains("DRILL") && real.contains("release week"),
        "the real freeze's status replaces the drill's: {real}"
    );
    let text = t.status_text().await;
    assert!(text.starts_with("Frozen: acme/api."), "{text}");
    assert!(text.contains("): acme/web."), "{text}");
}

/// Defect 6: an incident's freeze shows the incident's title as the holder and its own
/// `--reason` as the reason.
async fn an_incident_freeze_shows_its_title_as_holder_and_its_own_reason(backend: Backend) {
    let t = app(backend, "").await;
    t.app.ok("declare sev2 Checkout API returns 502").await;
    t.as_(&bob(), "freeze INC-1 acme/api --reason stop deploys")
        .await;
    t.settle().await;
    let text = t.status_text().await;
    assert!(
        text.contains("acme/api is held by INC-1 (SEV2 Checkout API returns 502; stop deploys)"),
        "{text}"
    );
    let freeze = t.api_freeze().await;
    let hold = &freeze["scopes"][0]["holds"][0];
    assert_eq!(hold["reason"], "stop deploys", "{freeze}");
    assert_eq!(
        hold["holder_title"], "INC-1 (SEV2 Checkout API returns 502)",
        "{freeze}"
    );
    assert_eq!(hold["incident"], "SEV2 Checkout API returns 502");
}

/// The built binary with a fake GitHub in its environment; panics if a command fails.
struct Binary {
    cli: Cli,
    gh: FakeGitHub,
}

impl Binary {
    async fn start(backend: Backend, repos: &str) -> Self {
        let gh = FakeGitHub::start(Limits {
            minute: Duration::from_millis(100),
            ..Limits::default()
        })
        .await;
        let config = github_config(repos, "100ms", "");
        let cli = Cli::new(
            backend,
            &format!("[effects]\ncli_wait = \"10s\"\nbase_backoff = \"20ms\"\n\n{config}"),
        )
        .await;
        Self { cli, gh }
    }

    async fn output(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.cli.command(args);
        cmd.env("GITHUB_TOKEN", "ghp_test")
            .env("GITHUB_API_URL", &self.gh.url);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Defect 7, through the binary: a repository that answered 404 is failing while frozen;
/// once nothing is wanted on it, `freeze status` shows that error as past.
async fn the_binary_shows_a_gone_repository_s_error_as_past_once_unfrozen(backend: Backend) {
    let b = Binary::start(backend, "\"acme/api\", \"acme/gone\"").await;
    b.gh.add_repo("acme/api", "main");
    b.ok(&["freeze", "acme/api", "acme/gone", "--reason", "release"])
        .await;
    let status = b.ok(&["freeze", "status"]).await;
    assert!(status.contains("Failing: acme/gone"), "{status}");
    let row = status
        .lines()
        .find(|l| l.starts_with("acme/gone "))
        .unwrap_or_else(|| panic!("a target row: {status}"));
    assert!(row.contains("permanent:") && row.contains("404"), "{row}");
    assert!(row.contains(" never "), "acme/gone was never read: {row}");

    b.ok(&["unfreeze"]).await;
    let status = b.ok(&["freeze", "status"]).await;
    assert!(status.starts_with("No merge freeze is wanted."), "{status}");
    assert!(!status.contains("Failing"), "{status}");
    let row = status
        .lines()
        .find(|l| l.starts_with("acme/gone "))
        .unwrap_or_else(|| panic!("a target row: {status}"));
    assert!(row.contains("past (nothing wanted now):"), "{row}");
    let json: Value = serde_json::from_str(&b.ok(&["freeze", "status", "--json"]).await).unwrap();
    assert!(
        json["summary"]
            .as_str()
            .unwrap()
            .starts_with("No merge freeze is wanted.")
    );
    let gone = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "acme/gone")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(gone["last_error"], Value::Null, "{gone}");
    assert!(
        gone["past_error"].as_str().unwrap().contains("404"),
        "{gone}"
    );
    assert_eq!(gone["read_at"], Value::Null, "{gone}");
}

/// Defect 8: a drift repair on a scope an incident and a person both hold goes on the
/// incident's timeline and in the audit log.
async fn a_drift_repair_is_audited_when_a_person_holds_the_scope_too(backend: Backend) {
    let t = app(backend, "").await;
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.as_(&bob(), "freeze acme/api --reason release week").await;
    t.settle().await;
    let edited = t.gh.edit_ruleset("acme/api", RULESET_NAME, |r| {
        r["rules"] = json!([{"type": "deletion"}]);
    });
    assert!(edited);
    t.periodic(1).await;
    let repaired = |text: &str| text.starts_with("acme/api: ruleset") && text.contains("repaired");
    let audit = t.app.app.store.audit_log(100).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| repaired(&e.text)).count(),
        1,
        "{audit:?}"
    );
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    assert_eq!(
        timeline.iter().filter(|e| repaired(&e.text)).count(),
        1,
        "{timeline:?}"
    );
}

/// Defect 9: `--limit 0` shows no entry, in the binary and in the API; a negative limit is
/// refused with a sentence.
async fn the_binary_and_the_api_show_no_audit_entry_for_limit_0(backend: Backend) {
    let b = Binary::start(backend, "\"acme/api\"").await;
    b.gh.add_repo("acme/api", "main");
    b.ok(&["freeze", "acme/api", "--reason", "release"]).await;
    let all = b.ok(&["audit"]).await;
    assert!(all.contains("Merge freeze requested"), "{all}");
    let none = b.ok(&["audit", "--limit", "0"]).await;
    assert_eq!(none.trim(), "No entries shown: --limit 0 asks for none.");
    let json: Value =
        serde_json::from_str(&b.ok(&["audit", "--limit", "0", "--json"]).await).unwrap();
    assert_eq!(json, json!([]));
    let one: Value =
        serde_json::from_str(&b.ok(&["audit", "--limit", "1", "--json"]).await).unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let refused = b.output(&["audit", "--limit", "-1"]).await;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("-1 is not in 0..=10000"), "{said}");

    let t = app(backend, "").await;
    t.as_(&bob(), "freeze acme/api --reason release week").await;
    t.settle().await;
    let get = |q: &'static str| {
        let (url, http) = (t.app.url(&format!("/api/audit{q}")), t.app.client());
        async move { http.get(url).send().await.unwrap() }
    };
    let zero: Value = get("?limit=0").await.json().await.unwrap();
    assert_eq!(zero, json!({ "entries": [] }));
    let some: Value = get("?limit=1").await.json().await.unwrap();
    assert_eq!(some["entries"].as_array().unwrap().len(), 1);
    let negative = get("?limit=-1").await;
    assert_eq!(negative.status(), 400);
    let body: Value = negative.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().ends_with('.'), "{body}");
    let word = get("?limit=abc").await;
    assert_eq!(word.status(), 400);
    let body: Value = word.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("whole number"),
        "{body}"
    );
}
