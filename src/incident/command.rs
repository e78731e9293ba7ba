//! The one command grammar, shared by Slack (`/incident …`), Discord and the CLI.
//!
//! Parsing is a pure function from words to a [`Command`]; it never touches the database,
//! so it can be property-tested for panics and reused by every edge. Free text (titles,
//! updates, notes) is "the rest of the line", so apostrophes and punctuation need no quoting.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::UserError;
use super::model::{IncidentNumber, Role, Severity, Status};

/// Severity used when `declare` names none. SEV3 is the common "something is wrong, we are
/// looking" level; responders escalate with `severity sev1` as soon as they know more.
pub const DEFAULT_SEVERITY: Severity = Severity::Sev3;

/// A platform-neutral request to the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Declare {
        severity: Severity,
        title: String,
        drill: bool,
        started_at: Option<DateTime<Utc>>,
        detected_at: Option<DateTime<Utc>>,
    },
    Ack {
        target: Option<IncidentNumber>,
    },
    Update {
        target: Option<IncidentNumber>,
        text: String,
        next: Option<Duration>,
    },
    Status {
        target: Option<IncidentNumber>,
        status: Status,
    },
    Severity {
        target: Option<IncidentNumber>,
        severity: Severity,
    },
    Assign {
        target: Option<IncidentNumber>,
        role: Role,
        user: String,
    },
    Note {
        target: Option<IncidentNumber>,
        text: String,
    },
    Resolve {
        target: Option<IncidentNumber>,
        summary: Option<String>,
    },
    Show {
        target: Option<IncidentNumber>,
    },
    List,
    Help,
    /// Freeze merges on the named scopes (or the configured ones).
    Freeze {
        target: Option<IncidentNumber>,
        scopes: Vec<String>,
        reason: Option<String>,
    },
    Unfreeze {
        target: Option<IncidentNumber>,
        scopes: Vec<String>,
    },
    FreezeStatus,
    /// Let one pull request through a freeze.
    FreezeExempt {
        repo: String,
        pr: u64,
        reason: Option<String>,
    },
    ActionAdd {
        target: Option<IncidentNumber>,
        text: String,
        owner: Option<String>,
        term: Term,
    },
    ActionDone {
        target: Option<IncidentNumber>,
        number: i64,
    },
    /// Show the post-mortem draft.
    Postmortem {
        target: Option<IncidentNumber>,
    },
    /// Publish (or update) the post-mortem as a pull request.
    PostmortemPublish {
        target: Option<IncidentNumber>,
    },
    /// Write one section of the post-mortem.
    PostmortemSet {
        target: Option<IncidentNumber>,
        field: PostmortemField,
        text: String,
    },
}

/// When an action item should be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    Immediate,
    Medium,
    Long,
}

impl Term {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Medium => "medium",
            Self::Long => "long",
        }
    }
}

/// The post-mortem sections people write (the rest is computed from the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostmortemField {
    Summary,
    Impact,
    RootCause,
    ContributingFactors,
    WentWell,
    WentPoorly,
}

