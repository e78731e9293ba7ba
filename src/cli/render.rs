//! Terminal rendering of the core's neutral replies and of the effects queue.
//!
//! Everything that came from a person or another system goes through [`term`] (or
//! [`term_line`] inside a table row) on its way to the terminal: escape sequences, control
//! characters and bidirectional overrides are dropped, so nothing stored (including rows
//! written before the core cleaned text on input) can clear the screen, retitle the
//! window, or make a line read differently from what it holds.

use chrono::{DateTime, Utc};

use crate::effects::Effect;
use crate::effects::worker::{DrainReport, due_in};
use crate::http::api::IncidentView;
use crate::incident::text::sanitize;
use crate::incident::{Incident, Reply, ReplyBody, TimelineEntry};
use crate::people::Names;
use crate::store::FreezeHold;

/// Text for the terminal: no escape sequences, no control characters except newline and
/// tab, no bidirectional overrides or isolates. The core cleans text as it is stored; this
/// covers rows stored before it did.
pub fn term(text: &str) -> String {
    sanitize(text, true)
}

/// [`term`] for one cell of a row: line breaks and tabs become spaces.
pub fn term_line(text: &str) -> String {
    sanitize(text, false)
}

/// A reply as terminal text, people by their display names (`names`).
pub fn reply_text(reply: &Reply, names: &Names) -> String {
    let mut out = term(&reply.text);
    match &reply.body {
        ReplyBody::List { incidents } if !incidents.is_empty() => {
            out.push('\n');
            out.push_str(&list_table(incidents, names, Utc::now()));
        }
        ReplyBody::Incident { incident, timeline } if !timeline.is_empty() => {
            out.push('\n');
            out.push_str(&details(incident, names));
            out.push_str("\nTimeline:\n");
            for e in timeline {
                out.push_str(&timeline_row(e, incident.declared_at, names));
            }
        }
        ReplyBody::Freeze {
            scopes, targets, ..
        } if !targets.is_empty() => {
            out.push_str("\nTARGET                          WANTED    ACTUAL         READ (UTC)             ERROR\n");
            for t in targets {
                let v = crate::incident::freeze_view::target_view(scopes, t);
                out.push_str(&format!(
                    "{:<31} {:<9} {:<14} {:<22} {}\n",
                    term_line(&v.target),
                    v.wanted,
                    v.actual,
                    v.read_at.as_deref().unwrap_or("never"),
                    term_line(&error_cell(&v))
                ));
            }
        }
        _ => {}
    }
    if let ReplyBody::Freeze { holds, .. } = &reply.body {
        out.push_str(&holds_table(holds));
    }
    out.trim_end().to_string()
}

/// A target's last error: when it happened, and whether and when it is retried; an error
/// from before nothing was wanted on it is marked past.
fn error_cell(v: &crate::incident::freeze_view::TargetView) -> String {
    if let Some(past) = &v.past_error {
        return format!("past (nothing wanted now): {past}");
    }
    let Some(e) = &v.error else {
        return "-".into();
    };
    let at = v.error_at.as_deref().unwrap_or("?");
    match (v.retryable, &v.next_retry) {
        (Some(true), Some(next)) => format!("{e} (at {at}; next retry {next})"),
        (Some(true), None) => format!("{e} (at {at}; retried with backoff)"),
        _ => format!("permanent: {e} (at {at})"),
    }
}

/// Why each scope is frozen, one row per hold.
fn holds_table(holds: &[FreezeHold]) -> String {
    if holds.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nSCOPE                           SINCE                 UNTIL                 HOLDER — REASON\n",
    );
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    for h in holds {
        // The holder (an incident by its title) and the hold's own reason, each as it is.
        let why = h.reason.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{:<31} {:<21} {:<21} {} — {}\n",
            term_line(&h.scope),
            when(h.started_at),
            h.expires_at.map_or_else(|| "-".to_string(), when),
            term_line(&h.holder_title()),
            term_line(why)
        ));
    }
    out
}

/// The audit log (entries outside any incident), newest first.
pub fn audit_table(entries: &[TimelineEntry], names: &Names) -> String {
    if entries.is_empty() {
        return "The audit log is empty.\n".into();
    }
    let mut out =
        String::from("WHEN                     WHO              KIND                  TEXT\n");
    for e in entries {
        out.push_str(&format!(
            "{:<24} {:<16} {:<21} {}\n",
            e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC"),
            term_line(&names.name(&e.actor)),
            e.kind.as_str(),
            term_line(&e.text)
        ));
    }
    out
}

