//! The pure rules: given an incident as it is now and a command, decide the new state, the
//! timeline entries and what to announce. No I/O happens here, which is what makes the
//! state machine easy to test and impossible to half-apply.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::command::Change;
use super::error::UserError;
use super::identity::{Identity, fallback_name};
use super::model::{Incident, Role, Severity, Status};
use super::permissions::Actor;
use super::timeline::EntryKind;

/// What changed, for the effect planners to turn into notices, chat posts and card edits.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentEvent {
    Declared,
    Acknowledged,
    Update {
        text: String,
    },
    StatusChanged {
        from: Status,
    },
    SeverityChanged {
        from: Severity,
    },
    RoleAssigned {
        role: Role,
    },
    Resolved,
    /// The promised status update is late.
    Overdue,
}

/// What a command does to an existing incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The new state to compare-and-set, or `None` when only the timeline grows (notes).
    pub incident: Option<Incident>,
    pub entries: Vec<(EntryKind, String)>,
    pub event: Option<IncidentEvent>,
    /// The sentence to reply with.
    pub reply: String,
}

/// How often each severity promises a status update.
pub trait UpdateCadence {
    fn cadence(&self, severity: Severity) -> Duration;
}

/// Applies a change to `current`.
pub fn decide(
    current: &Incident,
    change: &Change,
    actor: &Actor,
    now: DateTime<Utc>,
    cadence: &dyn UpdateCadence,
) -> Result<Decision, UserError> {
    let n = current.number;
    let mut next = current.clone();
    if current.status == Status::Resolved && !matches!(change, Change::Note { .. }) {
        return Err(UserError::AlreadyResolved);
    }
    let decision = match change {
        Change::Ack => {
            if let Some(at) = current.acknowledged_at {
                return Err(UserError::invalid(format!(
                    "{n} was already acknowledged at {} UTC.",
                    at.format("%H:%M")
                )));
            }
            next.acknowledged_at = Some(now);
            let mut text = format!("Acknowledged by {}", actor.in_text());
            if next.commander.is_none() {
                next.commander = Some(actor.identity().to_string());
                text.push_str(", who is now commander");
            }
            changed(
                next,
                EntryKind::Acknowledged,
                text.clone(),
                Some(IncidentEvent::Acknowledged),
                format!("{n}: {text}."),
            )
        }
        Change::Update {
            text,
            next: promise,
        } => {
            next.last_update_at = Some(now);
            let wait = promise.unwrap_or_else(|| cadence.cadence(current.severity));
            let due = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            next.next_update_due = Some(due);
            let reply = format!(
                "{n} update posted. Next update due by {}.",
                due_text(due, now)
            );
            let ann = IncidentEvent::Update { text: text.clone() };
            changed(next, EntryKind::Update, text.clone(), Some(ann), reply)
        }
        Change::Status(Status::Resolved) => {
            return decide(
                current,
                &Change::Resolve { summary: None },
                actor,
                now,
                cadence,
            );
        }
        Change::Status(status) => {
            current.status.check_transition(*status)?;
            next.status = *status;
            if *status == Status::Mitigated && next.mitigated_at.is_none() {
                next.mitigated_at = Some(now);
            }
            let text = format!("Status {} → {status}", current.status);
            let ann = IncidentEvent::StatusChanged {
                from: current.status,
            };
            changed(
                next,
                EntryKind::StatusChanged,
                text.clone(),
                Some(ann),
                format!("{n}: {text}."),
            )
        }
        Change::Severity(severity) => {
            if *severity == current.severity {
                return Err(UserError::invalid(format!("{n} is already {severity}.")));
            }
            next.severity = *severity;
            let since = current.last_update_at.unwrap_or(current.declared_at);
            let wait = chrono::Duration::from_std(cadence.cadence(*severity))
                .unwrap_or(chrono::Duration::hours(1));
            next.next_update_due = Some(since + wait);
            let text = format!("Severity {} → {severity}", current.severity);
            let ann = IncidentEvent::SeverityChanged {
                from: current.severity,
            };
            changed(
                next,
                EntryKind::SeverityChanged,
                text.clone(),
                Some(ann),
                format!("{n}: {text}."),
            )
        }
        Change::Assign { role, user } => assign(current, next, *role, user)?,
        Change::Note { text } => Decision {
            incident: None,
            entries: vec![(EntryKind::Note, text.clone())],
            event: None,
            reply: format!("Noted on {n}'s timeline."),
        },
        Change::Resolve { summary } => {
            current.status.check_transition(Status::Resolved)?;
            next.status = Status::Resolved;
            next.resolved_at = Some(now);
            next.next_update_due = None;
            if summary.is_some() {
                next.summary = summary.clone();
            }
            let text = match summary {
                Some(s) => format!("Resolved by {}: {s}", actor.in_text()),
                None => format!("Resolved by {}", actor.in_text()),
            };
            changed(
                next,
                EntryKind::Resolved,
                text.clone(),
                Some(IncidentEvent::Resolved),
                format!("{n}: {text}."),
            )
        }
    };
    Ok(decision)
}

