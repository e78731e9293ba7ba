//! The one command grammar, shared by Slack (`/incident …`), Discord and the CLI.
//!
//! A [`Command`] names the incident it is about (its target) and a [`Verb`] from one of five
//! groups. Each group has a module of its own holding its parsing, the permission each of
//! its verbs needs, how its free text is cleaned, and how it applies:
//!
//! - [`declare`]: `declare` (permission `declare`);
//! - [`change`]: what responders do to an open incident: `ack`, `update`, `status`,
//!   `severity`, `assign`, `note` (permission `respond`) and `resolve` (permission `resolve`);
//! - [`freeze`]: `freeze`, `unfreeze`, `freeze exempt` (permission `freeze`), `freeze status`;
//! - [`postmortem`]: `postmortem set|publish`, `action add|done` (permission `postmortem`),
//!   and the draft;
//! - [`query`]: `show`, `list`, `help`;
//! - [`runbook`]: `runbook done|skip` (permission `respond`) and the checklist.
//!
//! `args` reads the words after a verb (the incident, `--flags`, the free text) for all of
//! them.
//!
//! Parsing is a pure function from words to a [`Command`]; it never touches the database,
//! so it can be property-tested for panics and reused by every edge. Free text (titles,
//! updates, notes) is "the rest of the line", so apostrophes and punctuation need no quoting.
//! Every edge hands its command to `IncidentService::apply_checked`, which authorizes it,
//! cleans its text ([`Command::prepare`]) and dispatches to the group's `apply`; commands an
//! edge builds without parsing (Slack forms and buttons) go through exactly the same gate.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::UserError;
use super::model::IncidentNumber;
use super::permissions::Action;

mod args;
pub mod change;
pub mod declare;
pub mod freeze;
pub mod postmortem;
pub mod query;
pub mod runbook;

use args::{Args, clean_required, is_flag};
pub use change::Change;
pub use declare::{DEFAULT_SEVERITY, Declare, parse_when};
pub use freeze::{FreezeVerb, parse_expiry, parse_scope};
pub use postmortem::{DocStatus, PostmortemField, PostmortemVerb, Term};
pub use query::{ListFilter, Query};
pub use runbook::RunbookVerb;

/// A platform-neutral request to the core: which incident, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The incident named (`INC-42`, or a bare `42` on the CLI), or filled in from context
    /// (an incident channel). `None` for verbs that are not about one incident.
    pub target: Option<IncidentNumber>,
    pub verb: Verb,
}

/// What a command does, by group.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Declare(Declare),
    Change(Change),
    Freeze(FreezeVerb),
    Postmortem(PostmortemVerb),
    Query(Query),
    Runbook(RunbookVerb),
}

impl From<RunbookVerb> for Verb {
    fn from(v: RunbookVerb) -> Self {
        Self::Runbook(v)
    }
}

impl From<Declare> for Verb {
    fn from(v: Declare) -> Self {
        Self::Declare(v)
    }
}

impl From<Change> for Verb {
    fn from(v: Change) -> Self {
        Self::Change(v)
    }
}

impl From<FreezeVerb> for Verb {
    fn from(v: FreezeVerb) -> Self {
        Self::Freeze(v)
    }
}

impl From<PostmortemVerb> for Verb {
    fn from(v: PostmortemVerb) -> Self {
        Self::Postmortem(v)
    }
}

impl From<Query> for Verb {
    fn from(v: Query) -> Self {
        Self::Query(v)
    }
}

impl Command {
    /// `verb` on `target`.
    pub fn new(target: Option<IncidentNumber>, verb: impl Into<Verb>) -> Self {
        Self {
            target,
            verb: verb.into(),
        }
    }

    /// `verb` on incident `number`.
    pub fn on(number: IncidentNumber, verb: impl Into<Verb>) -> Self {
        Self::new(Some(number), verb)
    }

    /// `verb` with no incident (or one to be filled in from context).
    pub fn untargeted(verb: impl Into<Verb>) -> Self {
        Self::new(None, verb)
    }

