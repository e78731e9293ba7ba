//! How long a Prometheus scrape of `/metrics` takes with a long history: the release binary
//! (`serve`, its metrics on `server.metrics_listen`) over a SQLite file holding 100,000
//! incidents (a hundred of them open, a few drills) and 500,000 effects (all delivered but a
//! few hundred waiting, running or failed), scraped over real HTTP one request at a time.
//!
//! Run with `cargo bench --bench metrics_scrape`. Environment: `INCIDENTS` (100000),
//! `SCRAPES` (200). Prints p50, p99 and max; the target is under 5 ms.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run());
}

async fn run() {
    let incidents: i64 = env_or("INCIDENTS", 100_000);
    let scrapes: usize = env_or("SCRAPES", 200);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("firebreak.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("firebreak.toml");
    std::fs::write(
        &config,
        format!("[server]\nmetrics_listen = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let firebreak = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_firebreak"));
        c.args(args)
            .env("FIREBREAK_DATABASE_URL", &db)
            .env("FIREBREAK_CONFIG", &config)
            .env("FIREBREAK_LISTEN", "127.0.0.1:0")
            // The filled effects have no real payload; their failures are not the point.
            .env("RUST_LOG", "error")
            .stdout(Stdio::null());
        c
    };
    assert!(firebreak(&["migrate"]).status().unwrap().success());
    let filled = Instant::now();
    fill(&db, incidents).await;
    eprintln!(
        "filled {incidents} incidents and {} effects in {:.1} s",
        incidents * 5,
        filled.elapsed().as_secs_f64()
    );

    let mut serve = firebreak(&["serve"]).spawn().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let first = wait_for(&http, &url).await;
    assert!(
        first.contains("firebreak_open_incidents{severity=\"SEV1\",drill=\"false\"}"),
        "{first}"
    );
    let mut took = Vec::with_capacity(scrapes);
    for _ in 0..scrapes {
        let start = Instant::now();
        let body = http.get(&url).send().await.unwrap().text().await.unwrap();
        took.push(start.elapsed());
        assert!(body.contains("firebreak_effects{state=\"pending\"}"));
    }
    let _ = serve.kill();
    let _ = serve.wait();
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "/metrics with {incidents} incidents and {} effects, {scrapes} scrapes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target < 5 ms)",
        incidents * 5,
        ms(took[took.len() / 2]),
        ms(took[took.len() * 99 / 100]),
        ms(took[took.len() - 1]),
    );
}

/// Writes the history straight into the database: `incidents` incidents, all but one in a
/// thousand resolved, and five effects each, all delivered but one in a thousand.
async fn fill(db: &str, incidents: i64) {
    let mut conn = sqlx::SqliteConnection::connect(db).await.unwrap();
    conn.execute("PRAGMA synchronous = OFF").await.unwrap();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {incidents}) \
         INSERT INTO incidents (id, number, title, severity, status, drill, declared_at, declared_by, version, updated_at) \
         SELECT 'inc-' || i, i, 'Incident ' || i, 'SEV' || (1 + i % 4), \
                CASE WHEN i % 1000 = 0 THEN 'investigating' ELSE 'resolved' END, \
                CASE WHEN i % 5000 = 0 THEN 1 ELSE 0 END, i * 1000, 'bench', 1, i * 1000 FROM n"
    );
    conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
         INSERT INTO effects (incident_id, kind, payload, idempotency_key, state, attempts, max_attempts, run_at, created_at, updated_at) \
         SELECT 'inc-' || (1 + (i - 1) / 5), 'notify.webhook', '{{}}', 'bench-' || i, \
                CASE i % 1000 WHEN 0 THEN 'pending' WHEN 1 THEN 'failed' WHEN 2 THEN 'running' ELSE 'done' END, \
                1, 10, i * 200, i * 200, i * 200 FROM n",
        incidents * 5
    );
    conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    conn.execute("ANALYZE").await.unwrap();
}

async fn wait_for(http: &reqwest::Client, url: &str) -> String {
    for _ in 0..200 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return r.text().await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve never answered {url}");
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
