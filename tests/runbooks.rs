//! Runbooks end to end, on SQLite and Postgres: the shipped regional-outage runbook run as a
//! drill and for real against fake Slack, fake GitHub and webhook receivers, with time
//! driven by hand (a manual clock: each step fires when the clock reaches its target);
//! late steps nudged once across a restart and two replicas; steps ticked once when two
//! people press the same button; and the wake-up effects firing steps on real time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::fake_github::{FakeGitHub, Limits};
use common::fake_slack::FakeSlack;
use common::receiver::Receiver;
use common::slack::{SLACK_CONFIG, SlackSender};
use common::*;
use firebreak::app::App;
use firebreak::incident::clock::ManualClock;
use firebreak::incident::command::{self, ParseOptions};
use firebreak::incident::{Actor, EntryKind, IncidentNumber, Source};
use firebreak::store::{AttachedRunbook, StepOutcome};

on_both!(
    regional_outage_drill_runs_every_step_in_its_dry_run_form,
    real_run_freezes_at_t2_and_tells_customers_at_t10,
    a_late_step_nudges_its_owner_once_across_a_restart_and_two_replicas,
    two_people_ticking_one_step_record_it_once,
    steps_fire_on_real_time_through_their_wake_up_effects,
    resolving_first_skips_what_is_left,
    a_named_runbook_must_exist,
    starting_a_step_is_timed_and_said_once,
);

const EXAMPLE: &str = include_str!("../examples/runbooks/regional-outage.toml");

struct Rig {
    app: TestApp,
    slack: FakeSlack,
    gh: FakeGitHub,
    clock: ManualClock,
    statuspage: Receiver,
    pager: Receiver,
    drills: Receiver,
    _dir: tempfile::TempDir,
}

/// The app with Slack, GitHub (acme/api, acme/web), three webhooks and the example runbook.
async fn rig(backend: Backend) -> Rig {
    let slack = FakeSlack::start().await;
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.add_repo("acme/web", "main");
    let (statuspage, pager, drills) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let dir = runbook_dir(&[("regional-outage", EXAMPLE)]);
    let config = format!(
        "{SLACK_CONFIG}[github]\nrepos = [\"acme/api\", \"acme/web\"]\n[github.pacing]\nminute = \"100ms\"\n{}{}{}[runbooks]\ndir = \"{}\"\ndrill_webhook = \"drills\"\ndrill_channel = \"C_DRILL\"\nnudge_after = \"1m\"\n",
        webhook("statuspage", &statuspage.url("/hook"), "SEV4"),
        webhook("dba-pager", &pager.url("/hook"), "SEV4"),
        webhook("drills", &drills.url("/hook"), "SEV4"),
        dir.path().display(),
    );
    let clock = ManualClock::starting_at(Utc::now());
    let mut integrations = common::slack::integrations(&slack.url);
    integrations.github = common::github::integrations(&gh.url).github;
    let app = spawn_app_with(
        backend,
        test_config(&config),
        integrations,
        Some(clock.clone()),
    )
    .await;
    Rig {
        app,
        slack,
        gh,
        clock,
        statuspage,
        pager,
        drills,
        _dir: dir,
    }
}

fn runbook_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).expect("write runbook");
    }
    dir
}

impl Rig {
    fn service(&self) -> &firebreak::incident::IncidentService {
        &self.app.app.service
    }

    /// Moves the clock to `minutes` after INC-1's declaration, runs what is due, and waits
    /// until every effect due by then has run.
    async fn at(&self, minutes: i64) -> usize {
        let declared = self.declared_at().await;
        let to = declared + chrono::Duration::minutes(minutes);
        let by = to - firebreak::incident::clock::Clock::now(&self.clock);
        self.clock.advance(by);
        let acted = self.service().run_runbooks().await.expect("runbooks run");
        settle(&self.app).await;
        acted
    }

    async fn declared_at(&self) -> DateTime<Utc> {
        incident_timeline(&self.app.app.store, 1)
            .await
            .0
            .declared_at
    }

    async fn runbook(&self) -> AttachedRunbook {
        let (inc, _) = incident_timeline(&self.app.app.store, 1).await;
        self.app
            .app
            .store
            .runbook(&inc.id)
            .await
            .unwrap()
            .expect("INC-1 has a runbook")
    }

