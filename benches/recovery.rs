//! Recovery after an outage: 100 company-wide notices (100 incidents, one webhook) held back
//! by an open circuit breaker while the receiver answers 503; then the receiver comes back.
//! Reports how long after recovery the first and the last notice arrived, and the busiest
//! second at the receiver against the webhook's rate limit (20 a second, bursts of 10).
//!
//! `cargo bench --bench recovery`; set `FIREBREAK_BENCH_POSTGRES_URL` to also run on a fresh
//! Postgres database. The breaker cooldown is 500 ms, so the first notice waits for the next
//! probe; its success releases the other 99 at once, paced by the rate limit.

#[path = "../tests/common/receiver.rs"]
#[allow(dead_code)]
mod receiver;

use std::time::{Duration, Instant};

use firebreak::app::App;
use firebreak::config::Config;
use firebreak::incident::{Actor, ParseOptions, Source, command};
use firebreak::store::Store;
use receiver::Receiver;
use tokio_util::sync::CancellationToken;

const NOTICES: usize = 100;
const PER_SECOND: usize = 20;
const BURST: usize = 10;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for round in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            run(&format!("sqlite, run {round}"), &url).await;
        }
        if let Ok(admin) = std::env::var("FIREBREAK_BENCH_POSTGRES_URL") {
            for round in 1..=3 {
                let url = fresh_postgres(&admin).await;
                run(&format!("postgres, run {round}"), &url).await;
            }
        }
    });
}

async fn run(label: &str, url: &str) {
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let config = Config::parse(&format!(
        "[effects]\nbreaker_threshold = 3\nbreaker_cooldown = \"500ms\"\nbase_backoff = \"1s\"\nmax_backoff = \"60s\"\npoll_interval = \"100ms\"\n\
         [[notify.webhook]]\nname = \"general\"\nurl = \"{}\"\nmin_severity = \"SEV4\"\nper_second = {PER_SECOND}\nburst = {BURST}\n",
        receiver.url("/general")
    ))
    .unwrap();
    let app = App::with_store(config, Store::open(url).await.unwrap(), Default::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    let actor = Actor::new(Source::Slack, "U1", "bench");
    for i in 0..NOTICES {
        let cmd = command::parse_line(
            &format!("declare sev1 Region {i} down"),
            ParseOptions::default(),
        )
        .unwrap();
        app.service.apply(cmd, &actor).await.unwrap();
    }
    // Long enough for the breaker to open and every notice to be held back or backing off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let recovered = Instant::now();
    receiver.set_down(false);
    let deadline = recovered + Duration::from_secs(60);
    while receiver.distinct_keys().len() < NOTICES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    let _ = server.await;
    let accepted = receiver.accepted();
    let mut times: Vec<Duration> = accepted.iter().map(|r| r.at - recovered).collect();
    times.sort();
    let busiest = times
        .iter()
        .map(|t| {
            times
                .iter()
                .filter(|u| **u >= *t && **u < *t + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    let floor = Duration::from_secs_f64((NOTICES - BURST) as f64 / PER_SECOND as f64);
    println!(
        "recovery on {label}: {} of {NOTICES} delivered ({} POSTs accepted); first {:?}, last {:?} after recovery \
         (rate-limit floor for the last: {:?} after the first); busiest second {busiest} (limit {} = {PER_SECOND}/s + burst {BURST})",
        receiver.distinct_keys().len(),
        accepted.len(),
        times.first().copied().unwrap_or_default(),
        times.last().copied().unwrap_or_default(),
        floor,
        PER_SECOND + BURST,
    );
}

async fn fresh_postgres(admin: &str) -> String {
    use sqlx::Connection;
    let name = format!("firebreak_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}
