//! Benchmark of the command path: parse a chat line, apply it through `IncidentService`
//! (one transaction: lock, compare-and-set, timeline, effects), and render the reply.
//!
//! `cargo bench --bench command_path` runs it on a fresh SQLite file; set
//! `FIREBREAK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres` to also run it
//! on a fresh Postgres database. It prints p50/p99/max per command kind. A webhook route is
//! configured so declarations and updates also enqueue a notice, as they would in production
//! (the worker is not running, so no network is involved).
//!
//! Last, it times declarations with and without the shipped regional-outage runbook attached
//! (target: attaching adds under 1 ms).
//!
//! It first times the front of that path on its own: parsing a line and running its free
//! text through the core's text pipeline (`Command::prepare`: control characters, terminal
//! escapes, bidi overrides, NUL, limits) for an update of 4,000 hostile characters. The
//! target is at most 50 µs a command.

use std::time::{Duration, Instant};

use firebreak::app::App;
use firebreak::config::Config;
use firebreak::incident::{Actor, ParseOptions, Source, command};
use firebreak::store::Store;

const ROUNDS: usize = 2000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    pipeline();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        run("sqlite", &url).await;
        if let Ok(admin) = std::env::var("FIREBREAK_BENCH_POSTGRES_URL") {
            let url = fresh_postgres(&admin).await;
            run("postgres", &url).await;
        }
    });
}

async fn run(label: &str, url: &str) {
    let runbooks = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/runbooks");
    let config = Config::parse(&format!("[[notify.webhook]]\nname = \"general\"\nurl = \"https://hooks.invalid/x\"\nmin_severity = \"SEV4\"\n[runbooks]\ndir = \"{runbooks}\"\n")).unwrap();
    let app = App::with_store(config, Store::open(url).await.unwrap(), Default::default()).unwrap();
    let actor = Actor::new(Source::Slack, "U1", "bench");
    let mut declare = Vec::with_capacity(ROUNDS / 10);
    let mut update = Vec::with_capacity(ROUNDS);
    let mut note = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        if i % 10 == 0 {
            declare.push(time(&app, &actor, &format!("declare sev2 Bench incident {i}")).await);
        }
        let n = i / 10 + 1;
        update.push(
            time(
                &app,
                &actor,
                &format!("update INC-{n} Step {i} done --next 30m"),
            )
            .await,
        );
        note.push(time(&app, &actor, &format!("note INC-{n} Observation {i}")).await);
    }
    println!(
        "command path on {label} ({ROUNDS} updates, {ROUNDS} notes, {} declares):",
        declare.len()
    );
    for (name, samples) in [("declare", declare), ("update", update), ("note", note)] {
        report(name, samples);
    }
    runbook_attach(&app, &actor).await;
}

/// Declarations with and without the example regional-outage runbook (11 steps: its rows,
/// 8 wake-up effects and the checklist), interleaved. Target: attaching adds under 1 ms.
async fn runbook_attach(app: &App, actor: &Actor) {
    let (mut plain, mut attached) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS / 10 {
        plain.push(time(app, actor, &format!("declare sev2 Checkout slow {i}")).await);
        attached.push(time(app, actor, &format!("declare sev2 us-east-1 is down {i}")).await);
    }
    let p50 = |s: &mut Vec<Duration>| {
        s.sort();
        s[s.len() / 2]
    };
    let added = ms(p50(&mut attached)) - ms(p50(&mut plain));
    report("declare without a runbook", plain);
    report("declare + 11-step runbook", attached);
    println!("  attaching the runbook adds {added:.3} ms at p50 (target < 1 ms)");
}

/// An update line of 4,000 characters of what people paste: mentions, markup, terminal
/// escapes, bidi overrides, control characters, emoji and combining marks.
fn hostile_update() -> String {
    let chunk = "<!channel> <https://evil.example|click> R&D <b>x</b> \u{1b}[2J\u{1b}[31mred\u{1b}[0m \
                 \u{202e}gnp.exe\u{202c} \u{2066}iso\u{2069} bell\u{7} e\u{301}clair 👩🏽‍💻 \
                 '; DROP TABLE incidents; -- \u{85}\t";
    let mut text = String::new();
    while text.chars().count() < 4_000 {
        text.push_str(chunk);
    }
    let text: String = text.chars().take(4_000).collect();
    format!("update INC-1 {text} --next 30m")
}

fn pipeline() {
    let line = hostile_update();
    let now = chrono::Utc::now();
    let mut samples = Vec::with_capacity(ROUNDS * 5);
    for _ in 0..ROUNDS * 5 {
        let start = Instant::now();
        let cmd = command::parse_line(std::hint::black_box(&line), ParseOptions::default())
            .unwrap()
            .prepare(now)
            .unwrap();
        std::hint::black_box(&cmd);
        samples.push(start.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "parse + text pipeline, hostile {}-character update ({} runs):\n  pipeline p50 {:>7.1} µs   p99 {:>7.1} µs   max {:>7.1} µs   (target ≤ 50 µs)",
        line.chars().count(),
        samples.len(),
        us(pct(0.50)),
        us(pct(0.99)),
        us(*samples.last().unwrap())
    );
}

async fn time(app: &App, actor: &Actor, line: &str) -> Duration {
    let start = Instant::now();
    let cmd = command::parse_line(line, ParseOptions::default()).unwrap();
    let outcome = app.service.apply(cmd, actor).await.unwrap();
    std::hint::black_box(outcome.reply.text.len());
    start.elapsed()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "  {name:<8} p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>7.3} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*samples.last().unwrap())
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn fresh_postgres(admin: &str) -> String {
    use sqlx::Connection;
    let name = format!("firebreak_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut conn)
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    format!("{base}/{name}")
}