/// JSON for `--json`: the incident (with timeline) for `show`, the list for `list`, and the
/// reply itself otherwise. People are identities, each with a `…_name` beside it.
pub fn reply_json(reply: &Reply, names: &Names) -> serde_json::Result<String> {
    match &reply.body {
        ReplyBody::List { incidents } => {
            let views: Vec<IncidentView> = incidents
                .iter()
                .cloned()
                .map(|i| IncidentView::named(i, None, names))
                .collect();
            serde_json::to_string_pretty(&views)
        }
        ReplyBody::Incident { incident, timeline } => serde_json::to_string_pretty(
            &IncidentView::named((**incident).clone(), Some(timeline.clone()), names),
        ),
        ReplyBody::Freeze {
            scopes,
            targets,
            holds,
        } => {
            // `/api/freeze`'s shape (read and error times, the next retry, past errors,
            // each scope's holds with holders apart from reasons), plus the summary line.
            let (scopes, targets) =
                crate::incident::freeze_view::freeze_json(scopes, targets, holds);
            serde_json::to_string_pretty(&serde_json::json!({
                "summary": reply.text,
                "scopes": scopes,
                "targets": targets,
            }))
        }
        ReplyBody::None => serde_json::to_string_pretty(reply),
    }
}

/// The longest title a list row shows, in characters as a person counts them.
const TITLE_WIDTH: usize = 60;

