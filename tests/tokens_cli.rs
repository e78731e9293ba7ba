//! `firebreak token create | list | revoke` as a user runs them, and `firebreak serve` as a
//! process refusing the API without a token, answering with one made by the CLI, and
//! serving `/metrics` with no token on `server.metrics_listen`. On both databases.

mod common;

use std::process::Stdio;

use common::process::*;
use common::*;
use serde_json::Value;

on_both!(
    tokens_are_created_listed_and_revoked,
    managing_tokens_needs_the_unfreeze_all_permission,
    the_served_binary_needs_a_token_from_the_cli,
);

async fn tokens_are_created_listed_and_revoked(backend: Backend) {
    let cli = Cli::new(backend, "").await;
    let out = cli
        .run(&[
            "token",
            "create",
            "--name",
            "alertmanager",
            "--scope",
            "declare, read",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        token.starts_with("fbk_") && token.len() >= 36,
        "only the token on stdout: {token}"
    );
    assert!(
        stderr(&out).contains("\"alertmanager\" with the scopes read,declare"),
        "{}",
        stderr(&out)
    );

    refused(&cli, &[
            "token",
            "create",
            "--name",
            "alertmanager",
            "--scope",
            "read",
        ], "error: A token called \"alertmanager\" already exists; revoke it first or pick another name.").await;
    refused(
        &cli,
        &["token", "create", "--name", "x", "--scope", "read,wrte"],
        "error: \"wrte\" is not a scope; the scopes are read, declare, update and metrics.",
    )
    .await;
    let spaced = cli
        .run(&["token", "create", "--name", "a b", "--scope", "read"])
        .await;
    assert_eq!(spaced.status.code(), Some(2), "{}", stderr(&spaced));

    let table = cli.ok(&["token", "list"]).await;
    let me = firebreak::cli::identity::os_account();
    let row = table
        .lines()
        .find(|l| l.starts_with("alertmanager"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("read,declare"), "{row}");
    assert!(row.contains(&format!("by cli:{me}")), "{row}");
    assert!(row.trim_end().ends_with("never"), "{row}");
    assert!(!table.contains(&token), "the token is never shown again");
    assert_eq!(table.lines().count(), 2, "a header and one token: {table}");

    let json: Value = serde_json::from_str(&cli.ok(&["token", "list", "--json"]).await).unwrap();
    assert_eq!(json[0]["name"], "alertmanager");
    assert_eq!(json[0]["scopes"], serde_json::json!(["read", "declare"]));
    assert_eq!(json[0]["last_used_at"], Value::Null);
    assert!(!json.to_string().contains(&token[4..]));

    let out = cli.ok(&["token", "revoke", "alertmanager"]).await;
    assert!(
        out.starts_with("Revoked the token \"alertmanager\""),
        "{out}"
    );
    assert!(
        cli.ok(&["token", "list"])
            .await
            .starts_with("No API tokens;")
    );
    let again = cli.run(&["token", "revoke", "alertmanager"]).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("There is no token called \"alertmanager\""));
    // The name is free again once revoked.
    cli.ok(&[
        "token",
        "create",
        "--name",
        "alertmanager",
        "--scope",
        "read",
    ])
    .await;
}

async fn managing_tokens_needs_the_unfreeze_all_permission(backend: Backend) {
    let config = "[permissions]\ncli_trusted = false\nunfreeze_all = [\"cli:someone-else\"]\n";
    let cli = Cli::new(backend, config).await;
    let me = firebreak::cli::identity::os_account();
    let refused = cli
        .run(&["token", "create", "--name", "ci", "--scope", "read"])
        .await;
    assert_eq!(refused.status.code(), Some(2));
    // (The first command also says it created the SQLite database.)
    assert_eq!(
        stderr(&refused).lines().last().unwrap(),
        format!(
            "error: You are not allowed to manage API tokens (cli:{me} may not); ask someone listed under [permissions] unfreeze_all."
        )
    );
    assert!(refused.stdout.is_empty());
    let revoke = cli.run(&["token", "revoke", "ci"]).await;
    assert_eq!(revoke.status.code(), Some(2));
    assert!(stderr(&revoke).contains("not allowed to manage API tokens"));
    // Listing shows no secret, so it needs no permission.
    assert!(
        cli.ok(&["token", "list"])
            .await
            .starts_with("No API tokens;")
    );

    let allowed = format!("[permissions]\ncli_trusted = false\nunfreeze_all = [\"cli:{me}\"]\n");
    std::fs::write(cli.dir.path().join("firebreak.toml"), allowed).unwrap();
    cli.ok(&["token", "create", "--name", "ci", "--scope", "read"])
        .await;
}

async fn the_served_binary_needs_a_token_from_the_cli(backend: Backend) {
    let (port, metrics_port) = (free_port(), free_port());
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\nshutdown_grace = \"500ms\"\n"
    );
    let cli = Cli::new(backend, &config).await;
    cli.ok(&["incident", "declare", "sev2", "Queue", "backlog"])
        .await;
    let token = cli
        .ok(&["token", "create", "--name", "ci", "--scope", "read"])
        .await
        .trim()
        .to_string();
    let mut serve = Serving(
        cli.command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    {
        let up = common::process::answers_health(&http, &base).await;
        assert!(up, "serve answers");
        let without = http
            .get(format!("{base}/api/incidents"))
            .send()
            .await
            .unwrap();
        assert_eq!(without.status(), 401);
        assert_eq!(without.headers()["www-authenticate"], "Bearer");
        let with = http
            .get(format!("{base}/api/incidents"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(with.status(), 200);
        let list: Value = with.json().await.unwrap();
        assert_eq!(list[0]["title"], "Queue backlog");
        let metrics = http
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
        let main_metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(main_metrics.status(), 401);
    }
    terminate(&mut serve.0);
    assert!(serve.0.wait().unwrap().success(), "serve exits on SIGTERM");
    let listed = cli.ok(&["token", "list"]).await;
    let row = listed.lines().find(|l| l.starts_with("ci ")).unwrap();
    assert!(
        !row.trim_end().ends_with("never"),
        "its use is recorded: {row}"
    );
}

/// `args` exit with status 2 and exactly `message` on stderr.
async fn refused(cli: &Cli, args: &[&str], message: &str) {
    let out = cli.run(args).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim(), message);
}