    /// The T+ minutes each step ended at, and who ended it.
    async fn ended(&self, step: &str) -> (StepOutcome, i64, String) {
        let rb = self.runbook().await;
        let r = rb.step(step).unwrap_or_else(|| panic!("step {step}"));
        let at = r
            .finished_at
            .unwrap_or_else(|| panic!("{step} has not ended: {r:?}"));
        let declared = self.declared_at().await;
        (
            r.outcome.unwrap(),
            (at - declared).num_seconds(),
            r.finished_by.clone().unwrap_or_default(),
        )
    }
}

/// Waits until every effect that is due has run (the wake-ups queued for later targets
/// stay pending: their time has not come on the real clock).
async fn settle(app: &TestApp) {
    let store = app.app.store.clone();
    let idle = eventually(30, || {
        let store = store.clone();
        async move {
            let open = store.unfinished_effects(500).await.unwrap();
            open.iter()
                .filter(|e| !e.state.is_finished())
                .all(|e| e.kind == "runbook.due" && e.run_at > Utc::now())
        }
    })
    .await;
    let open = app.app.store.unfinished_effects(20).await.unwrap();
    assert!(
        idle,
        "effects did not settle: {:?}",
        open.iter()
            .map(|e| (&e.kind, e.state, &e.last_error))
            .collect::<Vec<_>>()
    );
    let failed = app.app.store.list_effects(true, 20).await.unwrap();
    assert!(
        failed.is_empty(),
        "effects failed: {:?}",
        failed
            .iter()
            .map(|e| (&e.kind, &e.last_error))
            .collect::<Vec<_>>()
    );
}

fn texts(r: &Receiver) -> Vec<String> {
    r.accepted().into_iter().map(|m| m.text).collect()
}

async fn regional_outage_drill_runs_every_step_in_its_dry_run_form(backend: Backend) {
    let t = rig(backend).await;
    let sender = SlackSender::new(&t.app);
    let reply = sender
        .command("declare sev1 us-east-1 is down --drill", "C_OPS", "U_ALICE")
        .await;
    assert!(
        reply
            .to_string()
            .contains("Runbook regional-outage attached (11 steps)"),
        "{reply}"
    );
    // T+0: announce and bridge fire (by their wake-up effect or by this sweep, whichever
    // comes first).
    t.at(0).await;
    assert_eq!(t.ended("announce").await.0, StepOutcome::Done);
    assert_eq!(t.ended("bridge").await.0, StepOutcome::Done);
    // The DRILL notice went to the drill channel and the drill webhook only.
    let notices: Vec<_> = t
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.text.contains("DRILL"))
        .collect();
    assert!(
        notices.iter().any(|m| m.channel == "C_DRILL"),
        "{notices:?}"
    );
    assert!(
        !t.slack
            .messages()
            .iter()
            .any(|m| m.channel == "C_INCIDENTS" || m.channel == "C_GENERAL"),
        "a drill disturbs no announcement channel"
    );
    assert!(
        texts(&t.drills).iter().any(|m| m.contains("[DRILL]")),
        "{:?}",
        texts(&t.drills)
    );
    // The checklist in the incident channel has a Done button per open manual step.
    let checklist = t
        .slack
        .messages()
        .into_iter()
        .find(|m| {
            m.blocks
                .as_ref()
                .is_some_and(|b| b.to_string().contains("fb_runbook_done"))
        })
        .expect("checklist posted");
    let blocks = checklist.blocks.clone().unwrap().to_string();
    for step in [
        "restore-db",
        "confirm-deps",
        "first-db",
        "second-db",
        "core-standby",
        "lift",
    ] {
        assert!(
            blocks.contains(&format!("1:{step}")),
            "{step} button: {blocks}"
        );
    }

    assert_eq!(t.at(1).await, 1, "the page fires at T+1m");
    assert!(
        texts(&t.drills)
            .iter()
            .any(|m| m.contains("[DRILL]") && m.contains("database restore SOP"))
    );
    assert!(t.pager.log().is_empty(), "a drill pages nobody");

    assert_eq!(t.at(2).await, 1, "the freeze fires at T+2m");
    for repo in ["acme/api", "acme/web"] {
        let rulesets = t.gh.rulesets(repo);
        assert!(!rulesets.is_empty(), "{repo} has the drill ruleset");
        assert!(
            rulesets.iter().all(|r| r["enforcement"] == "evaluate"),
            "nothing enforced in a drill: {rulesets:?}"
        );
    }

    // T+4m: restore-db (due T+3m) is a minute past its target: its owner is nudged once,
    // then Bob presses its Done button.
    assert_eq!(t.at(4).await, 1, "one nudge");
    let nudges: Vec<_> = t
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.text.contains("restore-db") && m.text.contains("still open"))
        .collect();
    assert_eq!(nudges.len(), 1, "{nudges:?}");
    assert!(nudges[0].text.contains("team dba"), "{}", nudges[0].text);
    let channel = checklist.channel.clone();
    let resp = sender
        .button("fb_runbook_done", "1:restore-db", &channel, "U_BOB")
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        t.ended("restore-db").await,
        (StepOutcome::Done, 240, "slack:U_BOB".into())
    );

    // T+6m: confirm-deps ticked from the CLI grammar.
    t.at(6).await;
    let cli = Actor::new(Source::Cli, "carol", "carol");
    let cmd = command::parse_words(
        &[
            "runbook",
            "done",
            "1",
            "confirm-deps",
            "three",
            "services",
            "affected",
        ],
        ParseOptions {
            bare_number_is_ref: true,
        },
        Utc::now(),
    )
    .unwrap();
    let out = t.service().apply(cmd, &cli).await.expect("runbook done");
    assert!(
        out.reply
            .text
            .contains("done at T+6m (target T+5m, 1m late)"),
        "{}",
        out.reply.text
    );

    assert_eq!(t.at(9).await, 0, "nothing is due between T+6m and T+10m");
    assert!(
        !texts(&t.drills)
            .iter()
            .any(|m| m.contains("degraded service"))
    );
    t.at(10).await;
    assert!(
        texts(&t.drills)
            .iter()
            .any(|m| m.starts_with("[DRILL]") && m.contains("degraded service")),
        "the customer notice goes to the drill route at T+10m: {:?}",
        texts(&t.drills)
    );
    assert!(
        t.statuspage.log().is_empty(),
        "no customer was told anything"
    );

    // Planned versus actual: the automatic steps ended exactly at their targets.
    for (step, secs) in [
        ("announce", 0),
        ("bridge", 0),
        ("page-dba", 60),
        ("freeze", 120),
        ("tell-customers", 600),
    ] {
        let (outcome, at, by) = t.ended(step).await;
        assert_eq!(
            (outcome, at, by.as_str()),
            (StepOutcome::Done, secs, "system:firebreak"),
            "{step}"
        );
    }
    assert_eq!(t.ended("confirm-deps").await.2, "cli:carol");
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let steps: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::RunbookStep)
        .collect();
    assert!(
        steps
            .iter()
            .any(|e| e.text.contains("`freeze`") && e.text.contains("DRILL freeze")),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|e| e.text.contains("`restore-db`")
                && e.text.contains("T+4m (target T+3m, 1m late)"))
    );
    // The checklist was edited in place as steps ended.
    let now = t
        .slack
        .messages()
        .into_iter()
        .find(|m| m.ts == checklist.ts && m.channel == checklist.channel)
        .unwrap();
    assert!(now.edits >= 1 && !now.blocks.unwrap().to_string().contains("1:restore-db"));
}

