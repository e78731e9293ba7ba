//! Errors of the core, split the way triagebot splits them: a [`UserError`] is something the
//! person typing can fix and is shown to them verbatim; an internal error is logged with
//! context and shown only as a short apology with a reference.

use super::model::IncidentNumber;

/// An error the user can act on. Its `Display` is a full sentence meant for chat or a terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Input that does not follow the grammar or names an unknown value.
    #[error("{0}")]
    Invalid(String),
    /// Input that is not a command at all, with the help text and a suggestion attached.
    #[error("{message}")]
    Unknown { message: String, help: String },
    #[error("There is no incident {0}.")]
    NotFound(IncidentNumber),
    #[error("Name the incident, for example `{0} INC-42 …`.")]
    NeedsIncident(String),
    #[error("The incident is already resolved.")]
    AlreadyResolved,
    #[error(
        "{number} changed while you were looking at it (you saw version {seen}, it is now at {current}); look again and retry."
    )]
    Conflict {
        number: IncidentNumber,
        seen: i64,
        current: i64,
    },
    #[error(
        "You are not allowed to {action}; ask someone listed under [permissions] {list} in the firebreak config."
    )]
    Forbidden {
        /// What the caller tried, as a phrase ("resolve incidents").
        action: &'static str,
        /// The `[permissions]` list that would allow it.
        list: &'static str,
    },
}

impl UserError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }

    /// Whether this error means the incident was closed by someone else first.
    pub fn is_already_resolved(&self) -> bool {
        matches!(self, Self::AlreadyResolved)
    }
}

/// Anything the service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
    /// The delivery that carried this command was already handled (a platform's retry).
    #[error("this delivery was already handled")]
    Duplicate,
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl ServiceError {
    /// The text to show a user: the sentence for user errors, a generic line otherwise.
    /// Internal details never reach chat; they are logged where the error is handled.
    pub fn user_message(&self) -> String {
        match self {
            Self::User(e) => e.to_string(),
            Self::Duplicate => "That was already done.".to_string(),
            Self::Internal(_) => {
                "Something went wrong inside firebreak; the error is logged. Try again in a moment."
                    .to_string()
            }
        }
    }
}
