//! The GitHub adapter when things go wrong, on SQLite and Postgres: redelivered and crashed
//! webhooks, double submits, one bad repository among good ones, and GitHub down for longer
//! than the old attempt budget. Also that the reconciler reports to incident rooms only as
//! neutral intents, with keys that a retry reproduces.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{deliver_as, github_config, integrations, signed};
use common::*;
use firebreak::config::Config;
use firebreak::effects::planner::{EffectPlanner, Intent, Planners};
use firebreak::effects::worker::Worker;
use firebreak::effects::{Effect, EffectState, NewEffect, TypedEffect};
use firebreak::github::effect::{self, EXEMPT, PR_STATUS, PUBLISH_POSTMORTEM, RECONCILE};
use firebreak::github::freeze::{RULESET_NAME, STATUS_CONTEXT};
use firebreak::github::handler::GitHubEffects;
use firebreak::incident::{Actor, EntryKind, IncidentId, Outcome, Source};

on_both!(
    redelivered_webhooks_queue_nothing_and_a_crashed_delivery_is_processed,
    double_submits_and_retries_queue_one_effect,
    one_bad_repository_never_blocks_the_others,
    github_down_longer_than_the_old_attempt_budget_then_back,
    freeze_reports_go_out_as_neutral_intents_with_stable_keys,
);

const MINUTE: Duration = Duration::from_millis(100);
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/github-webhooks"
);
/// The head of the pull request in the vendored `pull_request.*` fixtures.
const FIXTURE_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const FIXTURE_REPO: &str = "Codertocat/Hello-World";

struct Harness {
    app: TestApp,
    gh: FakeGitHub,
}

async fn harness(backend: Backend, config: Config) -> Harness {
    let gh = FakeGitHub::start(Limits {
        minute: MINUTE,
        ..Limits::default()
    })
    .await;
    let app = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    Harness { app, gh }
}

fn config(repos: &str, extra: &str) -> Config {
    test_config(&format!("{}{extra}", github_config(repos, "100ms", "")))
}

impl Harness {
    async fn run(&self, line: &str) -> Outcome {
        let cmd = firebreak::incident::command::parse_line(line, Default::default()).unwrap();
        let actor = Actor::new(Source::Cli, "ops", "ops");
        self.app
            .app
            .service
            .apply(cmd, &actor)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// Waits for the queue to empty, and checks nothing failed.
    async fn settle(&self) {
        let store = &self.app.app.store;
        let idle = queue_idle(store, 60).await;
        assert!(
            idle,
            "effects did not settle: {:?}",
            store.list_effects(false, 20).await.unwrap()
        );
        let failed = store.list_effects(true, 20).await.unwrap();
        assert!(
            failed.is_empty(),
            "effects failed: {:?}",
            failed.iter().map(|e| &e.last_error).collect::<Vec<_>>()
        );
    }

    async fn effects(&self, kind: &str) -> Vec<Effect> {
        let all = self.app.app.store.list_effects(false, 1000).await.unwrap();
        all.into_iter().filter(|e| e.kind == kind).collect()
    }

    fn ruleset(&self, repo: &str) -> Option<serde_json::Value> {
        self.gh
            .rulesets(repo)
            .into_iter()
            .find(|r| r["name"] == RULESET_NAME)
    }

    /// Requests GitHub answered with `status` whose path contains `path`.
    fn answered(&self, method: &str, path: &str, status: u16) -> usize {
        self.gh
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path) && r.status == status)
            .count()
    }
}

/// Makes every insert into `effects` fail until [`stop_crashing`]: the transaction that
/// records a delivery and queues its effect dies before it commits.
async fn crash_before_commit(db: &TestDb) {
    let statements: &[&str] = match db.backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER test_crash BEFORE INSERT ON effects BEGIN SELECT RAISE(ABORT, 'simulated crash before commit'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION test_crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated crash before commit'; END $$",
            "CREATE TRIGGER test_crash BEFORE INSERT ON effects FOR EACH ROW EXECUTE FUNCTION test_crash()",
        ],
    };
    raw_sql(db, statements).await;
}

async fn stop_crashing(db: &TestDb) {
    let statement = match db.backend {
        Backend::Sqlite => "DROP TRIGGER test_crash",
        Backend::Postgres => "DROP TRIGGER test_crash ON effects",
    };
    raw_sql(db, &[statement]).await;
}

async fn raw_sql(db: &TestDb, statements: &[&str]) {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for s in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*s))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for s in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*s))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}

