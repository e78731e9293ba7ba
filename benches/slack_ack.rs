//! Benchmark of the Slack edge over loopback, on SQLite: declare → company-wide notice
//! posted, against a fake Slack that adds 50 ms to every Web API call (target: under 1 s).
//!
//! The acknowledgement under load is measured by `cargo bench --bench ack_burst`, which
//! drives the release binary as its own process, open loop, beside the Bolt peer: an
//! in-process loop like the one that used to be here shares the server's runtime and
//! measured 1.7 ms where users saw 7 ms.
//!
//! Run with `cargo bench --bench slack_ack`.

#[path = "../tests/common/fake_slack.rs"]
mod fake_slack;

use std::time::{Duration, Instant};

use fake_slack::FakeSlack;
use firebreak::app::{App, Integrations};
use firebreak::chat::slack::SlackSecrets;
use firebreak::chat::slack::verify::sign;
use firebreak::config::Config;
use firebreak::store::Store;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "bench-secret";
const DECLARES: usize = 10;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let slack = FakeSlack::start().await;
    slack.set_latency(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    let config = Config::parse(
        "[effects]\npoll_interval = \"50ms\"\n[slack.announce]\nSEV1 = [\"C_GENERAL\"]\n",
    )
    .unwrap();
    let integrations = Integrations {
        slack: Some(SlackSecrets {
            signing_secret: SECRET.to_string().into(),
            bot_token: "xoxb-bench".to_string().into(),
            api_url: slack.url.clone(),
        }),
        discord: None,
        github: None,
    };
    let app = App::with_store(config, store, integrations).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.serve(listener, shutdown.clone()));
    let http = reqwest::Client::new();

    let mut to_notice = Vec::new();
    for i in 0..DECLARES {
        let posted_before = notices(&slack);
        let start = Instant::now();
        send(&http, &base, &format!("declare sev1 Bench outage {i}")).await;
        while notices(&slack) == posted_before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        to_notice.push(start.elapsed());
        // Slack allows about one message a second per channel; declarations are not faster.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    report(
        "declare → notice posted (fake Slack +50 ms/call)",
        to_notice,
    );

    shutdown.cancel();
}

fn notices(slack: &FakeSlack) -> usize {
    slack
        .successful_calls()
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.body["channel"] == "C_GENERAL")
        .count()
}

async fn send(http: &reqwest::Client, base: &str, text: &str) {
    let body = serde_urlencoded::to_string([
        ("command", "/incident"),
        ("text", text),
        ("user_id", "U_BENCH"),
        ("user_name", "bench"),
        ("channel_id", "C_BENCH"),
        ("trigger_id", "t"),
        ("team_id", "T0"),
    ])
    .unwrap();
    let ts = chrono::Utc::now().timestamp();
    let resp = http
        .post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            sign(SECRET.as_bytes(), ts, body.as_bytes()),
        )
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
