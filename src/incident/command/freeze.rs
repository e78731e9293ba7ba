//! Merge freezes: `freeze`, `unfreeze`, `freeze exempt` (permission `freeze`) and
//! `freeze status` (a read). How a freeze is recorded and enforced is
//! [`incident::freeze`](crate::incident::freeze)'s business.

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
    },
    /// Lift the freeze on the named scopes (or everything frozen).
    Unfreeze { scopes: Vec<String> },
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
            Self::Freeze { .. } | Self::Unfreeze { .. } | Self::Exempt { .. } => {
                Some(Action::Freeze)
            }
        }
    }

    pub(super) fn prepare(self) -> Result<Self, UserError> {
        Ok(match self {
            Self::Freeze { scopes, reason } => Self::Freeze {
                scopes: checked_scopes(scopes)?,
                reason: text::clean_optional(Field::Reason, reason.as_deref())?,
            },
            Self::Unfreeze { scopes } => Self::Unfreeze {
                scopes: checked_scopes(scopes)?,
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
        return Ok(FreezeVerb::Unfreeze {
            scopes: parse_scopes(args)?,
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
            let reason = args.option_rest("--reason");
            Ok(FreezeVerb::Freeze {
                scopes: parse_scopes(args)?,
                reason,
            })
        }
    }
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