fn assign(
    current: &Incident,
    mut next: Incident,
    role: Role,
    user: &str,
) -> Result<Decision, UserError> {
    let n = current.number;
    let who = Identity::from_user_arg(user)?;
    let previous = current.role(role);
    let name = who.fallback_name();
    if previous == Some(who.as_str()) {
        return Err(UserError::invalid(format!(
            "{name} is already {role} of {n}."
        )));
    }
    // The entry names people by identity (`slack:U…`, or a local account's name); readers
    // of the timeline show cached display names for them.
    let text = match previous {
        Some(p) => format!("{role}: {name} (was {})", fallback_name(p)),
        None => format!("{role}: {name}"),
    };
    next.set_role(role, Some(who.to_string()));
    Ok(changed(
        next,
        EntryKind::RoleAssigned,
        text.clone(),
        Some(IncidentEvent::RoleAssigned { role }),
        format!("{n}: {text}."),
    ))
}

/// Marks a promised update as overdue, once per promise. `None` if it is not overdue or a
/// reminder for this promise was already sent.
/// When an update is due, for replies: "12:45 UTC, in 1h", with the date when it is not
/// today ("2026-12-01 11:45 UTC, in 24h"), so a day-long cadence never reads as "now".
pub fn due_text(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let time = match due.date_naive() == now.date_naive() {
        true => due.format("%H:%M UTC"),
        false => due.format("%Y-%m-%d %H:%M UTC"),
    };
    let minutes = (due - now).num_minutes().max(0);
    let left = match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    };
    format!("{time}, in {left}")
}

pub fn overdue(current: &Incident, now: DateTime<Utc>) -> Option<Decision> {
    let due = current.next_update_due?;
    if !current.status.is_open() || due > now || current.reminded_due == Some(due) {
        return None;
    }
    let mut next = current.clone();
    next.reminded_due = Some(due);
    let late = super::timeline::short_duration(now - due);
    let text = format!(
        "Status update overdue by {late} (was due {} UTC)",
        due.format("%H:%M")
    );
    Some(changed(
        next,
        EntryKind::UpdateOverdue,
        text.clone(),
        Some(IncidentEvent::Overdue),
        text,
    ))
}