async fn real_run_freezes_at_t2_and_tells_customers_at_t10(backend: Backend) {
    let t = rig(backend).await;
    t.app.ok("declare sev1 us-east-1 is down").await;
    t.at(0).await;
    assert!(
        t.gh.rulesets("acme/api").is_empty(),
        "no freeze before T+2m"
    );
    t.at(1).await;
    assert!(
        texts(&t.pager)
            .iter()
            .any(|m| m.contains("database restore SOP") && !m.contains("DRILL"))
    );
    t.at(2).await;
    for repo in ["acme/api", "acme/web"] {
        let rulesets = t.gh.rulesets(repo);
        assert!(
            rulesets.iter().any(|r| r["enforcement"] == "active"),
            "{repo}: {rulesets:?}"
        );
    }
    t.at(9).await;
    let told = |r: &Receiver| {
        texts(r)
            .into_iter()
            .filter(|m| m.contains("degraded service"))
            .count()
    };
    assert_eq!(
        told(&t.statuspage),
        0,
        "customers are not told before T+10m"
    );
    t.at(10).await;
    assert_eq!(
        told(&t.statuspage),
        1,
        "customers told once at T+10m: {:?}",
        texts(&t.statuspage)
    );
    assert_eq!(told(&t.drills), 0);
    assert_eq!(t.ended("tell-customers").await.1, 600);
}

const SMALL: &str = r#"
title = "Small"
severities = ["sev2"]

[[step]]
id = "restore"
title = "Restore the database"
at = "T+3m"
owner = "commander"

[[step]]
id = "bridge"
title = "Open the bridge"
at = "T+2m"
action = "link"
url = "https://meet.example.com/x"
"#;