    /// The verb, as typed; used in timeline entries and error messages.
    pub fn name(&self) -> &'static str {
        match &self.verb {
            Verb::Declare(_) => "declare",
            Verb::Change(v) => v.name(),
            Verb::Freeze(v) => v.name(),
            Verb::Postmortem(v) => v.name(),
            Verb::Query(v) => v.name(),
            Verb::Runbook(v) => v.name(),
        }
    }

    /// Whether the verb is about one incident (and so takes one from context).
    pub fn takes_target(&self) -> bool {
        match &self.verb {
            Verb::Declare(_) => false,
            Verb::Change(_) | Verb::Postmortem(_) | Verb::Runbook(_) => true,
            Verb::Freeze(v) => v.takes_target(),
            Verb::Query(v) => v.takes_target(),
        }
    }

    /// Whether the incident must come from context (the channel it was typed in): the verb
    /// is about one incident and none was named. Saves the lookup for everything else.
    pub fn wants_context_target(&self) -> bool {
        self.takes_target() && self.target.is_none()
    }

    /// Fills in the incident from context (an incident channel) when none was named.
    pub fn with_default_target(mut self, number: IncidentNumber) -> Self {
        if self.takes_target() {
            self.target.get_or_insert(number);
        }
        self
    }

    /// The permission the command needs, `None` for reads. Every write verb has one.
    pub fn permission(&self) -> Option<Action> {
        match &self.verb {
            Verb::Declare(_) => Some(Action::Declare),
            Verb::Change(v) => Some(v.permission()),
            Verb::Freeze(v) => v.permission(),
            Verb::Postmortem(v) => v.permission(),
            Verb::Runbook(v) => v.permission(),
            Verb::Query(_) => None,
        }
    }

    /// Whether the command changes anything (read-only commands skip permissions and effects).
    pub fn is_write(&self) -> bool {
        self.permission().is_some()
    }

    /// The command as the core stores it: every piece of free text through the one text
    /// pipeline ([`text::clean`](super::text::clean): control characters, terminal escapes,
    /// bidi overrides, NUL, limits), and times checked against `now`. The service calls
    /// this once, at its front door, whatever surface the command came from.
    pub fn prepare(self, now: DateTime<Utc>) -> Result<Self, UserError> {
        let verb = match self.verb {
            Verb::Declare(v) => Verb::Declare(v.prepare(now)?),
            Verb::Change(v) => Verb::Change(v.prepare()?),
            Verb::Freeze(v) => Verb::Freeze(v.prepare()?),
            Verb::Postmortem(v) => Verb::Postmortem(v.prepare()?),
            Verb::Runbook(v) => Verb::Runbook(v.prepare()?),
            Verb::Query(v) => Verb::Query(v),
        };
        Ok(Self {
            target: self.target,
            verb,
        })
    }
}

/// How the caller names incidents.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Accept a bare `42` as the incident. The CLI has no channel context, so it always names
    /// the incident first and a bare number there is unambiguous; in chat, `update 42 pods
    /// restarted` is text, so only `INC-42` is read as a reference.
    pub bare_number_is_ref: bool,
}

const VERBS: &[&str] = &[
    "declare",
    "ack",
    "update",
    "status",
    "severity",
    "assign",
    "note",
    "resolve",
    "show",
    "list",
    "help",
    "freeze",
    "unfreeze",
    "action",
    "postmortem",
    "runbook",
];

