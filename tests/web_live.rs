//! The live timeline (`GET /incidents/{n}/events`, server-sent events) read as a browser's
//! EventSource reads it: an entry committed by the server's own service or by a separate
//! `firebreak` process reaches an open stream within a second of being written, escaped as
//! on the page; a reconnect with `Last-Event-ID` (or a page's `?after=`) gets only later
//! entries; another incident's entries are not sent; and the built `firebreak serve` ends a
//! stream whose client went away, streams a CLI update, then stops promptly on SIGTERM with
//! a stream still open. On both databases.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use firebreak::incident::{IncidentNumber, TimelineEntry};
use reqwest::StatusCode;

on_both!(
    entries_reach_an_open_stream_within_a_second,
    a_reconnect_gets_only_later_entries,
    the_served_binary_streams_a_cli_update_and_stops_with_a_stream_open,
    a_revoked_token_ends_its_open_streams_and_sends_them_nothing_more,
);

/// The target: an entry reaches an open page within this long of being written.
const WITHIN: Duration = Duration::from_secs(1);

/// One server-sent event.
#[derive(Debug, Default, Clone)]
struct SseEvent {
    event: String,
    id: String,
    data: String,
}

/// Reads events off a streaming response, as EventSource does.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event named `entry`, waiting at most `limit`.
    async fn next_entry(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let event = parse(&block);
                if event.event == "entry" {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

impl SseReader {
    /// Every event until the stream ends, or `None` if it is still open after `limit`.
    async fn until_end(&mut self, limit: Duration) -> Option<Vec<SseEvent>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Err(_) => return None,
            }
        }
        let blocks: Vec<String> = self.buffer.split("\n\n").map(str::to_string).collect();
        Some(blocks.iter().map(|b| parse(b)).collect())
    }
}

