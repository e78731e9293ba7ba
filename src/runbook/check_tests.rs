//! Unit tests for [`super`] (`check.rs`).

use super::*;
use crate::incident::model::Severity;
use crate::runbook::{Owner, Step};
use std::time::Duration;

fn step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        title: id.into(),
        at: Duration::ZERO,
        owner: Owner::Commander,
        action,
    }
}

fn books() -> Runbooks {
    Runbooks::from_list(vec![Runbook {
        name: "regional".into(),
        title: "Regional outage".into(),
        severities: vec![Severity::Sev1],
        services: vec![],
        recovery_objective: None,
        steps: vec![
            step("bridge", Action::Manual),
            step(
                "freeze",
                Action::Freeze {
                    repos: vec!["acme/api".into(), "acme/old".into(), "nope".into()],
                },
            ),
            step("freeze-all", Action::Freeze { repos: vec![] }),
            step(
                "customers",
                Action::Notify {
                    to: Destination::Webhook("statuspage".into()),
                    text: "x".into(),
                },
            ),
            step(
                "page",
                Action::Page {
                    webhook: "pager".into(),
                    text: "x".into(),
                },
            ),
            step(
                "status-channel",
                Action::Notify {
                    to: Destination::SlackChannel("C0STATUS".into()),
                    text: "x".into(),
                },
            ),
        ],
    }])
}

fn setup() -> Setup {
    Setup {
        webhooks: vec!["statuspage".into(), "reports".into()],
        github: true,
        default_repos: vec!["acme/*".into()],
        slack: false,
        report_webhook: Some("reports".into()),
        ..Setup::default()
    }
}

#[test]
fn the_config_alone_flags_unknown_webhooks_bad_repo_names_and_slack_without_slack() {
    let rel = reliances(&books(), &setup());
    let r = report(&rel, None);
    let lines: Vec<String> = r.findings.iter().map(Finding::line).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("runbook regional, step freeze: \"nope\" is not a repository name"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "runbook regional, step page: webhook \"pager\" is not a configured [[notify.webhook]] (configured: statuspage, reports)."
    );
    assert_eq!(
        lines[2],
        "runbook regional, step status-channel: Slack is not configured, so nothing can be posted to Slack channel C0STATUS."
    );
    assert_eq!(
        to_probe(&rel),
        vec![
            Target::Repo("acme/api".into()),
            Target::Repo("acme/old".into()),
            Target::Owner("acme".into()),
            Target::Webhook("reports".into()),
            Target::Webhook("statuspage".into()),
        ]
    );
    assert!(!r.live && r.unchecked.is_empty());
}

#[test]
fn a_freeze_without_github_is_one_finding_and_keys_are_stable() {
    let setup = Setup {
        github: false,
        ..setup()
    };
    let r = report(&reliances(&books(), &setup), None);
    let freeze: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.step.starts_with("freeze"))
        .collect();
    assert_eq!(freeze.len(), 2);
    assert_eq!(freeze[0].key(), "regional/freeze/GitHub");
    assert!(freeze[0].problem.starts_with("GitHub is not configured"));
}

#[test]
fn verdicts_become_findings_or_unchecked_lines_per_step() {
    let rel = reliances(&books(), &setup());
    let mut v: HashMap<Target, Verdict> = to_probe(&rel)
        .into_iter()
        .map(|t| (t, Verdict::Fine))
        .collect();
    v.insert(
        Target::Repo("acme/old".into()),
        Verdict::Stale("repository acme/old does not exist or the token cannot see it".into()),
    );
    v.insert(
        Target::Webhook("reports".into()),
        Verdict::Unknown("the check timed out".into()),
    );
    let r = report(&rel, Some(&v));
    assert!(r.live);
    assert_eq!(r.findings.len(), 4);
    assert_eq!(r.findings[0].key(), "regional/freeze/repository acme/old");
    assert_eq!(r.unchecked.len(), 1);
    assert_eq!(r.unchecked[0].place(), "[runbooks] report_webhook");
}

#[test]
fn a_summary_counts_what_a_runbook_names() {
    let books = books();
    let rel = reliances(&books, &setup());
    assert_eq!(
        summary(&books.all()[0], &rel),
        "regional (Regional outage): 6 steps; names 4 repositories, 2 webhooks and 1 Slack channel"
    );
}
