//! A runbook file: what it says (pure types) and how it is read from TOML. Every refusal
//! names the file, the line and the key, so a bad runbook is fixed before the incident that
//! needs it.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::incident::model::Severity;

/// A standard operating procedure, attached to an incident on declare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runbook {
    /// The file name without `.toml`: what `--runbook` and `drill run` take.
    pub name: String,
    pub title: String,
    /// The severities it applies to.
    pub severities: Vec<Severity>,
    /// Words (a service, a region, a label) of which one must be in the incident's title;
    /// empty: any incident of a listed severity.
    pub services: Vec<String>,
    /// How long recovery may take (`recovery_objective = "3h"`): the report says whether
    /// the incident was mitigated within it.
    #[serde(with = "opt_millis")]
    pub recovery_objective: Option<Duration>,
    pub steps: Vec<Step>,
}

/// One step: a target time, an owner, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Unique within the runbook: `[a-z0-9_-]`, what `runbook done` takes.
    pub id: String,
    pub title: String,
    /// Target offset from the declaration.
    #[serde(with = "millis")]
    pub at: Duration,
    pub owner: Owner,
    pub action: Action,
}

/// Who a step belongs to: one of the incident's roles, or a named team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Commander,
    Comms,
    Scribe,
    Team(String),
}

impl Owner {
    fn parse(word: &str) -> Result<Self, String> {
        Ok(match word {
            "commander" => Self::Commander,
            "comms" => Self::Comms,
            "scribe" => Self::Scribe,
            other => match other.strip_prefix("team:") {
                Some(team) if !team.trim().is_empty() => Self::Team(team.trim().to_string()),
                _ => {
                    return Err(format!(
                        "\"{other}\" is not an owner; use commander, comms, scribe or team:<name>"
                    ));
                }
            },
        })
    }

    /// How the checklist and the report name it.
    pub fn label(&self) -> String {
        match self {
            Self::Commander => "commander".into(),
            Self::Comms => "comms".into(),
            Self::Scribe => "scribe".into(),
            Self::Team(t) => format!("team {t}"),
        }
    }
}

/// What a step does. Everything but `Manual` runs by itself at the step's target time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A checklist item a person ticks.
    Manual,
    /// The company-wide notice (queued by the declaration itself; the step records it).
    Announce,
    /// Freeze merges: these repositories, or the configured ones when empty.
    Freeze { repos: Vec<String> },
    /// Post `text` to a configured webhook or a Slack channel: the customer notice.
    Notify { to: Destination, text: String },
    /// Page through a configured webhook.
    Page { webhook: String, text: String },
    /// Post a link (the meeting bridge, a dashboard) in the incident's room.
    Link { url: String },
}

impl Action {
    pub fn is_manual(&self) -> bool {
        matches!(self, Self::Manual)
    }

    /// The action's name as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Announce => "announce",
            Self::Freeze { .. } => "freeze",
            Self::Notify { .. } => "notify",
            Self::Page { .. } => "page",
            Self::Link { .. } => "link",
        }
    }
}

/// Where a `notify` step posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// A `[[notify.webhook]]` by name.
    Webhook(String),
    /// A Slack channel id.
    SlackChannel(String),
}

/// A runbook file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    title: Spanned<String>,
    severities: Spanned<Vec<String>>,
    #[serde(default)]
    services: Vec<String>,
    recovery_objective: Option<Spanned<String>>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    title: Spanned<String>,
    at: Spanned<String>,
    owner: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
    repos: Option<Spanned<Vec<String>>>,
    webhook: Option<Spanned<String>>,
    channel: Option<Spanned<String>>,
    text: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
}

