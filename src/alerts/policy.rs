//! What an Alertmanager notification means for its group, as a pure function of the
//! notification, what is remembered about the group, and `[alertmanager]`: declare, add an
//! update, add a note (and perhaps resolve), or nothing. Also the severity, title and texts.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::AlertmanagerConfig;
use super::payload::{Alert, GroupStatus, Notification};
use crate::incident::Severity;
use crate::incident::command::Declare;
use crate::incident::text::Field;

/// What is remembered about a group: what was last acted on, and whether its incident is
/// still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered<'a> {
    pub status: &'a str,
    pub fingerprints: &'a str,
    pub incident_open: bool,
}

/// What to do with one notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Open an incident for the group (none yet, or the last one was resolved).
    Declare(Declare),
    /// The set of firing alerts changed: a status update on the group's incident.
    Update(String),
    /// The group resolved: a note, and a resolution when configured.
    Note { text: String, resolve: bool },
    /// Nothing new: why, in a sentence.
    Nothing(&'static str),
}

/// How many alerts a note lists before "and N more".
const LISTED: usize = 20;

pub fn decide(
    n: &Notification,
    group: Option<&Remembered<'_>>,
    config: &AlertmanagerConfig,
) -> Step {
    let open = group.filter(|g| g.incident_open);
    match (n.status, open) {
        (GroupStatus::Firing, _) if n.alerts.is_empty() => Step::Nothing(
            "The notification lists no alerts; there is nothing to declare or update.",
        ),
        (GroupStatus::Firing, None) => Step::Declare(declaration(n, config)),
        (GroupStatus::Firing, Some(g)) => {
            if g.status == "firing" && g.fingerprints == fingerprints(n) {
                Step::Nothing("The firing alerts are the ones already on the incident.")
            } else {
                Step::Update(change_text(n, g))
            }
        }
        (GroupStatus::Resolved, None) => {
            Step::Nothing("The group has no open incident; nothing to resolve.")
        }
        (GroupStatus::Resolved, Some(g)) if g.status == "resolved" => {
            Step::Nothing("The group's resolution is already on the incident.")
        }
        (GroupStatus::Resolved, Some(_)) => Step::Note {
            text: fit(
                format!(
                    "Alertmanager: all alerts of the group are resolved.{}",
                    source_line(n)
                ),
                Field::Note,
            ),
            resolve: config.resolve_on_resolved,
        },
    }
}

