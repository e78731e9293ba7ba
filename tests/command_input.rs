//! What people type, through the one gate: limits, control characters, NUL, start times,
//! and the CLI's bare incident number for every verb. Regression tests for issue 9's
//! observations 7, 8 and 9 and the grammar's bare-number gaps, on SQLite and Postgres.

mod common;

use common::fake_slack::FakeSlack;
use common::process::{Cli, stderr};
use common::slack::{SLACK_CONFIG, SlackSender, integrations};
use common::*;
use firebreak::incident::{EntryKind, IncidentNumber, ServiceError, UserError};

on_both!(
    a_megabyte_update_is_refused_by_the_cli_and_stores_nothing,
    a_megabyte_update_is_refused_by_the_slash_command_and_stores_nothing,
    escapes_and_bidi_overrides_are_stripped_before_storage_and_never_printed,
    nul_is_a_clear_user_error,
    start_and_detection_times_in_the_future_are_refused,
    the_cli_takes_a_bare_number_for_action_items_and_postmortem_sections,
);

/// One megabyte of update text, in words short enough for argv.
fn megabyte() -> Vec<String> {
    (0..10_000).map(|_| "x".repeat(99)).collect()
}

async fn updates(store: &firebreak::store::Store) -> usize {
    let (_, timeline) = incident_timeline(store, 1).await;
    timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Update)
        .count()
}

async fn a_megabyte_update_is_refused_by_the_cli_and_stores_nothing(backend: Backend) {
    let cli = Cli::new(backend, "").await;
    cli.ok(&["incident", "declare", "sev2", "Search", "is", "slow"])
        .await;
    let words = megabyte();
    let mut args = vec!["incident", "update", "1"];
    args.extend(words.iter().map(String::as_str));
    let out = cli.run(&args).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: The update is 999,999 characters; the limit is 4,000."),
        "{}",
        &err[..err.len().min(300)]
    );
    let store = cli.db.store().await;
    assert_eq!(updates(&store).await, 0);
    let inc = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.version, 1, "nothing changed");
    assert!(store.list_effects(false, 10).await.unwrap().is_empty());
}

async fn a_megabyte_update_is_refused_by_the_slash_command_and_stores_nothing(backend: Backend) {
    let slack = FakeSlack::start().await;
    let app = spawn_app_with(
        backend,
        test_config(SLACK_CONFIG),
        integrations(&slack.url),
        None,
    )
    .await;
    let send = SlackSender::new(&app);
    send.command("declare sev2 Search is slow", "C_ORIGIN", "U0ALICE")
        .await;
    assert!(queue_idle(&app.app.store, 15).await);
    let calls = slack.calls().len();
    let text = format!("update INC-1 {}", megabyte().join(" "));
    let reply = send.command(&text, "C_ORIGIN", "U0ALICE").await;
    let shown = reply["text"].as_str().unwrap_or_default();
    assert!(
        shown.contains("The update is 999,999 characters; the limit is 4,000."),
        "{}",
        &shown[..shown.len().min(300)]
    );
    assert!(queue_idle(&app.app.store, 15).await);
    assert_eq!(updates(&app.app.store).await, 0);
    assert_eq!(slack.calls().len(), calls, "nothing was sent to Slack");
}

async fn escapes_and_bidi_overrides_are_stripped_before_storage_and_never_printed(
    backend: Backend,
) {
    let cli = Cli::new(backend, "").await;
    cli.ok(&[
        "incident",
        "declare",
        "sev2",
        "\u{1b}[2JCheckout",
        "\u{202e}gnp.exe\u{202c}",
        "down",
    ])
    .await;
    cli.ok(&[
        "incident",
        "update",
        "1",
        "\u{1b}[31mRolled\u{1b}[0m",
        "back\u{7}",
        "\u{1b}]0;pwned\u{7}the",
        "deploy\u{2066}",
    ])
    .await;
    cli.ok(&["incident", "note", "1", "line\u{85}one\u{9b}2J"])
        .await;
    let store = cli.db.store().await;
    let (inc, timeline) = incident_timeline(&store, 1).await;
    assert_eq!(inc.title, "Checkout gnp.exe down");
    let update = timeline
        .iter()
        .find(|e| e.kind == EntryKind::Update)
        .unwrap();
    assert_eq!(update.text, "Rolled back the deploy");
    let note = timeline.iter().find(|e| e.kind == EntryKind::Note).unwrap();
    // NEL is whitespace to the grammar; a C1 CSI drops with its sequence, as ESC [ does.
    assert_eq!(note.text, "line one");
    for args in [
        &["incident", "show", "1"][..],
        &["incident", "show", "1", "--json"],
        &["incident", "list"],
    ] {
        let out = cli.ok(args).await;
        assert!(out.contains("Checkout gnp.exe down"), "{args:?}: {out}");
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)),
            "{args:?} printed a control character: {out:?}"
        );
    }
}

