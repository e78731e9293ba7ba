//! The post-mortem view model, built only from stored facts: the incident row, its timeline,
//! the update promises, the written sections and the action items. Building it is pure, so
//! the same stored incident always renders the same bytes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::incident::command::PostmortemField;
use crate::incident::model::Incident;
use crate::incident::timeline::{EntryKind, TimelineEntry, format_offset, short_duration};
use crate::people::Names;
use crate::store::ActionItem;

#[derive(Debug, Clone, Serialize)]
pub struct PostmortemView {
    pub number: String,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub drill: bool,
    pub key_times: Vec<KeyTime>,
    pub durations: Vec<DurationRow>,
    pub timeline: Vec<Row>,
    pub roles: Vec<RoleRow>,
    pub role_changes: Vec<Row>,
    pub updates: Vec<UpdateRow>,
    pub freeze: Vec<Row>,
    pub recent_changes: Vec<Row>,
    pub actions: Vec<ActionGroup>,
    pub sections: Vec<Section>,
    /// Phases for the chart: (status, start offset ms, end offset ms).
    #[serde(skip)]
    pub chart: Chart,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyTime {
    pub label: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DurationRow {
    pub label: &'static str,
    pub value: String,
    /// The times are in an impossible order; the value explains which.
    pub flagged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub time: String,
    pub offset: String,
    pub actor: String,
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleRow {
    pub role: &'static str,
    pub holder: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateRow {
    pub row: Row,
    pub due: String,
    /// `None` when no promise was on record.
    pub on_time: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionGroup {
    pub term: &'static str,
    pub items: Vec<ActionItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub title: &'static str,
    pub field: &'static str,
    /// `None` renders as a clearly marked prompt.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub span_ms: i64,
    pub phases: Vec<(String, i64, i64)>,
    pub freeze: Vec<(i64, i64)>,
    pub updates: Vec<i64>,
}

/// Everything stored about one incident.
pub struct Facts<'a> {
    pub incident: &'a Incident,
    pub timeline: &'a [TimelineEntry],
    pub promises: &'a [(DateTime<Utc>, DateTime<Utc>)],
    pub fields: &'a [(String, String)],
    pub actions: &'a [ActionItem],
    /// Display names for the people the record names by identity.
    pub names: &'a Names,
}

pub fn build(f: &Facts<'_>) -> PostmortemView {
    let i = f.incident;
    let multi_day = spans_days(f);
    let row = |e: &TimelineEntry| named_row(f, e, multi_day);
    let of_kind = |kinds: &[EntryKind]| {
        f.timeline
            .iter()
            .filter(|e| kinds.contains(&e.kind))
            .map(row)
            .collect::<Vec<_>>()
    };
    PostmortemView {
        number: i.number.to_string(),
        title: i.title.clone(),
        severity: i.severity.to_string(),
        status: i.status.to_string(),
        drill: i.drill,
        key_times: key_times(i),
        durations: durations(i),
        timeline: f.timeline.iter().map(row).collect(),
        roles: roles(i, f.names),
        role_changes: of_kind(&[EntryKind::RoleAssigned, EntryKind::Acknowledged]),
        updates: updates(f, multi_day),
        freeze: of_kind(&[
            EntryKind::FreezeRequested,
            EntryKind::UnfreezeRequested,
            EntryKind::FreezeApplied,
            EntryKind::FreezeExempted,
        ]),
        recent_changes: of_kind(&[EntryKind::RecentChange]),
        actions: ["immediate", "medium", "long"]
            .into_iter()
            .map(|term| ActionGroup {
                term,
                items: f
                    .actions
                    .iter()
                    .filter(|a| a.term == term)
                    .map(|a| ActionItem {
                        owner: a.owner.as_deref().map(|o| f.names.name(o)),
                        ..a.clone()
                    })
                    .collect(),
            })
            .collect(),
        sections: PostmortemField::ALL
            .into_iter()
            .map(|field| Section {
                title: section_title(field),
                field: field.as_str(),
                text: f
                    .fields
                    .iter()
                    .find(|(k, _)| k == field.as_str())
                    .map(|(_, v)| v.clone()),
            })
            .collect(),
        chart: chart(f),
    }
}

fn section_title(f: PostmortemField) -> &'static str {
    match f {
        PostmortemField::Summary => "Summary",
        PostmortemField::Impact => "Impact",
        PostmortemField::RootCause => "Root cause",
        PostmortemField::ContributingFactors => "Contributing factors",
        PostmortemField::WentWell => "What went well",
        PostmortemField::WentPoorly => "What went poorly",
    }
}

fn spans_days(f: &Facts<'_>) -> bool {
    let first = f.timeline.iter().map(|e| e.occurred_at.date_naive()).min();
    let last = f.timeline.iter().map(|e| e.occurred_at.date_naive()).max();
    first != last
        || f.incident
            .resolved_at
            .is_some_and(|r| r.date_naive() != f.incident.declared_at.date_naive())
}

fn stamp(t: DateTime<Utc>, with_date: bool) -> String {
    if with_date {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or("not recorded".into(), |t| {
        format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S"))
    })
}

fn key_times(i: &Incident) -> Vec<KeyTime> {
    [
        ("Started", i.started_at),
        ("Detected", i.detected_at),
        ("Declared", Some(i.declared_at)),
        ("Acknowledged", i.acknowledged_at),
        ("Mitigated", i.mitigated_at),
        ("Resolved", i.resolved_at),
    ]
    .into_iter()
    .map(|(label, t)| KeyTime {
        label,
        value: when(t),
    })
    .collect()
}

fn durations(i: &Incident) -> Vec<DurationRow> {
    let between = |label: &'static str,
                   from: (&str, Option<DateTime<Utc>>),
                   to: (&str, Option<DateTime<Utc>>)| match (from.1, to.1) {
        (Some(a), Some(b)) if b < a => DurationRow {
            label,
            value: format!("impossible order: {} before {}", to.0, from.0),
            flagged: true,
        },
        (Some(a), Some(b)) => DurationRow {
            label,
            value: short_duration(b - a),
            flagged: false,
        },
        _ => DurationRow {
            label,
            value: "not recorded".into(),
            flagged: false,
        },
    };
    vec![
        between(
            "Time to detect",
            ("started", i.started_at),
            ("detected", i.detected_at),
        ),
        between(
            "Time to acknowledge",
            ("declared", Some(i.declared_at)),
            ("acknowledged", i.acknowledged_at),
        ),
        between(
            "Time to mitigate",
            ("declared", Some(i.declared_at)),
            ("mitigated", i.mitigated_at),
        ),
        between(
            "Time to resolve",
            ("declared", Some(i.declared_at)),
            ("resolved", i.resolved_at),
        ),
    ]
}

fn roles(i: &Incident, names: &Names) -> Vec<RoleRow> {
    [
        ("Commander", &i.commander),
        ("Comms", &i.comms),
        ("Scribe", &i.scribe),
    ]
    .into_iter()
    .map(|(role, who)| RoleRow {
        role,
        holder: names.role(who.as_deref()),
    })
    .collect()
}

/// A timeline entry as a row, people by their display names.
fn named_row(f: &Facts<'_>, e: &TimelineEntry, multi_day: bool) -> Row {
    let text = f.names.text(&e.text);
    Row {
        time: stamp(e.occurred_at, multi_day),
        offset: e.offset_from(f.incident.declared_at),
        actor: f.names.name(&e.actor),
        kind: e.kind.to_string(),
        text,
    }
}

/// Each status update against the promise in force when it was posted.
fn updates(f: &Facts<'_>, multi_day: bool) -> Vec<UpdateRow> {
    f.timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Update)
        .map(|e| {
            let promise = f
                .promises
                .iter()
                .rev()
                .find(|(set, _)| *set < e.occurred_at)
                .map(|(_, due)| *due);
            UpdateRow {
                row: named_row(f, e, multi_day),
                due: promise.map_or("no promise on record".into(), |d| stamp(d, multi_day)),
                on_time: promise.map(|d| e.occurred_at <= d),
            }
        })
        .collect()
}

/// Status phases, the freeze window and update ticks, in ms from the declaration.
fn chart(f: &Facts<'_>) -> Chart {
    let start = f.incident.declared_at;
    let ms = |t: DateTime<Utc>| (t - start).num_milliseconds().max(0);
    let end = f
        .incident
        .resolved_at
        .or_else(|| f.timeline.last().map(|e| e.occurred_at))
        .unwrap_or(start);
    let span_ms = ms(end).max(1);
    let mut phases = Vec::new();
    let (mut status, mut since) = ("investigating".to_string(), 0);
    for e in f
        .timeline
        .iter()
        .filter(|e| e.kind == EntryKind::StatusChanged || e.kind == EntryKind::Resolved)
    {
        let next = if e.kind == EntryKind::Resolved {
            "resolved".to_string()
        } else {
            e.text.rsplit("→ ").next().unwrap_or("").trim().to_string()
        };
        phases.push((status, since, ms(e.occurred_at)));
        status = next;
        since = ms(e.occurred_at);
    }
    if status != "resolved" {
        phases.push((status, since, span_ms));
    }
    let mut freeze = Vec::new();
    let mut open: Option<i64> = None;
    for e in f.timeline {
        match e.kind {
            EntryKind::FreezeRequested if open.is_none() => open = Some(ms(e.occurred_at)),
            EntryKind::UnfreezeRequested => {
                if let Some(from) = open.take() {
                    freeze.push((from, ms(e.occurred_at)));
                }
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        freeze.push((from, span_ms));
    }
    let updates = f
        .timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Update)
        .map(|e| ms(e.occurred_at))
        .collect();
    Chart {
        span_ms,
        phases,
        freeze,
        updates,
    }
}

/// For display: "T+1h05m" offsets are also what the chart's axis shows.
pub fn axis_label(ms: i64) -> String {
    format_offset(chrono::Duration::milliseconds(ms))
}
