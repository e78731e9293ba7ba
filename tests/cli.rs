//! The `firebreak` binary end to end: exit codes and one-line errors, JSON output, the
//! bounded drain, `effects list/retry`, `config check`, a SIGKILL between commit and
//! delivery, and SIGTERM on `serve`; what people type into the environment: an empty secret
//! entry, `$USER`, and running from another directory.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::*;
use common::*;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

on_both!(
    writes_read_back_and_bad_input_exits_non_zero,
    drain_is_bounded_and_says_what_is_pending,
    failed_effects_are_listed_and_retried,
    killed_between_commit_and_delivery_then_serve_delivers,
    a_reader_that_stops_early_ends_the_command_quietly,
    writes_and_reads_print_one_incident_shape,
    the_list_is_a_table_and_filters,
);

const FAST: &str =
    "[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"100ms\"\npoll_interval = \"20ms\"\n";

async fn writes_read_back_and_bad_input_exits_non_zero(backend: Backend) {
    let cli = Cli::new(backend, FAST).await;
    let out = cli
        .ok(&[
            "incident", "declare", "sev1", "Checkout", "API", "returns", "502",
        ])
        .await;
    assert!(
        out.contains("INC-1 [SEV1] Checkout API returns 502 is declared"),
        "{out}"
    );
    cli.ok(&["incident", "update", "INC-1", "Rolled back deploy"])
        .await;
    cli.ok(&["incident", "assign", "1", "commander", "@dave"])
        .await;
    let list = cli.list().await;
    assert_eq!(list[0]["number"], 1);
    assert_eq!(
        list[0]["commander"], "cli:dave",
        "a bare name from the CLI is a local account"
    );
    assert_eq!(list[0]["commander_name"], "dave");

    let show: Value =
        serde_json::from_str(&cli.ok(&["incident", "show", "1", "--json"]).await).unwrap();
    let kinds: Vec<&str> = show["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["declared", "update", "role_assigned"]);
    assert_eq!(
        show["timeline"][0]["actor"],
        format!("cli:{}", os_account()).as_str(),
        "the CLI acts as the OS account, whatever $USER says"
    );
    assert_eq!(show["timeline"][0]["actor_name"], os_account().as_str());
    assert_eq!(show["timeline"][0]["source"], "cli");

    for (args, reason) in [
        (vec!["incident", "severity", "1", "sev9"], "not a severity"),
        (
            vec!["incident", "updte", "1", "x"],
            "Did you mean `update`?",
        ),
        (vec!["incident", "frobnicate", "1"], "Try `help`"),
        (
            vec!["incident", "status", "1", "resolved", "now"],
            "takes a status",
        ),
        (vec!["incident", "update", "hello"], "Name the incident"),
    ] {
        let out = cli.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.lines().next().unwrap().contains(reason),
            "{args:?}: {err}"
        );
    }
    cli.ok(&["incident", "status", "1", "mitigated"]).await;
    let out = cli.run(&["incident", "status", "1", "identified"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one-line reason: {}",
        stderr(&out)
    );
    let out = cli.dir.path().join("INC-1.html");
    let wrote = cli
        .ok(&[
            "postmortem",
            "INC-1",
            "--format",
            "html",
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
    assert!(wrote.contains("Wrote the INC-1 post-mortem"), "{wrote}");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("<h1>INC-1: Checkout API returns 502</h1>")
    );
    let md = cli.ok(&["postmortem", "1"]).await;
    assert!(
        md.contains("## Timeline") && md.contains("Rolled back deploy"),
        "{md}"
    );
    assert_eq!(
        cli.run(&["postmortem", "INC-99"]).await.status.code(),
        Some(2)
    );
    let after = cli.list().await;
    assert_eq!(after[0]["status"], "mitigated");
    assert_eq!(after[0]["version"], 4, "rejected commands did not write");
}

async fn drain_is_bounded_and_says_what_is_pending(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let config = format!(
        "{FAST}cli_wait = \"700ms\"\n{}",
        webhook("ops", &format!("{}/h", server.uri()), "SEV4")
    );
    let cli = Cli::new(backend, &config).await;
    let started = std::time::Instant::now();
    let out = cli
        .run(&["incident", "declare", "sev2", "Broken", "receiver"])
        .await;
    assert!(out.status.success(), "the command itself succeeded");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the wait is bounded"
    );
    let err = stderr(&out);
    assert!(err.contains("1 effect(s) still pending"), "{err}");
    assert!(err.contains("webhook \"ops\" answered HTTP 503"), "{err}");
    assert!(
        !err.contains(&server.uri()),
        "webhook URLs are secrets and never printed"
    );
}

async fn failed_effects_are_listed_and_retried(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let cli = Cli::new(
        backend,
        &format!(
            "{FAST}{}",
            webhook("general", &format!("{}/h", server.uri()), "SEV4")
        ),
    )
    .await;
    let out = cli
        .run(&["incident", "declare", "sev2", "Gone", "webhook"])
        .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the declare is recorded, its notice failed for good"
    );
    assert!(
        stderr(&out)
            .contains("✗ effect 1 (notify.webhook) failed: webhook \"general\" answered HTTP 410"),
        "{}",
        stderr(&out)
    );

    let listed = cli.ok(&["effects", "list", "--failed"]).await;
    assert!(
        listed.contains("failed") && listed.contains("HTTP 410"),
        "{listed}"
    );
    let json: Value =
        serde_json::from_str(&cli.ok(&["effects", "list", "--failed", "--json"]).await).unwrap();
    assert_eq!(json[0]["id"], 1);

    let out = cli.run(&["effects", "retry", "1"]).await;
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("✓ Notice posted to webhook \"general\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        cli.ok(&["effects", "list", "--failed"]).await.trim(),
        "No effects."
    );
    let out = cli.run(&["effects", "retry", "1"]).await;
    assert_eq!(out.status.code(), Some(2));
}

