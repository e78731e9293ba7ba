//! Freeze holds (issue 10): a scope is frozen while it has at least one hold, one per
//! incident or person; unfreezing removes one hold, expired holds end by themselves, and
//! `unfreeze --all` needs its own permission. Also the audit log (`firebreak audit`,
//! `GET /api/audit`), which records changes only. Against the fake GitHub, on both
//! databases.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{github_config, integrations};
use common::process::Cli;
use common::*;
use firebreak::github::freeze::RULESET_NAME;
use firebreak::incident::clock::ManualClock;
use firebreak::incident::{Actor, Outcome, ServiceError, Source};

on_both!(
    resolving_one_incident_keeps_the_other_incidents_freeze,
    resolving_an_incident_keeps_a_manual_freeze,
    overlapping_holds_in_every_order,
    an_expiring_hold_ends_on_time,
    unfreeze_all_needs_its_own_permission,
    audit_shows_changes_and_a_noop_reconcile_adds_none,
    the_binary_freezes_for_a_while_shows_holds_and_the_audit,
    a_hold_placed_while_another_is_removed_is_never_lost,
    a_repository_stays_frozen_while_its_owner_is_held,
    a_scope_named_in_another_case_is_the_same_scope,
);

struct Holds {
    app: TestApp,
    gh: FakeGitHub,
    clock: ManualClock,
}

async fn holds_app(backend: Backend, extra: &str) -> Holds {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.add_repo("acme/web", "main");
    // The serving loop's own expiry sweep waits an hour; the tests sweep by hand.
    let config = test_config(&format!(
        "[incident]\nreminder_interval = \"1h\"\n{}",
        github_config("\"acme/api\", \"acme/web\"", "100ms", extra)
    ));
    let clock = ManualClock::starting_at(chrono::Utc::now());
    let app = spawn_app_with(backend, config, integrations(&gh.url), Some(clock.clone())).await;
    Holds { app, gh, clock }
}

fn bob() -> Actor {
    Actor::new(Source::Slack, "U_BOB", "bob")
}

impl Holds {
    async fn run_as(&self, actor: &Actor, line: &str) -> Result<Outcome, ServiceError> {
        let cmd = firebreak::incident::command::parse_line(line, Default::default())
            .unwrap_or_else(|e| panic!("`{line}` does not parse: {e}"));
        self.app.app.service.apply(cmd, actor).await
    }

    async fn ok_as(&self, actor: &Actor, line: &str) -> Outcome {
        self.run_as(actor, line)
            .await
            .unwrap_or_else(|e| panic!("`{line}` failed: {e}"))
    }

    async fn settle(&self) {
        assert!(
            queue_idle(&self.app.app.store, 60).await,
            "effects did not settle"
        );
        let failed = self.app.app.store.list_effects(true, 20).await.unwrap();
        assert!(failed.is_empty(), "effects failed: {failed:?}");
    }

    fn frozen(&self, repo: &str) -> bool {
        self.gh
            .rulesets(repo)
            .iter()
            .any(|r| r["name"] == RULESET_NAME)
    }

    fn both_frozen(&self) -> bool {
        self.frozen("acme/api") && self.frozen("acme/web")
    }

    fn neither_frozen(&self) -> bool {
        !self.frozen("acme/api") && !self.frozen("acme/web")
    }

    /// One periodic reconcile (of its own interval bucket), run to the end.
    async fn periodic(&self, bucket: i64) {
        let generation = self.app.app.store.freeze_generation().await.unwrap();
        let effect = firebreak::github::effect::periodic_reconcile(generation, bucket);
        self.app.app.service.enqueue(&effect).await.unwrap();
        self.settle().await;
    }

    async fn audit(&self) -> Vec<serde_json::Value> {
        let body: serde_json::Value = self
            .app
            .get("/api/audit")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["entries"].as_array().unwrap().clone()
    }
}