/// The firing alerts' fingerprints, sorted and comma-separated: what "the same alerts" means.
pub fn fingerprints(n: &Notification) -> String {
    let set: BTreeSet<String> = n.firing().map(key).collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// The alert's fingerprint, or (from an Alertmanager too old to send one) a digest of its
/// labels.
fn key(a: &Alert) -> String {
    if !a.fingerprint.is_empty() {
        return a.fingerprint.clone();
    }
    let mut h = Sha256::new();
    for (k, v) in &a.labels {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The severity `[alertmanager] severity_map` gives the group's label: the common label,
/// else the most severe of the firing alerts' labels, else `default_severity`.
pub fn severity(n: &Notification, config: &AlertmanagerConfig) -> Severity {
    let map = |value: &String| {
        config
            .severity_map
            .get(value)
            .or_else(|| {
                config
                    .severity_map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(value))
                    .map(|(_, v)| v)
            })
            .map(|s| s.0)
    };
    let label = &config.severity_label;
    if let Some(sev) = n.common_labels.get(label).and_then(map) {
        return sev;
    }
    n.firing()
        .filter_map(|a| a.labels.get(label).and_then(map))
        .min()
        .unwrap_or(config.default_severity.0)
}

/// `commonAnnotations.summary`, else the alert name, else a generic title.
pub fn title(n: &Notification) -> String {
    let from = [
        n.common_annotations.get("summary"),
        n.common_labels.get("alertname"),
        n.group_labels.get("alertname"),
    ];
    let title = from
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .unwrap_or("Alertmanager alert group");
    fit(title.to_string(), Field::Title)
}

fn declaration(n: &Notification, config: &AlertmanagerConfig) -> Declare {
    let firing: Vec<&Alert> = n.firing().collect();
    let mut text = format!(
        "From Alertmanager (receiver {}): {}.",
        shown(&n.receiver),
        count(
            firing.len() as u64 + n.truncated_alerts,
            "alert firing",
            "alerts firing"
        ),
    );
    text.push_str(&alert_lines(n, &firing));
    text.push_str(&source_line(n));
    let mut declare = Declare::new(severity(n, config), title(n));
    declare.description = Some(fit(text, Field::Description));
    declare
}

fn change_text(n: &Notification, g: &Remembered<'_>) -> String {
    let before: BTreeSet<&str> = if g.status == "firing" {
        g.fingerprints
            .split(',')
            .filter(|f| !f.is_empty())
            .collect()
    } else {
        BTreeSet::new()
    };
    let firing: Vec<&Alert> = n.firing().collect();
    let new: Vec<&Alert> = firing
        .iter()
        .copied()
        .filter(|a| !before.contains(key(a).as_str()))
        .collect();
    let now: BTreeSet<String> = firing.iter().map(|a| key(a)).collect();
    let stopped = before.iter().filter(|f| !now.contains(**f)).count();
    let mut text = format!(
        "Alertmanager: {} now.",
        count(
            firing.len() as u64 + n.truncated_alerts,
            "alert firing",
            "alerts firing"
        )
    );
    if !new.is_empty() {
        text.push_str(&format!(" Newly firing:{}", alert_lines(n, &new)));
    }
    if stopped > 0 {
        text.push_str(&format!(
            "\n{} no longer firing.",
            count(stopped as u64, "alert", "alerts")
        ));
    }
    text.push_str(&source_line(n));
    fit(text, Field::Update)
}

/// One line per alert (at most [`LISTED`]), then how many more there are, counting those
/// Alertmanager left out (`truncatedAlerts`).
fn alert_lines(n: &Notification, alerts: &[&Alert]) -> String {
    let mut out = String::new();
    for a in alerts.iter().take(LISTED) {
        out.push_str("\n- ");
        out.push_str(&a.describe(&n.common_labels));
    }
    let more = alerts.len().saturating_sub(LISTED) as u64 + n.truncated_alerts;
    if more > 0 {
        out.push_str(&format!(
            "\n- and {more} more{}",
            if n.truncated_alerts > 0 {
                " (Alertmanager sent only the first alerts: truncatedAlerts)"
            } else {
                ""
            }
        ));
    }
    out
}

fn source_line(n: &Notification) -> String {
    if n.external_url.is_empty() {
        String::new()
    } else {
        format!("\nAlertmanager: {}", n.external_url)
    }
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn shown(s: &str) -> String {
    if s.is_empty() {
        "unnamed".into()
    } else {
        s.chars().take(100).collect()
    }
}

/// `text` cut to `field`'s limit (on a character boundary, ending in `…`), so a large
/// group never makes the text pipeline refuse the whole command.
fn fit(text: String, field: Field) -> String {
    let limit = field.limit();
    match text.char_indices().nth(limit - 1) {
        Some((cut, _)) if text.chars().count() > limit => format!("{}…", &text[..cut]),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::SeverityName;

    fn notification(json: &str) -> Notification {
        serde_json::from_str(json).unwrap()
    }

    fn fixture(name: &str) -> Notification {
        let path = format!(
            "{}/tests/fixtures/alertmanager/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        notification(&std::fs::read_to_string(path).unwrap())
    }

    fn config() -> AlertmanagerConfig {
        let mut c = AlertmanagerConfig::default();
        c.severity_map
            .insert("critical".into(), SeverityName(Severity::Sev1));
        c.severity_map
            .insert("warning".into(), SeverityName(Severity::Sev3));
        c
    }

    #[test]
    fn a_new_group_is_declared_with_the_mapped_severity_and_the_summary() {
        let n = fixture("firing");
        let Step::Declare(d) = decide(&n, None, &config()) else {
            panic!("declares")
        };
        assert_eq!(d.severity, Severity::Sev1);
        assert_eq!(d.title, "Checkout API error rate above 5%");
        let text = d.description.unwrap();
        assert!(text.contains("1 alert firing"), "{text}");
        assert!(text.contains("HighErrorRate"), "{text}");
    }

    #[test]
    fn severity_falls_back_to_the_most_severe_alert_then_the_default() {
        let mut n = fixture("grouped");
        n.common_labels.remove("severity");
        assert_eq!(severity(&n, &config()), Severity::Sev1);
        for a in &mut n.alerts {
            a.labels.insert("severity".into(), "info".into());
        }
        assert_eq!(severity(&n, &config()), Severity::Sev3);
        let mut c = config();
        c.default_severity = SeverityName(Severity::Sev4);
        assert_eq!(severity(&n, &c), Severity::Sev4);
    }

    #[test]
    fn the_title_is_the_summary_else_the_alert_name() {
        let mut n = fixture("firing");
        n.common_annotations.clear();
        assert_eq!(title(&n), "HighErrorRate");
        n.common_labels.clear();
        n.group_labels.clear();
        assert_eq!(title(&n), "Alertmanager alert group");
        n.common_annotations
            .insert("summary".into(), "x".repeat(500));
        assert_eq!(title(&n).chars().count(), 200);
    }

    #[test]
    fn the_same_firing_alerts_are_nothing_new_a_changed_set_is_an_update() {
        let n = fixture("firing");
        let fps = fingerprints(&n);
        let same = Remembered {
            status: "firing",
            fingerprints: &fps,
            incident_open: true,
        };
        assert!(matches!(
            decide(&n, Some(&same), &config()),
            Step::Nothing(_)
        ));
        let grown = fixture("repeated_new_alert");
        let Step::Update(text) = decide(&grown, Some(&same), &config()) else {
            panic!("an update")
        };
        assert!(text.contains("2 alerts firing now"), "{text}");
        assert!(text.contains("instance=\"api-2:9090\""), "{text}");
        assert!(!text.contains("instance=\"api-1:9090\""), "{text}");
    }

    #[test]
    fn a_closed_incident_means_a_new_declaration() {
        let n = fixture("firing");
        let fps = fingerprints(&n);
        let closed = Remembered {
            status: "firing",
            fingerprints: &fps,
            incident_open: false,
        };
        assert!(matches!(
            decide(&n, Some(&closed), &config()),
            Step::Declare(_)
        ));
        let resolved = fixture("resolved");
        assert!(matches!(
            decide(&resolved, Some(&closed), &config()),
            Step::Nothing(_)
        ));
    }

    #[test]
    fn resolved_is_a_note_once_and_resolves_only_when_configured() {
        let n = fixture("resolved");
        let open = Remembered {
            status: "firing",
            fingerprints: "x",
            incident_open: true,
        };
        let mut c = config();
        assert!(matches!(
            decide(&n, Some(&open), &c),
            Step::Note { resolve: false, .. }
        ));
        c.resolve_on_resolved = true;
        assert!(matches!(
            decide(&n, Some(&open), &c),
            Step::Note { resolve: true, .. }
        ));
        let noted = Remembered {
            status: "resolved",
            ..open
        };
        assert!(matches!(decide(&n, Some(&noted), &c), Step::Nothing(_)));
    }

    #[test]
    fn truncated_alerts_are_counted_and_long_groups_fit() {
        let n = fixture("truncated");
        let Step::Declare(d) = decide(&n, None, &config()) else {
            panic!("declares")
        };
        let text = d.description.unwrap();
        assert!(text.contains("52 alerts firing"), "{text}");
        assert!(text.contains("and 50 more"), "{text}");
        let long = fit("é".repeat(5000), Field::Note);
        assert_eq!(long.chars().count(), Field::Note.limit());
    }
}