/// `incident list`: a header, then one row per incident in aligned columns. Ages run from
/// the declaration to `now`; people by display name (`-` for no commander).
pub fn list_table(incidents: &[Incident], names: &Names, now: DateTime<Utc>) -> String {
    let header = [
        "INCIDENT",
        "SEVERITY",
        "STATUS",
        "AGE",
        "COMMANDER",
        "DRILL",
        "TITLE",
    ];
    let rows: Vec<[String; 7]> = incidents
        .iter()
        .map(|i| {
            [
                i.number.to_string(),
                i.severity.to_string(),
                i.status.to_string(),
                crate::incident::timeline::short_duration(now - i.declared_at),
                i.commander
                    .as_deref()
                    .map_or("-".to_string(), |c| term_line(&names.name(c))),
                if i.drill { "drill" } else { "-" }.to_string(),
                truncate(&term_line(&i.title), TITLE_WIDTH),
            ]
        })
        .collect();
    let mut widths = header.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: [&str; 7]| -> String {
        let mut out = String::new();
        for (n, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if n + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[n] - width(cell) + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

/// A cell's width, counted in grapheme clusters (what a person sees as one character).
fn width(text: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    text.graphemes(true).count()
}

/// At most `max` grapheme clusters, the last one `…` when something was cut.
fn truncate(text: &str, max: usize) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    if width(text) <= max {
        return text.to_string();
    }
    let kept: String = text.graphemes(true).take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

fn details(i: &Incident, names: &Names) -> String {
    let when = |t: Option<DateTime<Utc>>| {
        t.map_or("not recorded".to_string(), |t| {
            format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S"))
        })
    };
    let who = |r: &Option<String>| term_line(&names.role(r.as_deref()));
    format!(
        "Severity {} · status {} · commander {} · comms {} · scribe {}\n\
         Started {} · detected {} · declared {} · acknowledged {} · mitigated {} · resolved {}\n",
        i.severity,
        i.status,
        who(&i.commander),
        who(&i.comms),
        who(&i.scribe),
        when(i.started_at),
        when(i.detected_at),
        when(Some(i.declared_at)),
        when(i.acknowledged_at),
        when(i.mitigated_at),
        when(i.resolved_at),
    )
}

fn timeline_row(e: &TimelineEntry, declared: DateTime<Utc>, names: &Names) -> String {
    let text = names.text(&e.text);
    format!(
        "  {}  {:<8} {:<17} {} ({}): {}\n",
        e.occurred_at.format("%H:%M:%S%.3f"),
        e.offset_from(declared),
        e.kind,
        term_line(&names.name(&e.actor)),
        e.source,
        term(&text)
    )
}

pub fn effects_table(effects: &[Effect], now: DateTime<Utc>) -> String {
    if effects.is_empty() {
        return "No effects.\n".into();
    }
    let mut out =
        String::from("ID     STATE    KIND              ATTEMPTS  NEXT          LAST ERROR\n");
    for e in effects {
        let next = if e.state.is_finished() {
            "-".to_string()
        } else {
            due_in(e.run_at, now)
        };
        out.push_str(&format!(
            "{:<6} {:<8} {:<17} {:<9} {:<13} {}\n",
            e.id,
            e.state.as_str(),
            e.kind,
            e.attempts,
            next,
            term_line(e.last_error.as_deref().unwrap_or("-"))
        ));
    }
    out
}

/// One line per effect a CLI command waited for.
pub fn drain_lines(report: &DrainReport, now: DateTime<Utc>) -> Vec<String> {
    let mut lines: Vec<String> = report
        .delivered
        .iter()
        .map(|e| match e.result.as_deref() {
            Some(result) if result != "ok" => format!("✓ {}", term_line(result)),
            _ => format!("✓ {} done", e.kind),
        })
        .collect();
    lines.extend(report.failed.iter().map(|e| {
        format!(
            "✗ effect {} ({}) failed: {}",
            e.id,
            e.kind,
            term_line(e.last_error.as_deref().unwrap_or("unknown error"))
        )
    }));
    if !report.left_for_serve.is_empty() {
        let mut kinds: Vec<&str> = report
            .left_for_serve
            .iter()
            .map(|e| e.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        lines.push(format!(
            "… {} effect(s) queued for `firebreak serve` ({}): this shell has no credentials for them.",
            report.left_for_serve.len(),
            kinds.join(", ")
        ));
    }
    if !report.pending.is_empty() {
        lines.push(format!(
            "… {} effect(s) still pending; `firebreak serve` keeps retrying them:",
            report.pending.len()
        ));
        lines.extend(report.pending.iter().map(|e| {
            format!(
                "  effect {} ({}), {} attempt(s) so far, next try {}: {}",
                e.id,
                e.kind,
                e.attempts,
                due_in(e.run_at, now),
                term_line(e.last_error.as_deref().unwrap_or(if e.attempts == 0 {
                    "not tried yet"
                } else {
                    "in progress"
                }))
            )
        }));
    }
    lines
}

/// `firebreak token list`: name, scopes, created (when and by whom), last used.
pub fn tokens_table(tokens: &[crate::store::ApiToken]) -> String {
    if tokens.is_empty() {
        return "No API tokens; `firebreak token create --name NAME --scope read` makes one.\n"
            .into();
    }
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut out = format!(
        "{:<24} {:<28} {:<40} {}\n",
        "NAME", "SCOPES", "CREATED", "LAST USED"
    );
    for t in tokens {
        let created = format!("{} by {}", when(t.created_at), term_line(&t.created_by));
        let used = t.last_used_at.map_or("never".to_string(), when);
        out.push_str(&format!(
            "{:<24} {:<28} {:<40} {used}\n",
            term_line(&t.name),
            t.scopes.to_string(),
            created
        ));
    }
    out
}

/// `firebreak token list --json`: the same fields, times in RFC 3339.
pub fn tokens_json(tokens: &[crate::store::ApiToken]) -> serde_json::Result<String> {
    let rows: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "scopes": t.scopes.to_string().split(',').collect::<Vec<_>>(),
                "created_at": t.created_at,
                "created_by": t.created_by,
                "last_used_at": t.last_used_at,
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows)
}

/// Why a file could not be written, in words (the OS's message as a last resort).
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "a directory on the path does not exist".into(),
        PermissionDenied => "permission denied".into(),
        AlreadyExists => "a file is in the way".into(),
        IsADirectory => "that is a directory".into(),
        NotADirectory => "a part of the path is a file, not a directory".into(),
        ReadOnlyFilesystem => "the file system is read-only".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_a_table_with_aligned_columns() {
        use crate::incident::{IncidentId, IncidentNumber, Severity, Status};
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 12, 0, 0).unwrap();
        let incident = |n: i64, title: &str, commander: Option<&str>, drill: bool| Incident {
            id: IncidentId(format!("id{n}")),
            number: IncidentNumber(n),
            title: title.into(),
            severity: Severity::Sev1,
            status: Status::Investigating,
            drill,
            started_at: None,
            detected_at: None,
            declared_at: now - chrono::Duration::minutes(192),
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            commander: commander.map(String::from),
            comms: None,
            scribe: None,
            summary: None,
            last_update_at: None,
            next_update_due: None,
            reminded_due: None,
            declared_by: "cli:carol".into(),
            version: 1,
        };
        let names = Names::new([("slack:U1".to_string(), "Zoë".to_string())].into());
        let long = "x".repeat(80);
        let table = list_table(
            &[
                incident(12, "Checkout \u{1b}[2J502", Some("slack:U1"), false),
                incident(3, &long, None, true),
            ],
            &names,
            now,
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "INCIDENT  SEVERITY  STATUS         AGE    COMMANDER  DRILL  TITLE"
        );
        assert_eq!(
            lines[1],
            "INC-12    SEV1      investigating  3h12m  Zoë        -      Checkout 502"
        );
        assert!(
            lines[2].starts_with("INC-3     SEV1      investigating  3h12m  -          drill  xxx")
        );
        assert!(
            lines[2].ends_with("x…") && width(lines[2]) == 60 + TITLE_WIDTH,
            "{}",
            lines[2]
        );
    }

    #[test]
    fn escape_sequences_controls_and_overrides_never_reach_the_terminal() {
        assert_eq!(term("a\u{1b}[2Jb"), "ab");
        assert_eq!(term("\u{1b}]0;pwned\u{7}title"), "title");
        assert_eq!(
            term("\u{1b}]8;;https://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        assert_eq!(term("x\u{9b}31my"), "xy");
        assert_eq!(
            term("bell\u{7} nul\u{0} del\u{7f} c1\u{85}"),
            "bell nul del c1"
        );
        assert_eq!(term("abc\u{202e}fed\u{2066}x\u{2069}"), "abcfedx");
        assert_eq!(
            term("line one\n\tline two ✅ é"),
            "line one\n\tline two ✅ é"
        );
        assert_eq!(term_line("a\nb\tc"), "a b c");
        assert_eq!(term("trailing \u{1b}"), "trailing ");
    }
}