/// Observation 1: two SEV1s auto-freeze, resolving the second lifted every ruleset while
/// the first was still open.
async fn resolving_one_incident_keeps_the_other_incidents_freeze(backend: Backend) {
    let t = holds_app(backend, "").await;
    let head = "a".repeat(40);
    t.gh.add_pull("acme/api", 5, &head, "main");
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.app.ok("declare sev1 Search is slow").await;
    t.settle().await;
    assert!(t.both_frozen());
    let said = |t: &Holds| {
        let last = t.gh.statuses("acme/api", &head).into_iter().last().unwrap();
        last["description"].as_str().unwrap_or_default().to_string()
    };
    assert!(said(&t).starts_with("INC-2"), "{}", said(&t));

    t.app.ok("resolve INC-2 Fixed").await;
    t.settle().await;
    assert!(t.both_frozen(), "INC-1 still holds the freeze");
    // The pull request's status names the incident that holds it now, not the resolved one.
    assert!(said(&t).starts_with("INC-1"), "{}", said(&t));
    let (_, timeline) = incident_timeline(&t.app.app.store, 2).await;
    let lifted = timeline
        .iter()
        .find(|e| e.text.starts_with("INC-2's hold on"))
        .expect("the resolve says what remains");
    assert!(
        lifted
            .text
            .contains("stay frozen: held by INC-1 (SEV1 Checkout API returns 502)"),
        "{}",
        lifted.text
    );

    t.app.ok("resolve INC-1 Fixed").await;
    t.settle().await;
    assert!(t.neither_frozen(), "the last hold is gone");
}

/// Observation 1: a manual `freeze --reason "release week code freeze"` was lifted by
/// declaring and resolving a SEV1.
async fn resolving_an_incident_keeps_a_manual_freeze(backend: Backend) {
    let t = holds_app(backend, "").await;
    t.app.ok("freeze --reason release week code freeze").await;
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    t.app.ok("resolve INC-1 Fixed").await;
    t.settle().await;
    assert!(t.both_frozen(), "the manual freeze stays");
    let status = t.app.ok("freeze status").await;
    assert!(
        status
            .reply
            .text
            .contains("alice (release week code freeze)"),
        "{}",
        status.reply.text
    );
    let api: serde_json::Value = t
        .app
        .get("/api/freeze")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scope = &api["scopes"][0];
    assert_eq!(scope["scope"], "acme/api", "{api}");
    let holds = scope["holds"].as_array().expect("holds per scope");
    assert_eq!(holds.len(), 1, "{api}");
    assert_eq!(holds[0]["holder"], "slack:U_ALICE");
    assert_eq!(holds[0]["holder_name"], "alice");
    assert_eq!(holds[0]["reason"], "release week code freeze");
    assert!(holds[0]["started_at"].is_string() && holds[0]["expires_at"].is_null());
    let out = t.app.ok("unfreeze").await;
    assert!(
        out.reply
            .text
            .contains("alice's hold on acme/api, acme/web is lifted")
            && out.reply.text.contains("their rulesets come off"),
        "{}",
        out.reply.text
    );
    t.settle().await;
    assert!(t.neither_frozen());
}

#[derive(Clone, Copy, Debug)]
enum Holder {
    First,
    Second,
    Manual,
}