async fn killed_between_commit_and_delivery_then_serve_delivers(backend: Backend) {
    let server = MockServer::start().await;
    // The first delivery hangs, so the CLI is mid-delivery when it is killed.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let port = free_port();
    // The default 60 s lease: the restart must not wait for it.
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n{FAST}\n{}",
        webhook("general", &format!("{}/h", server.uri()), "SEV4")
    );
    let cli = Cli::new(backend, &config).await;

    let mut declare = cli
        .command(&["incident", "declare", "sev1", "Region", "down"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(10, || async {
            !server
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty()
        })
        .await
    );
    declare.kill().unwrap();
    declare.wait().unwrap();

    let started = std::time::Instant::now();
    let mut serve = cli
        .command(&["serve"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let delivered = eventually(15, || async {
        server.received_requests().await.unwrap_or_default().len() >= 2
    })
    .await;
    let took = started.elapsed();
    terminate(&mut serve);
    assert!(delivered, "the restarted worker delivered the notice");
    assert!(
        took < Duration::from_secs(2),
        "delivered {took:?} after the restart: the dead CLI's lease was taken over at once"
    );
    let requests = server.received_requests().await.unwrap();
    let keys: Vec<_> = requests
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .expect("Idempotency-Key header")
                .clone()
        })
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0], keys[1],
        "both attempts carry the same Idempotency-Key"
    );
    let status = serve.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
    let effects: Value =
        serde_json::from_str(&cli.ok(&["effects", "list", "--json"]).await).unwrap();
    assert_eq!(effects[0]["state"], "done");
    assert_eq!(effects[0]["attempts"], 2);
    assert!(Path::new(&cli.dir.path()).exists());
}

