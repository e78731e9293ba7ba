//! The durable effects queue (an outbox). Every side effect the core decides on is a row in
//! `effects`, written in the same transaction as the state change that caused it, so a
//! crash can delay an effect but never lose it. The [`worker`] claims due rows, runs them
//! through a [`handler::EffectHandler`], and records the outcome.
//!
//! Effects are typed: each adapter owns an enum of what it can do (`SlackEffect`,
//! `GitHubEffect`, `WebhookEffect`) implementing [`TypedEffect`]; the queue stores it as JSON
//! and the adapter's handler decodes it back with [`Effect::decode`].
//!
//! - [`backoff`]: exponential backoff with full jitter, and `Retry-After` hints.
//! - [`breaker`]: a circuit breaker per target, so an API that is down is not hammered.
//! - [`inflight`]: at most half the worker on one target, so a hanging one stalls no other.
//! - [`due`]: when put-back effects are due again, so the claim loop looks then.
//! - [`pacing`]: rate limits that queue an effect for its own future slot instead of waiting.
//! - [`policy`]: what happens after an attempt (pure): retry, give up, or wait unspent.
//! - [`planner`]: the core's neutral intents, which adapters turn into their own effects.
//! - [`worker`]: claiming, running, retrying, releasing, and the CLI's bounded drain.
//! - [`workers`]: who holds a lease, and taking over from a worker that died.

pub mod backoff;
pub mod breaker;
pub mod due;
pub mod handler;
pub mod inflight;
pub mod pacing;
pub mod planner;
pub mod policy;
pub mod worker;
pub mod workers;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::incident::model::IncidentId;
use crate::store::ChatRef;
use handler::EffectError;

/// An adapter's effect type. `kind` names the handler and is stored in its own column, so
/// the queue can route and list effects without decoding them.
pub trait TypedEffect: Serialize + DeserializeOwned {
    /// The `kind` column, e.g. `slack.post_notice`; one per variant.
    fn kind(&self) -> &'static str;
}

/// Who a company-wide notice is queued for, so the reply can say "queued to 2 Slack channels
/// and 1 webhook" without the core knowing any platform: each chat adapter names itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// New notices in `count` channels of a chat platform (`platform` as people say it,
    /// e.g. "Slack").
    Channels {
        platform: &'static str,
        count: usize,
    },
    /// The notices a chat platform already posted (edited, or answered in their threads).
    Posted {
        platform: &'static str,
    },
    Webhook,
}

impl Audience {
    /// Who an announcement on `platform` reaches, for the reply: `new_channels` new notices,
    /// or with none, the notices already posted (which a declaration has none of).
    pub fn of_announcement(
        platform: &'static str,
        new_channels: usize,
        declaring: bool,
    ) -> Option<Self> {
        match new_channels {
            0 if declaring => None,
            0 => Some(Self::Posted { platform }),
            count => Some(Self::Channels { platform, count }),
        }
    }
}

/// An effect about to be enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEffect {
    pub incident_id: Option<IncidentId>,
    /// Which handler runs it, e.g. `notify.webhook`.
    pub kind: String,
    pub payload: serde_json::Value,
    /// Enqueueing the same key twice yields one effect. Built from content (incident,
    /// intent, target, version or delivery id), never from a random id.
    pub idempotency_key: String,
    /// Effects sharing a key run one at a time, in the order they were enqueued.
    pub ordering_key: Option<String>,
    /// Set on company-wide notices, for the reply's count.
    pub audience: Option<Audience>,
    /// Not due before this time (a runbook step's target); `None`: due at once.
    pub not_before: Option<DateTime<Utc>>,
    /// Chat references recorded with the effect, in the same transaction (a channel owed a
    /// company-wide notice), so a later change finds them before the effect has run.
    pub records: Vec<ChatRef>,
}

impl NewEffect {
    /// Builds the row for a typed effect.
    pub fn typed<T: TypedEffect>(
        incident_id: Option<IncidentId>,
        effect: &T,
        idempotency_key: String,
    ) -> Self {
        Self {
            incident_id,
            kind: effect.kind().to_string(),
            payload: serde_json::to_value(effect).expect("effect types serialize to JSON"),
            idempotency_key,
            ordering_key: None,
            audience: None,
            not_before: None,
            records: Vec::new(),
        }
    }

    /// The adapter's effect this row was built from ([`NewEffect::typed`]).
    pub fn decode<T: TypedEffect>(&self) -> serde_json::Result<T> {
        T::deserialize(&self.payload)
    }

    /// Not due before `at`.
    pub fn not_before(mut self, at: DateTime<Utc>) -> Self {
        self.not_before = Some(at);
        self
    }

    /// Runs after every earlier effect with the same `key`.
    pub fn ordered(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }

    /// Records `record` with the effect, in the same transaction.
    pub fn recording(mut self, record: ChatRef) -> Self {
        self.records.push(record);
        self
    }

    /// Counts as a company-wide notice to `audience` in the reply.
    pub fn announcing(mut self, audience: impl Into<Option<Audience>>) -> Self {
        self.audience = audience.into();
        self
    }
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
    /// Attempts that reached the target so far, including a running one. Deferrals by the
    /// circuit breaker or a rate limit, and failed breaker probes, are not counted.
    pub attempts: u32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the retry budget started: enqueue, or the last manual retry.
    pub budget_from: DateTime<Utc>,
}

impl Effect {
    /// `new` as the queue would hand it to a worker: its first attempt, due now (for tests).
    #[cfg(test)]
    pub(crate) fn as_claimed(new: &NewEffect) -> Self {
        let now = Utc::now();
        Self {
            id: 1,
            incident_id: new.incident_id.clone(),
            kind: new.kind.clone(),
            payload: new.payload.clone(),
            idempotency_key: new.idempotency_key.clone(),
            state: EffectState::Running,
            attempts: 1,
            run_at: now,
            last_error: None,
            result: None,
            created_at: now,
            budget_from: now,
        }
    }

    /// Decodes the payload into the adapter's effect type. A payload that no longer decodes
    /// (an effect queued by an incompatible version) fails permanently, with the reason.
    pub fn decode<T: TypedEffect>(&self) -> Result<T, EffectError> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| EffectError::permanent(format!("malformed {} effect: {e}", self.kind)))
    }
}
