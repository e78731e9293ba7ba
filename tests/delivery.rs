//! Delivery that survives a bad day: a receiver down for longer than the old attempt budget,
//! one bad webhook among several, SIGTERM past the grace period, a model of the worker with
//! random failures and crashes, `/readyz` on a store that refuses writes, and the config
//! values that contradict each other.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::process::*;
use common::receiver::Receiver;
use common::*;
use firebreak::config::Config;
use firebreak::effects::handler::{EffectError, EffectHandler};
use firebreak::effects::worker::{Worker, WorkerConfig};
use firebreak::effects::{Effect, EffectState, NewEffect};
use firebreak::store::Store;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

on_both!(
    long_outage_then_every_notice_once_soon_after_recovery,
    breaker_probes_spend_no_attempts,
    one_bad_webhook_does_not_hold_up_the_others,
    a_hanging_webhook_takes_at_most_half_the_worker,
    sigterm_past_the_grace_hands_the_effect_back,
    worker_model_with_random_failures_and_crashes,
    put_back_and_queued_behind_effects_run_when_due_not_at_the_next_poll,
    readyz_says_503_when_the_store_refuses_writes,
);

/// Effects settings under which an outage of 4 s outlasts the old budget of eight attempts
/// (backoff ceilings 20 ms · (1 + 2 + … + 64) = 2.54 s), while a long `max_backoff` means
/// only the release on recovery, not a short backoff, can make delivery prompt afterwards.
const SHORT: &str = "[slack]\ntimeout = \"1s\"\n[github]\ntimeout = \"1s\"\n[discord]\ntimeout = \"1s\"\n[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"20s\"\npoll_interval = \"20ms\"\nlease = \"5s\"\nattempt_timeout = \"2s\"\nbreaker_threshold = 2\nbreaker_cooldown = \"500ms\"\ncli_wait = \"300ms\"\n[notify]\ntimeout = \"1s\"\n";

fn hooks(receiver: &Receiver, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!(
                "[[notify.webhook]]\nname = \"{n}\"\nurl = \"{}\"\nmin_severity = \"SEV4\"\nper_second = 50\nburst = 50\n",
                receiver.url(&format!("/{n}"))
            )
        })
        .collect()
}

/// Three incidents, each declared and updated twice, to three webhooks: 27 notices, three
/// FIFO queues per webhook (one per incident), so each webhook's breaker probes with one and
/// holds the others back.
async fn long_outage_then_every_notice_once_soon_after_recovery(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let config = Config::parse(&format!("{SHORT}{}", hooks(&receiver, &["a", "b", "c"]))).unwrap();
    let app = spawn_app(backend, config).await;
    for n in 1..=3 {
        let declared = app.ok(&format!("declare sev1 Region {n} is down")).await;
        assert!(
            declared
                .reply
                .text
                .contains("Company-wide notice queued to 3 webhooks."),
            "{}",
            declared.reply.text
        );
    }
    for n in 1..=3 {
        app.ok(&format!("update INC-{n} Rolling back {n}")).await;
        app.ok(&format!("status INC-{n} monitoring")).await;
    }
    // Down for 4 s: longer than the old attempt budget, with many breaker probes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let counts = queue(&app.app.store).await;
    assert_eq!(counts.failed, 0, "nothing is given up during an outage");
    assert!(receiver.log().len() > 10, "the receiver was being tried");

    let recovered = Instant::now();
    receiver.set_down(false);
    assert!(
        eventually(10, || async { receiver.distinct_keys().len() == 27 }).await,
        "all 27 notices arrive: {:?}",
        receiver.distinct_keys()
    );
    assert!(queue_idle(&app.app.store, 5).await);
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 27, "each notice exactly once");
    // Each webhook has its own breaker. Its first notice waits for that breaker's next probe
    // (a 500 ms cooldown); the probe's success releases everything held back for that
    // webhook at once: without that, the rest would wait another cooldown. (The three
    // breakers' probes are not in step with each other, so only each webhook's own notices
    // are held to arriving together.)
    for hook in ["a", "b", "c"] {
        let times: Vec<Instant> = accepted
            .iter()
            .filter(|r| {
                r.key
                    .as_deref()
                    .is_some_and(|k| k.ends_with(&format!(":{hook}")))
            })
            .map(|r| r.at)
            .collect();
        assert_eq!(times.len(), 9, "webhook {hook}: nine notices");
        let first = *times.iter().min().unwrap() - recovered;
        let last = *times.iter().max().unwrap() - recovered;
        assert!(
            first < Duration::from_secs(1),
            "webhook {hook}: first notice {first:?} after recovery"
        );
        assert!(
            last - first < Duration::from_millis(300),
            "webhook {hook}: all within 300 ms of its first ({first:?} .. {last:?} after recovery)"
        );
    }
    // In order per webhook and incident: declared, update, status.
    let mut per_queue: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in accepted {
        let key = r.key.clone().unwrap();
        let hook = key.rsplit(':').next().unwrap().to_string();
        let incident = key.split(':').nth(1).unwrap().to_string();
        per_queue.entry((hook, incident)).or_default().push(r.text);
    }
    assert_eq!(per_queue.len(), 9);
    for (queue, texts) in per_queue {
        let order = [
            texts[0].contains("declared"),
            texts[1].contains("Rolling back"),
            texts[2].contains("is now monitoring"),
        ];
        assert_eq!(order, [true; 3], "{queue:?}: {texts:#?}");
    }
    let counts = queue(&app.app.store).await;
    assert_eq!((counts.failed, counts.pending, counts.running), (0, 0, 0));
}