/// Two incidents and a manual freeze, released in every order: the rulesets stay until the
/// last hold ends, and each release says what remains.
async fn overlapping_holds_in_every_order(backend: Backend) {
    use Holder::*;
    let t = holds_app(backend, "").await;
    let orders = [
        [First, Second, Manual],
        [First, Manual, Second],
        [Second, First, Manual],
        [Second, Manual, First],
        [Manual, First, Second],
        [Manual, Second, First],
    ];
    for (round, order) in orders.iter().enumerate() {
        let first = 2 * round + 1;
        let second = first + 1;
        t.app.ok(&format!("declare sev1 Outage {first}")).await;
        t.app
            .ok(&format!("freeze acme/api --reason release week {round}"))
            .await;
        t.app.ok(&format!("declare sev1 Outage {second}")).await;
        t.settle().await;
        assert!(t.both_frozen(), "{order:?}: frozen");
        for (step, holder) in order.iter().enumerate() {
            let out = match holder {
                First => t.app.ok(&format!("resolve INC-{first} done")).await,
                Second => t.app.ok(&format!("unfreeze INC-{second}")).await,
                Manual => t.app.ok("unfreeze acme/api").await,
            };
            t.settle().await;
            let last = step == order.len() - 1;
            let left: Vec<&Holder> = order[step + 1..].iter().collect();
            let manual_left = left.iter().any(|h| matches!(h, Manual));
            let incident_left = left.iter().any(|h| !matches!(h, Manual));
            assert_eq!(
                t.frozen("acme/api"),
                !last,
                "{order:?} step {step}: acme/api until the last hold ends"
            );
            assert_eq!(
                t.frozen("acme/web"),
                incident_left,
                "{order:?} step {step}: acme/web is held by incidents only"
            );
            if let Second | Manual = holder {
                let text = &out.reply.text;
                if manual_left {
                    assert!(text.contains("alice (release week"), "{order:?}: {text}");
                }
                if !incident_left && matches!(holder, Second) {
                    assert!(text.contains("acme/web any more"), "{order:?}: {text}");
                }
            }
        }
        let holds = t.app.app.store.freeze_holds().await.unwrap();
        assert!(holds.is_empty(), "{order:?}: {holds:?}");
    }
}

/// `freeze … --for 4h` ends by itself at the time, says so, and leaves other holds alone.
async fn an_expiring_hold_ends_on_time(backend: Backend) {
    let t = holds_app(backend, "").await;
    let out = t
        .app
        .ok("freeze acme/api --for 4h --reason release week")
        .await;
    assert!(out.reply.text.contains("until"), "{}", out.reply.text);
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.app
        .ok("freeze acme/web --for 1h --reason migration")
        .await;
    t.settle().await;
    assert!(t.both_frozen());

    let service = &t.app.app.service;
    t.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(service.expire_holds().await.unwrap(), 0, "not yet");
    t.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(service.expire_holds().await.unwrap(), 1, "the 1h hold");
    t.settle().await;
    assert!(t.both_frozen(), "INC-1 still holds acme/web");

    t.clock.advance(chrono::Duration::minutes(3 * 60 - 2));
    assert_eq!(service.expire_holds().await.unwrap(), 0, "4h not yet");
    t.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(service.expire_holds().await.unwrap(), 1, "the 4h hold");
    assert_eq!(service.expire_holds().await.unwrap(), 0, "once");
    t.settle().await;
    assert!(t.both_frozen(), "INC-1 holds both");

    let audit = t.audit().await;
    let expired: Vec<&str> = audit
        .iter()
        .filter_map(|e| e["text"].as_str())
        .filter(|text| text.contains("expired at"))
        .collect();
    assert_eq!(expired.len(), 2, "{audit:?}");
    assert!(
        expired.iter().any(|t| t
            .contains("alice's hold on acme/api is lifted (release week; it expired at")
            && t.contains("acme/api stays frozen: held by INC-1")),
        "{expired:?}"
    );

    // Without other holds, the expiry lifts the ruleset.
    t.app.ok("resolve INC-1 Fixed").await;
    t.settle().await;
    assert!(t.neither_frozen());
    t.app.ok("freeze acme/api --for 30m").await;
    t.settle().await;
    assert!(t.frozen("acme/api"));
    t.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(service.expire_holds().await.unwrap(), 1);
    t.settle().await;
    assert!(!t.frozen("acme/api"), "the expired hold was the last");

    // With no sweep run yet (no `serve`), `freeze status` ends an expired hold itself
    // rather than show it as holding.
    t.app.ok("freeze acme/web --for 10m --reason short").await;
    t.settle().await;
    t.clock.advance(chrono::Duration::minutes(11));
    let status = t.app.ok("freeze status").await;
    assert!(
        status.reply.text.starts_with("No merge freeze is wanted"),
        "{}",
        status.reply.text
    );
    assert!(t.app.app.store.freeze_holds().await.unwrap().is_empty());
    t.settle().await;
    assert!(!t.frozen("acme/web"));
}