/// The help text every edge shows for `help` and unknown input.
pub const HELP: &str = "\
Commands (name the incident as INC-42 when you are not in its channel):
  declare [sev1..sev4] <title> [--drill] [--runbook <name>] [--started <when>] [--detected <when>]
  ack [INC-n]                          acknowledge; you become commander if there is none
  update [INC-n] <text> [--next 30m]   post a status update, promise the next one
  status [INC-n] investigating|identified|monitoring|mitigated|resolved
  severity [INC-n] sev1..sev4
  assign [INC-n] commander|comms|scribe <user>
  note [INC-n] <text>
  resolve [INC-n] [summary]
  show [INC-n]
  list [--open] [--severity sev1[,sev2]] [--drill|--no-drill]
                                       --severity may be repeated; open first, most severe first
  freeze [owner/repo|owner/* ...] [--reason <text>] [--for 4h]
                                       hold merges (default: the configured repos)
  unfreeze [owner/repo|owner/* ...] [--all]
                                       drop your hold (the incident's in its channel); --all: every hold
  freeze status
  freeze exempt owner/repo#123 --reason <text>        let one pull request through
  action add [INC-n] <text> [--owner <user>] [--term immediate|medium|long]
  action done [INC-n] <n>
  postmortem [INC-n]                   the draft post-mortem, rendered from the record
  postmortem publish [INC-n]           open or update its pull request
  runbook [INC-n]                      the incident's runbook checklist
  runbook start [INC-n] <step>         you are taking a runbook step on
  runbook done [INC-n] <step> [note]   a runbook step is done
  runbook skip [INC-n] <step> <why>    a runbook step is not needed or cannot be done
  postmortem set [INC-n] summary|impact|trigger|detection|root-cause|contributing-factors|resolution|went-well|went-wrong|lucky <text>
  help
<when> is an RFC 3339 time (2026-11-22T03:10:00Z) or an age such as 15m (meaning 15 minutes ago).";

/// Parses one line of chat text (`/incident <line>`).
pub fn parse_line(line: &str, opts: ParseOptions) -> Result<Command, UserError> {
    parse_split(split_keeping_breaks(line), opts, Utc::now())
}

/// Parses pre-split words (the CLI's argv after `incident`). `now` anchors relative times.
pub fn parse_words<S: AsRef<str>>(
    words: &[S],
    opts: ParseOptions,
    now: DateTime<Utc>,
) -> Result<Command, UserError> {
    let mut split = Split::default();
    for w in words {
        let part = split_keeping_breaks(w.as_ref());
        split.words.extend(part.words);
        split.breaks.extend(part.breaks);
    }
    parse_split(split, opts, now)
}

/// Words without whitespace, and the line breaks between them: free text (a post-mortem
/// section, an update) keeps its paragraphs and lists, which Markdown needs.
#[derive(Default)]
struct Split<'a> {
    words: Vec<&'a str>,
    /// The whitespace after a word, by the word's address, where it holds a line break.
    breaks: std::collections::HashMap<usize, &'a str>,
}

fn split_keeping_breaks(text: &str) -> Split<'_> {
    let mut split = Split::default();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        let next = tail.trim_start();
        let gap = &tail[..tail.len() - next.len()];
        if gap.contains('\n') && !next.is_empty() {
            split.breaks.insert(word.as_ptr() as usize, gap);
        }
        split.words.push(word);
        rest = next;
    }
    split
}

/// Parses words that contain no whitespace.
fn parse_split(
    split: Split<'_>,
    opts: ParseOptions,
    now: DateTime<Utc>,
) -> Result<Command, UserError> {
    let Some((verb, rest)) = split.words.split_first() else {
        return Ok(Command::untargeted(Query::Help));
    };
    let verb_lc = verb.to_ascii_lowercase();
    let mut args = Args::new(rest, opts);
    args.breaks = split.breaks;
    if !matches!(verb_lc.as_str(), "declare" | "list" | "help") {
        args.take_incident();
    }
    let parsed: Verb = match verb_lc.as_str() {
        "declare" => declare::parse(&mut args, now)?.into(),
        "ack" | "acknowledge" | "update" | "status" | "severity" | "sev" | "assign" | "note"
        | "resolve" => change::parse(&verb_lc, &mut args)?.into(),
        "show" | "list" | "help" => query::parse(&verb_lc, &mut args)?,
        "freeze" | "unfreeze" => freeze::parse(&verb_lc, &mut args)?.into(),
        "action" | "postmortem" | "post-mortem" => postmortem::parse(&verb_lc, &mut args)?.into(),
        "runbook" => runbook::parse(&mut args)?.into(),
        _ => return Err(unknown_command(verb)),
    };
    let target = args.target.take();
    let cmd = Command::new(target, parsed);
    args.finish(cmd.name())?;
    // `freeze INC-3 status` names an incident the verb does not use; it is ignored.
    Ok(if cmd.takes_target() {
        cmd
    } else {
        Command {
            target: None,
            ..cmd
        }
    })
}

/// Parses an update cadence such as `30m` or `1h30m`, bounded to something a human promises.
pub fn parse_cadence(word: String) -> Result<Duration, UserError> {
    let d = humantime::parse_duration(&word).map_err(|_| {
        UserError::invalid(format!(
            "\"{word}\" is not a duration; write it like 30m or 1h."
        ))
    })?;
    if d < Duration::from_secs(60) || d > Duration::from_secs(24 * 3600) {
        return Err(UserError::invalid("--next must be between 1m and 24h."));
    }
    Ok(d)
}

fn unknown_command(verb: &str) -> UserError {
    let lc = verb.to_ascii_lowercase();
    let nearest = VERBS
        .iter()
        .map(|v| (strsim::damerau_levenshtein(&lc, v), *v))
        .min()
        .filter(|(dist, v)| *dist <= 2.max(v.len() / 3))
        .map(|(_, v)| v);
    let shown: String = verb.chars().take(40).collect();
    let message = match nearest {
        Some(v) => format!("Unknown command \"{shown}\". Did you mean `{v}`?"),
        None => format!("Unknown command \"{shown}\". Try `help`."),
    };
    UserError::Unknown {
        message,
        help: HELP.to_string(),
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