async fn redelivered_webhooks_queue_nothing_and_a_crashed_delivery_is_processed(backend: Backend) {
    let t = harness(backend, config(&format!("\"{FIXTURE_REPO}\""), "")).await;
    t.gh.add_repo(FIXTURE_REPO, "master");
    t.run("freeze").await;
    t.settle().await;
    let opened = std::fs::read(format!("{FIXTURES}/pull_request.opened.0.json")).unwrap();
    let deliver = |id: &'static str| {
        let (app, body) = (&t.app, opened.clone());
        async move {
            let resp = deliver_as(app, "pull_request", &body, signed(&body), id).await;
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };

    assert_eq!(deliver("d-1").await, (200, "queued".into()));
    assert_eq!(
        deliver("d-1").await,
        (200, "duplicate delivery".into()),
        "a redelivery is acknowledged"
    );
    assert_eq!(t.effects(PR_STATUS).await.len(), 1, "and queues nothing");
    t.settle().await;
    let status_posts = || t.answered("POST", &format!("/statuses/{FIXTURE_SHA}"), 201);
    assert_eq!(status_posts(), 1);
    assert_eq!(
        t.gh.latest_status(FIXTURE_REPO, FIXTURE_SHA, STATUS_CONTEXT)
            .as_deref(),
        Some("failure")
    );

    // The first handling of d-2 dies before its transaction commits: nothing is recorded,
    // so GitHub's redelivery is processed in full.
    crash_before_commit(&t.app.db).await;
    assert_eq!(deliver("d-2").await.0, 500);
    stop_crashing(&t.app.db).await;
    assert_eq!(deliver("d-2").await, (200, "queued".into()));
    let queued = t.effects(PR_STATUS).await;
    assert_eq!(queued.len(), 2, "two deliveries, two effects");
    assert_ne!(queued[0].idempotency_key, queued[1].idempotency_key);
    t.settle().await;
    assert_eq!(
        status_posts(),
        1,
        "the second delivery for the same head writes nothing GitHub already shows"
    );
}

async fn double_submits_and_retries_queue_one_effect(backend: Backend) {
    let publish = "[postmortem.github]\nrepo = \"acme/postmortems\"\n";
    let t = harness(backend, config("\"acme/api\"", publish)).await;
    t.gh.add_repo("acme/api", "main");
    t.gh.add_repo("acme/postmortems", "main");
    let hotfix = "1".repeat(40);
    t.gh.add_pull("acme/api", 5, &hotfix, "main");
    t.run("declare sev1 Payments down").await;
    t.settle().await;

    let first = t.run("freeze exempt acme/api#5 --reason hotfix").await;
    let again = t.run("freeze exempt acme/api#5 --reason hotfix").await;
    assert_eq!(
        first.effects, again.effects,
        "a double submit is one effect"
    );
    assert_eq!(t.effects(EXEMPT).await.len(), 1);
    t.settle().await;
    let successes =
        t.gh.statuses("acme/api", &hotfix)
            .into_iter()
            .filter(|s| s["state"] == "success")
            .count();
    assert_eq!(successes, 1, "one success status for one exemption");

    let first = t.run("postmortem publish INC-1").await;
    let again = t.run("postmortem publish INC-1").await;
    assert_eq!(first.effects, again.effects);
    t.settle().await;
    assert_eq!(t.effects(PUBLISH_POSTMORTEM).await.len(), 1);
    t.run("postmortem set INC-1 root-cause A config push").await;
    t.run("postmortem publish INC-1").await;
    t.settle().await;
    assert_eq!(
        t.effects(PUBLISH_POSTMORTEM).await.len(),
        2,
        "new material is a new publish"
    );
    assert_eq!(t.gh.open_pulls("acme/postmortems").len(), 1);

    let reconciles = t.effects(RECONCILE).await.len();
    let generation = t.app.app.store.freeze_generation().await.unwrap();
    let service = &t.app.app.service;
    let a = service
        .enqueue(&effect::reconcile(generation, None))
        .await
        .unwrap();
    let b = service
        .enqueue(&effect::reconcile(generation, None))
        .await
        .unwrap();
    assert_eq!(a, b, "a retried reconcile request is the same effect");
    assert_eq!(t.effects(RECONCILE).await.len(), reconciles);
    t.settle().await;
}