/// Signs in with `token` and returns the `Cookie` header value for the session.
async fn session_cookie(t: &TestApp, token: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser
        .post(t.url("/signin"))
        .form(&[("token", token), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

fn parse(block: &str) -> SseEvent {
    let mut event = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = value.to_string(),
            "id" => event.id = value.to_string(),
            "data" => data.push(value),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}

async fn timeline_of(t: &TestApp, n: i64) -> Vec<TimelineEntry> {
    let incident = t
        .app
        .store
        .incident_by_number(IncidentNumber(n))
        .await
        .unwrap()
        .unwrap();
    t.app.store.timeline(&incident.id).await.unwrap()
}

/// How long after it was written `entry` arrived (now).
fn since_written(entry: &TimelineEntry) -> Duration {
    (Utc::now() - entry.recorded_at)
        .to_std()
        .unwrap_or_default()
}

/// The entry with `id` in `timeline`.
fn entry(timeline: &[TimelineEntry], id: &str) -> TimelineEntry {
    let id: i64 = id.parse().unwrap();
    timeline.iter().find(|e| e.id == id).unwrap().clone()
}

/// `firebreak incident update INC-1 <words>` as its own process on `database_url`.
async fn cli_update(database_url: &str, words: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("firebreak.toml");
    std::fs::write(&config, "").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"));
    cmd.args(["incident", "update", "INC-1"])
        .args(words)
        .current_dir(dir.path())
        .env("FIREBREAK_DATABASE_URL", database_url)
        .env("FIREBREAK_CONFIG", &config)
        .env("USER", "carol")
        .env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn entries_reach_an_open_stream_within_a_second(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    t.ok("declare sev3 Other thing").await;
    let mut stream = SseReader::open(t.client().get(t.url("/incidents/INC-1/events"))).await;
    // Nothing old is sent to a stream that starts now.
    assert!(
        stream
            .next_entry(Duration::from_millis(500))
            .await
            .is_none()
    );

    t.ok("update INC-1 <script>alert(1)</script> rolled back")
        .await;
    let got = stream.next_entry(WITHIN * 3).await.expect("the update");
    let timeline = timeline_of(&t, 1).await;
    let written = entry(&timeline, &got.id);
    let took = since_written(&written);
    eprintln!("in-process update arrived {took:?} after it was written");
    assert!(took < WITHIN, "in-process update took {took:?}");
    assert_eq!(written.kind.as_str(), "update");
    assert_eq!(
        got.data,
        format!(
            "<li data-id=\"{}\"><span class=\"when\">{} · T+0s</span><br><strong>update</strong> · alice: &#60;script&#62;alert(1)&#60;/script&#62; rolled back</li>",
            written.id,
            written.occurred_at.format("%Y-%m-%d %H:%M:%S UTC")
        )
        .replace("T+0s", &written.offset_from(timeline[0].occurred_at))
    );

    // Another incident's entries are not sent; a separate process's are.
    t.ok("update INC-2 elsewhere").await;
    cli_update(&t.db.url, &["from", "the", "terminal"]).await;
    let got = stream
        .next_entry(WITHIN * 3)
        .await
        .expect("the CLI's update");
    let timeline = timeline_of(&t, 1).await;
    let written = entry(&timeline, &got.id);
    let took = since_written(&written);
    eprintln!("CLI update arrived {took:?} after it was written");
    assert!(took < WITHIN, "CLI update took {took:?} to arrive");
    assert!(got.data.contains("from the terminal"), "{got:?}");
    assert!(
        stream
            .next_entry(Duration::from_millis(600))
            .await
            .is_none()
    );
}

async fn a_reconnect_gets_only_later_entries(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    t.ok("update INC-1 first").await;
    t.ok("update INC-1 second").await;
    let timeline = timeline_of(&t, 1).await;
    let first = timeline.iter().find(|e| e.text == "first").unwrap().id;
    let second = timeline.iter().find(|e| e.text == "second").unwrap().id;
    // Reconnecting after `first`: `second`, then what comes later, nothing before.
    let cookie_less = t
        .client()
        .get(t.url("/incidents/INC-1/events"))
        .header("last-event-id", first.to_string());
    let mut stream = SseReader::open(cookie_less).await;
    let got = stream.next_entry(WITHIN).await.expect("second");
    assert_eq!(got.id, second.to_string());
    assert!(got.data.contains("second"));
    t.ok("update INC-1 third").await;
    let got = stream.next_entry(WITHIN * 2).await.expect("third");
    assert!(got.data.contains("third"), "{got:?}");
    let third = got.id.clone();
    assert!(
        stream
            .next_entry(Duration::from_millis(600))
            .await
            .is_none()
    );
    drop(stream);
    // After the last one: nothing until something new. Last-Event-ID wins over ?after=.
    let request = t
        .client()
        .get(t.url(&format!("/incidents/INC-1/events?after={first}")))
        .header("last-event-id", &third);
    let mut stream = SseReader::open(request).await;
    assert!(
        stream
            .next_entry(Duration::from_millis(600))
            .await
            .is_none()
    );
    t.ok("update INC-1 fourth").await;
    let got = stream.next_entry(WITHIN * 2).await.expect("fourth");
    assert!(got.data.contains("fourth"), "{got:?}");

    // The page starts its stream after the last entry it shows, with the script.
    let page = t
        .get("/incidents/INC-1")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last = timeline_of(&t, 1).await.iter().map(|e| e.id).max().unwrap();
    assert!(
        page.contains(&format!(
            "<ol class=\"timeline\" id=\"timeline\" data-events=\"/incidents/INC-1/events?after={last}\">"
        )),
        "{page}"
    );
    assert!(page.contains("<script src=\"/assets/live.js\" defer></script>"));
    let script = t.get("/assets/live.js").await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let script = script.text().await.unwrap();
    assert!(script.contains("new EventSource(list.dataset.events)"));
    assert!(script.contains("reconnecting…"));
    // No such incident, or no credential: no stream.
    assert_eq!(
        t.get("/incidents/INC-9/events").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let anonymous = no_redirects.get(t.url("/incidents/INC-1/events")).send();
    assert_eq!(anonymous.await.unwrap().status(), StatusCode::SEE_OTHER);
}

async fn the_served_binary_streams_a_cli_update_and_stops_with_a_stream_open(backend: Backend) {
    use common::process::*;
    let port = free_port();
    let config = format!("[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"500ms\"\n");
    let cli = Cli::new(backend, &config).await;
    cli.ok(&["incident", "declare", "sev2", "Queue", "backlog"])
        .await;
    let token = cli
        .ok(&["token", "create", "--name", "web", "--scope", "read"])
        .await
        .trim()
        .to_string();
    let log_path = cli.dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut serve = Serving(
        cli.command(&["serve"])
            .env("RUST_LOG", "firebreak::http::pages::live=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = bearer_client(&token);
    assert!(answers_health(&http, &base).await, "serve answers");
    // A client that goes away: its stream ends (and stops polling) at once.
    let closed = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let gone = SseReader::open(http.get(format!("{base}/incidents/INC-1/events"))).await;
    assert!(!closed().contains("a live timeline closed"));
    drop(gone);
    let ended = eventually(3, || {
        let log = closed();
        async move { log.contains("a live timeline closed") }
    })
    .await;
    assert!(ended, "the stream outlived its client: {}", closed());
    let mut stream = SseReader::open(http.get(format!("{base}/incidents/INC-1/events"))).await;
    cli.ok(&[
        "incident",
        "update",
        "INC-1",
        "<b>drained</b>",
        "the",
        "queue",
    ])
    .await;
    let got = stream.next_entry(WITHIN * 3).await.expect("the update");
    let store = cli.db.store().await;
    let incident = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let written = entry(&store.timeline(&incident.id).await.unwrap(), &got.id);
    let took = since_written(&written);
    eprintln!("served binary: CLI update arrived {took:?} after it was written");
    assert!(took < WITHIN, "took {took:?}");
    assert!(
        got.data
            .contains("&#60;b&#62;drained&#60;/b&#62; the queue"),
        "{got:?}"
    );
    // SIGTERM with the stream open: serve ends it and exits, without waiting for it.
    let stopping = Instant::now();
    terminate(&mut serve.0);
    let exited = eventually(5, || {
        let done = serve.0.try_wait().unwrap().is_some();
        async move { done }
    })
    .await;
    assert!(exited, "serve did not exit with a live timeline open");
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert!(stream.next_entry(Duration::from_secs(2)).await.is_none());
}

/// Revoking a token ends the streams opened with it, by a session or as a bearer token, and
/// an entry written just after the revoke reaches neither; a stream with nothing new to send
/// ends too, by its periodic check.
async fn a_revoked_token_ends_its_open_streams_and_sends_them_nothing_more(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Cache stampede").await;
    let viewer = create_token(&t.app.store, "viewer", "read").await;
    let idle = create_token(&t.app.store, "idle", "read").await;
    let events = t.url("/incidents/INC-1/events");
    let cookie = session_cookie(&t, &viewer).await;
    let plain = reqwest::Client::new();
    let mut by_session = SseReader::open(plain.get(&events).header("cookie", &cookie)).await;
    let mut by_bearer = SseReader::open(bearer_client(&viewer).get(&events)).await;
    let mut quiet = SseReader::open(bearer_client(&idle).get(&events)).await;
    t.ok("update INC-1 before the revoke").await;
    for stream in [&mut by_session, &mut by_bearer, &mut quiet] {
        let got = stream
            .next_entry(WITHIN * 3)
            .await
            .expect("an entry before");
        assert!(got.data.contains("before the revoke"), "{got:?}");
    }

    let revoked = Instant::now();
    assert!(
        t.app
            .store
            .revoke_token("viewer", Utc::now())
            .await
            .unwrap()
    );
    t.ok("update INC-1 after the revoke").await;
    for (name, stream) in [("session", &mut by_session), ("bearer", &mut by_bearer)] {
        let rest = stream
            .until_end(Duration::from_secs(3))
            .await
            .unwrap_or_else(|| panic!("the {name} stream is still open 3 s after the revoke"));
        eprintln!(
            "{name} stream ended {:?} after the revoke",
            revoked.elapsed()
        );
        assert!(
            rest.iter().all(|e| !e.data.contains("after the revoke")),
            "{name}: {rest:?}"
        );
        assert!(
            rest.iter().any(|e| e.event == "signed-out"),
            "{name}: {rest:?}"
        );
    }
    // The idle token's stream goes on; revoked with nothing new to send, it ends too.
    let got = quiet.next_entry(WITHIN * 3).await.expect("still streaming");
    assert!(got.data.contains("after the revoke"), "{got:?}");
    let revoked = Instant::now();
    assert!(t.app.store.revoke_token("idle", Utc::now()).await.unwrap());
    let rest = quiet
        .until_end(Duration::from_secs(3))
        .await
        .expect("the idle stream is still open 3 s after its revoke");
    eprintln!("idle stream ended {:?} after the revoke", revoked.elapsed());
    assert!(rest.iter().any(|e| e.event == "signed-out"), "{rest:?}");
    // The script goes to the sign-in page on `signed-out` instead of reconnecting.
    let script = t
        .get("/assets/live.js")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains("addEventListener(\"signed-out\""),
        "{script}"
    );
    assert!(script.contains("\"/signin?next=\""), "{script}");
}
