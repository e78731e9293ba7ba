//! The neutral outbound message: what the core says back, before any edge renders it as
//! Block Kit, a Discord embed or terminal text.

use serde::Serialize;

use super::model::Incident;
use super::timeline::TimelineEntry;

/// Who sees the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only the person who typed the command (errors, help, read-only answers).
    Private,
    /// Everyone in the channel (declarations and state changes).
    Public,
}

/// Structured content an edge may render richly; the `text` always stands on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyBody {
    None,
    Incident {
        incident: Box<Incident>,
        timeline: Vec<TimelineEntry>,
    },
    List {
        incidents: Vec<Incident>,
    },
    Freeze {
        scopes: Vec<crate::store::FreezeScope>,
        targets: Vec<crate::store::FreezeTarget>,
        /// Why each scope is frozen: one hold per incident or person.
        holds: Vec<crate::store::FreezeHold>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub visibility: Visibility,
    /// One or more full sentences, plain text with no markup.
    pub text: String,
    pub body: ReplyBody,
}

impl Reply {
    pub fn private(text: impl Into<String>) -> Self {
        Self {
            visibility: Visibility::Private,
            text: text.into(),
            body: ReplyBody::None,
        }
    }

    pub fn public(text: impl Into<String>) -> Self {
        Self {
            visibility: Visibility::Public,
            ..Self::private(text)
        }
    }

    pub fn with_body(mut self, body: ReplyBody) -> Self {
        self.body = body;
        self
    }

    /// The incident this reply is about, if it carries one.
    pub fn incident(&self) -> Option<&Incident> {
        match &self.body {
            ReplyBody::Incident { incident, .. } => Some(incident),
            _ => None,
        }
    }
}
