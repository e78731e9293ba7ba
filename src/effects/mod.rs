//! The durable effects queue (an outbox). Every side effect the core decides on is a row in
//! `effects`, written in the same transaction as the state change that caused it, so a
//! crash can delay an effect but never lose it. The [`worker`] claims due rows, runs them
//! through a [`handler::EffectHandler`], and records the outcome.
//!
//! - [`backoff`]: exponential backoff with full jitter, and `Retry-After` hints.
//! - [`breaker`]: a circuit breaker per target, so an API that is down is not hammered.
//! - [`worker`]: claiming, running, retrying, and the CLI's bounded drain.

pub mod backoff;
pub mod breaker;
pub mod handler;
pub mod planner;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::incident::model::IncidentId;

/// An effect about to be enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEffect {
    pub incident_id: Option<IncidentId>,
    /// Which handler runs it, e.g. `notify.webhook`.
    pub kind: String,
    pub payload: serde_json::Value,
    /// Enqueueing the same key twice yields one effect.
    pub idempotency_key: String,
    /// Effects sharing a key run one at a time, in the order they were enqueued.
    pub ordering_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectState {
    Pending,
    Running,
    Done,
    Failed,
}

impl EffectState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

impl std::str::FromStr for EffectState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            other => return Err(format!("unknown effect state {other:?}")),
        })
    }
}

/// An effect as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    pub id: i64,
    pub incident_id: Option<IncidentId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub idempotency_key: String,
    pub state: EffectState,
    /// Attempts started so far, including a running one.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: DateTime<Utc>,
}
