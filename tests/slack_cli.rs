//! The `firebreak` binary with Slack configured (issue 8): `incident declare` delivers the
//! company-wide notice itself, one effect per channel, and when one channel cannot get it
//! the drain says which channel and how to fix it, while the others still get theirs.

mod common;

use std::process::Command;

use common::fake_slack::FakeSlack;
use common::*;

on_both!(the_cli_drain_names_a_bad_channel_and_the_fix);

async fn the_cli_drain_names_a_bad_channel_and_the_fix(backend: Backend) {
    let slack = FakeSlack::start().await;
    slack.break_channel("C0MISSING", "channel_not_found");
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = "[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"100ms\"\npoll_interval = \"20ms\"\n\
                  [slack.announce]\nSEV1 = [\"C0MISSING\", \"C0ANNOUNCE\"]\n";
    std::fs::write(dir.path().join("firebreak.toml"), config).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firebreak"));
        cmd.args(args)
            .current_dir(dir.path())
            .env("FIREBREAK_DATABASE_URL", &db.url)
            .env("FIREBREAK_CONFIG", dir.path().join("firebreak.toml"))
            .env("SLACK_SIGNING_SECRET", "cli-secret")
            .env("SLACK_BOT_TOKEN", "xoxb-cli")
            .env("SLACK_API_URL", &slack.url)
            .env("USER", "carol")
            .env_remove("RUST_LOG");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let out = run(&["incident", "declare", "sev1", "Checkout", "down"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "declared, but one notice failed for good: {stderr}"
    );
    assert!(
        stdout.contains("Company-wide notice queued to 2 Slack channels."),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "(slack.notice) failed: Could not post the company-wide notice in <#C0MISSING>: \
             channel_not_found. Invite the bot with `/invite @firebreak` in that channel, or fix `[slack.announce]`."
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("✓ Company-wide notice posted in <#C0ANNOUNCE>"),
        "{stderr}"
    );
    let notices: Vec<_> = slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == "C0ANNOUNCE")
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");

    // An update from the CLI delivers what it causes before the CLI exits: the notice is
    // edited and the update goes into its thread (the fan-out's per-channel effects).
    let out = run(&["incident", "update", "INC-1", "Rolled", "back"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let in_announce: Vec<_> = slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == "C0ANNOUNCE")
        .collect();
    let notice = in_announce.iter().find(|m| m.thread_ts.is_none()).unwrap();
    assert!(notice.edits >= 1, "the notice was edited: {in_announce:?}");
    assert!(
        in_announce
            .iter()
            .any(|m| m.thread_ts.as_deref() == Some(notice.ts.as_str())
                && m.text.contains("Rolled back")),
        "the update is in the notice's thread: {in_announce:?}"
    );
}
