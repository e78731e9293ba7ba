//! Benchmark of the command path: parse a chat line, apply it through `IncidentService`
//! (one transaction: lock, compare-and-set, timeline, effects), and render the reply.
//!
//! `cargo bench --bench command_path` runs it on a fresh SQLite file; set
//! `FIREBREAK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres` to also run it
//! on a fresh Postgres database. It prints p50/p99/max per command kind. A webhook route is
//! configured so declarations and updates also enqueue a notice, as they would in production
//! (the worker is not running, so no network is involved).

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
    let config = Config::parse("[[notify.webhook]]\nname = \"general\"\nurl = \"https://hooks.invalid/x\"\nmin_severity = \"SEV4\"\n").unwrap();
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