fn small_config(dir: &tempfile::TempDir) -> String {
    format!(
        "[runbooks]\ndir = \"{}\"\nnudge_after = \"1m\"\n",
        dir.path().display()
    )
}

async fn a_late_step_nudges_its_owner_once_across_a_restart_and_two_replicas(backend: Backend) {
    let dir = runbook_dir(&[("small", SMALL)]);
    let ts = common::service(backend, test_config(&small_config(&dir))).await;
    ts.ok("declare sev2 Checkout slow").await;
    ts.ok("ack INC-1").await;
    ts.clock.advance(chrono::Duration::minutes(5));
    // Two replicas sweep at the same moment: the bridge fires once and the owner of the
    // restore step is nudged once.
    let replica = App::with_store(
        test_config(&small_config(&dir)),
        ts.db.store().await,
        Default::default(),
    )
    .unwrap()
    .with_clock(Arc::new(ts.clock.clone()));
    let (a, b) = tokio::join!(
        ts.app.service.run_runbooks(),
        replica.service.run_runbooks()
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        2,
        "one fire and one nudge between them"
    );
    // A restart: a new app on the same database finds nothing more to do.
    drop(replica);
    let restarted = App::with_store(
        test_config(&small_config(&dir)),
        ts.db.store().await,
        Default::default(),
    )
    .unwrap()
    .with_clock(Arc::new(ts.clock.clone()));
    ts.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(restarted.service.run_runbooks().await.unwrap(), 0);
    assert_eq!(ts.app.service.run_runbooks().await.unwrap(), 0);
    let (_, timeline) = incident_timeline(&ts.app.store, 1).await;
    let late: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::RunbookStep && e.text.contains("is late"))
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(
        late[0].text.contains("`restore`") && late[0].text.contains("nudged commander"),
        "{}",
        late[0].text
    );
    let fired: Vec<_> = timeline
        .iter()
        .filter(|e| e.text.contains("`bridge`"))
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
}

async fn two_people_ticking_one_step_record_it_once(backend: Backend) {
    let dir = runbook_dir(&[("small", SMALL)]);
    let ts = common::service(backend, test_config(&small_config(&dir))).await;
    ts.ok("declare sev2 Checkout slow").await;
    ts.clock.advance(chrono::Duration::minutes(3));
    let (bob, carol) = (
        Actor::new(Source::Slack, "U_BOB", "bob"),
        Actor::new(Source::Slack, "U_CAROL", "carol"),
    );
    let (a, b) = tokio::join!(
        ts.run_as(&bob, "runbook done INC-1 restore"),
        ts.run_as(&carol, "runbook done INC-1 restore")
    );
    let (ok, refused): (Vec<_>, Vec<_>) = [a, b].into_iter().partition(Result::is_ok);
    assert_eq!((ok.len(), refused.len()), (1, 1));
    let why = refused[0].as_ref().unwrap_err().to_string();
    assert!(
        why.contains("already ended: done at T+3m") || why.contains("ended by someone else"),
        "{why}"
    );
    let (_, timeline) = incident_timeline(&ts.app.store, 1).await;
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.text.contains("`restore`"))
            .count(),
        1
    );
    // Unknown steps and skips without a reason are refused with a sentence.
    let e = ts
        .run("runbook done INC-1 nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has no step \"nope\"; its steps are: restore, bridge"),
        "{e}"
    );
    let e = ts
        .run("runbook skip INC-1 bridge")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("`runbook skip` needs why it is skipped"), "{e}");
    ts.ok("runbook skip INC-1 bridge nobody needs a bridge for this")
        .await;
    let shown = ts.ok("runbook INC-1").await.reply.text;
    assert!(
        shown.contains("✅ T+3m `restore`") && shown.contains("⏭️ T+2m `bridge`"),
        "{shown}"
    );
}

