//! Runbooks as code: the standard operating procedure the bot carries, runs and times.
//!
//! - [`spec`]: a runbook file (TOML): steps with a target time (`at = "T+2m"`), an owner and
//!   an action (automatic: announce, freeze, notify, page, link; or a manual checklist item).
//! - [`library`]: every runbook in the configured directory, and which one an incident gets.
//! - [`checklist`]: the checklist every surface shows (pure).
//! - [`report`]: the drill report, each step planned against what happened (pure view,
//!   Markdown and HTML).
//! - [`handler`]: the `runbook.due` effect that wakes the sweep at a step's target.
//! - [`config`]: `[runbooks]`: the directory, where drills send, where stale ones are reported.
//! - [`check`]: stale-runbook detection (pure): what each step relies on, and the findings.
//! - [`probe`]: the live checks: GitHub, Slack and each webhook, asked without posting.
//! - [`watch`]: `serve`'s periodic check, reporting each new problem once.
//!
//! The core attaches a runbook on declare and runs it (`incident::runbook`): each step is a
//! row, automatic steps fire when due through the effects queue, manual ones are ticked with
//! `runbook done`, and a late step nudges its owner once. Drills run the same steps in their
//! dry-run forms.

pub mod check;
pub mod checklist;
pub mod config;
pub mod handler;
pub mod library;
pub mod probe;
pub mod report;
pub mod spec;
pub mod watch;

pub use config::RunbooksConfig;
pub use library::Runbooks;
pub use spec::{Action, Destination, Owner, Runbook, SpecError, Step};