#[test]
fn config_check_names_the_bad_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firebreak.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\n[notify]\ntimout = \"5s\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("firebreak.toml:4: unknown field `timout`"),
        "{err}"
    );

    std::fs::write(&path, include_str!("../firebreak.example.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The account of this process's uid, as `id -un` names it (`uid-N` without a passwd entry):
/// what the CLI must act as, whatever `$USER` says.
fn os_account() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    if out.status.success() {
        return String::from_utf8(out.stdout).unwrap().trim().to_string();
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    format!("uid-{}", String::from_utf8(uid.stdout).unwrap().trim())
}

/// Runs a command to its end, or kills it and fails after `limit` (a `serve` that should
/// have refused to start must not hang the test).
fn output_within(mut cmd: Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_empty_secret_entry_stops_every_start_and_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("firebreak.db").display());
    let listen = format!("127.0.0.1:{}", free_port());
    let cases: [(&str, &str, &str); 3] = [
        (
            "GITHUB_WEBHOOK_SECRET",
            "s3cret,",
            "GITHUB_WEBHOOK_SECRET has an empty entry (the 2nd); remove the stray comma.",
        ),
        (
            "GITHUB_WEBHOOK_SECRET",
            "s3cret, ,n3w",
            "GITHUB_WEBHOOK_SECRET has an empty entry (the 2nd)",
        ),
        (
            "SLACK_SIGNING_SECRET",
            " ",
            "SLACK_SIGNING_SECRET is set but empty",
        ),
    ];
    for (var, value, expected) in cases {
        for args in [
            &["serve"][..],
            &["config", "check"],
            &["incident", "list"],
            &["migrate"],
        ] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebreak"));
            cmd.args(args)
                .current_dir(dir.path())
                .env("FIREBREAK_DATABASE_URL", &db)
                .env("FIREBREAK_LISTEN", &listen)
                .env("GITHUB_TOKEN", "ghp_test")
                .env("GITHUB_API_URL", "http://127.0.0.1:9")
                .env("SLACK_BOT_TOKEN", "xoxb-test")
                .env("SLACK_SIGNING_SECRET", "slack-secret")
                .env(var, value)
                .env_remove("FIREBREAK_CONFIG")
                .env_remove("RUST_LOG");
            let out = output_within(cmd, Duration::from_secs(20));
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{var}={value:?} {args:?}: {err}"
            );
            assert!(
                err.starts_with("error: ") && err.contains(expected),
                "{var}={value:?} {args:?}: {err}"
            );
            assert!(
                !err.contains("s3cret"),
                "the secret is never printed: {err}"
            );
        }
    }
    assert!(
        !dir.path().join("firebreak.db").exists(),
        "refused before the database was opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_acts_as_the_os_account_not_user() {
    let me = os_account();
    assert_ne!(me, "mallory");
    let config = |resolvers: &str| {
        format!("{FAST}[permissions]\ncli_trusted = false\nresolve = [{resolvers}]\n")
    };
    let cli = Cli::new(Backend::Sqlite, &config("\"cli:mallory\"")).await;
    let as_mallory = |args: &[&str]| {
        let mut cmd = cli.command(args);
        cmd.env("USER", "mallory")
            .env("LOGNAME", "mallory")
            .env("USERNAME", "mallory");
        cmd.output().unwrap()
    };
    let out = as_mallory(&["incident", "declare", "sev2", "Search", "is", "slow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let show: Value =
        serde_json::from_slice(&as_mallory(&["incident", "show", "1", "--json"]).stdout).unwrap();
    assert_eq!(show["timeline"][0]["actor"], format!("cli:{me}").as_str());
    assert_eq!(show["timeline"][0]["source"], "cli");

    let out = as_mallory(&["incident", "resolve", "1", "Fixed"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "$USER=mallory does not make the CLI mallory"
    );
    assert!(
        stderr(&out).contains("not allowed to resolve"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        cli.dir.path().join("firebreak.toml"),
        config(&format!("\"cli:{me}\"")),
    )
    .unwrap();
    let out = as_mallory(&["incident", "resolve", "1", "Fixed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cli.list().await[0]["status"], "resolved");
}

/// Another process holding SQLite's write lock past the 10 s wait: the CLI says so in a
/// sentence (no raw SQLite text, no spurious rollback warning) and writes nothing.
#[tokio::test]
async fn a_database_locked_past_the_wait_is_said_in_a_sentence() {
    use sqlx::{Connection, Executor};
    let cli = Cli::new(Backend::Sqlite, "").await;
    cli.ok(&["migrate"]).await;
    let mut holder = sqlx::SqliteConnection::connect(&cli.db.url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let out = cli
        .run(&[
            "incident",
            "declare",
            "sev2",
            "While",
            "locked",
            "--no-wait",
        ])
        .await;
    holder.execute("ROLLBACK").await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error: the SQLite database stayed locked by another process for 10 s"),
        "{err}"
    );
    assert!(!err.contains("code: 5"), "{err}");
    assert!(!err.contains("rolling back"), "{err}");
    assert!(cli.list().await.as_array().unwrap().is_empty());
}

#[test]
fn the_default_database_is_found_from_any_directory() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let firebreak = |cwd: &Path, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebreak"));
        cmd.args(args)
            .current_dir(cwd)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", data.path())
            .env_remove("FIREBREAK_DATABASE_URL")
            .env_remove("FIREBREAK_CONFIG")
            .env_remove("RUST_LOG");
        cmd
    };
    let run = |mut cmd: Command| {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
        let incidents = if cmd.get_args().any(|a| a == "--json") {
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        } else {
            Value::Null
        };
        (incidents, stderr(&out))
    };
    let created = |path: &Path| format!("firebreak: created a new database at {}", path.display());

    let db = data.path().join("firebreak").join("firebreak.db");
    let (_, err) = run(firebreak(
        a.path(),
        &["incident", "declare", "sev2", "Search", "is", "slow"],
    ));
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("created a new database"))
            .collect::<Vec<_>>(),
        [created(&db)],
        "one line, on the first start only: {err}"
    );
    assert!(db.exists());

    let (list, err) = run(firebreak(b.path(), &["incident", "list", "--json"]));
    assert_eq!(list[0]["title"], "Search is slow", "{list}");
    assert!(!err.contains("created"), "{err}");
    for dir in [&a, &b] {
        assert!(
            !dir.path().join("firebreak.db").exists(),
            "nothing in the cwd"
        );
    }
    let check = firebreak(b.path(), &["config", "check"]).output().unwrap();
    let check = String::from_utf8(check.stdout).unwrap();
    assert!(
        check.contains(&format!(
            "database: SQLite at {} (from the per-user default)",
            db.display()
        )),
        "{check}"
    );

    // Without XDG_DATA_HOME: under ~/.local/share.
    let mut cmd = firebreak(b.path(), &["incident", "list", "--json"]);
    cmd.env_remove("XDG_DATA_HOME");
    let (list, err) = run(cmd);
    let home_db = home.path().join(".local/share/firebreak/firebreak.db");
    assert!(err.contains(&created(&home_db)), "{err}");
    assert_eq!(list, Value::Array(vec![]));

    // The config file's [database] url, and FIREBREAK_DATABASE_URL over it.
    let file_db = a.path().join("from-file.db");
    std::fs::write(
        b.path().join("firebreak.toml"),
        format!("[database]\nurl = \"sqlite://{}\"\n", file_db.display()),
    )
    .unwrap();
    let (list, err) = run(firebreak(b.path(), &["incident", "list", "--json"]));
    assert!(err.contains(&created(&file_db)), "{err}");
    assert_eq!(list, Value::Array(vec![]));
    let env_db = a.path().join("nested/dir/from-env.db");
    let mut cmd = firebreak(b.path(), &["incident", "list", "--json"]);
    cmd.env(
        "FIREBREAK_DATABASE_URL",
        format!("sqlite://{}", env_db.display()),
    );
    let (list, err) = run(cmd);
    assert!(
        err.contains(&created(&env_db)),
        "its directory is made too: {err}"
    );
    assert_eq!(list, Value::Array(vec![]));
}

/// `firebreak incident list | head -1`: the reader closes the pipe; firebreak stops like any
/// Unix tool instead of panicking with a backtrace.
async fn a_reader_that_stops_early_ends_the_command_quietly(backend: Backend) {
    let cli = Cli::new(backend, FAST).await;
    for n in 0..3 {
        cli.ok(&[
            "incident",
            "declare",
            "sev3",
            "Slow",
            "search",
            &n.to_string(),
        ])
        .await;
    }
    let mut cmd = cli.command(&["incident", "list"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

/// `firebreak completions SHELL` prints a script without any config or database; an
/// unknown shell is clap's usage error (exit 2).
#[test]
fn completions_need_no_config_and_refuse_an_unknown_shell() {
    let dir = tempfile::tempdir().unwrap();
    let run = |shell: &str| {
        Command::new(env!("CARGO_BIN_EXE_firebreak"))
            .args(["completions", shell])
            .current_dir(dir.path())
            .env("FIREBREAK_CONFIG", dir.path().join("missing.toml"))
            .env(
                "FIREBREAK_DATABASE_URL",
                "postgres://nobody@127.0.0.1:1/none",
            )
            .output()
            .unwrap()
    };
    let out = run("bash");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("firebreak") && script.contains("incident") && script.contains("complete"),
        "{script}"
    );
    for shell in ["zsh", "fish"] {
        assert!(run(shell).status.success(), "{shell}");
    }
    let out = run("tcsh");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&out)
    );
}

/// `declare --json` and `update --json` print the incident as `show --json` (and the HTTP
/// API) does: the same keys, the timeline so far, every time to the millisecond.
async fn writes_and_reads_print_one_incident_shape(backend: Backend) {
    let cli = Cli::new(backend, FAST).await;
    let json = |out: String| -> Value { serde_json::from_str(&out).unwrap() };
    let declared = json(
        cli.ok(&[
            "incident", "declare", "sev2", "Queue", "backs", "up", "--json",
        ])
        .await,
    );
    let updated = json(
        cli.ok(&["incident", "update", "1", "Draining", "--json", "--no-wait"])
            .await,
    );
    let shown = json(cli.ok(&["incident", "show", "1", "--json"]).await);
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&declared), keys(&shown));
    assert_eq!(keys(&updated), keys(&shown));
    assert_eq!(
        declared["timeline"].as_array().unwrap().len(),
        1,
        "{declared}"
    );
    assert_eq!(
        updated["timeline"].as_array().unwrap().len(),
        2,
        "{updated}"
    );
    assert_eq!(updated, shown, "a write's reply is what a read shows next");
    for v in [&declared, &updated, &shown] {
        let entries = v["timeline"].as_array().unwrap().iter();
        let times: Vec<&str> = std::iter::once(v)
            .chain(entries)
            .flat_map(|o| o.as_object().unwrap())
            .filter(|(k, _)| k.ends_with("_at") || k.ends_with("_due"))
            .filter_map(|(_, t)| t.as_str())
            .collect();
        assert!(times.len() >= 3, "{v}");
        for t in times {
            assert!(millisecond_time(t), "{t}");
        }
    }
}