async fn nul_is_a_clear_user_error(backend: Backend) {
    let t = service(backend, test_config("")).await;
    t.ok("declare sev2 Search is slow").await;
    for line in [
        "declare sev2 Null\0title",
        "update INC-1 a\0b",
        "note INC-1 a\0b",
        "resolve INC-1 a\0b",
        "assign INC-1 comms bo\0b",
        "action add INC-1 a\0b --owner da\0na",
        "postmortem set INC-1 impact a\0b",
    ] {
        match t.run(line).await {
            Err(ServiceError::User(UserError::Invalid(message))) => {
                assert!(message.contains("NUL byte"), "{line:?}: {message}");
            }
            other => panic!("{line:?}: {other:?}"),
        }
    }
    let (inc, timeline) = incident_timeline(&t.app.store, 1).await;
    assert_eq!(inc.version, 1);
    assert_eq!(timeline.len(), 1, "{timeline:?}");
    assert_eq!(
        t.app.store.list_incidents(false, 10).await.unwrap().len(),
        1
    );

    // And through Slack, where the text arrives form-encoded.
    let slack = FakeSlack::start().await;
    let app = spawn_app_with(
        backend,
        test_config(SLACK_CONFIG),
        integrations(&slack.url),
        None,
    )
    .await;
    let send = SlackSender::new(&app);
    let reply = send
        .command("declare sev2 Null\0title", "C_ORIGIN", "U0ALICE")
        .await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .contains("NUL byte"),
        "{reply}"
    );
    assert!(
        app.app
            .store
            .list_incidents(false, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn start_and_detection_times_in_the_future_are_refused(backend: Backend) {
    let cli = Cli::new(backend, "").await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (flag, when, reason) in [
        ("--started", future.as_str(), "in the future"),
        ("--detected", future.as_str(), "in the future"),
        ("--started", "31d", "30 days"),
    ] {
        let out = cli
            .run(&["incident", "declare", "sev2", "Slow", flag, when])
            .await;
        assert_eq!(out.status.code(), Some(2), "{flag} {when}");
        let err = stderr(&out);
        assert!(
            err.lines()
                .any(|l| l.starts_with("error: ") && l.contains(reason)),
            "{flag} {when}: {err}"
        );
    }
    let out = cli
        .run(&[
            "incident",
            "declare",
            "sev2",
            "Slow",
            "--started",
            "10m",
            "--detected",
            &past,
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--detected is before --started"),
        "{}",
        stderr(&out)
    );
    assert!(cli.list().await.as_array().unwrap().is_empty());
    cli.ok(&[
        "incident",
        "declare",
        "sev2",
        "Slow",
        "--started",
        &past,
        "--detected",
        "10m",
    ])
    .await;
}

async fn the_cli_takes_a_bare_number_for_action_items_and_postmortem_sections(backend: Backend) {
    let cli = Cli::new(backend, "").await;
    cli.ok(&["incident", "declare", "sev2", "Search", "is", "slow"])
        .await;
    let out = cli
        .ok(&[
            "incident", "action", "add", "1", "Alert", "on", "index", "age", "--owner", "dana",
        ])
        .await;
    assert!(out.contains("Action item 1"), "{out}");
    cli.ok(&["incident", "action", "done", "1", "1"]).await;
    cli.ok(&[
        "incident",
        "postmortem",
        "set",
        "1",
        "root-cause",
        "The",
        "index",
        "went",
        "stale.",
    ])
    .await;
    let store = cli.db.store().await;
    let (inc, _) = incident_timeline(&store, 1).await;
    let actions = store.action_items(&inc.id).await.unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].text, "Alert on index age");
    assert_eq!(actions[0].owner.as_deref(), Some("cli:dana"));
    assert!(actions[0].done.0, "{actions:?}");
    let fields = store.postmortem_fields(&inc.id).await.unwrap();
    assert!(
        format!("{fields:?}").contains("The index went stale."),
        "{fields:?}"
    );
}
