//! `firebreak runbook check [--offline]`: reads every runbook file (each bad one named with
//! its file, line and key), checks what the steps name against the config, then asks
//! GitHub, Slack and each webhook whether it still exists and answers (not with
//! `--offline`). Needs no database.
//!
//! Exit codes: 0 all good; 2 a bad file or config; 4 ([`EXIT_STALE`]) a runbook names
//! something gone or unreachable; 1 nothing stale, but something could not be checked now.

use std::process::ExitCode;

use super::run::{EXIT_USER, user_error};
use crate::config::{Config, Runtime};
use crate::runbook::Runbooks;
use crate::runbook::check::{self, Reliance, Report, Setup};
use crate::runbook::probe::{self, Probes};

/// Exit code when a runbook is stale: it names a repository, channel or webhook that is
/// gone, unreachable or not configured.
pub const EXIT_STALE: u8 = 4;

/// Exit code when nothing is stale but a live check could not be made (GitHub or Slack
/// failing): the answer is not known yet.
const EXIT_UNCHECKED: u8 = 1;

pub async fn run(config: &Config, runtime: &Runtime, offline: bool) -> anyhow::Result<ExitCode> {
    let Some(dir) = &config.runbooks.dir else {
        return Ok(user_error(
            "No runbooks are configured: set [runbooks] dir to the directory of runbook files.",
        ));
    };
    let runbooks = match Runbooks::load(dir) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{}", bad_files(errors.len()));
            return Ok(ExitCode::from(EXIT_USER));
        }
    };
    if let Err(e) = config.validate() {
        return Ok(user_error(&format!("config: {e}")));
    }
    let setup = Setup::new(config, &runtime.integrations);
    let probes = match offline {
        true => None,
        false => Some(Probes::from_config(config, &runtime.integrations)?),
    };
    let (reliances, report) = probe::check(&runbooks, &setup, probes.as_ref()).await;
    for line in lines(&runbooks, &reliances, &report) {
        println!("{line}");
    }
    Ok(exit_code(&report))
}

fn bad_files(n: usize) -> String {
    match n {
        1 => "1 runbook file cannot be used; fix it, then check again.".into(),
        n => format!("{n} runbook files cannot be used; fix them, then check again."),
    }
}

/// The report (pure): each problem, each runbook without one, then a verdict.
pub fn lines(runbooks: &Runbooks, reliances: &[Reliance], report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("✗ {}", f.line()))
        .collect();
    out.extend(report.unchecked.iter().map(|f| format!("? {}", f.line())));
    let troubled = |name: &str| {
        report
            .findings
            .iter()
            .chain(&report.unchecked)
            .any(|f| f.runbook == name)
    };
    out.extend(
        runbooks
            .all()
            .iter()
            .filter(|r| !troubled(&r.name))
            .map(|r| format!("✓ {}", check::summary(r, reliances))),
    );
    out.push(verdict(report));
    out
}

fn verdict(report: &Report) -> String {
    let (stale, unchecked) = (report.findings.len(), report.unchecked.len());
    match (stale, unchecked) {
        (0, 0) if report.live => {
            "Every repository, channel and webhook the runbooks name exists and answers.".into()
        }
        (0, 0) => "The runbooks agree with the config (--offline: nothing was called).".into(),
        (0, n) => format!(
            "Nothing is stale, but {} could not be checked now; run the check again later.",
            things(n)
        ),
        (n, _) => format!(
            "{}: fix the runbooks (or what they name) before the incident that needs them.",
            problems(n)
        ),
    }
}

fn things(n: usize) -> String {
    match n {
        1 => "1 thing".into(),
        n => format!("{n} things"),
    }
}

pub(super) fn problems(n: usize) -> String {
    match n {
        1 => "1 problem".into(),
        n => format!("{n} problems"),
    }
}

fn exit_code(report: &Report) -> ExitCode {
    if !report.findings.is_empty() {
        ExitCode::from(EXIT_STALE)
    } else if !report.unchecked.is_empty() {
        ExitCode::from(EXIT_UNCHECKED)
    } else {
        ExitCode::SUCCESS
    }
}