/// One notice, a receiver down for 3 s and a breaker probing every 100 ms: some thirty
/// probes, each of which used to spend one of eight attempts. Now none is spent, so the
/// notice waits out the outage and is delivered once, with only its real attempts counted.
async fn breaker_probes_spend_no_attempts(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let toml = format!(
        "{}max_attempts = 8\n{}",
        SHORT
            .replace(
                "breaker_cooldown = \"500ms\"",
                "breaker_cooldown = \"100ms\""
            )
            .replace("[notify]\ntimeout = \"1s\"\n", ""),
        hooks(&receiver, &["general"])
    );
    let app = spawn_app(backend, Config::parse(&toml).unwrap()).await;
    app.ok("declare sev1 Storage is down").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.log().len() >= 20, "{} tries", receiver.log().len());
    receiver.set_down(false);
    assert!(eventually(5, || async { receiver.accepted().len() == 1 }).await);
    assert!(queue_idle(&app.app.store, 5).await);
    let effect = app
        .app
        .store
        .list_effects(false, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(effect.state, EffectState::Done, "{effect:?}");
    assert!(effect.attempts < 8, "{} attempts counted", effect.attempts);
}

async fn one_bad_webhook_does_not_hold_up_the_others(backend: Backend) {
    let receiver = Receiver::start().await;
    let mut toml = format!("{SHORT}{}", hooks(&receiver, &["good1", "good2"]));
    // A webhook that was deleted on the other side answers 404: a permanent failure.
    let gone = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(404))
        .mount(&gone)
        .await;
    toml.push_str(&format!(
        "[[notify.webhook]]\nname = \"gone\"\nurl = \"{}/x\"\nmin_severity = \"SEV4\"\n",
        gone.uri()
    ));
    // A webhook that is down for good answers 503: retried, never blocking the others.
    let down = Receiver::start().await;
    down.set_down(true);
    toml.push_str(&hooks(&down, &["down"]));
    let app = spawn_app(backend, Config::parse(&toml).unwrap()).await;
    for line in [
        "declare sev2 Search is slow",
        "update INC-1 Found it",
        "resolve INC-1 Fixed",
    ] {
        app.ok(line).await;
    }
    assert!(
        eventually(5, || async { receiver.distinct_keys().len() == 6 }).await,
        "both good webhooks got all three notices"
    );
    let failed = app.app.store.list_effects(true, 10).await.unwrap();
    assert!(
        eventually(5, || async {
            app.app.store.list_effects(true, 10).await.unwrap().len() == 3
        })
        .await,
        "the 404 webhook's three notices failed for good: {failed:?}"
    );
    for e in app.app.store.list_effects(true, 10).await.unwrap() {
        assert!(
            e.last_error
                .as_deref()
                .unwrap()
                .contains("webhook \"gone\" answered HTTP 404"),
            "{e:?}"
        );
    }
    // A good webhook's notice arrives before its outcome is written (outcomes go in
    // batches), so it may still count as running for a moment; then only the 503
    // webhook's three are left, waiting.
    let waiting = || async {
        let counts = queue(&app.app.store).await;
        counts.pending + counts.running
    };
    assert!(
        eventually(5, || async { waiting().await == 3 }).await,
        "the 503 webhook's notices keep waiting: {} pending or running",
        waiting().await
    );
}

