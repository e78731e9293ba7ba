//! The `firebreak` command line: clap definitions here, dispatch in [`run`], terminal
//! rendering in [`render`]. Incident commands are not re-declared in clap: their words go
//! through the same grammar as chat, so the CLI can never drift from Slack and Discord.

mod config_check;
mod drill_report;
pub mod identity;
pub mod logging;
pub mod render;
mod run;
mod runbook_check;
mod token;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use run::run;

/// `firebreak incident list | head`: a reader that stops early ends a one-shot command
/// quietly, as for any Unix tool, instead of a panic on a write to the closed pipe. Only
/// for one-shot commands: `serve` keeps Rust's default of ignoring SIGPIPE. Call it first
/// thing in `main`, before any thread starts.
pub fn end_quietly_on_closed_pipe() {
    #[cfg(unix)]
    {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: no handler code is installed (SIG_DFL), and no other thread exists yet.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "firebreak",
    version,
    about = "Incident-response bot: declare, announce, keep the timeline."
)]
pub struct Cli {
    /// Config file (default: ./firebreak.toml if present).
    #[arg(long, global = true, env = "FIREBREAK_CONFIG")]
    pub config: Option<PathBuf>,
    /// The log's format on stderr: text (coloured only on a terminal) or json (one object a
    /// line). Which messages: `RUST_LOG` (default `info` for serve, `warn` otherwise).
    #[arg(long, global = true, env = "FIREBREAK_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text)]
    pub log_format: logging::LogFormat,
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Run the HTTP server and the effects worker until SIGTERM.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Declare and work incidents, with the same grammar as chat.
    #[command(after_help = crate::incident::command::HELP)]
    Incident(IncidentArgs),
    /// Freeze merges through GitHub: `freeze [owner/repo …] [--reason …] [--for 4h]`,
    /// `freeze status`, `freeze exempt owner/repo#123 --reason …`.
    Freeze(IncidentArgs),
    /// Remove your hold on a merge freeze (`INC-3` names an incident's):
    /// `unfreeze [INC-3] [owner/repo …]`; `unfreeze --all` removes every hold.
    Unfreeze(IncidentArgs),
    /// Render an incident's post-mortem from its record (`postmortem INC-42`), or export
    /// the built-in templates to start an override from (`postmortem templates export DIR`).
    Postmortem(PostmortemArgs),
    /// The audit log: what happened outside any incident (manual freezes, their repairs and
    /// expiries, refusals, exemptions), newest first.
    Audit {
        #[arg(long)]
        json: bool,
        /// At most this many entries, 0 to 10000 (0 shows none).
        #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=10_000))]
        limit: i64,
    },
    /// Runbooks: check the files and what they name; tick, skip or show the steps of an
    /// incident's runbook.
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// Drills: rehearse a runbook with every side effect in its dry-run form, and read the
    /// report of how it went.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Inspect and retry queued side effects.
    #[command(subcommand)]
    Effects(EffectsCommand),
    /// Set up the Discord application.
    #[command(subcommand)]
    Discord(DiscordCommand),
    /// API tokens for the HTTP API (`Authorization: Bearer …`). Managing them needs the
    /// `[permissions] unfreeze_all` list, firebreak's admin action.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print a shell completion script to standard output, e.g.
    /// `firebreak completions bash > /etc/bash_completion.d/firebreak`. Needs no config.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it once (only its hash is kept).
    Create {
        /// What it is for, unique among tokens not revoked (`alertmanager`).
        #[arg(long)]
        name: String,
        /// Comma-separated: read (GET API and post-mortems), declare, update, metrics.
        #[arg(long, value_name = "SCOPES")]
        scope: String,
    },
    /// The tokens not revoked: name, scopes, created, last used (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name; requests with it get 401 from then on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DiscordCommand {
    /// Create or update the slash commands (`/incident`, `/freeze`, `/unfreeze`) through
    /// Discord's bulk overwrite; running it again changes nothing.
    Register {
        /// Register in this server only (instant, for trying it out); default: globally.
        #[arg(long, value_name = "ID")]
        guild: Option<String>,
    },
}

/// `postmortem <incident> [--format md|html] [--out FILE]`, or `postmortem templates …`: a
/// word that names a subcommand is the subcommand, anything else is the incident.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PostmortemArgs {
    #[command(subcommand)]
    pub command: Option<PostmortemCommand>,
    /// The incident: INC-42 or 42.
    #[arg(required = true)]
    pub incident: Option<String>,
    #[arg(long, value_enum, default_value_t = PostmortemFormat::Md)]
    pub format: PostmortemFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PostmortemCommand {
    /// The post-mortem templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Write the built-in templates as Jinja overrides (`postmortem.md`, `postmortem.html`)
    /// into DIR, made if missing. Unedited, they render the built-ins' output byte for byte.
    Export {
        /// Where to write them.
        dir: PathBuf,
        /// Replace the files if they are already there.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PostmortemFormat {
    Md,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file and environment, naming any bad key (and its line for a
    /// parse error), then say what is configured, one line each, without secrets. The
    /// runbooks' line says whether what they name still exists and answers.
    Check {
        /// Check the runbooks against the config only; call nothing.
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct IncidentArgs {
    /// The command words, e.g. `declare sev1 Checkout API returns 502` or
    /// `update INC-42 "Rolled back deploy"`. `--json` anywhere prints JSON; `--no-wait`
    /// skips waiting for notices to be delivered.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "WORDS"
    )]
    pub words: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EffectsCommand {
    /// List effects, newest first.
    List {
        /// Only effects that gave up.
        #[arg(long)]
        failed: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue a failed effect again with a fresh attempt budget, and wait for it.
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// Validate every runbook file (file, line and key of each problem), then check that the
    /// repositories, channels and webhooks they name still exist and answer.
    Check {
        /// Only validate the files against the config; call nothing.
        #[arg(long)]
        offline: bool,
    },
    /// A step is done: `runbook done INC-3 restore-db [note …]`.
    Done(IncidentArgs),
    /// A step is not needed or cannot be done: `runbook skip INC-3 page-dba <why …>`.
    Skip(IncidentArgs),
    /// The checklist of an incident's runbook: `runbook show INC-3`.
    Show(IncidentArgs),
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Declare a drill with RUNBOOK attached: every step runs in its dry-run form (DRILL
    /// notices to the drill route, freezes in evaluate mode, pages to the drill webhook).
    Run {
        /// The runbook's name (its file name without `.toml`).
        runbook: String,
        /// The drill's title; default `Drill: <the runbook's title>`.
        #[arg(long)]
        title: Option<String>,
        /// The severity; default the runbook's first.
        #[arg(long)]
        severity: Option<String>,
        /// Print the incident as JSON, like `incident declare --json`.
        #[arg(long)]
        json: bool,
        /// Do not wait for the notices to be delivered.
        #[arg(long)]
        no_wait: bool,
    },
    /// An incident's drill report: each step's target against its actual time, who did it,
    /// and the time to announce, freeze and tell customers against the runbook's targets.
    Report {
        /// The incident: INC-42 or 42.
        incident: String,
        #[arg(long, value_enum, default_value_t = PostmortemFormat::Md)]
        format: PostmortemFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
