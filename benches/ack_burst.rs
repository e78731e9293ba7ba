//! What a user feels under a burst: signed `/incident declare sev1 …` slash commands sent
//! open loop to the release binary running as its own process, side by side with the Python
//! Slack Bolt peer from `../shared/peers/` doing the same job.
//!
//! - firebreak runs `serve` on a file-backed SQLite database (WAL, `synchronous = FULL` for
//!   commands), with Slack pointed at an in-process fake that answers at once, so its worker
//!   really runs the effects every declare queues (channel, card, company-wide notice) under
//!   Slack's rate tiers while the commands arrive.
//! - The peer (`bolt_incident.py`: Bolt verifies the signature, `INSERT` + `COMMIT` in WAL
//!   with `synchronous = FULL`, then acks) runs when Python can make its virtualenv
//!   (`~/.cache/firebreak-peers/venv`, made on first use); otherwise it is skipped, saying so.
//! - Open loop: request *i* is due at `start + i / rate`; its latency counts from that due
//!   time (waiting for one of the 64 keep-alive connections included), so a stalled server
//!   cannot hide. Every request is unique (its own `trigger_id`) and freshly signed. A thread
//!   of its own paces the requests (tokio's timer, in whole milliseconds, made each up to
//!   1 ms late: `PACE=tokio` brings that back, to compare), and the fake Slack runs on
//!   another, so its work never delays the client noticing an answer.
//! - A third server, the floor, answers every request at once (this executable, run again
//!   as a one-thread axum server): what the client measures against it is the client's own
//!   share of every figure, to subtract before comparing with a target.
//! - For each server and each rate (200 and 500 requests/s; 5 s warm-up, 20 s measured) it
//!   prints p50, p99, max, errors (a status other than success, or an answer that names no
//!   incident), server CPU per request (utime + stime from `/proc`) and
//!   RSS; also the idle RSS and the time from start to the first accepted command (on an
//!   existing database for firebreak).
//!
//! Run with `cargo bench --bench ack_burst`. Environment: `RATES` (default `200 500`),
//! `SECONDS` (20), `WARMUP` (5), `ROUNDS` (1; servers alternate within a round),
//! `PEER=0` to skip the peer, `FLOOR=0` to skip the floor, `PACE=tokio` for the old pacing,
//! `PEER_PYTHON` for another interpreter with the peer's packages, `SERVER_LOG` for
//! firebreak's `RUST_LOG` (default `warn`; its log goes to stderr), `KEEP=1` to keep the
//! databases, `FIREBREAK_BIN` for another build of the binary (a before/after).

#[path = "../tests/common/fake_slack.rs"]
mod fake_slack;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_slack::FakeSlack;
use firebreak::chat::slack::verify::sign;
use tokio::sync::Semaphore;

const SECRET: &str = "ack-burst-secret";
const CONNECTIONS: usize = 64;

fn main() {
    if let Ok(listen) = std::env::var(FLOOR_LISTEN) {
        return floor_server(&listen);
    }
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    // The fake Slack answers firebreak's worker on a thread of its own: on the client's
    // thread, its hundreds of calls a second would delay the client noticing answers, and
    // firebreak's latency would include the fake's work.
    let slack_runtime = runtime();
    let slack = slack_runtime.block_on(FakeSlack::start());
    runtime().block_on(run(slack));
}

/// Benchmark settings from the environment.
struct Settings {
    rates: Vec<u32>,
    seconds: u64,
    warmup: u64,
    rounds: usize,
    /// Whether to measure the client's own floor too (`FLOOR=0` skips it).
    floor: bool,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
        Self {
            rates: var("RATES", "200 500")
                .split_whitespace()
                .map(|r| r.parse().expect("RATES: numbers"))
                .collect(),
            seconds: var("SECONDS", "20").parse().expect("SECONDS: a number"),
            warmup: var("WARMUP", "5").parse().expect("WARMUP: a number"),
            rounds: var("ROUNDS", "1").parse().expect("ROUNDS: a number"),
            floor: var("FLOOR", "1") != "0",
        }
    }
}