/// Ten incidents to two webhooks that never answer (until an 8 s timeout) and to a healthy
/// one. Each hanging webhook gets at most half the worker, and an attempt hanging for 2 s
/// stops holding a slot, so the healthy webhook's notices arrive within seconds instead of
/// queueing behind the hanging attempts until they time out.
async fn a_hanging_webhook_takes_at_most_half_the_worker(backend: Backend) {
    let hanging = Receiver::start().await;
    hanging.set_delay(Duration::from_secs(60));
    let healthy = Receiver::start().await;
    let toml = format!(
        "{}{}{}",
        SHORT
            .replace("lease = \"5s\"", "lease = \"20s\"")
            .replace("attempt_timeout = \"2s\"", "attempt_timeout = \"9s\"")
            .replace("timeout = \"1s\"", "timeout = \"8s\""),
        hooks(&hanging, &["hang1", "hang2"]),
        hooks(&healthy, &["good"])
    );
    let app = spawn_app(backend, Config::parse(&toml).unwrap()).await;
    let started = Instant::now();
    for n in 1..=10 {
        app.ok(&format!("declare sev2 Service {n} is down")).await;
    }
    assert!(
        eventually(10, || async { healthy.accepted().len() == 10 }).await,
        "{} of 10",
        healthy.accepted().len()
    );
    let last = healthy.accepted().iter().map(|r| r.at).max().unwrap() - started;
    assert!(
        last < Duration::from_secs(4),
        "the healthy webhook's last notice came {last:?} after the first declaration"
    );
    for hook in ["hang1", "hang2"] {
        let tries = hanging
            .log()
            .iter()
            .filter(|r| r.key.as_deref().is_some_and(|k| k.ends_with(hook)))
            .count();
        assert!(
            tries <= 4,
            "at most four attempts on {hook} at once: {tries}"
        );
    }
}

