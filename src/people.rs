//! Display names for stored identities, for documents and the CLI.
//!
//! Chat renders people from their ids (`<@U024BE7LH>`, which Slack shows as the current
//! name). A post-mortem, the terminal and the JSON API can't, so they show a display name
//! from the `people` cache ([`crate::store::Person`]), filled by Slack's `users.info`
//! (queued by the Slack edge when an unknown or day-old identity acts). Without a cached
//! name an identity shows as itself ([`fallback_name`]), and values stored before identities
//! existed (plain names) show as they are.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::incident::identity::{Identity, fallback_name};
use crate::incident::{Incident, TimelineEntry};

/// A cached name older than this is looked up again when its owner next acts.
pub const REFRESH_AFTER: Duration = Duration::days(1);

/// Whether a cache row fetched at `fetched_at` (`None`: only a payload's hint) should be
/// looked up again.
pub fn is_stale(fetched_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    fetched_at.is_none_or(|t| now - t >= REFRESH_AFTER)
}

/// How long an identity noted by a chat edge is not looked at again by this process: a
/// burst of commands from one person reads and queues its name lookup once, not per command.
pub const NOTED_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// The identities this process noted recently (in memory; another replica or a restart
/// simply notes them again, which is harmless).
#[derive(Debug, Default)]
pub struct RecentlyNoted(std::sync::Mutex<HashMap<String, std::time::Instant>>);

impl RecentlyNoted {
    /// Whether `identity` is new to this process within [`NOTED_FOR`]; records it if so.
    pub fn first_time(&self, identity: &str) -> bool {
        let now = std::time::Instant::now();
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen
            .get(identity)
            .is_some_and(|at| now.duration_since(*at) < NOTED_FOR)
        {
            return false;
        }
        if seen.len() >= 10_000 {
            seen.retain(|_, at| now.duration_since(*at) < NOTED_FOR);
        }
        seen.insert(identity.to_string(), now);
        true
    }
}

/// Display names by stored identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names(HashMap<String, String>);

impl Names {
    pub fn new(names: HashMap<String, String>) -> Self {
        Self(names)
    }

    /// How to show a stored actor or role holder: its cached display name, else
    /// [`fallback_name`].
    pub fn name(&self, stored: &str) -> String {
        match self.0.get(stored) {
            Some(name) => name.clone(),
            None => fallback_name(stored).to_string(),
        }
    }

    /// [`name`](Self::name) for an optional role holder.
    pub fn role(&self, stored: Option<&str>) -> String {
        stored.map_or_else(|| "unassigned".to_string(), |s| self.name(s))
    }

    /// A timeline text with the identities it names (`commander: slack:U1 (was …)`,
    /// `Acknowledged by slack:U1`)
    /// replaced by their display names. Only identities with a cached name are replaced.
    pub fn text(&self, text: &str) -> String {
        if self.0.is_empty() || !text.contains(':') {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = next_identity_start(rest) {
            let (before, from) = rest.split_at(start);
            out.push_str(before);
            let token = identity_at(from);
            match self.0.get(token) {
                Some(name) => out.push_str(name),
                None => out.push_str(token),
            }
            rest = &from[token.len()..];
        }
        out.push_str(rest);
        out
    }
}

/// The identity `from` starts with (`slack:U1` in `slack:U1: done`): the platform, its
/// colon, and the id's characters, without a sentence's trailing `.` or `-`.
fn identity_at(from: &str) -> &str {
    let Some(colon) = from.find(':') else {
        return from;
    };
    let id_len = from[colon + 1..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(from.len() - colon - 1);
    from[..colon + 1 + id_len].trim_end_matches(['.', '-'])
}

/// Where the next `slack:` or `discord:` starting a word is.
fn next_identity_start(s: &str) -> Option<usize> {
    ["slack:", "discord:"]
        .iter()
        .flat_map(|p| {
            s.match_indices(p).map(|(i, _)| i).filter(|&i| {
                s[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric())
            })
        })
        .min()
}

/// The stored identities an incident, its timeline and extra values (action owners,
/// post-mortem authors) name that could have a cached display name.
pub fn named_in<'a>(
    incident: &'a Incident,
    timeline: &'a [TimelineEntry],
    extra: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut out: Vec<&str> = [
        incident.commander.as_deref(),
        incident.comms.as_deref(),
        incident.scribe.as_deref(),
        Some(incident.declared_by.as_str()),
    ]
    .into_iter()
    .flatten()
    .chain(timeline.iter().map(|e| e.actor.as_str()))
    .chain(timeline.iter().flat_map(|e| identities_in(&e.text)))
    .chain(extra)
    .filter(|s| cacheable(s))
    .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The identities written in a text (`commander: slack:U1 (was slack:U2)`).
fn identities_in(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = next_identity_start(rest) {
        let from = &rest[start..];
        let token = identity_at(from);
        out.push(token);
        rest = &from[token.len().max(1)..];
    }
    out
}

/// Whether a stored value is an identity whose name lives in the cache (chat users; local
/// accounts are their own names).
pub fn cacheable(stored: &str) -> bool {
    Identity::parse(stored).is_ok_and(|i| matches!(i.platform(), "slack" | "discord"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_noted_once_per_window() {
        let noted = RecentlyNoted::default();
        assert!(noted.first_time("slack:U1"));
        assert!(!noted.first_time("slack:U1"));
        assert!(noted.first_time("slack:U2"));
    }

    fn names() -> Names {
        Names::new(HashMap::from([
            ("slack:U1".to_string(), "Alice Liddell".to_string()),
            ("slack:U2".to_string(), "Bob".to_string()),
        ]))
    }

    #[test]
    fn cached_names_then_fallbacks() {
        let n = names();
        assert_eq!(n.name("slack:U1"), "Alice Liddell");
        assert_eq!(n.name("slack:U9"), "slack:U9", "no name cached: the id");
        assert_eq!(n.name("cli:carol"), "carol");
        assert_eq!(n.name("alice"), "alice", "stored before identities");
        assert_eq!(n.role(None), "unassigned");
    }

    #[test]
    fn identities_in_role_texts_are_named() {
        let n = names();
        assert_eq!(
            n.text("commander: slack:U1 (was slack:U2)"),
            "commander: Alice Liddell (was Bob)"
        );
        assert_eq!(n.text("comms: slack:U9."), "comms: slack:U9.");
        assert_eq!(n.text("comms: carol"), "comms: carol");
        assert_eq!(n.text("xslack:U1"), "xslack:U1", "only whole words");
        assert_eq!(
            n.text("Resolved by slack:U1: rolled back. Acknowledged by slack:U2."),
            "Resolved by Alice Liddell: rolled back. Acknowledged by Bob."
        );
        assert_eq!(identities_in("by slack:U1: done"), ["slack:U1"]);
        assert_eq!(
            identities_in("a slack:U1 (was slack:U2)"),
            ["slack:U1", "slack:U2"]
        );
    }

    #[test]
    fn staleness() {
        let now = Utc::now();
        assert!(is_stale(None, now));
        assert!(!is_stale(Some(now - Duration::hours(23)), now));
        assert!(is_stale(Some(now - Duration::hours(25)), now));
    }
}