async fn unfreeze_all_needs_its_own_permission(backend: Backend) {
    let t = holds_app(backend, "[permissions]\nunfreeze_all = [\"slack:U_BOB\"]\n").await;
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.app.ok("freeze acme/api --reason release week").await;
    t.settle().await;

    let refused = t.run_as(&alice(), "unfreeze --all").await;
    let err = refused.expect_err("alice may freeze but not lift every hold");
    assert!(err.to_string().contains("unfreeze --all"), "{err}");
    t.settle().await;
    assert!(t.both_frozen());
    // Her own hold she may still lift.
    t.ok_as(&alice(), "unfreeze").await;
    t.settle().await;
    assert!(t.both_frozen(), "INC-1 still holds");
    t.ok_as(&alice(), "freeze acme/web --reason again").await;

    let out = t.ok_as(&bob(), "unfreeze --all").await;
    assert!(
        out.reply
            .text
            .contains("Every hold on acme/api, acme/web is lifted"),
        "{}",
        out.reply.text
    );
    t.settle().await;
    assert!(t.neither_frozen());
    assert!(t.app.app.store.freeze_holds().await.unwrap().is_empty());
}

async fn audit_shows_changes_and_a_noop_reconcile_adds_none(backend: Backend) {
    let t = holds_app(backend, "").await;
    t.app.ok("freeze acme/api --reason release week").await;
    t.settle().await;
    assert!(t.frozen("acme/api"));
    let before = t.audit().await;
    assert!(
        before.iter().any(|e| e["text"]
            .as_str()
            .unwrap()
            .contains("Merge freeze requested on acme/api")),
        "{before:?}"
    );
    for bucket in [1, 2, 3] {
        t.periodic(bucket).await;
    }
    let after = t.audit().await;
    assert_eq!(
        after.len(),
        before.len(),
        "a reconcile that changed nothing records nothing: {after:?}"
    );

    // A repair is a change, and it is recorded once.
    assert!(t.gh.delete_ruleset_by_name("acme/api", RULESET_NAME));
    t.periodic(4).await;
    assert!(t.frozen("acme/api"));
    t.periodic(5).await;
    let repaired = t.audit().await;
    let repairs = repaired
        .iter()
        .filter(|e| e["text"].as_str().unwrap().contains("was missing"))
        .count();
    assert_eq!(repairs, 1, "{repaired:?}");
    assert_eq!(
        repaired.len(),
        before.len() + 2,
        "the repair and its summary"
    );
}

