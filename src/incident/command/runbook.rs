//! `runbook [INC-n]` (the checklist), `runbook start [INC-n] <step>`,
//! `runbook done [INC-n] <step> [note]` and
//! `runbook skip [INC-n] <step> <why>` (permission `respond`): people end the steps of the
//! incident's runbook that are theirs; the automatic ones end by themselves.

use super::{Args, clean_required};
use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::IncidentNumber;
use crate::incident::permissions::{Action, Actor};
use crate::incident::service::{IncidentService, Outcome};
use crate::incident::text::{self, Field};
use crate::store::StepOutcome;

#[derive(Debug, Clone, PartialEq)]
pub enum RunbookVerb {
    /// The checklist.
    Show,
    /// A person takes a step on.
    Start { step: String },
    /// A step is done (`note`: what was done, optional).
    Done { step: String, note: Option<String> },
    /// A step is not needed or cannot be done, and why.
    Skip { step: String, reason: String },
}

const USAGE: &str = "Use `runbook`, `runbook start <step>`, `runbook done <step> [note]` or `runbook skip <step> <why>`.";

impl RunbookVerb {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Show => "runbook",
            Self::Start { .. } => "runbook start",
            Self::Done { .. } => "runbook done",
            Self::Skip { .. } => "runbook skip",
        }
    }

    pub fn permission(&self) -> Option<Action> {
        match self {
            Self::Show => None,
            Self::Start { .. } | Self::Done { .. } | Self::Skip { .. } => Some(Action::Respond),
        }
    }

    pub(super) fn prepare(self) -> Result<Self, UserError> {
        Ok(match self {
            Self::Show => Self::Show,
            Self::Start { step } => Self::Start { step },
            Self::Done { step, note } => Self::Done {
                step,
                note: text::clean_optional(Field::Note, note.as_deref())?,
            },
            Self::Skip { step, reason } => Self::Skip {
                step,
                reason: clean_required(
                    Field::Reason,
                    &reason,
                    "runbook skip",
                    "why it is skipped",
                )?,
            },
        })
    }

    pub(crate) async fn apply(
        self,
        service: &IncidentService,
        number: IncidentNumber,
        actor: &Actor,
    ) -> Result<Outcome, ServiceError> {
        match self {
            Self::Show => service.show_runbook(number).await,
            Self::Start { step } => service.start_step(number, &step, actor).await,
            Self::Done { step, note } => {
                service
                    .end_step(number, &step, StepOutcome::Done, note.as_deref(), actor)
                    .await
            }
            Self::Skip { step, reason } => {
                service
                    .end_step(number, &step, StepOutcome::Skipped, Some(&reason), actor)
                    .await
            }
        }
    }
}

pub(super) fn parse(args: &mut Args<'_>) -> Result<RunbookVerb, UserError> {
    let Some(sub) = args.sub_verb() else {
        return Ok(RunbookVerb::Show);
    };
    args.take_incident();
    let mut step = || -> Result<String, UserError> {
        let Some(first) = args.words.first().copied() else {
            return Err(UserError::invalid(format!(
                "`runbook {sub}` needs the step's id. {USAGE}"
            )));
        };
        args.words.remove(0);
        Ok(first.trim_matches('`').to_ascii_lowercase())
    };
    match sub.as_str() {
        "show" => Ok(RunbookVerb::Show),
        "start" => Ok(RunbookVerb::Start { step: step()? }),
        "done" => {
            let step = step()?;
            Ok(RunbookVerb::Done {
                step,
                note: args.text()?,
            })
        }
        "skip" => {
            let step = step()?;
            let reason = args.text_required("runbook skip", "why it is skipped")?;
            Ok(RunbookVerb::Skip { step, reason })
        }
        other => Err(UserError::invalid(format!(
            "\"{other}\" is not a runbook command. {USAGE}"
        ))),
    }
}