/// Reads one runbook from `text`, named after `path`'s file stem.
pub fn parse(path: &Path, text: &str) -> Result<Runbook, SpecError> {
    let file = path.display().to_string();
    let fail = |span: std::ops::Range<usize>, message: String| SpecError {
        file: file.clone(),
        line: line_of(text, span.start),
        message,
    };
    let raw: RawRunbook = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        fail(span, toml_message(&e))
    })?;
    let name = runbook_name(path).map_err(|m| fail(0..0, m))?;
    let title = required_text(&raw.title).map_err(|m| fail(raw.title.span(), m))?;
    let severities =
        parse_severities(&raw.severities).map_err(|m| fail(raw.severities.span(), m))?;
    let recovery_objective = match &raw.recovery_objective {
        Some(r) => {
            Some(parse_duration("recovery_objective", r.get_ref()).map_err(|m| fail(r.span(), m))?)
        }
        None => None,
    };
    let mut seen = HashSet::new();
    let mut steps = Vec::with_capacity(raw.steps.len());
    for raw_step in &raw.steps {
        let step = parse_step(raw_step.get_ref(), &fail)?;
        if !seen.insert(step.id.clone()) {
            let id = &raw_step.get_ref().id;
            return Err(fail(
                id.span(),
                format!(
                    "id: step id \"{}\" is used twice; each step needs its own",
                    step.id
                ),
            ));
        }
        steps.push(step);
    }
    if steps.is_empty() {
        return Err(fail(0..0, "the runbook has no [[step]]".into()));
    }
    Ok(Runbook {
        name,
        title,
        severities,
        services: raw.services.iter().map(|s| s.to_lowercase()).collect(),
        recovery_objective,
        steps,
    })
}

fn parse_step(
    raw: &RawStep,
    fail: &impl Fn(std::ops::Range<usize>, String) -> SpecError,
) -> Result<Step, SpecError> {
    let id = raw.id.get_ref().trim().to_string();
    if !is_step_id(&id) {
        return Err(fail(
            raw.id.span(),
            format!("id: \"{id}\" is not a step id; use 1 to 40 of a-z, 0-9, - and _"),
        ));
    }
    let at = parse_offset(raw.at.get_ref()).map_err(|m| fail(raw.at.span(), format!("at: {m}")))?;
    let title =
        required_text(&raw.title).map_err(|m| fail(raw.title.span(), format!("title: {m}")))?;
    let owner = match &raw.owner {
        Some(o) => {
            Owner::parse(o.get_ref().trim()).map_err(|m| fail(o.span(), format!("owner: {m}")))?
        }
        None => Owner::Commander,
    };
    let action = parse_action(raw, fail)?;
    Ok(Step {
        id,
        title,
        at,
        owner,
        action,
    })
}