/// `…T01:02:03.456Z`: RFC 3339 ending in exactly three fractional digits and `Z`.
fn millisecond_time(t: &str) -> bool {
    let b = t.as_bytes();
    chrono::DateTime::parse_from_rfc3339(t).is_ok()
        && b.len() > 5
        && b[b.len() - 5] == b'.'
        && b[b.len() - 4..b.len() - 1].iter().all(u8::is_ascii_digit)
        && b[b.len() - 1] == b'Z'
        && b[b.len() - 6].is_ascii_digit()
}

/// `incident list`: a header and aligned columns; `--open`, `--severity` (repeatable, comma
/// lists) and `--drill`/`--no-drill` narrow it; a bad value is one sentence and exit 2.
async fn the_list_is_a_table_and_filters(backend: Backend) {
    let cli = Cli::new(backend, FAST).await;
    cli.ok(&["incident", "declare", "sev1", "Checkout", "down"])
        .await;
    cli.ok(&["incident", "declare", "sev3", "Slow", "search", "--drill"])
        .await;
    cli.ok(&["incident", "declare", "sev2", "Login", "errors"])
        .await;
    cli.ok(&["incident", "assign", "1", "commander", "@dave"])
        .await;
    cli.ok(&["incident", "resolve", "3"]).await;

    let table = cli.ok(&["incident", "list"]).await;
    let lines: Vec<&str> = table.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("INCIDENT "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        lines[header].contains("SEVERITY")
            && lines[header].contains("AGE")
            && lines[header].contains("COMMANDER")
            && lines[header].ends_with("TITLE"),
        "{table}"
    );
    let rows = &lines[header + 1..];
    assert_eq!(rows.len(), 3, "{table}");
    let title_at = lines[header].find("TITLE").unwrap();
    let commander_at = lines[header].find("COMMANDER").unwrap();
    for row in rows {
        assert!(row.starts_with("INC-"), "{table}");
        assert!(row[..title_at].ends_with("  "), "aligned: {table}");
    }
    let first = rows.iter().find(|r| r.starts_with("INC-1 ")).unwrap();
    assert!(first[commander_at..].starts_with("dave "), "{table}");
    let age_at = lines[header].find("AGE").unwrap();
    let age = first[age_at..].split_whitespace().next().unwrap();
    assert!(
        first.contains(" SEV1 ") && age.ends_with('s'),
        "age {age}: {table}"
    );
    assert_eq!(&first[title_at..], "Checkout down", "{table}");
    let drill = rows.iter().find(|r| r.starts_with("INC-2 ")).unwrap();
    assert!(
        drill.contains(" drill ") && drill.ends_with("Slow search"),
        "{table}"
    );

    let numbers = |args: &'static [&'static str]| list_numbers(&cli, args);
    assert_eq!(numbers(&[]).await, [1, 2, 3]);
    assert_eq!(numbers(&["--open"]).await, [1, 2]);
    assert_eq!(numbers(&["--severity", "sev1,sev2"]).await, [1, 3]);
    assert_eq!(
        numbers(&["--severity", "sev3", "--severity=SEV2"]).await,
        [2, 3]
    );
    assert_eq!(
        numbers(&["--open", "--severity", "sev2"]).await,
        [] as [i64; 0]
    );
    assert_eq!(numbers(&["--drill"]).await, [2]);
    assert_eq!(numbers(&["--no-drill", "--open"]).await, [1]);

    for (args, reason) in [
        (vec!["--severity", "sev9"], "\"sev9\" is not a severity"),
        (vec!["--severity"], "--severity needs a value"),
        (vec!["--drill", "--no-drill"], "not both"),
        (vec!["--closed"], "Unknown option --closed"),
    ] {
        let mut all = vec!["incident", "list"];
        all.extend(&args);
        let out = cli.run(&all).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(reason),
            "{args:?}: {err}"
        );
    }
}

