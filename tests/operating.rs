//! Operating the built binary: the log as text or JSON (colour only on a terminal), the
//! access log and its request id, errors said once and naming the database, and exit codes
//! for a database URL the user can fix.

mod common;

use std::process::Stdio;

use common::process::*;
use common::*;
use serde_json::Value;

on_both!(serve_logs_json_lines_with_an_access_line_per_request);

/// `firebreak <args>` (a `serve`) as a process with its log piped, once it answers: the
/// process and its base URL.
async fn serving(cli: &Cli, args: &[&str]) -> (Serving, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let serving = Serving(
        cli.command(args)
            .env("FIREBREAK_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(answers_health(&reqwest::Client::new(), &base).await);
    (serving, base)
}

async fn serve_logs_json_lines_with_an_access_line_per_request(backend: Backend) {
    let cli = Cli::new(backend, "").await;
    let (mut serving, base) = serving(&cli, &["--log-format", "json", "serve"]).await;
    let http = reqwest::Client::new();
    let echoed = http
        .get(format!("{base}/readyz?token=hunter2"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "req-42");
    let minted = http.get(format!("{base}/healthz")).send().await.unwrap();
    let minted_id = minted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(minted_id.len(), 36, "a UUID: {minted_id}");

    let out = serving.stop();
    let log = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access = |id: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "firebreak::access" && l["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id} in {log}"))
            .clone()
    };
    let ready = access("req-42");
    assert_eq!(ready["span"]["path"], "/readyz");
    assert_eq!(ready["span"]["method"], "GET");
    assert_eq!(ready["status"], 200);
    assert!(ready["latency_ms"].as_f64().is_some());
    assert_eq!(access(&minted_id)["span"]["path"], "/healthz");
    assert!(!log.contains("hunter2"), "the query string is not logged");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "firebreak is listening")
    );
}

#[tokio::test]
async fn text_logs_into_a_file_have_no_colour_codes() {
    let cli = Cli::new(Backend::Sqlite, "").await;
    let (mut serving, _) = serving(&cli, &["serve"]).await;
    let log = String::from_utf8(serving.stop().stderr).unwrap();
    assert!(log.contains("firebreak is listening"), "{log}");
    assert!(log.contains("firebreak::access"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a pipe: {log:?}");
}

#[tokio::test]
async fn a_database_url_firebreak_cannot_use_is_the_users_to_fix() {
    let cli = Cli::new(Backend::Sqlite, "").await;
    let out = cli
        .command(&["incident", "list"])
        .env("FIREBREAK_DATABASE_URL", "mysql://root:hunter2@db/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: FIREBREAK_DATABASE_URL is a mysql: URL;"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn an_unopenable_sqlite_file_is_named_once() {
    let cli = Cli::new(Backend::Sqlite, "").await;
    let missing = cli.dir.path().join("no-such-dir").join("x.db");
    let out = cli
        .command(&["incident", "list"])
        .env(
            "FIREBREAK_DATABASE_URL",
            format!("sqlite://{}?mode=rw", missing.display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "said once: {err}");
    assert!(
        err.starts_with(&format!(
            "error: could not open the SQLite database {}: unable to open database file",
            missing.display()
        )),
        "{err}"
    );
    assert_eq!(
        err.matches("unable to open database file").count(),
        1,
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_names_host_port_and_cause() {
    let cli = Cli::new(Backend::Sqlite, "").await;
    let port = free_port();
    let out = cli
        .command(&["incident", "list"])
        .env(
            "FIREBREAK_DATABASE_URL",
            format!("postgres://app:hunter2@127.0.0.1:{port}/firebreak"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: could not connect to the Postgres database at 127.0.0.1:{port}/firebreak: "
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
