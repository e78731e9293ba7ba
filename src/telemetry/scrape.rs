//! The counts a scrape reads from the store (one aggregate query each, see
//! `store::aggregates`), rendered as gauges in the Prometheus text format. They are rendered
//! per app rather than set on the process's recorder, so each app shows its own database.

use std::fmt::Write;

use crate::incident::Severity;
use crate::store::{EffectCounts, FreezeTargetCount, OpenIncidentCount};

/// Open incidents by severity and drill flag.
pub const OPEN_INCIDENTS: &str = "firebreak_open_incidents";
/// Effects in the queue by state (`pending` is the queue depth).
pub const EFFECTS: &str = "firebreak_effects";
/// Age of the oldest effect that is due and not finished.
pub const OLDEST_DUE: &str = "firebreak_effects_oldest_due_seconds";
/// Freeze targets by their state on GitHub as last read.
pub const FREEZE_TARGETS: &str = "firebreak_freeze_targets";

/// The states `freeze_targets.actual` takes; each is shown, with 0 when none is in it.
const FREEZE_STATES: &[&str] = &[
    "active",
    "evaluate",
    "absent",
    "drifted",
    "statuses-only",
    "error",
];

/// What one scrape reads from the store.
#[derive(Debug, Clone)]
pub struct Aggregates {
    pub open: Vec<OpenIncidentCount>,
    pub freeze: Vec<FreezeTargetCount>,
    pub queue: EffectCounts,
}

/// Appends the store's counts to `out`.
pub fn render_into(out: &mut String, a: &Aggregates) {
    open_incidents(out, &a.open);
    freeze_targets(out, &a.freeze);
    queue(out, &a.queue);
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Every severity, drills apart, with 0 for the groups the query found none in.
fn open_incidents(out: &mut String, open: &[OpenIncidentCount]) {
    header(
        out,
        OPEN_INCIDENTS,
        "Incidents not yet resolved, by severity, drills apart.",
    );
    for sev in Severity::ALL {
        for drill in [false, true] {
            let n: i64 = open
                .iter()
                .filter(|c| c.severity == sev.to_string() && c.drill == drill)
                .map(|c| c.count)
                .sum();
            let _ = writeln!(
                out,
                "{OPEN_INCIDENTS}{{severity=\"{sev}\",drill=\"{drill}\"}} {n}"
            );
        }
    }
}

fn freeze_targets(out: &mut String, counts: &[FreezeTargetCount]) {
    header(
        out,
        FREEZE_TARGETS,
        "Merge-freeze targets by their state on GitHub as last read.",
    );
    let unknown = counts
        .iter()
        .map(|c| c.state.as_str())
        .filter(|s| !FREEZE_STATES.contains(s));
    for state in FREEZE_STATES.iter().copied().chain(unknown) {
        let n: i64 = counts
            .iter()
            .filter(|c| c.state == state)
            .map(|c| c.count)
            .sum();
        let state = escape(state);
        let _ = writeln!(out, "{FREEZE_TARGETS}{{state=\"{state}\"}} {n}");
    }
}

fn queue(out: &mut String, q: &EffectCounts) {
    header(out, EFFECTS, "Effects in the queue, by state.");
    for (state, n) in [
        ("pending", q.pending),
        ("running", q.running),
        ("failed", q.failed),
    ] {
        let _ = writeln!(out, "{EFFECTS}{{state=\"{state}\"}} {n}");
    }
    header(
        out,
        OLDEST_DUE,
        "Age of the oldest effect that is due and not finished.",
    );
    let _ = writeln!(out, "{OLDEST_DUE} {}", q.oldest_due_age_secs);
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(a: &Aggregates) -> String {
        let mut out = String::new();
        render_into(&mut out, a);
        out
    }

    #[test]
    fn every_group_is_shown_with_drills_apart() {
        let open = |severity: &str, drill, count| OpenIncidentCount {
            severity: severity.into(),
            drill,
            count,
        };
        let a = Aggregates {
            open: vec![open("SEV1", false, 2), open("SEV1", true, 1)],
            freeze: vec![FreezeTargetCount {
                state: "active".into(),
                count: 3,
            }],
            queue: EffectCounts {
                pending: 4,
                running: 1,
                failed: 0,
                oldest_due_age_secs: 12,
            },
        };
        let text = render(&a);
        for line in [
            "firebreak_open_incidents{severity=\"SEV1\",drill=\"false\"} 2",
            "firebreak_open_incidents{severity=\"SEV1\",drill=\"true\"} 1",
            "firebreak_open_incidents{severity=\"SEV4\",drill=\"false\"} 0",
            "firebreak_freeze_targets{state=\"active\"} 3",
            "firebreak_freeze_targets{state=\"error\"} 0",
            "firebreak_effects{state=\"pending\"} 4",
            "firebreak_effects_oldest_due_seconds 12",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