impl PostmortemField {
    pub const ALL: [PostmortemField; 6] = [
        Self::Summary,
        Self::Impact,
        Self::RootCause,
        Self::ContributingFactors,
        Self::WentWell,
        Self::WentPoorly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Impact => "impact",
            Self::RootCause => "root-cause",
            Self::ContributingFactors => "contributing-factors",
            Self::WentWell => "went-well",
            Self::WentPoorly => "went-poorly",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UserError> {
        let norm = s.to_ascii_lowercase().replace('_', "-");
        Self::ALL.into_iter().find(|f| f.as_str() == norm).ok_or_else(|| {
            UserError::invalid(format!(
                "\"{s}\" is not a post-mortem section; use summary, impact, root-cause, contributing-factors, went-well or went-poorly."
            ))
        })
    }
}

impl Command {
    /// The verb, as typed; used in timeline entries and error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Declare { .. } => "declare",
            Self::Ack { .. } => "ack",
            Self::Update { .. } => "update",
            Self::Status { .. } => "status",
            Self::Severity { .. } => "severity",
            Self::Assign { .. } => "assign",
            Self::Note { .. } => "note",
            Self::Resolve { .. } => "resolve",
            Self::Show { .. } => "show",
            Self::List => "list",
            Self::Help => "help",
            Self::Freeze { .. } => "freeze",
            Self::Unfreeze { .. } => "unfreeze",
            Self::FreezeStatus => "freeze status",
            Self::FreezeExempt { .. } => "freeze exempt",
            Self::ActionAdd { .. } => "action add",
            Self::ActionDone { .. } => "action done",
            Self::PostmortemSet { .. } => "postmortem set",
            Self::Postmortem { .. } => "postmortem",
            Self::PostmortemPublish { .. } => "postmortem publish",
        }
    }

    /// The incident the command names explicitly, if any.
    pub fn target(&self) -> Option<IncidentNumber> {
        match self {
            Self::Ack { target }
            | Self::Update { target, .. }
            | Self::Status { target, .. }
            | Self::Severity { target, .. }
            | Self::Assign { target, .. }
            | Self::Note { target, .. }
            | Self::Resolve { target, .. }
            | Self::Freeze { target, .. }
            | Self::Unfreeze { target, .. }
            | Self::ActionAdd { target, .. }
            | Self::ActionDone { target, .. }
            | Self::PostmortemSet { target, .. }
            | Self::Postmortem { target }
            | Self::PostmortemPublish { target }
            | Self::Show { target } => *target,
            Self::Declare { .. }
            | Self::List
            | Self::Help
            | Self::FreezeStatus
            | Self::FreezeExempt { .. } => None,
        }
    }

    /// Fills in the incident from context (an incident channel) when none was named.
    pub fn with_default_target(mut self, number: IncidentNumber) -> Self {
        match &mut self {
            Self::Ack { target }
            | Self::Update { target, .. }
            | Self::Status { target, .. }
            | Self::Severity { target, .. }
            | Self::Assign { target, .. }
            | Self::Note { target, .. }
            | Self::Resolve { target, .. }
            | Self::Freeze { target, .. }
            | Self::Unfreeze { target, .. }
            | Self::ActionAdd { target, .. }
            | Self::ActionDone { target, .. }
            | Self::PostmortemSet { target, .. }
            | Self::Postmortem { target }
            | Self::PostmortemPublish { target }
            | Self::Show { target } => {
                target.get_or_insert(number);
            }
            Self::Declare { .. }
            | Self::List
            | Self::Help
            | Self::FreezeStatus
            | Self::FreezeExempt { .. } => {}
        }
        self
    }

    /// Whether the command changes anything (read-only commands skip permissions and effects).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Self::Show { .. } | Self::List | Self::Help | Self::FreezeStatus
        )
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
    "declare", "ack", "update", "status", "severity", "assign", "note", "resolve", "show", "list",
    "help",
];

