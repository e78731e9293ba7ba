//! Changes responders make to an open incident: `ack`, `update`, `status`, `severity`,
//! `assign`, `note` (permission `respond`) and `resolve` (permission `resolve`; so is
//! `status resolved`). The decisions themselves are the pure [`rules`](crate::incident::rules).

use std::time::Duration;

use super::{Args, clean_required, parse_cadence};
use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::{IncidentNumber, Role, Severity, Status};
use crate::incident::permissions::{Action, Actor};
use crate::incident::service::{IncidentService, Outcome};
use crate::incident::text::{self, Field};

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Acknowledge; the acker becomes commander if there is none.
    Ack,
    /// Post a status update, promising the next one.
    Update {
        text: String,
        next: Option<Duration>,
    },
    Status(Status),
    Severity(Severity),
    Assign {
        role: Role,
        user: String,
    },
    Note {
        text: String,
    },
    Resolve {
        summary: Option<String>,
    },
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Update { .. } => "update",
            Self::Status(_) => "status",
            Self::Severity(_) => "severity",
            Self::Assign { .. } => "assign",
            Self::Note { .. } => "note",
            Self::Resolve { .. } => "resolve",
        }
    }

    /// Closing an incident is `resolve`'s permission, however it is typed; everything else
    /// a responder does is `respond`.
    pub fn permission(&self) -> Action {
        match self {
            Self::Resolve { .. } | Self::Status(Status::Resolved) => Action::Resolve,
            _ => Action::Respond,
        }
    }

    pub(super) fn prepare(self) -> Result<Self, UserError> {
        Ok(match self {
            Self::Update { text, next } => Self::Update {
                text: clean_required(Field::Update, &text, "update", "what changed")?,
                next,
            },
            Self::Note { text } => Self::Note {
                text: clean_required(Field::Note, &text, "note", "the note")?,
            },
            Self::Resolve { summary } => Self::Resolve {
                summary: text::clean_optional(Field::Summary, summary.as_deref())?,
            },
            Self::Assign { role, user } => Self::Assign {
                role,
                user: clean_required(Field::Person, &user, "assign", "a user")?,
            },
            other @ (Self::Ack | Self::Status(_) | Self::Severity(_)) => other,
        })
    }

    pub(crate) async fn apply(
        self,
        service: &IncidentService,
        number: IncidentNumber,
        actor: &Actor,
        expected_version: Option<i64>,
    ) -> Result<Outcome, ServiceError> {
        service.change(number, self, actor, expected_version).await
    }
}

pub(super) fn parse(verb: &str, args: &mut Args<'_>) -> Result<Change, UserError> {
    Ok(match verb {
        "ack" | "acknowledge" => Change::Ack,
        "update" => {
            let next = args.option("--next")?.map(parse_cadence).transpose()?;
            let text = args.text_required("update", "what changed")?;
            Change::Update { text, next }
        }
        "status" => Change::Status(
            args.single("status", "a status such as mitigated")?
                .parse()?,
        ),
        "severity" | "sev" => Change::Severity(
            args.single("severity", "a severity such as sev2")?
                .parse()?,
        ),
        "assign" => parse_assign(args)?,
        "note" => Change::Note {
            text: args.text_required("note", "the note")?,
        },
        "resolve" => Change::Resolve {
            summary: args.text()?,
        },
        other => unreachable!("`{other}` is not an incident change"),
    })
}

fn parse_assign(args: &mut Args<'_>) -> Result<Change, UserError> {
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
    Ok(Change::Assign { role, user })
}