/// One server's figures.
#[derive(Default)]
struct Figures {
    name: String,
    start_ms: f64,
    idle_rss_mb: f64,
    /// Per rate: the measured phase and the server's CPU per request over warm-up + phase.
    rates: Vec<(u32, Phase, f64, f64)>,
}

#[derive(Default, Clone)]
struct Phase {
    p50: f64,
    p99: f64,
    max: f64,
    errors: usize,
    sent: usize,
    rps: f64,
}

async fn run(slack: FakeSlack) {
    let settings = Settings::from_env();
    let peer = peer_python();
    let mut all = Vec::new();
    for round in 1..=settings.rounds {
        let dir = tempfile::tempdir().unwrap();
        all.push(measure(Server::firebreak(dir.path(), &slack.url), &settings, round).await);
        if let Some(python) = &peer {
            all.push(measure(Server::peer(dir.path(), python), &settings, round).await);
        }
        if settings.floor {
            all.push(measure(Server::floor(), &settings, round).await);
        }
        if std::env::var("KEEP").is_ok_and(|v| v == "1") {
            eprintln!("KEEP=1: the databases are kept in {}", dir.keep().display());
        }
    }
    let slack_calls = slack.successful_calls().len();
    print_table(&all, &settings);
    println!("fake Slack answered {slack_calls} Web API calls from firebreak's worker");
}

/// How to start one server and where it keeps its incidents.
struct Server {
    name: &'static str,
    command: Command,
    port: u16,
    /// Run first, to the end (firebreak's `migrate`: start is timed on an existing database).
    prepare: Option<Command>,
}

impl Server {
    fn firebreak(dir: &Path, slack_url: &str) -> Self {
        let port = free_port();
        let db = format!("sqlite://{}", dir.join("firebreak.db").display());
        let config = dir.join("firebreak.toml");
        std::fs::write(&config, "[slack.announce]\nSEV1 = [\"C_GENERAL\"]\n").unwrap();
        let with_env = |args: &[&str]| {
            let bin = std::env::var("FIREBREAK_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_firebreak").into());
            let mut c = Command::new(bin);
            c.args(args)
                .env("FIREBREAK_LISTEN", format!("127.0.0.1:{port}"))
                .env("FIREBREAK_DATABASE_URL", &db)
                .env("FIREBREAK_CONFIG", &config)
                .env("SLACK_SIGNING_SECRET", SECRET)
                .env("SLACK_BOT_TOKEN", "xoxb-ack-burst")
                .env("SLACK_API_URL", slack_url)
                .env(
                    "RUST_LOG",
                    std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .env("NO_COLOR", "1");
            c
        };
        Self {
            name: "firebreak",
            command: with_env(&["serve"]),
            port,
            prepare: Some(with_env(&["migrate"])),
        }
    }

    fn peer(dir: &Path, python: &Path) -> Self {
        let port = free_port();
        let mut command = Command::new(python);
        command
            .arg(peers_dir().join("bolt_incident.py"))
            .env("SLACK_SIGNING_SECRET", SECRET)
            .env("PORT", port.to_string())
            .env("INCIDENT_DB", dir.join("bolt.db"))
            .env("SQLITE_SYNCHRONOUS", "FULL");
        Self {
            name: "Bolt peer",
            command,
            port,
            prepare: None,
        }
    }

    /// This benchmark's own executable as a server that answers every request at once:
    /// what the client measures against it is its own floor.
    fn floor() -> Self {
        let port = free_port();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.env(FLOOR_LISTEN, format!("127.0.0.1:{port}"));
        Self {
            name: "floor",
            command,
            port,
            prepare: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/slack/commands", self.port)
    }
}

/// Set when this executable runs as the floor server: the address it listens on.
const FLOOR_LISTEN: &str = "ACK_BURST_FLOOR_LISTEN";

/// The floor server: `200 OK` to every request, on one thread, until killed.
fn floor_server(listen: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let app = axum::Router::new().fallback(|| async { "Declared INC-0" });
        axum::serve(listener, app).await.unwrap();
    });
}

