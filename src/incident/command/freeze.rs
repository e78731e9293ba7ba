//! Merge freezes: `freeze`, `unfreeze`, `freeze exempt` (permission `freeze`) and
//! `freeze status` (a read). How a freeze is recorded and enforced is
//! [`incident::freeze`](crate::incident::freeze)'s business.

use std::time::Duration;

use super::{Args, is_flag};
use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::IncidentNumber;
use crate::incident::permissions::{Action, Actor};
use crate::incident::service::{IncidentService, Outcome};
use crate::incident::text::{self, Field};

#[derive(Debug, Clone, PartialEq)]
pub enum FreezeVerb {
    /// Freeze merges on the named scopes (or the configured ones).
    Freeze {
        scopes: Vec<String>,
        reason: Option<String>,
        /// `--for 4h`: the hold ends by itself after this long.
        expires: Option<Duration>,
    },
    /// Remove the caller's hold (the incident's, or the person's own) on the named scopes
    /// (or everywhere it is); with `all` (`--all`), every hold.
    Unfreeze { scopes: Vec<String>, all: bool },
    /// What is frozen, and whether GitHub agrees.
    Status,
    /// Let one pull request through a freeze.
    Exempt {
        repo: String,
        pr: u64,
        reason: Option<String>,
    },
}

impl FreezeVerb {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Freeze { .. } => "freeze",
            Self::Unfreeze { .. } => "unfreeze",
            Self::Status => "freeze status",
            Self::Exempt { .. } => "freeze exempt",
        }
    }

    /// A freeze may belong to an incident; the status and an exemption never do.
    pub(super) fn takes_target(&self) -> bool {
        matches!(self, Self::Freeze { .. } | Self::Unfreeze { .. })
    }

    pub fn permission(&self) -> Option<Action> {
        match self {
            Self::Status => None,
            Self::Unfreeze { all: true, .. } => Some(Action::UnfreezeAll),
            Self::Freeze { .. } | Self::Unfreeze { .. } | Self::Exempt { .. } => {
                Some(Action::Freeze)
            }
        }
    }

    pub(super) fn prepare(self) -> Result<Self, UserError> {
        Ok(match self {
            Self::Freeze {
                scopes,
                reason,
                expires,
            } => Self::Freeze {
                scopes: checked_scopes(scopes)?,
                reason: text::clean_optional(Field::Reason, reason.as_deref())?,
                expires: expires.map(checked_expiry).transpose()?,
            },
            Self::Unfreeze { scopes, all } => Self::Unfreeze {
                scopes: checked_scopes(scopes)?,
                all,
            },
            Self::Exempt { repo, pr, reason } => Self::Exempt {
                repo: parse_scope(&repo)?,
                pr,
                reason: text::clean_optional(Field::Reason, reason.as_deref())?,
            },
            Self::Status => Self::Status,
        })
    }

    pub(crate) async fn apply(
        self,
        service: &IncidentService,
        target: Option<IncidentNumber>,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        service.freeze_command(self, target, actor).await
    }
}

pub(super) fn parse(verb: &str, args: &mut Args<'_>) -> Result<FreezeVerb, UserError> {
    if verb == "unfreeze" {
        let all = args.flag("--all");
        return Ok(FreezeVerb::Unfreeze {
            scopes: parse_scopes(args)?,
            all,
        });
    }
    match args.words.first().map(|w| w.to_ascii_lowercase()) {
        Some(w) if w == "status" => {
            args.words.remove(0);
            Ok(FreezeVerb::Status)
        }
        Some(w) if w == "exempt" => {
            args.words.remove(0);
            let reason = args.option_rest("--reason");
            let usage = "Use `freeze exempt owner/repo#123 --reason …`.";
            let [pr_ref] = args.words.as_slice() else {
                return Err(UserError::invalid(usage));
            };
            let (repo, pr) = pr_ref
                .split_once('#')
                .ok_or_else(|| UserError::invalid(usage))?;
            let repo = parse_scope(repo)?;
            if repo.ends_with("/*") {
                return Err(UserError::invalid(usage));
            }
            let pr = pr.parse().map_err(|_| {
                UserError::invalid(format!("\"{pr}\" is not a pull request number."))
            })?;
            args.words.clear();
            Ok(FreezeVerb::Exempt { repo, pr, reason })
        }
        _ => {
            let expires = args
                .option("--for")?
                .map(|w| parse_expiry(&w))
                .transpose()?;
            let reason = args.option_rest("--reason");
            Ok(FreezeVerb::Freeze {
                scopes: parse_scopes(args)?,
                reason,
                expires,
            })
        }
    }
}

/// `--for 4h`: how long a hold lasts, from a minute to 30 days.
pub fn parse_expiry(word: &str) -> Result<Duration, UserError> {
    let d = humantime::parse_duration(word).map_err(|_| {
        UserError::invalid(format!(
            "\"{word}\" is not a duration; write it like 4h or 2d."
        ))
    })?;
    checked_expiry(d)
}

fn checked_expiry(d: Duration) -> Result<Duration, UserError> {
    if d < Duration::from_secs(60) || d > Duration::from_secs(30 * 24 * 3600) {
        return Err(UserError::invalid("--for must be between 1m and 30d."));
    }
    Ok(d)
}

/// Scopes built without the parser are held to the same rule.
fn checked_scopes(scopes: Vec<String>) -> Result<Vec<String>, UserError> {
    for scope in &scopes {
        parse_scope(scope)?;
    }
    Ok(scopes)
}

fn parse_scopes(args: &mut Args<'_>) -> Result<Vec<String>, UserError> {
    if let Some(flag) = args.words.iter().find(|w| is_flag(w)) {
        return Err(UserError::invalid(format!("Unknown option {flag}.")));
    }
    let scopes = args
        .words
        .iter()
        .map(|w| parse_scope(w))
        .collect::<Result<Vec<_>, _>>()?;
    args.words.clear();
    Ok(scopes)
}

/// `owner/repo` or `owner/*`, in the characters GitHub allows.
pub fn parse_scope(word: &str) -> Result<String, UserError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match word.split_once('/') {
        Some((owner, repo)) if ok_part(owner) && (repo == "*" || ok_part(repo)) => {
            Ok(word.to_string())
        }
        _ => Err(UserError::invalid(format!(
            "\"{word}\" is not a repository; write owner/repo or owner/*."
        ))),
    }
}