async fn sigterm_past_the_grace_hands_the_effect_back(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_secs(30));
    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"500ms\"\n{SHORT}\n{}",
        hooks(&receiver, &["general"])
    );
    let cli = Cli::new(backend, &config).await;
    let store = cli.db.store().await;

    // The CLI's bounded wait ends while its attempt hangs: it hands the effect back.
    let started = Instant::now();
    let out = cli
        .run(&["incident", "declare", "sev1", "Region", "down"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the CLI's wait is bounded"
    );
    assert!(stderr(&out).contains("still pending"), "{}", stderr(&out));
    let effect = only_effect(&store).await;
    assert_eq!(
        effect.state,
        EffectState::Pending,
        "handed back, not left running"
    );

    // serve takes it at once, and hangs on it too; SIGTERM past the grace hands it back.
    let mut serve = cli
        .command(&["serve"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(5, || async { only_effect(&store).await.attempts == 2 }).await,
        "serve claimed it"
    );
    let stopping = Instant::now();
    terminate(&mut serve);
    let status = tokio::task::spawn_blocking(move || serve.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "serve stopped after the grace"
    );
    let effect = only_effect(&store).await;
    assert_eq!(
        effect.state,
        EffectState::Pending,
        "the lease was released on shutdown"
    );
    assert!(effect.run_at <= chrono::Utc::now());

    // The next start delivers it at once, with the same key as every earlier attempt.
    receiver.set_delay(Duration::ZERO);
    let restarted = Instant::now();
    let mut serve = cli
        .command(&["serve"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let delivered = eventually(10, || async { !receiver.accepted().is_empty() }).await;
    let took = restarted.elapsed();
    terminate(&mut serve);
    let _ = tokio::task::spawn_blocking(move || serve.wait()).await;
    assert!(
        delivered && took < Duration::from_secs(2),
        "delivered {took:?} after the restart"
    );
    let log = receiver.log();
    assert!(log.len() >= 3, "{log:?}");
    assert!(
        log.iter().all(|r| r.key == log[0].key && r.key.is_some()),
        "{log:?}"
    );
}

async fn queue(store: &Store) -> firebreak::store::EffectCounts {
    store.effect_counts(chrono::Utc::now()).await.unwrap()
}

async fn only_effect(store: &Store) -> Effect {
    let mut all = store.list_effects(false, 10).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

/// How the model handler treats each effect: fail transiently `transient` times, then
/// succeed, or fail for good.
#[derive(Debug, Clone, Copy)]
struct Fate {
    transient: u32,
    permanent: bool,
}

#[derive(Default)]
struct Tally {
    calls: HashMap<i64, u32>,
    successes: HashMap<i64, u32>,
}

struct ModelHandler {
    fates: HashMap<i64, Fate>,
    tally: Mutex<Tally>,
}

#[async_trait]
impl EffectHandler for ModelHandler {
    fn kinds(&self) -> &'static [&'static str] {
        &["model.op"]
    }

    fn target(&self, effect: &Effect) -> String {
        format!("model:{}", effect.payload["n"].as_i64().unwrap() % 3)
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let n = effect.payload["n"].as_i64().unwrap();
        let fate = self.fates[&n];
        let call = {
            let mut t = self.tally.lock().unwrap();
            let c = t.calls.entry(n).or_default();
            *c += 1;
            *c
        };
        tokio::time::sleep(Duration::from_millis(u64::from(call % 4) * 5)).await;
        if call <= fate.transient {
            return Err(EffectError::retryable("flaky"));
        }
        if fate.permanent {
            return Err(EffectError::permanent("rejected"));
        }
        *self.tally.lock().unwrap().successes.entry(n).or_default() += 1;
        Ok(None)
    }
}

/// Defers each effect once (a rate limit's "come back in 150 ms"), then succeeds; records
/// when each call came.
struct DeferOnce {
    calls: Mutex<Vec<(i64, Instant)>>,
}

#[async_trait]
impl EffectHandler for DeferOnce {
    fn kinds(&self) -> &'static [&'static str] {
        &["model.defer"]
    }

    fn target(&self, _: &Effect) -> String {
        "model:defer".into()
    }

    async fn run(&self, effect: &Effect) -> Result<Option<String>, EffectError> {
        let n = effect.payload["n"].as_i64().unwrap();
        let mut calls = self.calls.lock().unwrap();
        let first = !calls.iter().any(|(m, _)| *m == n);
        calls.push((n, Instant::now()));
        match first && n == 0 {
            true => Err(EffectError::Deferred {
                wait: Duration::from_millis(150),
            }),
            false => Ok(None),
        }
    }
}

/// The claim loop only looks when something may be due, so it must still look at the
/// right moments with a poll far away (10 s): when an effect it put back comes due, and
/// when a finished effect lets the next of its ordering key run (a FIFO of 20).
async fn put_back_and_queued_behind_effects_run_when_due_not_at_the_next_poll(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let enqueue = |n: i64| {
        let store = store.clone();
        async move {
            let effect = NewEffect {
                incident_id: None,
                kind: "model.defer".into(),
                payload: serde_json::json!({ "n": n }),
                idempotency_key: format!("defer:{n}"),
                ordering_key: (n > 0).then(|| "defer-fifo".to_string()),
                audience: None,
                not_before: None,
                records: Vec::new(),
            };
            store.enqueue_one(&effect).await.unwrap();
        }
    };
    let handler = Arc::new(DeferOnce {
        calls: Mutex::new(Vec::new()),
    });
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let worker = Worker::new(store.clone(), config, wake.clone()).with_handler(handler.clone());
    // Alone in the queue, so nothing else makes the loop look: only its noted time can.
    enqueue(0).await;
    let running = tokio::spawn(Arc::new(worker).run(CancellationToken::new(), Duration::ZERO));
    assert!(queue_idle(&store, 3).await, "the put-back effect ran again");
    let calls = handler.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "put back once, then done: {calls:?}");
    let back = calls[1].1 - calls[0].1;
    assert!(
        back >= Duration::from_millis(140) && back < Duration::from_secs(1),
        "back at its time (150 ms), not at the next poll (10 s): {back:?}"
    );
    // A FIFO of 20, queued and announced as a command would: each finish lets the next run.
    for n in 1..=20 {
        enqueue(n).await;
    }
    let queued = Instant::now();
    wake.notify_one();
    let done = queue_idle(&store, 5).await;
    running.abort();
    assert!(done, "all 20 ran");
    let last = handler.calls.lock().unwrap().last().unwrap().1 - queued;
    assert!(
        last < Duration::from_secs(2),
        "each finish lets the next of the FIFO run at once: the 20th ran {last:?} after queueing"
    );
}

fn model_config() -> WorkerConfig {
    WorkerConfig {
        backoff: firebreak::effects::backoff::Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(40),
        },
        poll_interval: Duration::from_millis(10),
        lease: Duration::from_millis(400),
        attempt_timeout: Duration::from_millis(200),
        breaker_threshold: 4,
        breaker_cooldown: Duration::from_millis(50),
        ..WorkerConfig::default()
    }
}