async fn one_bad_repository_never_blocks_the_others(backend: Backend) {
    let repos = "\"acme/api\", \"acme/bad\", \"acme/gone\", \"acme/web\"";
    let t = harness(backend, config(repos, "")).await;
    for repo in ["acme/api", "acme/bad", "acme/web"] {
        t.gh.add_repo(repo, "main");
    }
    // acme/gone does not exist (404 everywhere); acme/bad refuses its ruleset (422).
    t.gh.fail("POST", "/repos/acme/bad/rulesets", 422);
    let (api_pr, web_pr) = ("a".repeat(40), "b".repeat(40));
    t.gh.add_pull("acme/api", 1, &api_pr, "main");
    t.gh.add_pull("acme/web", 2, &web_pr, "main");
    t.run("declare sev1 Checkout down").await;
    t.settle().await;

    assert!(t.ruleset("acme/api").is_some() && t.ruleset("acme/web").is_some());
    for (repo, sha) in [("acme/api", &api_pr), ("acme/web", &web_pr)] {
        assert_eq!(
            t.gh.latest_status(repo, sha, STATUS_CONTEXT).as_deref(),
            Some("failure"),
            "{repo} got its statuses"
        );
    }
    let store = &t.app.app.store;
    let failures = || async {
        let (_, timeline) = incident_timeline(store, 1).await;
        timeline
            .into_iter()
            .filter(|e| e.kind == EntryKind::FreezeApplied && e.text.contains("could not apply"))
            .map(|e| e.text)
            .collect::<Vec<_>>()
    };
    let reported = failures().await;
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(
        reported
            .iter()
            .any(|t| t.starts_with("acme/bad:") && t.contains("422"))
    );
    assert!(
        reported
            .iter()
            .any(|t| t.starts_with("acme/gone:") && t.contains("404"))
    );
    let status = t.run("freeze status").await.reply.text;
    assert!(
        status.contains("Ruleset in place on 2/4 targets") && status.contains("Failing: acme/bad"),
        "{status}"
    );

    t.app.app.queue_reconcile().await.unwrap();
    t.settle().await;
    assert_eq!(failures().await.len(), 2, "each failure is reported once");

    t.gh.heal();
    t.run("freeze acme/bad").await;
    t.settle().await;
    assert!(t.ruleset("acme/bad").is_some(), "nothing is stuck");
    let targets = store.freeze_targets().await.unwrap();
    let bad = targets.iter().find(|t| t.target == "acme/bad").unwrap();
    assert_eq!(
        (bad.actual.as_str(), bad.last_error.as_deref()),
        ("active", None)
    );
}

async fn github_down_longer_than_the_old_attempt_budget_then_back(backend: Backend) {
    let effects = "[effects]\nbase_backoff = \"50ms\"\nmax_backoff = \"200ms\"\nbreaker_threshold = 2\nbreaker_cooldown = \"300ms\"\npoll_interval = \"20ms\"\nlease = \"5s\"\ncli_wait = \"5s\"\n";
    let config = Config::parse(&format!(
        "{effects}{}",
        github_config("\"acme/api\", \"acme/web\"", "100ms", "")
    ))
    .unwrap();
    let t = harness(backend, config).await;
    let mut heads = Vec::new();
    for (n, repo) in ["acme/api", "acme/web"].into_iter().enumerate() {
        t.gh.add_repo(repo, "main");
        let sha = format!("{n}").repeat(40);
        t.gh.add_pull(repo, 10 + n as u64, &sha, "main");
        heads.push((repo, sha));
    }
    t.gh.go_down(503);
    t.run("declare sev1 Everything is down").await;
    let outage = eventually(20, || async { t.gh.requests().len() > 12 }).await;
    assert!(outage, "the worker kept trying GitHub past 8 attempts");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = &t.app.app.store;
    assert_eq!(
        store
            .effect_counts(chrono::Utc::now())
            .await
            .unwrap()
            .failed,
        0
    );
    let reconcile = &t.effects(RECONCILE).await[0];
    assert_ne!(reconcile.state, EffectState::Done);

    t.gh.heal();
    let back = std::time::Instant::now();
    t.settle().await;
    assert!(
        back.elapsed() < Duration::from_secs(10),
        "{:?}",
        back.elapsed()
    );
    for (repo, sha) in &heads {
        assert!(t.ruleset(repo).is_some(), "{repo}");
        assert_eq!(
            t.gh.latest_status(repo, sha, STATUS_CONTEXT).as_deref(),
            Some("failure")
        );
        assert_eq!(t.answered("POST", &format!("/statuses/{sha}"), 201), 1);
    }
    assert_eq!(
        t.answered("POST", "/rulesets", 201),
        2,
        "each ruleset created once"
    );
    let (_, timeline) = incident_timeline(store, 1).await;
    let created = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::FreezeApplied && e.text.contains("created"))
        .count();
    assert_eq!(created, 2, "the freeze completed exactly once");
    let done = timeline
        .iter()
        .filter(|e| e.text.starts_with("Merge freeze reconciled"))
        .count();
    assert_eq!(done, 1, "{timeline:?}");
}

