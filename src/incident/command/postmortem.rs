//! The post-mortem and what goes into it: `postmortem set`, `postmortem publish` (which opens
//! a pull request), `action add`, `action done` (permission `postmortem`), and the draft
//! (`postmortem`, a read). The work is done in [`material`](crate::incident::material).

use super::{Args, clean_required};
use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::IncidentNumber;
use crate::incident::permissions::{Action, Actor};
use crate::incident::service::{IncidentService, Outcome};
use crate::incident::text::Field;

#[derive(Debug, Clone, PartialEq)]
pub enum PostmortemVerb {
    /// Show the post-mortem draft.
    Draft,
    /// Publish (or update) the post-mortem as a pull request.
    Publish,
    /// Write one section of the post-mortem.
    Set {
        field: PostmortemField,
        text: String,
    },
    ActionAdd {
        text: String,
        owner: Option<String>,
        term: Term,
    },
    ActionDone {
        number: i64,
    },
    /// Move the document along: draft, in review, final.
    Status(DocStatus),
    /// Name someone who reviews the document.
    ReviewerAdd {
        who: String,
    },
}

/// Where the post-mortem document is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocStatus {
    Draft,
    InReview,
    Final,
}

impl DocStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::InReview => "in-review",
            Self::Final => "final",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UserError> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "draft" => Ok(Self::Draft),
            "in-review" | "review" | "inreview" => Ok(Self::InReview),
            "final" => Ok(Self::Final),
            _ => Err(UserError::invalid(format!(
                "\"{s}\" is not a post-mortem status; use draft, in-review or final."
            ))),
        }
    }
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
    /// What set it off (a deploy, a config push, a traffic spike).
    Trigger,
    /// How it was noticed, and what would have noticed it sooner.
    Detection,
    RootCause,
    ContributingFactors,
    /// How it was stopped and how service came back.
    Resolution,
    WentWell,
    /// What went wrong (`went-poorly` is its first name and still accepted).
    WentWrong,
    /// Where we got lucky.
    Lucky,
}

impl PostmortemField {
    /// In the order the document shows them.
    pub const ALL: [PostmortemField; 10] = [
        Self::Summary,
        Self::Impact,
        Self::Trigger,
        Self::Detection,
        Self::RootCause,
        Self::ContributingFactors,
        Self::Resolution,
        Self::WentWell,
        Self::WentWrong,
        Self::Lucky,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Impact => "impact",
            Self::RootCause => "root-cause",
            Self::ContributingFactors => "contributing-factors",
            Self::WentWell => "went-well",
            Self::WentWrong => "went-wrong",
            Self::Trigger => "trigger",
            Self::Detection => "detection",
            Self::Resolution => "resolution",
            Self::Lucky => "lucky",
        }
    }

    /// The section's heading in the document.
    pub fn title(self) -> &'static str {
        match self {
            Self::Summary => "Summary",
            Self::Impact => "Impact",
            Self::Trigger => "Trigger",
            Self::Detection => "Detection",
            Self::RootCause => "Root cause",
            Self::ContributingFactors => "Contributing factors",
            Self::Resolution => "Resolution and recovery",
            Self::WentWell => "What went well",
            Self::WentWrong => "What went wrong",
            Self::Lucky => "Where we got lucky",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UserError> {
        let norm = s.to_ascii_lowercase().replace('_', "-");
        let norm = match norm.as_str() {
            "went-poorly" => "went-wrong",
            "got-lucky" | "where-we-got-lucky" => "lucky",
            "recovery" => "resolution",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == norm)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.as_str()).collect();
                UserError::invalid(format!(
                    "\"{s}\" is not a post-mortem section; use one of {}.",
                    names.join(", ")
                ))
            })
    }
}

