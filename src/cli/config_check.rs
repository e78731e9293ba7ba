//! `firebreak config check`: validates the config file and environment as `serve` does, then
//! says what is configured, one line each, without printing any secret.

use std::path::Path;
use std::process::ExitCode;

use secrecy::ExposeSecret;

use crate::config::{Config, Runtime};
use crate::github::config::GitHubAuth;
use crate::runbook::Runbooks;
use crate::runbook::check::{Report, Setup};
use crate::runbook::probe::{self, Probes};

/// Validates, then prints the report; a bad value is one sentence on stderr and exit 2. A
/// stale runbook is reported but leaves the exit code 0: the config itself is valid.
pub async fn run(config: &Config, path: Option<&Path>, offline: bool) -> anyhow::Result<ExitCode> {
    let source = path.map_or("built-in defaults (no firebreak.toml)".to_string(), |p| {
        p.display().to_string()
    });
    if let Err(e) = config.validate() {
        return Ok(super::run::user_error(&format!("{source}: {e}.")));
    }
    let runtime = match Runtime::from_env(config) {
        Ok(r) => r,
        Err(e) => return Ok(super::run::user_error(&e.to_string())),
    };
    println!("{source}: OK.");
    for line in report(config, &runtime, &|name| {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }) {
        println!("{line}");
    }
    for line in runbooks(config, &runtime, offline).await? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The runbooks: how many and where, then whether what they name exists and answers, or
/// each problem on its own indented line.
async fn runbooks(
    config: &Config,
    runtime: &Runtime,
    offline: bool,
) -> anyhow::Result<Vec<String>> {
    let Some(dir) = &config.runbooks.dir else {
        return Ok(vec!["runbooks: off (no [runbooks] dir)".into()]);
    };
    // `validate` has read them already.
    let books = Runbooks::load(dir).unwrap_or_default();
    let setup = Setup::new(config, &runtime.integrations);
    let probes = match offline {
        true => None,
        false => Some(Probes::from_config(config, &runtime.integrations)?),
    };
    let (_, report) = probe::check(&books, &setup, probes.as_ref()).await;
    let head = format!(
        "runbooks: {} in {} ({})",
        books.all().len(),
        dir.display(),
        books.names()
    );
    Ok(runbook_lines(head, &report))
}

/// The runbooks' lines (pure), from the check's report.
fn runbook_lines(head: String, report: &Report) -> Vec<String> {
    let (stale, unchecked) = (report.findings.len(), report.unchecked.len());
    let first = match (stale, unchecked) {
        (0, 0) if report.live => format!("{head}; everything they name exists and answers"),
        (0, 0) => format!("{head}; they agree with the config (--offline: nothing was called)"),
        (0, n) => format!("{head}; nothing stale, but {n} could not be checked now:"),
        (n, _) => format!(
            "{head}; {} (details: firebreak runbook check):",
            super::runbook_check::problems(n)
        ),
    };
    let details = report
        .findings
        .iter()
        .map(|f| format!("  ✗ {}", f.line()))
        .chain(report.unchecked.iter().map(|f| format!("  ? {}", f.line())));
    std::iter::once(first).chain(details).collect()
}

/// The report's lines; `is_set` says whether an environment variable has a value.
fn report(config: &Config, runtime: &Runtime, is_set: &dyn Fn(&str) -> bool) -> Vec<String> {
    let i = &runtime.integrations;
    vec![
        format!("database: {}", database(runtime)),
        format!(
            "slack: {}",
            platform(
                config.slack.is_configured(),
                i.slack.is_some(),
                "[slack]",
                &["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"],
                is_set
            )
        ),
        format!(
            "discord: {}",
            platform(
                config.discord.is_configured(),
                i.discord.is_some(),
                "[discord]",
                &[
                    "DISCORD_BOT_TOKEN",
                    "DISCORD_PUBLIC_KEY",
                    "DISCORD_APPLICATION_ID"
                ],
                is_set
            )
        ),
        format!("github: {}", github(config, runtime, is_set)),
        format!("webhooks: {}", webhooks(config)),
        format!("post-mortem publishing: {}", publishing(config)),
    ]
}

/// The backend and where it is: the SQLite file, or the Postgres host, port and database
/// (never the user or the password).
fn database(runtime: &Runtime) -> String {
    let url = runtime.database_url.expose_secret();
    let described = runtime.database_description();
    if runtime.sqlite_path().is_some() || url.starts_with("sqlite:") {
        return described;
    }
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("the local socket");
            let port = u.port().map_or(String::new(), |p| format!(":{p}"));
            let db = u.path().trim_start_matches('/');
            let db = if db.is_empty() { "(default)" } else { db };
            described.replacen(
                "Postgres",
                &format!("Postgres at {host}{port}, database {db}"),
                1,
            )
        }
        Err(_) => described,
    }
}

/// A chat platform: on, off, or set up in the file with secrets missing (named).
fn platform(
    in_file: bool,
    secrets: bool,
    section: &str,
    vars: &[&str],
    is_set: &dyn Fn(&str) -> bool,
) -> String {
    let missing: Vec<&str> = vars.iter().copied().filter(|v| !is_set(v)).collect();
    let missing_text = |m: &[&str]| format!("{} not set", m.join(", "));
    match (secrets, in_file) {
        (true, _) if missing.is_empty() => "configured (every secret set)".into(),
        (true, true) => format!("configured; {}", missing_text(&missing)),
        (true, false) => format!(
            "credentials set but nothing under {section} ({})",
            missing_text(&missing)
        ),
        (false, true) => format!(
            "{section} is set up but {}: its effects wait in the queue",
            missing_text(&missing)
        ),
        (false, false) => "not configured".into(),
    }
}

/// How firebreak signs in to GitHub, and what a freeze covers by default.
fn github(config: &Config, runtime: &Runtime, is_set: &dyn Fn(&str) -> bool) -> String {
    let repos = &config.github.repos;
    let frozen = if repos.is_empty() {
        "no repositories frozen by default".to_string()
    } else {
        format!("freezes {} by default", repos.join(", "))
    };
    let webhook = if is_set("GITHUB_WEBHOOK_SECRET") {
        "GITHUB_WEBHOOK_SECRET set"
    } else {
        "GITHUB_WEBHOOK_SECRET not set"
    };
    match runtime.integrations.github.as_ref().map(|g| &g.auth) {
        Some(GitHubAuth::Token(_)) => format!("token (GITHUB_TOKEN); {frozen}; {webhook}"),
        Some(GitHubAuth::App {
            app_id,
            installation_id,
            ..
        }) => {
            let install = installation_id.map_or(String::new(), |i| format!(", installation {i}"));
            format!("GitHub App {app_id}{install}; {frozen}; {webhook}")
        }
        None if repos.is_empty() => "not configured".into(),
        None => format!(
            "not configured (set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY), but github.repos lists {}",
            repos.join(", ")
        ),
    }
}

/// The webhooks by name, each with the severities it is told about.
fn webhooks(config: &Config) -> String {
    let routes: Vec<String> = config
        .notice_routes()
        .iter()
        .map(|r| format!("{} (SEV1..{})", r.name, r.min_severity))
        .collect();
    if routes.is_empty() {
        "none".into()
    } else {
        routes.join(", ")
    }
}

fn publishing(config: &Config) -> String {
    match &config.postmortem.github {
        Some(p) => format!("pull requests to {} at {}", p.repo, p.path),
        None => "off (no [postmortem.github])".into(),
    }
}