/// The incidents `incident list ARGS --json` shows, by number.
async fn list_numbers(cli: &Cli, args: &[&str]) -> Vec<i64> {
    let mut all = vec!["incident", "list"];
    all.extend(args);
    all.push("--json");
    let list: Value = serde_json::from_str(&cli.ok(&all).await).unwrap();
    let mut n: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_i64().unwrap())
        .collect();
    n.sort_unstable();
    n
}

/// `config check` says what is configured, one line each, and never prints a secret; a
/// repository that is not `owner/repo` is refused with its key (exit 2), by `serve` too.
#[test]
fn config_check_reports_without_secrets_and_refuses_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firebreak.toml");
    let db = format!("sqlite://{}", dir.path().join("firebreak.db").display());
    let check = |config: &str, args: &[&str]| {
        std::fs::write(&path, config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_firebreak"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("FIREBREAK_DATABASE_URL", &db)
            .env("SLACK_BOT_TOKEN", "xoxb-sekrit-4242")
            .env("SLACK_SIGNING_SECRET", "signing-sekrit")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_APP_ID")
            .env_remove("GITHUB_APP_PRIVATE_KEY")
            .env_remove("DISCORD_BOT_TOKEN")
            .env_remove("DISCORD_PUBLIC_KEY")
            .env_remove("DISCORD_APPLICATION_ID")
            .output()
            .unwrap()
    };
    let good = "[slack]\ninvite = [\"U1\"]\n[discord]\nguild_id = \"42\"\n[github]\nrepos = [\"acme/api\", \"acme/*\"]\n\
                [[notify.webhook]]\nname = \"ops\"\nurl = \"https://hooks.example.com/T/secret-path\"\n\
                [postmortem.github]\nrepo = \"acme/postmortems\"\n";
    let out = check(good, &["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = String::from_utf8(out.stdout.clone()).unwrap();
    for line in [
        "database: SQLite at ",
        "slack: configured (every secret set)",
        "discord: [discord] is set up but DISCORD_BOT_TOKEN, DISCORD_PUBLIC_KEY, DISCORD_APPLICATION_ID not set",
        "github: not configured",
        "acme/api, acme/*",
        "webhooks: ops (SEV1..SEV2)",
        "post-mortem publishing: pull requests to acme/postmortems",
    ] {
        assert!(report.contains(line), "{line}: {report}");
    }
    let all = format!("{report}{}", stderr(&out));
    assert!(
        !all.contains("sekrit") && !all.contains("secret-path"),
        "{all}"
    );

    let bad = "[github]\nrepos = [\"acme/api\", \"not a repo\"]\n";
    for args in [&["config", "check"][..], &["serve"][..]] {
        let out = check(bad, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("github.repos[2]: \"not a repo\" is not a repository name"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
