//! What each CLI subcommand does. Writes go through [`IncidentService`], exactly as chat
//! does, and then drain the effects they enqueued with a bounded wait.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use super::{
    Cli, ConfigCommand, DiscordCommand, DrillCommand, EffectsCommand, IncidentArgs, PostmortemArgs,
    PostmortemCommand, PostmortemFormat, RunbookCommand, TemplatesCommand, TopCommand,
};
use super::{identity, render};
use crate::app::{App, shutdown_signal};
use crate::config::{Config, Runtime, sqlite_creates};
use crate::incident::{IncidentNumber, ParseOptions, ServiceError, UserError, command};
use crate::postmortem::overrides::Format;
use crate::store::Store;

/// Exit code for input the user can fix (bad grammar, bad config, forbidden, conflict).
pub(super) const EXIT_USER: u8 = 2;

/// Exit code when the write was recorded but one of its effects failed for good (a notice
/// that could not be posted): the incident is right, someone must look at the effect
/// (`firebreak effects list --failed`, then `effects retry ID`).
const EXIT_EFFECT_FAILED: u8 = 3;

/// Runs one CLI invocation to completion.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        // Said once, as a sentence on stderr; the log would only repeat it.
        Err(e) => {
            match crate::store::locked_for_too_long(&e) {
                true => eprintln!("error: {}", crate::store::LOCKED_TOO_LONG),
                false => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let TopCommand::Postmortem(PostmortemArgs {
        command: Some(PostmortemCommand::Templates(cmd)),
        ..
    }) = &cli.command
    {
        return Ok(templates(cmd));
    }
    if let TopCommand::Completions { shell } = cli.command {
        return Ok(completions(shell));
    }
    let (config, path) = match Config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => return Ok(user_error(&e.to_string())),
    };
    if let TopCommand::Config(ConfigCommand::Check { offline }) = cli.command {
        return super::config_check::run(&config, path.as_deref(), offline).await;
    }
    let runtime = match Runtime::from_env(&config) {
        Ok(r) => r,
        Err(e) => return Ok(user_error(&e.to_string())),
    };
    // Before the config's own validation, which would fold every bad runbook file into one
    // line; and without the database, so it runs anywhere the files and config are.
    if let TopCommand::Runbook(RunbookCommand::Check { offline }) = cli.command {
        return super::runbook_check::run(&config, &runtime, offline).await;
    }
    if let TopCommand::Migrate = cli.command {
        let new = prepare_database(&runtime)?;
        let store = Store::open(runtime.database_url.expose_secret()).await?;
        say_created(new.as_deref(), false);
        println!(
            "The {:?} database is migrated and up to date.",
            store.backend()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = config.validate() {
        return Ok(user_error(&format!("config: {e}")));
    }
    if let TopCommand::Discord(DiscordCommand::Register { guild }) = &cli.command {
        return discord_register(&runtime, guild.as_deref()).await;
    }
    let new = prepare_database(&runtime)?;
    let app = App::build(config, &runtime).await?;
    say_created(new.as_deref(), matches!(cli.command, TopCommand::Serve));
    match cli.command {
        TopCommand::Serve => serve(app, &runtime).await,
        TopCommand::Incident(args) => incident(&app, args.words).await,
        TopCommand::Freeze(args) => incident(&app, prefixed("freeze", args)).await,
        TopCommand::Unfreeze(args) => incident(&app, prefixed("unfreeze", args)).await,
        TopCommand::Effects(cmd) => effects(&app, cmd).await,
        TopCommand::Audit { json, limit } => audit(&app, json, limit).await,
        TopCommand::Token(cmd) => super::token::token(&app, cmd).await,
        TopCommand::Postmortem(args) => postmortem(&app, args).await,
        TopCommand::Runbook(cmd) => runbook(&app, cmd).await,
        TopCommand::Drill(cmd) => drill(&app, cmd).await,
        TopCommand::Config(_)
        | TopCommand::Migrate
        | TopCommand::Discord(_)
        | TopCommand::Completions { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `firebreak runbook check|done|skip|show`: the steps go through the chat grammar.
async fn runbook(app: &App, cmd: RunbookCommand) -> anyhow::Result<ExitCode> {
    let (sub, args) = match cmd {
        RunbookCommand::Check { .. } => unreachable!("handled before the app is built"),
        RunbookCommand::Done(args) => ("done", args),
        RunbookCommand::Skip(args) => ("skip", args),
        RunbookCommand::Show(args) => ("show", args),
    };
    let mut words = vec!["runbook".to_string(), sub.to_string()];
    words.extend(args.words);
    incident(app, words).await
}

/// `firebreak drill run RUNBOOK` declares a drill with the runbook attached;
/// `drill report INC-n` renders its report.
async fn drill(app: &App, cmd: DrillCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DrillCommand::Run {
            runbook,
            title,
            severity,
            json,
            no_wait,
        } => {
            let Some(rb) = app
                .config
                .runbooks
                .load()
                .ok()
                .and_then(|l| l.named(&runbook).cloned())
            else {
                return Ok(user_error(&format!(
                    "There is no runbook named \"{runbook}\"; `firebreak runbook check` lists what is wrong with the files, and [runbooks] dir names where they are."
                )));
            };
            let severity =
                severity.unwrap_or_else(|| rb.severities[0].as_str().to_ascii_lowercase());
            let title = title.unwrap_or_else(|| format!("Drill: {}", rb.title));
            let mut words = vec![
                "declare".to_string(),
                severity,
                title,
                "--drill".into(),
                "--runbook".into(),
                runbook,
            ];
            words.extend(json.then(|| "--json".to_string()));
            words.extend(no_wait.then(|| "--no-wait".to_string()));
            incident(app, words).await
        }
        DrillCommand::Report {
            incident,
            format,
            out,
        } => super::drill_report::run(app, &incident, format, out.as_deref()).await,
    }
}

/// `firebreak discord register [--guild ID]`: needs the Discord secrets, not the database.
async fn discord_register(runtime: &Runtime, guild: Option<&str>) -> anyhow::Result<ExitCode> {
    use crate::chat::discord::register;
    let Some(secrets) = &runtime.integrations.discord else {
        return Ok(user_error(
            "Discord is not configured: set DISCORD_PUBLIC_KEY and DISCORD_BOT_TOKEN (and DISCORD_APPLICATION_ID).",
        ));
    };
    let http = match register::http(secrets) {
        Ok(h) => h,
        Err(e) => return Ok(user_error(&e)),
    };
    let guild = match guild.map(register::guild).transpose() {
        Ok(g) => g,
        Err(e) => return Ok(user_error(&e)),
    };
    let scope = guild.map_or("globally".to_string(), |g| format!("in server {g}"));
    let done = register::register(&http, guild).await?;
    println!("{}", done.describe(&scope));
    Ok(ExitCode::SUCCESS)
}

/// SQLite only: makes the database's directory if it is missing, and returns the file when
/// this start is the one that creates it.
fn prepare_database(runtime: &Runtime) -> anyhow::Result<Option<PathBuf>> {
    let Some(path) = runtime.sqlite_path() else {
        return Ok(None);
    };
    if path.exists() || !sqlite_creates(runtime.database_url.expose_secret()) {
        return Ok(None);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create {}, the database's directory", dir.display())
        })?;
    }
    Ok(Some(path))
}

/// One line on stderr the first time, so a database nobody expected is noticed: in the log
/// for `serve` (whose stderr may be JSON lines), a sentence for the other commands.
fn say_created(new: Option<&Path>, serve: bool) {
    if let Some(path) = new.filter(|p| p.exists()) {
        if serve {
            tracing::info!(path = %path.display(), "created a new database");
        } else {
            eprintln!("firebreak: created a new database at {}", path.display());
        }
    }
}

async fn serve(app: App, runtime: &Runtime) -> anyhow::Result<ExitCode> {
    let app = app.with_sign_in_from_env()?;
    warn_unreachable_platforms(&app, runtime);
    let listener = tokio::net::TcpListener::bind(runtime.listen)
        .await
        .with_context(|| format!("cannot listen on {}", runtime.listen))?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    app.serve(listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// A platform the config names but whose credentials this `serve` lacks has its effects
/// queued and never delivered until they are set: say so at start.
fn warn_unreachable_platforms(app: &App, runtime: &Runtime) {
    let missing = [
        (
            app.config.slack.is_configured() && runtime.integrations.slack.is_none(),
            "[slack] is configured but SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET are not set",
        ),
        (
            app.config.discord.is_configured() && runtime.integrations.discord.is_none(),
            "[discord] is configured but DISCORD_BOT_TOKEN / DISCORD_PUBLIC_KEY are not set",
        ),
    ];
    for (_, what) in missing.iter().filter(|(missing, _)| *missing) {
        tracing::warn!("{what}: its effects wait in the queue until a serve with them runs");
    }
}

fn prefixed(verb: &str, args: IncidentArgs) -> Vec<String> {
    std::iter::once(verb.to_string())
        .chain(args.words)
        .collect()
}

async fn incident(app: &App, words: Vec<String>) -> anyhow::Result<ExitCode> {
    let json = take_flag(&words, "--json");
    let no_wait = take_flag(&words, "--no-wait");
    let words: Vec<&String> = words
        .iter()
        .filter(|w| *w != "--json" && *w != "--no-wait")
        .collect();
    let opts = ParseOptions {
        bare_number_is_ref: true,
    };
    let cmd = match command::parse_words(&words, opts, Utc::now()) {
        Ok(cmd) => cmd,
        Err(e) => return Ok(show_user_error(&e)),
    };
    let outcome = match app.service.apply(cmd, &identity::actor()).await {
        Ok(o) => o,
        Err(ServiceError::User(e)) => return Ok(show_user_error(&e)),
        Err(ServiceError::Internal(e)) => return Err(e),
        Err(ServiceError::Duplicate) => unreachable!("the CLI handles no platform deliveries"),
    };
    let names = app.read.names_for_reply(&outcome.reply).await?;
    if json {
        println!("{}", reply_json(app, &outcome.reply, &names).await?);
    } else {
        println!("{}", render::reply_text(&outcome.reply, &names));
    }
    if !outcome.effects.is_empty() && !no_wait {
        return drain(app, &outcome.effects).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--json`: a reply about one incident (every write on one, as well as `show`) is the
/// incident as `GET /api/incidents/{n}` shows it, read back after the write so it carries
/// the timeline and the stored (millisecond) times; anything else as [`render::reply_json`].
async fn reply_json(
    app: &App,
    reply: &crate::incident::Reply,
    names: &crate::people::Names,
) -> anyhow::Result<String> {
    if let crate::incident::ReplyBody::Incident { incident, timeline } = &reply.body
        && timeline.is_empty()
        && let Some(view) = crate::http::api::incident_view(&app.read, incident.number).await?
    {
        return Ok(serde_json::to_string_pretty(&view)?);
    }
    Ok(render::reply_json(reply, names)?)
}

async fn audit(app: &App, json: bool, limit: i64) -> anyhow::Result<ExitCode> {
    let entries = app.read.audit(limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else if limit == 0 {
        println!("No entries shown: --limit 0 asks for none.");
    } else {
        let names = app
            .store
            .names(entries.iter().map(|e| e.actor.as_str()))
            .await?;
        print!("{}", render::audit_table(&entries, &names));
    }
    Ok(ExitCode::SUCCESS)
}

async fn effects(app: &App, cmd: EffectsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EffectsCommand::List {
            failed,
            json,
            limit,
        } => {
            let list = app.read.effects(failed, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render::effects_table(&list, Utc::now()));
            }
        }
        EffectsCommand::Retry { id } => {
            if !app.store.retry_effect(id).await? {
                return Ok(user_error(&format!(
                    "There is no failed effect {id}; see `firebreak effects list --failed`."
                )));
            }
            println!("Effect {id} is queued again.");
            return drain(app, &[id]).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn postmortem(app: &App, args: PostmortemArgs) -> anyhow::Result<ExitCode> {
    let PostmortemArgs {
        incident,
        format,
        out,
        ..
    } = args;
    let incident = incident.unwrap_or_default();
    let Some(number) = IncidentNumber::parse(&incident, true) else {
        return Ok(user_error(&format!(
            "\"{incident}\" is not an incident; write INC-42 or 42."
        )));
    };
    let Some(view) = app.read.postmortem(number).await? else {
        return Ok(user_error(&format!("There is no incident {number}.")));
    };
    let format = match format {
        PostmortemFormat::Md => Format::Markdown,
        PostmortemFormat::Html => Format::Html,
    };
    let rendered = crate::postmortem::overrides::render(
        app.config.postmortem.templates_dir.as_deref(),
        &view,
        format,
    )?;
    if let Some(warning) = &rendered.warning {
        eprintln!("warning: {warning}; used the built-in template");
    }
    let text = rendered.text;
    match out.as_deref() {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                // A path the user can fix: a sentence and exit 2, not an internal error.
                return Ok(user_error(&format!(
                    "Could not write the post-mortem to {}: {}. Give a file in a directory that exists.",
                    path.display(),
                    crate::cli::render::io_reason(&e)
                )));
            }
            println!("Wrote the {number} post-mortem to {}.", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `firebreak postmortem templates export DIR [--force]`: needs neither the config nor the
/// database.
fn templates(cmd: &TemplatesCommand) -> ExitCode {
    use crate::postmortem::overrides::{ExportError, export};
    let TemplatesCommand::Export { dir, force } = cmd;
    match export(dir, *force) {
        Ok(files) => {
            println!("{}", exported(dir, &files));
            ExitCode::SUCCESS
        }
        Err(ExportError::Exists(files)) => {
            let them = if files.len() == 1 { "it" } else { "them" };
            user_error(&format!(
                "{}; nothing was written. Pass --force to overwrite {them}.",
                ExportError::Exists(files)
            ))
        }
        Err(ExportError::Io { path, source }) => user_error(&format!(
            "Could not export the templates to {}: {}.",
            path.display(),
            crate::cli::render::io_reason(&source)
        )),
    }
}

/// `firebreak completions bash|zsh|fish|…`: the script on standard output; needs neither
/// the config nor the database.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "firebreak", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// What `templates export` wrote, and the config that uses it.
fn exported(dir: &Path, files: &[PathBuf]) -> String {
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let quoted = toml::Value::String(dir.to_string_lossy().into_owned());
    format!(
        "Wrote {}: the built-in templates as Jinja. Unedited, they render the built-in \
         post-mortems byte for byte.\nTo use them, put this in firebreak.toml:\n\n\
         [postmortem]\ntemplates_dir = {quoted}",
        shown.join(" and ")
    )
}

/// Waits (bounded by `effects.cli_wait`) for the given effects and says how each ended:
/// exit 3 ([`EXIT_EFFECT_FAILED`]) if one failed for good, else success (one still being
/// retried is `serve`'s to finish, and said so).
async fn drain(app: &App, ids: &[i64]) -> anyhow::Result<ExitCode> {
    let report = app.worker.drain(ids, app.config.effects.cli_wait).await?;
    for line in render::drain_lines(&report, Utc::now()) {
        eprintln!("{line}");
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_EFFECT_FAILED)
    })
}

fn take_flag(words: &[String], flag: &str) -> bool {
    words.iter().any(|w| w == flag)
}

fn show_user_error(e: &UserError) -> ExitCode {
    let code = user_error(&e.to_string());
    if let UserError::Unknown { help, .. } = e {
        eprintln!("{help}");
    }
    code
}

pub(super) fn user_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USER)
}
