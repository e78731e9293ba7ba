//! `declare [sev1..sev4] <title> [--drill] [--runbook <name>] [--started <when>]
//! [--detected <when>]`: opens an incident. Needs the `declare` permission.

use chrono::{DateTime, Utc};

use super::{Args, clean_required};
use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::Severity;
use crate::incident::permissions::Actor;
use crate::incident::service::{IncidentService, Outcome};
use crate::incident::text::{self, Field};

/// Severity used when `declare` names none. SEV3 is the common "something is wrong, we are
/// looking" level; responders escalate with `severity sev1` as soon as they know more.
pub const DEFAULT_SEVERITY: Severity = Severity::Sev3;

/// How far in the future a start or detection time may be, for clocks that disagree.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(1);

/// How far back a start or detection time may be.
const MAX_AGE: chrono::Duration = chrono::Duration::days(30);

#[derive(Debug, Clone, PartialEq)]
pub struct Declare {
    pub severity: Severity,
    pub title: String,
    pub drill: bool,
    /// When the problem began, if earlier than the declaration.
    pub started_at: Option<DateTime<Utc>>,
    /// When someone or something noticed it.
    pub detected_at: Option<DateTime<Utc>>,
    /// What is known so far (the Slack form's description), recorded as the first note.
    pub description: Option<String>,
    /// The runbook to attach (`--runbook`); without it, the one chosen for the severity
    /// and title, if any.
    pub runbook: Option<String>,
}

impl Declare {
    /// A plain declaration, as the Slack form makes it.
    pub fn new(severity: Severity, title: impl Into<String>) -> Self {
        Self {
            severity,
            title: title.into(),
            drill: false,
            started_at: None,
            detected_at: None,
            description: None,
            runbook: None,
        }
    }

    /// The title through the text pipeline, and the times checked against `now`: neither in
    /// the future (beyond a minute of clock skew) nor more than 30 days ago, and detection
    /// no earlier than the start.
    pub(super) fn prepare(mut self, now: DateTime<Utc>) -> Result<Self, UserError> {
        self.title = clean_required(
            Field::Title,
            &self.title,
            "declare",
            "a title, e.g. `declare sev1 Checkout API returns 502`",
        )?;
        self.description = text::clean_optional(Field::Description, self.description.as_deref())?;
        for (flag, at) in [
            ("--started", self.started_at),
            ("--detected", self.detected_at),
        ] {
            let Some(at) = at else { continue };
            if at > now + CLOCK_SKEW {
                return Err(UserError::invalid(format!(
                    "{flag} {} UTC is in the future (it is now {} UTC); give the time it happened.",
                    at.format("%Y-%m-%d %H:%M"),
                    now.format("%Y-%m-%d %H:%M"),
                )));
            }
            if at < now - MAX_AGE {
                return Err(UserError::invalid(format!(
                    "{flag} is more than 30 days ago; times more than 30 days ago are not accepted."
                )));
            }
        }
        if let (Some(started), Some(detected)) = (self.started_at, self.detected_at) {
            if detected < started {
                return Err(UserError::invalid(
                    "--detected is before --started; a problem is noticed after it begins.",
                ));
            }
        }
        Ok(self)
    }

    pub(crate) async fn apply(
        self,
        service: &IncidentService,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        service.declare(self, actor).await
    }
}

pub(super) fn parse(args: &mut Args<'_>, now: DateTime<Utc>) -> Result<Declare, UserError> {
    let drill = args.flag("--drill");
    let runbook = args.option("--runbook")?;
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
    Ok(Declare {
        severity,
        title,
        drill,
        started_at,
        detected_at,
        description: None,
        runbook,
    })
}

fn looks_like_severity(word: &str) -> bool {
    let lc = word.to_ascii_lowercase();
    lc.starts_with("sev") && lc.len() <= 5
}

/// Parses `<when>`: an RFC 3339 time, or an age like `15m` meaning that long ago. Whether the
/// time is acceptable (not in the future, not too old) is [`Declare::prepare`]'s business.
pub fn parse_when(word: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, UserError> {
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
        .filter(|a| *a <= MAX_AGE)
        .ok_or_else(|| UserError::invalid("Times more than 30 days ago are not accepted."))?;
    Ok(now - age)
}
