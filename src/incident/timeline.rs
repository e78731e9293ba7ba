//! The append-only timeline: what happened, who did it, from where, and when.
//!
//! Entries carry two times. `occurred_at` is when the thing happened (a pinned Slack message
//! keeps its original time); `recorded_at` is when firebreak wrote it down. Both have
//! millisecond precision. Display offsets (`T+1h05m`) are computed from the incident's
//! declaration, never stored, so they can't drift from the facts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::IncidentId;

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Slack,
    Discord,
    Cli,
    Github,
    System,
    /// A machine calling the HTTP API with a token (`api:<token name>`): Alertmanager, a
    /// script.
    Api,
    /// A person signed in to the web pages with a generic OpenID Connect provider, known by
    /// their verified email (`email:alice@example.com`). Slack sign-in acts as `Slack`.
    Email,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Cli => "cli",
            Self::Github => "github",
            Self::System => "system",
            Self::Api => "api",
            Self::Email => "email",
        }
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "slack" => Self::Slack,
            "discord" => Self::Discord,
            "cli" => Self::Cli,
            "github" => Self::Github,
            "system" => Self::System,
            "api" => Self::Api,
            "email" => Self::Email,
            other => return Err(format!("unknown timeline source {other:?}")),
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of thing an entry records. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Declared,
    Acknowledged,
    Update,
    StatusChanged,
    SeverityChanged,
    RoleAssigned,
    Note,
    Resolved,
    /// A command that was refused for lack of permission.
    Refused,
    /// A side effect (notice, API call) that completed.
    EffectSucceeded,
    /// A side effect that gave up after its last attempt.
    EffectFailed,
    /// A chat message pinned into the timeline (keeps its author and original time).
    Pinned,
    /// The promised status update did not come in time.
    UpdateOverdue,
    FreezeRequested,
    UnfreezeRequested,
    /// A repository's ruleset was created, changed, removed or repaired on GitHub.
    FreezeApplied,
    FreezeExempted,
    /// A pull request merged shortly before the incident ("what did we change last?").
    RecentChange,
    /// An action item added or done.
    ActionItem,
    /// A runbook step ended (done, skipped, failed) or its owner was nudged.
    RunbookStep,
}

impl EntryKind {
    const ALL: [EntryKind; 20] = [
        Self::Declared,
        Self::Acknowledged,
        Self::Update,
        Self::StatusChanged,
        Self::SeverityChanged,
        Self::RoleAssigned,
        Self::Note,
        Self::Resolved,
        Self::Refused,
        Self::EffectSucceeded,
        Self::EffectFailed,
        Self::Pinned,
        Self::UpdateOverdue,
        Self::FreezeRequested,
        Self::UnfreezeRequested,
        Self::FreezeApplied,
        Self::FreezeExempted,
        Self::RecentChange,
        Self::ActionItem,
        Self::RunbookStep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declared => "declared",
            Self::Acknowledged => "acknowledged",
            Self::Update => "update",
            Self::StatusChanged => "status_changed",
            Self::SeverityChanged => "severity_changed",
            Self::RoleAssigned => "role_assigned",
            Self::Note => "note",
            Self::Resolved => "resolved",
            Self::Refused => "refused",
            Self::EffectSucceeded => "effect_succeeded",
            Self::EffectFailed => "effect_failed",
            Self::Pinned => "pinned",
            Self::UpdateOverdue => "update_overdue",
            Self::FreezeRequested => "freeze_requested",
            Self::UnfreezeRequested => "unfreeze_requested",
            Self::FreezeApplied => "freeze_applied",
            Self::FreezeExempted => "freeze_exempted",
            Self::RecentChange => "recent_change",
            Self::ActionItem => "action_item",
            Self::RunbookStep => "runbook_step",
        }
    }
}

impl FromStr for EntryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown timeline kind {s:?}"))
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// `None` for entries outside any incident, such as a refused `declare`.
    pub incident_id: Option<IncidentId>,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub source: Source,
    pub kind: EntryKind,
    pub text: String,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub id: i64,
    pub incident_id: Option<IncidentId>,
    #[serde(serialize_with = "crate::incident::json_time::millis")]
    pub occurred_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::incident::json_time::millis")]
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub source: Source,
    pub kind: EntryKind,
    pub text: String,
}

impl TimelineEntry {
    /// `T+…` relative to the declaration.
    pub fn offset_from(&self, declared_at: DateTime<Utc>) -> String {
        format_offset(self.occurred_at - declared_at)
    }
}

/// Formats an offset from the declaration: `T+45s`, `T+2m`, `T+1h05m`, `T+1d02h`, `T-5m`.
///
/// Units shrink as the incident ages: seconds matter in the first minute, nobody cares about
/// seconds on day two.
pub fn format_offset(delta: chrono::Duration) -> String {
    let sign = if delta < chrono::Duration::zero() {
        '-'
    } else {
        '+'
    };
    format!("T{sign}{}", short_duration(delta))
}

/// A duration's magnitude in the same shapes as [`format_offset`]: `45s`, `2m`, `1h05m`, `1d02h`.
pub fn short_duration(delta: chrono::Duration) -> String {
    let secs = delta.num_seconds().unsigned_abs();
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if secs < 60 {
        format!("{s}s")
    } else if secs < 3600 {
        format!("{m}m")
    } else if secs < 86_400 {
        format!("{h}h{m:02}m")
    } else {
        format!("{d}d{h:02}h")
    }
}

/// [`short_duration`], keeping the minutes past a day (`1d00h38m`): a post-mortem's time
/// to resolve is read to the minute.
pub fn duration_to_the_minute(delta: chrono::Duration) -> String {
    let secs = delta.num_seconds().unsigned_abs();
    if secs < 86_400 {
        return short_duration(delta);
    }
    format!("{}{:02}m", short_duration(delta), secs % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn durations_past_a_day_keep_their_minutes() {
        let d = Duration::hours(24) + Duration::minutes(38);
        assert_eq!(duration_to_the_minute(d), "1d00h38m");
        assert_eq!(duration_to_the_minute(Duration::minutes(65)), "1h05m");
    }

    #[test]
    fn offsets_use_the_documented_shapes() {
        assert_eq!(format_offset(Duration::zero()), "T+0s");
        assert_eq!(format_offset(Duration::seconds(45)), "T+45s");
        assert_eq!(format_offset(Duration::seconds(150)), "T+2m");
        assert_eq!(format_offset(Duration::minutes(65)), "T+1h05m");
        assert_eq!(
            format_offset(Duration::hours(26) + Duration::minutes(3)),
            "T+1d02h"
        );
        assert_eq!(format_offset(Duration::minutes(-5)), "T-5m");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in EntryKind::ALL {
            assert_eq!(k.as_str().parse::<EntryKind>().unwrap(), k);
        }
    }
}