async fn worker_model_with_random_failures_and_crashes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut fates = HashMap::new();
    for n in 0..150i64 {
        fates.insert(
            n,
            Fate {
                transient: rng.random_range(0..4),
                permanent: rng.random_bool(0.15),
            },
        );
        let effect = NewEffect {
            incident_id: None,
            kind: "model.op".into(),
            payload: serde_json::json!({ "n": n }),
            idempotency_key: format!("model:{n}"),
            ordering_key: (n % 5 == 0).then(|| "model-fifo".to_string()),
            audience: None,
            not_before: None,
            records: Vec::new(),
        };
        store.enqueue_one(&effect).await.unwrap();
    }
    let handler = Arc::new(ModelHandler {
        fates: fates.clone(),
        tally: Mutex::new(Tally::default()),
    });
    let start_worker = || {
        let worker = Worker::new(
            store.clone(),
            model_config(),
            Arc::new(tokio::sync::Notify::new()),
        )
        .with_handler(handler.clone());
        tokio::spawn(Arc::new(worker).run(CancellationToken::new(), Duration::ZERO))
    };
    // Crash points: a worker is killed mid-flight (its task dropped, leases left behind)
    // every 120 ms, eight times, while a second worker keeps going.
    let steady = start_worker();
    for _ in 0..8 {
        let crashing = start_worker();
        tokio::time::sleep(Duration::from_millis(rng.random_range(60..180))).await;
        crashing.abort();
    }
    let done = queue_idle(&store, 30).await;
    steady.abort();
    assert!(done, "every effect ends done or failed");

    let effects = store.list_effects(false, 1000).await.unwrap();
    assert_eq!(effects.len(), 150, "none lost");
    let tally = handler.tally.lock().unwrap();
    for e in &effects {
        let n = e.payload["n"].as_i64().unwrap();
        let fate = fates[&n];
        let successes = tally.successes.get(&n).copied().unwrap_or(0);
        if fate.permanent {
            assert_eq!(e.state, EffectState::Failed, "{n}: {e:?}");
            assert_eq!(successes, 0);
        } else {
            assert_eq!(e.state, EffectState::Done, "{n}: {e:?} {fate:?}");
            assert!(successes >= 1, "{n}");
        }
    }
}