/// The built binary: `freeze … --for`, `freeze status` with its holds, `unfreeze`, `audit`.
async fn the_binary_freezes_for_a_while_shows_holds_and_the_audit(backend: Backend) {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    let config = github_config("\"acme/api\"", "100ms", "");
    let cli = Cli::new(
        backend,
        &format!("{}\n{config}", "[effects]\ncli_wait = \"10s\"\n"),
    )
    .await;
    let run = |args: &'static [&'static str]| {
        let mut cmd = cli.command(args);
        cmd.env("GITHUB_TOKEN", "ghp_test")
            .env("GITHUB_API_URL", &gh.url);
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let out = run(&[
        "freeze", "acme/api", "--for", "4h", "--reason", "release", "week",
    ])
    .await;
    assert!(out.contains("until"), "{out}");
    assert!(
        gh.rulesets("acme/api")
            .iter()
            .any(|r| r["name"] == RULESET_NAME),
        "the CLI waited for the ruleset"
    );
    let status = run(&["freeze", "status"]).await;
    assert!(
        status.contains("SCOPE") && status.contains("HOLDER"),
        "{status}"
    );
    let row = status
        .lines()
        .find(|l| l.starts_with("acme/api") && l.contains("release week"))
        .unwrap_or_else(|| panic!("a hold row: {status}"));
    assert!(row.contains("UTC"), "{row}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["freeze", "status", "--json"]).await).unwrap();
    let holds = json["scopes"][0]["holds"]
        .as_array()
        .expect("holds in JSON");
    assert_eq!(holds.len(), 1, "{json}");
    assert!(holds[0]["expires_at"].is_string(), "{json}");
    assert!(holds[0]["holder_title"].is_string(), "{json}");

    run(&["unfreeze"]).await;
    assert!(
        !gh.rulesets("acme/api")
            .iter()
            .any(|r| r["name"] == RULESET_NAME)
    );
    let audit = run(&["audit"]).await;
    assert!(audit.starts_with("WHEN"), "{audit}");
    assert!(
        audit.contains("Merge freeze requested on acme/api"),
        "{audit}"
    );
    assert!(audit.contains("hold on acme/api is lifted"), "{audit}");
    let json: serde_json::Value = serde_json::from_str(&run(&["audit", "--json"]).await).unwrap();
    assert!(json.as_array().is_some_and(|a| !a.is_empty()), "{json}");
}

/// One person freezes while another removes their own hold at the same moment: whichever
/// commits last, the wanted state counts the hold that remains.
async fn a_hold_placed_while_another_is_removed_is_never_lost(backend: Backend) {
    let t = holds_app(backend, "").await;
    let (alice, bob) = (alice(), bob());
    for round in 0..4 {
        t.ok_as(&bob, "freeze acme/api --reason bob's").await;
        let (a, b) = tokio::join!(
            t.run_as(&alice, "freeze acme/api --reason alice's"),
            t.run_as(&bob, "unfreeze acme/api"),
        );
        a.unwrap();
        b.unwrap();
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
        assert!(scope.frozen, "round {round}: alice's hold remains");
        assert!(t.frozen("acme/api"), "round {round}");
        t.ok_as(&alice, "unfreeze").await;
        t.settle().await;
        assert!(!t.frozen("acme/api"), "round {round}");
    }
}

/// A hold on `acme/*` covers `acme/api`: lifting the repository's own hold leaves its
/// ruleset while the owner is held, whichever was asked for last, and the reply says so.
async fn a_repository_stays_frozen_while_its_owner_is_held(backend: Backend) {
    let t = holds_app(backend, "").await;
    t.app.ok("freeze acme/* --reason release week").await;
    t.ok_as(&bob(), "freeze acme/api --reason schema migration")
        .await;
    t.settle().await;
    assert!(t.both_frozen());
    let out = t.ok_as(&bob(), "unfreeze acme/api").await;
    assert!(
        out.reply.text.contains("acme/api stays frozen: held by")
            && out.reply.text.contains("on acme/*"),
        "{}",
        out.reply.text
    );
    t.settle().await;
    assert!(
        t.both_frozen(),
        "acme/api lost its ruleset while acme/* is held"
    );
    t.periodic(1).await;
    assert!(t.both_frozen(), "a periodic pass lifted acme/api");
    t.app.ok("unfreeze acme/*").await;
    t.settle().await;
    assert!(t.neither_frozen());
}

/// GitHub's names are case-insensitive: `ACME/Web` is `acme/web`, so a second freeze in
/// another case renews the same hold, one unfreeze lifts it, and no two targets fight over
/// one ruleset.
async fn a_scope_named_in_another_case_is_the_same_scope(backend: Backend) {
    let t = holds_app(backend, "").await;
    t.app.ok("freeze acme/web --reason first").await;
    t.app.ok("freeze ACME/Web --reason second").await;
    t.settle().await;
    assert!(t.frozen("acme/web"));
    let holds = t.app.app.store.freeze_holds().await.unwrap();
    assert_eq!(holds.len(), 1, "{holds:?}");
    let out = t.app.ok("unfreeze ACME/WEB").await;
    assert!(
        out.reply.text.contains("nothing holds acme/web any more"),
        "{}",
        out.reply.text
    );
    t.settle().await;
    assert!(!t.frozen("acme/web"));
    t.periodic(1).await;
    assert!(!t.frozen("acme/web"), "a later pass put it back");
    let targets = t.app.app.store.freeze_targets().await.unwrap();
    assert!(
        targets
            .iter()
            .all(|x| x.target == "acme/web" || x.target == "acme/api"),
        "{targets:?}"
    );
}