impl PostmortemVerb {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Draft => "postmortem",
            Self::Publish => "postmortem publish",
            Self::Set { .. } => "postmortem set",
            Self::ActionAdd { .. } => "action add",
            Self::ActionDone { .. } => "action done",
            Self::Status(_) => "postmortem status",
            Self::ReviewerAdd { .. } => "postmortem reviewer add",
        }
    }

    pub fn permission(&self) -> Option<Action> {
        match self {
            Self::Draft => None,
            Self::Publish
            | Self::Set { .. }
            | Self::ActionAdd { .. }
            | Self::ActionDone { .. }
            | Self::Status(_)
            | Self::ReviewerAdd { .. } => Some(Action::Postmortem),
        }
    }

    pub(super) fn prepare(self) -> Result<Self, UserError> {
        Ok(match self {
            Self::Set { field, text } => Self::Set {
                field,
                text: clean_required(
                    Field::PostmortemSection,
                    &text,
                    "postmortem set",
                    "the text",
                )?,
            },
            Self::ActionAdd { text, owner, term } => Self::ActionAdd {
                text: clean_required(
                    Field::ActionItem,
                    &text,
                    "action add",
                    "what should be done",
                )?,
                owner: crate::incident::text::clean_optional(Field::Person, owner.as_deref())?,
                term,
            },
            Self::ReviewerAdd { who } => Self::ReviewerAdd {
                who: clean_required(
                    Field::Person,
                    &who,
                    "postmortem reviewer add",
                    "who reviews it",
                )?,
            },
            other @ (Self::Draft | Self::Publish | Self::ActionDone { .. } | Self::Status(_)) => {
                other
            }
        })
    }

    pub(crate) async fn apply(
        self,
        service: &IncidentService,
        number: IncidentNumber,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        match self {
            Self::Draft => service.postmortem_draft(number).await,
            Self::Publish => service.postmortem_publish(number).await,
            material => service.postmortem_material(number, material, actor).await,
        }
    }
}

/// `action add|done …` and `postmortem [set|publish] …`. The incident may come before the
/// sub-verb or right after it: `action INC-4 add …` and `action add INC-4 …` are the same.
pub(super) fn parse(verb: &str, args: &mut Args<'_>) -> Result<PostmortemVerb, UserError> {
    if verb == "action" {
        parse_action(args)
    } else {
        parse_postmortem(args)
    }
}

fn parse_action(args: &mut Args<'_>) -> Result<PostmortemVerb, UserError> {
    let usage = "Use `action add <text> [--owner <user>] [--term immediate|medium|long]` or `action done <n>`.";
    let sub = args.sub_verb().ok_or_else(|| UserError::invalid(usage))?;
    match sub.as_str() {
        "add" => {
            args.take_incident();
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
            Ok(PostmortemVerb::ActionAdd { text, owner, term })
        }
        "done" => {
            // `action done 4 2` is item 2 of INC-4; `action done 2` is item 2 here.
            if args.words.len() > 1 {
                args.take_incident();
            }
            let n = args.single("action done", "the action item's number")?;
            let number = n.trim_start_matches('#').parse().map_err(|_| {
                UserError::invalid(format!("\"{n}\" is not an action item number."))
            })?;
            Ok(PostmortemVerb::ActionDone { number })
        }
        _ => Err(UserError::invalid(usage)),
    }
}

fn parse_postmortem(args: &mut Args<'_>) -> Result<PostmortemVerb, UserError> {
    let usage = "Use `postmortem set <section> <text>` (sections: summary, impact, trigger, detection, root-cause, contributing-factors, resolution, went-well, went-wrong, lucky), `postmortem status draft|in-review|final` or `postmortem reviewer add @someone`.";
    let Some(sub) = args.sub_verb() else {
        return Ok(PostmortemVerb::Draft);
    };
    args.take_incident();
    match sub.as_str() {
        "set" => {
            let field = args
                .words
                .first()
                .copied()
                .ok_or_else(|| UserError::invalid(usage))?;
            let field = PostmortemField::parse(field)?;
            args.words.remove(0);
            let text = args.text_required("postmortem set", "the text")?;
            Ok(PostmortemVerb::Set { field, text })
        }
        "publish" => Ok(PostmortemVerb::Publish),
        "status" => {
            let status = args.single("postmortem status", "draft, in-review or final")?;
            Ok(PostmortemVerb::Status(DocStatus::parse(&status)?))
        }
        "reviewer" | "reviewers" => {
            let usage = "Use `postmortem reviewer add @someone`.";
            match args.sub_verb().as_deref() {
                Some("add") => {
                    args.take_incident();
                    let who = args.single("postmortem reviewer add", "who reviews it")?;
                    let who = who.trim_start_matches('@').to_string();
                    Ok(PostmortemVerb::ReviewerAdd { who })
                }
                _ => Err(UserError::invalid(usage)),
            }
        }
        _ => Err(UserError::invalid(usage)),
    }
}