/// SQLite: the file opened read-only. Postgres: the database turned read-only under a
/// running server (as after a failover to a replica), its sessions cut.
async fn readyz_says_503_when_the_store_refuses_writes(backend: Backend) {
    let port = free_port();
    let cli = Cli::new(
        backend,
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .await;
    let store = cli.db.store().await; // migrated
    let url = format!("http://127.0.0.1:{port}/readyz");
    let http = reqwest::Client::new();
    let ready = || async { http.get(&url).send().await.is_ok_and(|r| r.status() == 200) };

    let mut serve = cli
        .command(&["serve"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(10, ready).await, "ready on a writable store");
    if backend == Backend::Sqlite {
        terminate(&mut serve);
        let _ = tokio::task::spawn_blocking(move || serve.wait()).await;
        let mut cmd = cli.command(&["serve"]);
        cmd.env("FIREBREAK_DATABASE_URL", format!("{}?mode=ro", cli.db.url));
        serve = cmd.stderr(Stdio::null()).spawn().unwrap();
    } else {
        make_read_only(&cli.db.url).await;
    }
    store.close().await;
    let answer = || async {
        let asked = Instant::now();
        let r = http.get(&url).send().await.ok()?;
        let status = r.status();
        Some((status, asked.elapsed(), r.text().await.unwrap_or_default()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, took, body) = loop {
        match answer().await {
            Some(a) if a.0 != 200 => break a,
            _ => {}
        }
        assert!(Instant::now() < deadline, "never answered 503");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    terminate(&mut serve);
    let _ = tokio::task::spawn_blocking(move || serve.wait()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("refuses writes"), "{body}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// Turns a Postgres database read-only and ends its sessions, so every new one is.
async fn make_read_only(url: &str) {
    let name = url.rsplit('/').next().unwrap();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url())
        .await
        .unwrap();
    for sql in [
        format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

mod postgres_only {
    use super::*;

    /// Two replicas on one Postgres share 500 notices; one is killed halfway. Every notice
    /// arrives, each exactly once by its Idempotency-Key; at most the one in flight when the
    /// replica died arrives twice (the receiver drops it by its key).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_share_the_queue_and_survive_a_kill() {
        let receiver = Receiver::start().await;
        receiver.set_delay(Duration::from_millis(40));
        let hook = format!(
            "[[notify.webhook]]\nname = \"general\"\nurl = \"{}\"\nmin_severity = \"SEV4\"\nper_second = 10000\nburst = 10000\n",
            receiver.url("/general")
        );
        let (a_port, b_port) = (free_port(), free_port());
        let base = format!("[effects]\npoll_interval = \"50ms\"\n{hook}");
        let a = Cli::new(
            Backend::Postgres,
            &format!("[server]\nlisten = \"127.0.0.1:{a_port}\"\n{base}"),
        )
        .await;
        let store = a.db.store().await;
        for n in 0..500 {
            let effect = firebreak::notify::WebhookEffect::Notice {
                webhook: "general".into(),
                text: format!("notice {n}"),
            };
            store
                .enqueue_one(&NewEffect::typed(
                    None,
                    &effect,
                    format!("bulk:{n}:general"),
                ))
                .await
                .unwrap();
        }
        let mut replica_a = a.command(&["serve"]).stderr(Stdio::null()).spawn().unwrap();
        let mut replica_b = a
            .command(&["serve"])
            .env("FIREBREAK_LISTEN", format!("127.0.0.1:{b_port}"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(eventually(30, || async { receiver.log().len() >= 200 }).await);
        replica_a.kill().unwrap();
        let _ = replica_a.wait();
        let all = eventually(60, || async { receiver.distinct_keys().len() == 500 }).await;
        let idle = queue_idle(&store, 30).await;
        terminate(&mut replica_b);
        let _ = tokio::task::spawn_blocking(move || replica_b.wait()).await;
        assert!(all, "{} of 500 arrived", receiver.distinct_keys().len());
        assert!(idle);
        let accepted = receiver.accepted().len();
        assert!(
            (500..=508).contains(&accepted),
            "{accepted} deliveries: at most the replica's 8 in flight twice"
        );
        let counts = queue(&store).await;
        assert_eq!((counts.pending, counts.running, counts.failed), (0, 0, 0));
    }
}

#[test]
fn config_check_refuses_values_that_contradict_each_other() {
    let cases = [
        (
            "[effects]\nlease = \"0s\"\n",
            "effects.lease must be longer than zero",
        ),
        (
            "[effects]\nlease = \"2s\"\nattempt_timeout = \"3s\"\n",
            "effects.lease (2s) must be longer than effects.attempt_timeout (3s)",
        ),
        (
            "[effects]\nmax_attempts = 0\n",
            "effects.max_attempts must be at least 1",
        ),
        (
            "[incident.update_cadence]\nSEV1 = \"0s\"\n",
            "incident.update_cadence.SEV1 must be longer than zero",
        ),
        (
            "[effects]\nattempt_timeout = \"5s\"\n[notify]\ntimeout = \"10s\"\n",
            "notify.timeout (10s) must not be longer than effects.attempt_timeout (5s)",
        ),
        (
            "[effects]\nbreaker_threshold = 0\n",
            "effects.breaker_threshold must be at least 1",
        ),
        (
            "[notify]\ntimeout = \"0s\"\n",
            "notify.timeout must be longer than zero",
        ),
        (
            "[slack]\ntimeout = \"0s\"\n",
            "slack.timeout must be longer than zero",
        ),
        (
            "[slack]\ntimeout = \"40s\"\n",
            "slack.timeout (40s) must not be longer than effects.attempt_timeout (30s)",
        ),
        (
            "[[notify.webhook]]\nurl = \"https://hooks.example/x\"\nper_second = 0\n",
            "per_second must be at least 1",
        ),
    ];
    for (toml, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firebreak.toml");
        std::fs::write(&path, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        assert!(stderr(&out).contains(expected), "{toml}: {}", stderr(&out));
    }
}
