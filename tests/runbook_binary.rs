//! Runbooks driven through the built binary, as a user would: `firebreak serve` as a
//! process with webhook receivers on ports, `firebreak drill run` and `firebreak runbook
//! done|show` as commands on the same database, real time. And a bad runbook file stops
//! `serve` with the file, the line and the key.

mod common;

use std::process::Stdio;

use common::process::{Cli, Serving, answers_health, free_port, stderr};
use common::receiver::Receiver;
use common::*;

on_both!(
    drill_run_from_the_cli_fires_on_time_and_steps_are_ticked_from_the_cli,
    serve_refuses_a_bad_runbook_naming_file_line_and_key,
);

const QUICK: &str = r#"
title = "Quick drill"
severities = ["sev2"]
recovery_objective = "1h"

[[step]]
id = "announce"
title = "Announce"
at = "T+0"
action = "announce"

[[step]]
id = "check-dashboards"
title = "Check the dashboards"
at = "T+1m"
owner = "team:sre"

[[step]]
id = "tell-customers"
title = "Tell customers"
at = "T+2s"
owner = "comms"
action = "notify"
webhook = "statuspage"
text = "We are looking into slow checkouts."
"#;

async fn drill_run_from_the_cli_fires_on_time_and_steps_are_ticked_from_the_cli(backend: Backend) {
    let (statuspage, drills) = (Receiver::start().await, Receiver::start().await);
    let config = format!(
        "{}{}[runbooks]\ndir = \"runbooks\"\ndrill_webhook = \"drills\"\n[effects]\npoll_interval = \"50ms\"\n",
        webhook("statuspage", &statuspage.url("/hook"), "SEV4"),
        webhook("drills", &drills.url("/hook"), "SEV4"),
    );
    let cli = Cli::new(backend, &config).await;
    std::fs::create_dir(cli.dir.path().join("runbooks")).unwrap();
    std::fs::write(cli.dir.path().join("runbooks/quick.toml"), QUICK).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _serving = Serving(
        cli.command(&["serve"])
            .env("FIREBREAK_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(answers_health(&reqwest::Client::new(), &base).await);

    let out = cli.ok(&["drill", "run", "quick", "--no-wait"]).await;
    assert!(
        out.contains("INC-1") && out.contains("Runbook quick attached (3 steps)"),
        "{out}"
    );
    // `serve` fires the T+2s customer notice by itself, to the drill route only.
    let told = eventually(15, || async {
        drills
            .accepted()
            .iter()
            .any(|m| m.text.starts_with("[DRILL]") && m.text.contains("slow checkouts"))
    })
    .await;
    assert!(
        told,
        "drill webhook got: {:?}",
        drills
            .accepted()
            .iter()
            .map(|m| &m.text)
            .collect::<Vec<_>>()
    );
    assert!(
        statuspage.log().is_empty(),
        "no customer is told about a drill"
    );

    let done = cli
        .ok(&[
            "runbook",
            "done",
            "INC-1",
            "check-dashboards",
            "all",
            "green",
        ])
        .await;
    assert!(
        done.contains("Runbook step `check-dashboards` (Check the dashboards) done at T+"),
        "{done}"
    );
    let again = cli.run(&["runbook", "done", "1", "check-dashboards"]).await;
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already ended: done at T+"),
        "{}",
        stderr(&again)
    );
    let shown = cli.ok(&["runbook", "show", "INC-1"]).await;
    assert!(
        shown.contains("✅")
            && shown.contains("`tell-customers`")
            && shown.contains("`check-dashboards`"),
        "{shown}"
    );
    let unknown = cli.run(&["drill", "run", "nope"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("There is no runbook named \"nope\""),
        "{}",
        stderr(&unknown)
    );
}

async fn serve_refuses_a_bad_runbook_naming_file_line_and_key(backend: Backend) {
    let cli = Cli::new(backend, "[runbooks]\ndir = \"runbooks\"\n").await;
    std::fs::create_dir(cli.dir.path().join("runbooks")).unwrap();
    let bad = QUICK.replace(
        "owner = \"team:sre\"",
        "owner = \"team:sre\"\nwhen = \"soon\"",
    );
    std::fs::write(cli.dir.path().join("runbooks/quick.toml"), bad).unwrap();
    let out = cli.run(&["serve"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("runbooks/quick.toml:17: when: unknown key"),
        "{err}"
    );
}