/// The action and the keys that go with it; a key that belongs to another action is refused.
fn parse_action(
    raw: &RawStep,
    fail: &impl Fn(std::ops::Range<usize>, String) -> SpecError,
) -> Result<Action, SpecError> {
    let (name, span) = match &raw.action {
        Some(a) => (a.get_ref().trim().to_string(), a.span()),
        None => ("manual".to_string(), raw.id.span()),
    };
    let allowed: &[&str] = match name.as_str() {
        "manual" | "announce" => &[],
        "freeze" => &["repos"],
        "notify" => &["webhook", "channel", "text"],
        "page" => &["webhook", "text"],
        "link" => &["url"],
        other => {
            return Err(fail(
                span,
                format!(
                    "action: \"{other}\" is not an action; use manual, announce, freeze, notify, page or link"
                ),
            ));
        }
    };
    for (key, present) in [
        ("repos", raw.repos.as_ref().map(Spanned::span)),
        ("webhook", raw.webhook.as_ref().map(Spanned::span)),
        ("channel", raw.channel.as_ref().map(Spanned::span)),
        ("text", raw.text.as_ref().map(Spanned::span)),
        ("url", raw.url.as_ref().map(Spanned::span)),
    ] {
        if let Some(at) = present.filter(|_| !allowed.contains(&key)) {
            return Err(fail(at, format!("{key}: a {name} step takes no {key}")));
        }
    }
    let text = || -> Result<String, SpecError> {
        match &raw.text {
            Some(t) => required_text(t).map_err(|m| fail(t.span(), format!("text: {m}"))),
            None => Err(fail(
                span.clone(),
                format!("text: a {name} step needs the text to send"),
            )),
        }
    };
    Ok(match name.as_str() {
        "manual" => Action::Manual,
        "announce" => Action::Announce,
        "freeze" => Action::Freeze {
            repos: raw
                .repos
                .as_ref()
                .map(|r| r.get_ref().clone())
                .unwrap_or_default(),
        },
        "notify" => {
            let to = match (&raw.webhook, &raw.channel) {
                (Some(w), None) => Destination::Webhook(w.get_ref().trim().to_string()),
                (None, Some(c)) => Destination::SlackChannel(c.get_ref().trim().to_string()),
                _ => {
                    return Err(fail(
                        span,
                        "webhook: a notify step needs exactly one of webhook or channel".into(),
                    ));
                }
            };
            Action::Notify { to, text: text()? }
        }
        "page" => match &raw.webhook {
            Some(w) => Action::Page {
                webhook: w.get_ref().trim().to_string(),
                text: text()?,
            },
            None => {
                return Err(fail(
                    span,
                    "webhook: a page step needs the webhook to page through".into(),
                ));
            }
        },
        _ => match &raw.url {
            Some(u)
                if u.get_ref().starts_with("https://") || u.get_ref().starts_with("http://") =>
            {
                Action::Link {
                    url: u.get_ref().trim().to_string(),
                }
            }
            Some(u) => {
                return Err(fail(
                    u.span(),
                    "url: a link must start with https:// or http://".into(),
                ));
            }
            None => return Err(fail(span, "url: a link step needs the url to post".into())),
        },
    })
}

/// `T+2m`, `T+1h30m`, `T+0`: an offset from the declaration (pure).
pub fn parse_offset(text: &str) -> Result<Duration, String> {
    let rest = text
        .trim()
        .strip_prefix("T+")
        .ok_or_else(|| format!("\"{text}\" is not a target time; write it like T+2m or T+1h30m"))?;
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let d = humantime::parse_duration(rest)
        .map_err(|_| format!("\"{text}\" is not a target time; write it like T+2m or T+1h30m"))?;
    if d > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!(
            "\"{text}\" is more than 7 days after the declaration"
        ));
    }
    Ok(d)
}

fn parse_duration(key: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("{key}: \"{text}\" is not a duration; write it like 3h or 45m"))
}

fn parse_severities(raw: &Spanned<Vec<String>>) -> Result<Vec<Severity>, String> {
    let list = raw.get_ref();
    if list.is_empty() {
        return Err("severities: list at least one, e.g. [\"sev1\"]".into());
    }
    list.iter()
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|_| format!("severities: \"{s}\" is not a severity; use sev1 to sev4"))
        })
        .collect()
}

fn required_text(raw: &Spanned<String>) -> Result<String, String> {
    let t = raw.get_ref().trim();
    match t.is_empty() {
        true => Err("is empty".into()),
        false => Ok(t.to_string()),
    }
}

fn is_step_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The runbook's name: its file stem, which must itself be a step-id-like word.
fn runbook_name(path: &Path) -> Result<String, String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    match is_step_id(&stem) {
        true => Ok(stem),
        false => Err(format!(
            "the file name \"{stem}\" is not a runbook name; use 1 to 40 of a-z, 0-9, - and _"
        )),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// toml's message without its own rendering of the source (ours names file and line).
fn toml_message(e: &toml::de::Error) -> String {
    let m = e.message().trim();
    let key_of = |rest: &str| {
        rest.split(',')
            .next()
            .unwrap_or(rest)
            .trim_matches('`')
            .to_string()
    };
    if let Some(rest) = m.strip_prefix("unknown field ") {
        return format!("{}: unknown key ({m})", key_of(rest));
    }
    if let Some(rest) = m.strip_prefix("missing field ") {
        return format!("{}: missing key ({m})", key_of(rest));
    }
    m.to_string()
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests;