/// Whether an answer's body names the incident it declared: a server that answers 200 with
/// an apology (its commit failed) counts as an error, not as a fast answer.
fn declared(body: &[u8]) -> bool {
    body.windows(4).any(|w| w == b"INC-")
}

/// Starts the server, measures it at every rate, stops it.
async fn measure(mut server: Server, settings: &Settings, round: usize) -> Figures {
    if let Some(mut prepare) = server.prepare.take() {
        let status = prepare.stderr(Stdio::null()).status().unwrap();
        assert!(status.success(), "{} failed to prepare", server.name);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let url = server.url();
    let started = Instant::now();
    let mut child = Running(
        server
            .command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    first_accepted(&client, &url, &mut child.0).await;
    let mut figures = Figures {
        name: format!("{} (round {round})", server.name),
        start_ms: started.elapsed().as_secs_f64() * 1000.0,
        ..Figures::default()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.0.id();
    figures.idle_rss_mb = rss_mb(pid);
    for &rate in &settings.rates {
        let cpu_before = cpu_seconds(pid);
        let warm = phase(&client, &url, rate, settings.warmup).await;
        let measured = phase(&client, &url, rate, settings.seconds).await;
        let requests = warm.sent + measured.sent;
        let cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000.0 / requests.max(1) as f64;
        eprintln!(
            "{}: {rate}/s p50 {:.1} ms p99 {:.1} ms max {:.1} ms errors {} cpu/request {cpu_ms:.2} ms",
            figures.name, measured.p50, measured.p99, measured.max, measured.errors
        );
        figures.rates.push((rate, measured, cpu_ms, rss_mb(pid)));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    figures
}

/// Kills the server when dropped, so a failed run leaves nothing behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one declare every 2 ms until one is answered 200 (30 s at most).
async fn first_accepted(client: &reqwest::Client, url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited with {status} before answering");
        }
        assert!(Instant::now() < deadline, "no 200 within 30 s from {url}");
        let sent = send(client, url, signed_declare()).await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One open-loop phase: `rate` requests a second for `seconds`.
async fn phase(client: &reqwest::Client, url: &str, rate: u32, seconds: u64) -> Phase {
    let total = rate as usize * seconds as usize;
    if total == 0 {
        return Phase::default();
    }
    let connections = Arc::new(Semaphore::new(CONNECTIONS));
    let start = Instant::now();
    let mut ticks = pace(start, rate, total);
    let mut tasks = Vec::with_capacity(total);
    loop {
        let request = signed_declare();
        let Some(due) = ticks.recv().await else { break };
        let (client, url, connections) = (client.clone(), url.to_string(), connections.clone());
        tasks.push(tokio::spawn(async move {
            let _connection = connections.acquire().await.unwrap();
            let answer = send(&client, &url, request).await;
            let ok = match answer {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok_and(|b| declared(&b)),
                Err(_) => false,
            };
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        latencies.push(latency.as_secs_f64() * 1000.0);
        errors += usize::from(!ok);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Phase {
        p50: at(0.50),
        p99: at(0.99),
        max: *latencies.last().unwrap(),
        errors,
        sent: total,
        rps: total as f64 / elapsed,
    }
}

/// The due times of an open-loop phase (request *i* at `start + i / rate`), each sent when it
/// comes. Paced by a thread of its own: tokio's timer counts whole milliseconds, so a request
/// paced by it would leave up to a millisecond after its due time, and that wait would count
/// as the server's latency.
fn pace(start: Instant, rate: u32, total: usize) -> tokio::sync::mpsc::UnboundedReceiver<Instant> {
    let (tick, ticks) = tokio::sync::mpsc::unbounded_channel();
    let due_times =
        (0..total).map(move |i| start + Duration::from_secs_f64(i as f64 / f64::from(rate)));
    if std::env::var("PACE").is_ok_and(|v| v == "tokio") {
        tokio::spawn(async move {
            for due in due_times {
                tokio::time::sleep_until(due.into()).await;
                let _ = tick.send(due);
            }
        });
    } else {
        std::thread::spawn(move || {
            for due in due_times {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if tick.send(due).is_err() {
                    return;
                }
            }
        });
    }
    ticks
}

/// Posts a signed slash command, as Slack does.
async fn send(
    client: &reqwest::Client,
    url: &str,
    (body, ts, signature): (String, String, String),
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
}

/// A realistic slash-command body, as Slack sends it, each with its own `trigger_id`; with
/// its timestamp and `v0` signature.
fn signed_declare() -> (String, String, String) {
    let trigger = format!(
        "{}.738474920.{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    );
    let body = serde_urlencoded::to_string([
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("channel_id", "C2147483705"),
        ("channel_name", "incidents"),
        ("user_id", "U2147483697"),
        ("user_name", "alice"),
        ("command", "/incident"),
        ("text", "declare sev1 Checkout API returns 502"),
        ("api_app_id", "A0PEER"),
        ("is_enterprise_install", "false"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0001/1234/abcd",
        ),
        ("trigger_id", &trigger),
    ])
    .unwrap();
    let ts = chrono::Utc::now().timestamp();
    let signature = sign(SECRET.as_bytes(), ts, body.as_bytes());
    (body, ts.to_string(), signature)
}

/// User + system CPU seconds the process has used (`/proc/PID/stat`, fields 14 and 15).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; fields are counted after its `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory in MB (`VmRSS` in `/proc/PID/status`).
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers")
}

/// The Python that runs the peer: `PEER_PYTHON`, or the peer's virtualenv, made (with the
/// peer's pinned packages) when missing. `None`, saying why, when the peer cannot run.
fn peer_python() -> Option<PathBuf> {
    if std::env::var("PEER").is_ok_and(|v| v == "0") {
        eprintln!("PEER=0: the Bolt peer is skipped");
        return None;
    }
    if let Ok(python) = std::env::var("PEER_PYTHON") {
        return Some(python.into());
    }
    let requirements = peers_dir().join("requirements.txt");
    if !requirements.exists() {
        eprintln!("no {}: the Bolt peer is skipped", requirements.display());
        return None;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let venv = Path::new(&home).join(".cache/firebreak-peers/venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("making the peer's virtualenv in {}", venv.display());
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(&requirements)
                .status()
                .is_ok_and(|s| s.success());
        if !made {
            eprintln!("could not make the peer's virtualenv: the Bolt peer is skipped");
            return None;
        }
    }
    Some(python)
}

fn print_table(all: &[Figures], settings: &Settings) {
    println!(
        "\nopen loop, signed `/incident declare sev1 …`, {} s after {} s warm-up, {CONNECTIONS} connections\n",
        settings.seconds, settings.warmup
    );
    let mut header = String::from("| |");
    let mut rule = String::from("|---|");
    for f in all {
        header += &format!(" {} |", f.name);
        rule += "---|";
    }
    println!("{header}\n{rule}");
    let row = |label: String, cell: &dyn Fn(&Figures) -> String| {
        let cells: String = all.iter().map(|f| format!(" {} |", cell(f))).collect();
        println!("| {label} |{cells}");
    };
    for (i, rate) in settings.rates.iter().enumerate() {
        row(format!("p50 / p99 / max at {rate}/s"), &|f| {
            let p = &f.rates[i].1;
            format!("{:.1} / {:.1} / {:.1} ms", p.p50, p.p99, p.max)
        });
        row(format!("errors / achieved rate at {rate}/s"), &|f| {
            let p = &f.rates[i].1;
            format!("{} / {:.0}/s", p.errors, p.rps)
        });
        row(format!("server CPU per request at {rate}/s"), &|f| {
            format!("{:.2} ms", f.rates[i].2)
        });
        row(format!("RSS after {rate}/s"), &|f| {
            format!("{:.1} MB", f.rates[i].3)
        });
    }
    row("idle RSS".into(), &|f| format!("{:.1} MB", f.idle_rss_mb));
    row("start to first accepted command".into(), &|f| {
        format!("{:.0} ms", f.start_ms)
    });
}