/// The help text every edge shows for `help` and unknown input.
pub const HELP: &str = "\
Commands (name the incident as INC-42 when you are not in its channel):
  declare [sev1..sev4] <title> [--drill] [--started <when>] [--detected <when>]
  ack [INC-n]                          acknowledge; you become commander if there is none
  update [INC-n] <text> [--next 30m]   post a status update, promise the next one
  status [INC-n] investigating|identified|monitoring|mitigated|resolved
  severity [INC-n] sev1..sev4
  assign [INC-n] commander|comms|scribe <user>
  note [INC-n] <text>
  resolve [INC-n] [summary]
  show [INC-n]
  list
  freeze [owner/repo|owner/* ...] [--reason <text>]   block merges (default: the configured repos)
  unfreeze [owner/repo|owner/* ...]                   lift it (default: everything frozen)
  freeze status
  freeze exempt owner/repo#123 --reason <text>        let one pull request through
  action add [INC-n] <text> [--owner <user>] [--term immediate|medium|long]
  action done [INC-n] <n>
  postmortem [INC-n]                   the draft post-mortem, rendered from the record
  postmortem publish [INC-n]           open or update its pull request
  postmortem set [INC-n] summary|impact|root-cause|contributing-factors|went-well|went-poorly <text>
  help
<when> is an RFC 3339 time (2026-11-22T03:10:00Z) or an age such as 15m (meaning 15 minutes ago).";

/// Parses one line of chat text (`/incident <line>`).
pub fn parse_line(line: &str, opts: ParseOptions) -> Result<Command, UserError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    parse_words(&words, opts, Utc::now())
}

/// Parses pre-split words (the CLI's argv after `incident`). `now` anchors relative times.
pub fn parse_words<S: AsRef<str>>(
    words: &[S],
    opts: ParseOptions,
    now: DateTime<Utc>,
) -> Result<Command, UserError> {
    let words: Vec<&str> = words
        .iter()
        .flat_map(|w| w.as_ref().split_whitespace())
        .collect();
    let Some((verb, rest)) = words.split_first() else {
        return Ok(Command::Help);
    };
    let verb_lc = verb.to_ascii_lowercase();
    let (target, rest) = split_target(&verb_lc, rest, opts);
    let mut args = Args::new(rest);
    let cmd = match verb_lc.as_str() {
        "declare" => parse_declare(&mut args, now)?,
        "ack" | "acknowledge" => Command::Ack { target },
        "update" => {
            let next = args.option("--next")?.map(parse_cadence).transpose()?;
            let text = args.text_required("update", "what changed")?;
            Command::Update { target, text, next }
        }
        "status" => Command::Status {
            target,
            status: args
                .single("status", "a status such as mitigated")?
                .parse()?,
        },
        "severity" | "sev" => Command::Severity {
            target,
            severity: args
                .single("severity", "a severity such as sev2")?
                .parse()?,
        },
        "assign" => parse_assign(&mut args, target)?,
        "note" => Command::Note {
            target,
            text: args.text_required("note", "the note")?,
        },
        "resolve" => Command::Resolve {
            target,
            summary: args.text()?,
        },
        "show" => Command::Show { target },
        "list" => Command::List,
        "help" => Command::Help,
        "freeze" => parse_freeze(&mut args, target)?,
        "action" => parse_action(&mut args, target)?,
        "postmortem" | "post-mortem" => parse_postmortem(&mut args, target)?,
        "unfreeze" => Command::Unfreeze {
            target,
            scopes: parse_scopes(&mut args)?,
        },
        _ => return Err(unknown_command(verb)),
    };
    args.finish(cmd.verb())?;
    Ok(cmd)
}

fn split_target<'a>(
    verb: &str,
    rest: &'a [&'a str],
    opts: ParseOptions,
) -> (Option<IncidentNumber>, &'a [&'a str]) {
    if matches!(verb, "declare" | "list" | "help") {
        return (None, rest);
    }
    match rest.split_first() {
        Some((first, tail)) => match IncidentNumber::parse(first, opts.bare_number_is_ref) {
            Some(n) => (Some(n), tail),
            None => (None, rest),
        },
        None => (None, rest),
    }
}

fn parse_declare(args: &mut Args<'_>, now: DateTime<Utc>) -> Result<Command, UserError> {
    let drill = args.flag("--drill");
    let started_at = args
        .option("--started")?
        .map(|w| parse_when(&w, now))
        .transpose()?;
    let detected_at = args
        .option("--detected")?
        .map(|w| parse_when(&w, now))
        .transpose()?;
    let severity = match args.words.first() {
        Some(w) if looks_like_severity(w) => {
            let sev = w.parse()?;
            args.words.remove(0);
            sev
        }
        _ => DEFAULT_SEVERITY,
    };
    let title = args.text_required(
        "declare",
        "a title, e.g. `declare sev1 Checkout API returns 502`",
    )?;
    if title.chars().count() > 200 {
        return Err(UserError::invalid(
            "The title is longer than 200 characters; keep it short and put details in an update.",
        ));
    }
    Ok(Command::Declare {
        severity,
        title,
        drill,
        started_at,
        detected_at,
    })
}

fn parse_assign(args: &mut Args<'_>, target: Option<IncidentNumber>) -> Result<Command, UserError> {
    let usage = "Use `assign commander|comms|scribe <user>`.";
    let (role, user) = match args.words.as_slice() {
        [role, user] => (
            role.parse::<Role>()?,
            user.trim_start_matches('@').to_string(),
        ),
        _ => return Err(UserError::invalid(usage)),
    };
    if user.is_empty() {
        return Err(UserError::invalid(usage));
    }
    args.words.clear();
    Ok(Command::Assign { target, role, user })
}

fn looks_like_severity(word: &str) -> bool {
    let lc = word.to_ascii_lowercase();
    lc.starts_with("sev") && lc.len() <= 5
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

/// Parses `<when>`: an RFC 3339 time, or an age like `15m` meaning that long ago.
fn parse_when(word: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, UserError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(word) {
        return Ok(t.with_timezone(&Utc));
    }
    let age = humantime::parse_duration(word.trim_end_matches("ago")).map_err(|_| {
        UserError::invalid(format!(
            "\"{word}\" is not a time; use RFC 3339 (2026-11-22T03:10:00Z) or an age like 15m."
        ))
    })?;
    let age = chrono::Duration::from_std(age)
        .ok()
        .filter(|a| *a <= chrono::Duration::days(30))
        .ok_or_else(|| UserError::invalid("Times more than 30 days ago are not accepted."))?;
    Ok(now - age)
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

/// The words after the verb and incident, with flags pulled out as they are read.
struct Args<'a> {
    words: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn new(words: &[&'a str]) -> Self {
        Self {
            words: words.to_vec(),
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|w| !w.eq_ignore_ascii_case(name));
        self.words.len() != before
    }

    /// `--name value` or `--name=value`.
    fn option(&mut self, name: &str) -> Result<Option<String>, UserError> {
        let prefix = format!("{name}=");
        for i in 0..self.words.len() {
            let w = self.words[i];
            if let Some(v) = w.strip_prefix(&prefix) {
                self.words.remove(i);
                return Ok(Some(v.to_string()));
            }
            if w.eq_ignore_ascii_case(name) {
                let value = self.words.get(i + 1).copied().filter(|v| !is_flag(v));
                let Some(value) = value else {
                    return Err(UserError::invalid(format!("{name} needs a value.")));
                };
                self.words.drain(i..=i + 1);
                return Ok(Some(value.to_string()));
            }
        }
        Ok(None)
    }

    /// An `INC-n` at the front (the CLI names the incident after a sub-verb:
    /// `action add INC-4 …`).
    fn take_incident(&mut self) -> Option<IncidentNumber> {
        let n = self
            .words
            .first()
            .and_then(|w| IncidentNumber::parse(w, false))?;
        self.words.remove(0);
        Some(n)
    }

    /// `--name the rest of the words`, up to the next flag; free text such as a reason.
    fn option_rest(&mut self, name: &str) -> Option<String> {
        let i = self
            .words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(name))?;
        let end = self.words[i + 1..]
            .iter()
            .position(|w| is_flag(w))
            .map_or(self.words.len(), |p| i + 1 + p);
        let text = self.words[i + 1..end].join(" ");
        self.words.drain(i..end);
        let text = strip_quotes(text.trim()).to_string();
        (!text.is_empty()).then_some(text)
    }

    fn single(&mut self, verb: &str, what: &str) -> Result<String, UserError> {
        match self.words.as_slice() {
            [one] => {
                let one = one.to_string();
                self.words.clear();
                Ok(one)
            }
            _ => Err(UserError::invalid(format!("`{verb}` takes {what}."))),
        }
    }

    /// The rest of the line as free text (one pair of surrounding quotes removed).
    fn text(&mut self) -> Result<Option<String>, UserError> {
        if let Some(flag) = self.words.iter().find(|w| is_flag(w)) {
            return Err(UserError::invalid(format!("Unknown option {flag}.")));
        }
        let joined = self.words.join(" ");
        self.words.clear();
        let trimmed = strip_quotes(joined.trim());
        Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
    }

    fn text_required(&mut self, verb: &str, what: &str) -> Result<String, UserError> {
        self.text()?
            .ok_or_else(|| UserError::invalid(format!("`{verb}` needs {what}.")))
    }

    fn finish(self, verb: &str) -> Result<(), UserError> {
        match self.words.first() {
            None => Ok(()),
            Some(w) if is_flag(w) => Err(UserError::invalid(format!(
                "Unknown option {w} for `{verb}`."
            ))),
            Some(w) => Err(UserError::invalid(format!(
                "Unexpected \"{w}\" after `{verb}`; see `help`."
            ))),
        }
    }
}

fn is_flag(word: &str) -> bool {
    word.len() > 2 && word.starts_with("--") && word.as_bytes()[2].is_ascii_alphabetic()
}

fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\'', '“'] {
        let close = if q == '“' { '”' } else { q };
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(close) {
            return s[q.len_utf8()..s.len() - close.len_utf8()].trim();
        }
    }
    s
}

mod verbs;

pub use verbs::parse_scope;
use verbs::{parse_action, parse_freeze, parse_postmortem, parse_scopes};

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