/// Records every intent it is asked to plan as an effect nobody runs.
struct Recorder;

#[derive(serde::Serialize, serde::Deserialize)]
struct Said {
    intent: String,
    text: String,
}

impl TypedEffect for Said {
    fn kind(&self) -> &'static str {
        "test.said"
    }
}

impl EffectPlanner for Recorder {
    fn plan(
        &self,
        _: &firebreak::incident::Incident,
        _: &firebreak::incident::rules::IncidentEvent,
        _: &Actor,
    ) -> anyhow::Result<Vec<NewEffect>> {
        Ok(Vec::new())
    }

    fn plan_intent(&self, incident: &IncidentId, intent: &Intent, key: &str) -> Vec<NewEffect> {
        let said = match intent {
            Intent::Progress { key, text } => Said {
                intent: format!("progress:{key}"),
                text: text.clone(),
            },
            Intent::RoomPost { text } => Said {
                intent: "room".into(),
                text: text.clone(),
            },
            _ => return Vec::new(),
        };
        vec![NewEffect::typed(
            Some(incident.clone()),
            &said,
            format!("test.said:{key}"),
        )]
    }
}

async fn freeze_reports_go_out_as_neutral_intents_with_stable_keys(backend: Backend) {
    let gh = FakeGitHub::start(Limits {
        minute: MINUTE,
        ..Limits::default()
    })
    .await;
    for r in 0..8 {
        gh.add_repo(&format!("acme/svc-{r}"), "main");
    }
    let merged = chrono::Utc::now() - chrono::Duration::minutes(20);
    gh.add_merged_pull("acme/svc-3", 77, "Raise timeouts", "dana", "main", merged);
    let db = TestDb::new(backend).await;
    let config = config("\"acme/*\"", "");
    let app =
        firebreak::app::App::with_store(config, db.store().await, integrations(&gh.url)).unwrap();
    let store = app.store.clone();
    let handler = Arc::new(GitHubEffects {
        client: app.github_client.clone().unwrap(),
        store: store.clone(),
        config: app.config.github.clone(),
        chat: Planners(vec![Arc::new(Recorder)]),
        public_url: None,
    });
    let worker = Worker::new(
        store.clone(),
        app.config.effects.worker(),
        Arc::new(tokio::sync::Notify::new()),
    )
    .with_handler(handler.clone());
    let cmd = firebreak::incident::command::parse_line("declare sev1 Slow", Default::default());
    let out = app
        .service
        .apply(cmd.unwrap(), &Actor::new(Source::Cli, "ops", "ops"))
        .await
        .unwrap();
    let report = worker.drain(&out.effects, Duration::from_secs(30)).await;
    assert_eq!(
        report.unwrap().delivered.len(),
        2,
        "reconcile and recent changes"
    );
    let said = || async {
        let all = store.list_effects(false, 1000).await.unwrap();
        let mut said: Vec<Effect> = all.into_iter().filter(|e| e.kind == "test.said").collect();
        said.reverse();
        said
    };
    // Progress during phase 1 is queued in the background; let it land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = said().await;
    let progress: Vec<&Effect> = first
        .iter()
        .filter(|e| e.payload["intent"] == "progress:freeze")
        .collect();
    assert!(progress.len() >= 3, "reported as it goes: {first:?}");
    let text = |e: &Effect| e.payload["text"].as_str().unwrap().to_string();
    assert!(
        progress.iter().any(|e| {
            let text = text(e);
            text.contains("Merge freeze reconciled") && text.contains("ruleset active on 8/8")
        }),
        "{progress:?}"
    );
    let room: Vec<&Effect> = first
        .iter()
        .filter(|e| e.payload["intent"] == "room")
        .collect();
    assert_eq!(room.len(), 1);
    assert!(text(room[0]).contains("acme/svc-3#77 Raise timeouts"));
    let reconcile = store
        .effects_by_ids(&out.effects)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == RECONCILE)
        .unwrap();
    assert!(
        progress.iter().all(|e| e
            .idempotency_key
            .starts_with(&format!("test.said:{}:", reconcile.idempotency_key))),
        "keys derive from the reconcile's own key"
    );

    // The same reconcile run again (a retry after a crash) plans nothing new.
    use firebreak::effects::handler::EffectHandler;
    handler.run(&reconcile).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(said().await.len(), first.len());
}
