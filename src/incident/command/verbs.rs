//! The grammar's sub-command verbs: `freeze …`, `action …` and `postmortem …`.

use super::{Args, Command, PostmortemField, Term, is_flag};
use crate::incident::error::UserError;
use crate::incident::model::IncidentNumber;

pub(super) fn parse_freeze(
    args: &mut Args<'_>,
    target: Option<IncidentNumber>,
) -> Result<Command, UserError> {
    match args.words.first().map(|w| w.to_ascii_lowercase()) {
        Some(w) if w == "status" => {
            args.words.remove(0);
            Ok(Command::FreezeStatus)
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
            Ok(Command::FreezeExempt { repo, pr, reason })
        }
        _ => {
            let reason = args.option_rest("--reason");
            Ok(Command::Freeze {
                target,
                scopes: parse_scopes(args)?,
                reason,
            })
        }
    }
}

pub(super) fn parse_action(
    args: &mut Args<'_>,
    target: Option<IncidentNumber>,
) -> Result<Command, UserError> {
    let usage = "Use `action add <text> [--owner <user>] [--term immediate|medium|long]` or `action done <n>`.";
    let sub = args
        .words
        .first()
        .map(|w| w.to_ascii_lowercase())
        .ok_or_else(|| UserError::invalid(usage))?;
    args.words.remove(0);
    let target = target.or_else(|| args.take_incident());
    match sub.as_str() {
        "add" => {
            let owner = args
                .option("--owner")?
                .map(|o| o.trim_start_matches('@').to_string());
            let term = match args.option("--term")?.as_deref() {
                None | Some("immediate") => Term::Immediate,
                Some("medium") => Term::Medium,
                Some("long") => Term::Long,
                Some(other) => {
                    return Err(UserError::invalid(format!(
                        "\"{other}\" is not a term; use immediate, medium or long."
                    )));
                }
            };
            let text = args.text_required("action add", "what should be done")?;
            Ok(Command::ActionAdd {
                target,
                text,
                owner,
                term,
            })
        }
        "done" => {
            let n = args.single("action done", "the action item's number")?;
            let number = n.trim_start_matches('#').parse().map_err(|_| {
                UserError::invalid(format!("\"{n}\" is not an action item number."))
            })?;
            Ok(Command::ActionDone { target, number })
        }
        _ => Err(UserError::invalid(usage)),
    }
}

pub(super) fn parse_postmortem(
    args: &mut Args<'_>,
    target: Option<IncidentNumber>,
) -> Result<Command, UserError> {
    let usage = "Use `postmortem set <section> <text>`; sections: summary, impact, root-cause, contributing-factors, went-well, went-poorly.";
    match args.words.first().map(|w| w.to_ascii_lowercase()) {
        Some(w) if w == "set" => {
            args.words.remove(0);
            let target = target.or_else(|| args.take_incident());
            let field = args
                .words
                .first()
                .copied()
                .ok_or_else(|| UserError::invalid(usage))?;
            let field = PostmortemField::parse(field)?;
            args.words.remove(0);
            let text = args.text_required("postmortem set", "the text")?;
            Ok(Command::PostmortemSet {
                target,
                field,
                text,
            })
        }
        Some(w) if w == "publish" => {
            args.words.remove(0);
            let target = target.or_else(|| args.take_incident());
            Ok(Command::PostmortemPublish { target })
        }
        None => Ok(Command::Postmortem { target }),
        _ => Err(UserError::invalid(usage)),
    }
}

pub(super) fn parse_scopes(args: &mut Args<'_>) -> Result<Vec<String>, UserError> {
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