fn changed(
    incident: Incident,
    kind: EntryKind,
    text: String,
    event: Option<IncidentEvent>,
    reply: String,
) -> Decision {
    Decision {
        incident: Some(incident),
        entries: vec![(kind, text)],
        event,
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_carry_the_date_when_not_today() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let now = at("2026-11-30T11:45:00Z");
        assert_eq!(
            due_text(at("2026-11-30T12:45:00Z"), now),
            "12:45 UTC, in 1h"
        );
        assert_eq!(
            due_text(at("2026-11-30T12:00:00Z"), now),
            "12:00 UTC, in 15m"
        );
        assert_eq!(
            due_text(at("2026-12-01T11:45:00Z"), now),
            "2026-12-01 11:45 UTC, in 24h"
        );
        assert_eq!(
            due_text(at("2026-11-30T13:15:00Z"), now),
            "13:15 UTC, in 1h30m"
        );
    }
    use crate::incident::model::{IncidentId, IncidentNumber};
    use crate::incident::timeline::Source;

    struct Hourly;
    impl UpdateCadence for Hourly {
        fn cadence(&self, _: Severity) -> Duration {
            Duration::from_secs(3600)
        }
    }

    fn incident() -> Incident {
        Incident {
            id: IncidentId::new(),
            number: IncidentNumber(7),
            title: "Checkout 502".into(),
            severity: Severity::Sev2,
            status: Status::Investigating,
            drill: false,
            started_at: None,
            detected_at: None,
            declared_at: Utc::now(),
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            commander: None,
            comms: None,
            scribe: None,
            summary: None,
            last_update_at: None,
            next_update_due: None,
            reminded_due: None,
            declared_by: "alice".into(),
            version: 1,
        }
    }

    fn run(inc: &Incident, change: Change) -> Result<Decision, UserError> {
        decide(
            inc,
            &change,
            &Actor::new(Source::Cli, "bob", "bob"),
            Utc::now(),
            &Hourly,
        )
    }

    #[test]
    fn mitigation_time_is_set_once() {
        let d = run(&incident(), Change::Status(Status::Mitigated)).unwrap();
        let inc = d.incident.unwrap();
        assert!(inc.mitigated_at.is_some());
        assert_eq!(
            d.event,
            Some(IncidentEvent::StatusChanged {
                from: Status::Investigating
            })
        );
    }

    #[test]
    fn status_resolved_is_a_resolve() {
        let d = run(&incident(), Change::Status(Status::Resolved)).unwrap();
        assert_eq!(d.entries[0].0, EntryKind::Resolved);
        assert_eq!(d.incident.unwrap().status, Status::Resolved);
    }

    #[test]
    fn resolved_incidents_take_notes_only() {
        let mut inc = incident();
        inc.status = Status::Resolved;
        assert_eq!(
            run(&inc, Change::Resolve { summary: None }).unwrap_err(),
            UserError::AlreadyResolved
        );
        assert!(
            run(
                &inc,
                Change::Note {
                    text: "late".into()
                }
            )
            .unwrap()
            .incident
            .is_none()
        );
    }

    #[test]
    fn ack_makes_the_acker_commander_when_there_is_none() {
        let d = run(&incident(), Change::Ack).unwrap();
        assert_eq!(
            d.incident.unwrap().commander.as_deref(),
            Some("cli:bob"),
            "the acker's identity, not their name"
        );
    }

    #[test]
    fn roles_hold_identities() {
        let assign = |inc: &Incident, user: &str| {
            run(
                inc,
                Change::Assign {
                    role: Role::Comms,
                    user: user.into(),
                },
            )
        };
        let d = assign(&incident(), "slack:U0CAROL").unwrap();
        let after = d.incident.unwrap();
        assert_eq!(after.comms.as_deref(), Some("slack:U0CAROL"));
        assert_eq!(d.entries[0].1, "comms: slack:U0CAROL");
        let d = assign(&after, "dave").unwrap();
        assert_eq!(d.incident.unwrap().comms.as_deref(), Some("cli:dave"));
        assert_eq!(d.entries[0].1, "comms: dave (was slack:U0CAROL)");
        assert!(
            assign(&after, "slack:U0CAROL")
                .unwrap_err()
                .to_string()
                .contains("already comms")
        );
        assert!(assign(&after, "slack:carol").is_err());
    }

    #[test]
    fn update_promises_the_next_one() {
        let now = Utc::now();
        let cmd = Change::Update {
            text: "x".into(),
            next: Some(Duration::from_secs(1800)),
        };
        let d = decide(&incident(), &cmd, &Actor::system(), now, &Hourly).unwrap();
        assert_eq!(
            d.incident.unwrap().next_update_due,
            Some(now + chrono::Duration::minutes(30))
        );
    }
}