async fn steps_fire_on_real_time_through_their_wake_up_effects(backend: Backend) {
    let book = r#"
title = "Quick"
severities = ["sev3"]

[[step]]
id = "now"
title = "At once"
at = "T+0"
action = "link"
url = "https://example.com/a"

[[step]]
id = "soon"
title = "A second later"
at = "T+1s"
action = "link"
url = "https://example.com/b"
"#;
    let dir = runbook_dir(&[("quick", book)]);
    // The periodic sweep runs every 30 s: only the wake-up effects can fire these in time.
    let app = spawn_app(backend, test_config(&small_config(&dir))).await;
    app.ok("declare sev3 Something odd").await;
    let store = app.app.store.clone();
    let fired = eventually(10, || {
        let store = store.clone();
        async move {
            let inc = store
                .incident_by_number(IncidentNumber(1))
                .await
                .unwrap()
                .unwrap();
            let rb = store.runbook(&inc.id).await.unwrap().unwrap();
            rb.steps
                .iter()
                .all(|s| s.outcome == Some(StepOutcome::Done))
        }
    })
    .await;
    assert!(fired, "both steps fired on time");
    let inc = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let rb = store.runbook(&inc.id).await.unwrap().unwrap();
    let soon = rb.step("soon").unwrap().finished_at.unwrap() - inc.declared_at;
    assert!(
        soon >= chrono::Duration::seconds(1) && soon < chrono::Duration::seconds(4),
        "{soon}"
    );
}

async fn resolving_first_skips_what_is_left(backend: Backend) {
    let dir = runbook_dir(&[("small", SMALL)]);
    let ts = common::service(backend, test_config(&small_config(&dir))).await;
    ts.ok("declare sev2 Checkout slow").await;
    ts.clock.advance(chrono::Duration::minutes(1));
    ts.ok("resolve INC-1 it was a blip").await;
    ts.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(
        ts.app.service.run_runbooks().await.unwrap(),
        0,
        "nothing fires or nags after resolve"
    );
    let inc = ts
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let rb = ts.app.store.runbook(&inc.id).await.unwrap().unwrap();
    for r in &rb.steps {
        assert_eq!(r.outcome, Some(StepOutcome::Skipped), "{r:?}");
        assert_eq!(
            r.note.as_deref(),
            Some("not reached: the incident was resolved")
        );
    }
    let e = ts
        .run("runbook done INC-1 restore")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already resolved"), "{e}");
}

async fn a_named_runbook_must_exist(backend: Backend) {
    let dir = runbook_dir(&[("small", SMALL)]);
    let ts = common::service(backend, test_config(&small_config(&dir))).await;
    let e = ts
        .run("declare sev1 DB down --runbook nope")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "There is no runbook named \"nope\"; the runbooks are: small."
    );
    assert!(
        ts.app
            .store
            .incident_by_number(IncidentNumber(1))
            .await
            .unwrap()
            .is_none()
    );
    // Without --runbook, a severity no runbook lists gets none.
    let out = ts.ok("declare sev1 DB down").await;
    assert!(!out.reply.text.contains("Runbook"), "{}", out.reply.text);
    let out = ts.ok("declare sev2 DB slow").await;
    assert!(
        out.reply.text.contains("Runbook small attached (2 steps)"),
        "{}",
        out.reply.text
    );
}

async fn starting_a_step_is_timed_and_said_once(backend: Backend) {
    let dir = runbook_dir(&[("small", SMALL)]);
    let ts = common::service(backend, test_config(&small_config(&dir))).await;
    ts.ok("declare sev2 Checkout slow").await;
    ts.clock.advance(chrono::Duration::minutes(2));
    let bob = Actor::new(Source::Slack, "U_BOB", "bob");
    let out = ts
        .run_as(&bob, "runbook start INC-1 restore")
        .await
        .unwrap();
    assert_eq!(
        out.reply.text,
        "Runbook step `restore` (Restore the database) started at T+2m (target T+3m)."
    );
    let e = ts
        .run("runbook start INC-1 restore")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(e, "Runbook step `restore` was already started at T+2m.");
    let shown = ts.ok("runbook INC-1").await.reply.text;
    assert!(
        shown.contains("🔄 T+3m `restore`") && shown.contains("started T+2m (due T+3m)"),
        "{shown}"
    );
    ts.clock.advance(chrono::Duration::minutes(3));
    ts.run_as(&bob, "runbook done INC-1 restore").await.unwrap();
    let inc = ts
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let rb = ts.app.store.runbook(&inc.id).await.unwrap().unwrap();
    let r = rb.step("restore").unwrap();
    assert_eq!(r.started_by.as_deref(), Some("slack:U_BOB"));
    assert_eq!(
        (r.finished_at.unwrap() - r.started_at.unwrap()).num_minutes(),
        3
    );
    let (_, timeline) = incident_timeline(&ts.app.store, 1).await;
    let texts: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::RunbookStep)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "Runbook step `restore` (Restore the database) started at T+2m (target T+3m)",
            "Runbook step `restore` (Restore the database) done at T+5m (target T+3m, 2m late)",
        ]
    );
}
