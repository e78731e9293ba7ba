//! Benchmark of the Discord interactions endpoint over loopback, on SQLite: signed
//! `/incident note` and `/incident update` interactions sent at 200 requests/s, each
//! answered in full (verified, de-duplicated, applied, rendered) within the request
//! (target: p99 under 10 ms), as the Slack one measures slash commands.
//!
//! Run with `cargo bench --bench discord_ack`.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use firebreak::app::{App, Integrations};
use firebreak::chat::discord::DiscordSecrets;
use firebreak::config::Config;
use firebreak::incident::{Actor, Command, ParseOptions, Source, command};
use firebreak::store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Defaults; `BENCH_COMMANDS` and `BENCH_RATE` override them (a debug build cannot keep up
/// with 200/s, so comparing there needs a lower rate).
const COMMANDS: usize = 2000;
const RATE_PER_SEC: u64 = 200;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let key = SigningKey::from_bytes(&[42; 32]);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    let config = Config::parse("[effects]\npoll_interval = \"50ms\"\n").unwrap();
    let integrations = Integrations {
        slack: None,
        discord: Some(DiscordSecrets {
            public_key: hex::encode(key.verifying_key().to_bytes()),
            bot_token: "bench-token".to_string().into(),
            application_id: Some("1".into()),
            api_url: "http://127.0.0.1:9".into(),
        }),
        github: None,
    };
    let app = App::with_store(config, store, integrations).unwrap();
    let cli = Actor::new(Source::Cli, "bench", "bench");
    for line in ["declare sev2 Bench one", "declare sev3 Bench two"] {
        let cmd: Command = command::parse_line(line, ParseOptions::default()).unwrap();
        app.service.apply(cmd, &cli).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}/discord/interactions",
        listener.local_addr().unwrap()
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(app.serve(listener, shutdown.clone()));
    let http = reqwest::Client::new();
    let (count, rate) = (
        setting("BENCH_COMMANDS", COMMANDS),
        setting("BENCH_RATE", RATE_PER_SEC),
    );
    for mixed in [false, true] {
        let acks = acknowledge(&http, &base, &key, mixed, count, rate).await;
        let what = if mixed { "half updates" } else { "notes" };
        report(
            &format!("signed interaction answered, {count} at {rate}/s, {what}"),
            acks,
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    shutdown.cancel();
}

/// Sends `COMMANDS` signed interactions at `RATE_PER_SEC`; returns each one's latency.
async fn acknowledge(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    mixed: bool,
    count: usize,
    rate: u64,
) -> Vec<Duration> {
    let mut tasks = Vec::with_capacity(count);
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    for i in 0..count {
        ticker.tick().await;
        let (sub, incident) = if mixed && i % 2 == 0 {
            ("update", 1)
        } else {
            ("note", 2)
        };
        let body = serde_json::to_vec(&interaction(i, mixed, sub, incident)).unwrap();
        let (http, base, key) = (http.clone(), base.to_string(), key.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            send(&http, &base, &key, body).await;
            start.elapsed()
        }));
    }
    let mut acks = Vec::with_capacity(count);
    for t in tasks {
        acks.push(t.await.unwrap());
    }
    acks
}

fn interaction(i: usize, mixed: bool, sub: &str, incident: i64) -> Value {
    json!({
        "type": 2, "id": format!("{}{i:06}", if mixed { 2 } else { 1 }),
        "application_id": "1", "token": "t", "version": 1,
        "guild_id": "5", "channel_id": "77",
        "member": {"user": {"id": "4242", "username": "bench"}, "roles": []},
        "data": {"id": "3", "name": "incident", "type": 1, "options": [
            {"name": sub, "type": 1, "options": [
                {"name": "text", "type": 3, "value": format!("step {i}")},
                {"name": "incident", "type": 4, "value": incident}]}]},
    })
}

async fn send(http: &reqwest::Client, base: &str, key: &SigningKey, body: Vec<u8>) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = hex::encode(key.sign(&[ts.as_bytes(), &body].concat()).to_bytes());
    let resp = http
        .post(base)
        .header("content-type", "application/json")
        .header("x-signature-timestamp", ts)
        .header("x-signature-ed25519", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let _ = resp.bytes().await;
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*samples.last().unwrap())
    );
}
