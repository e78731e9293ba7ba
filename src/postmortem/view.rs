//! The post-mortem view model, built only from stored facts: the incident row, its timeline,
//! the update promises, the written sections and the action items. Building it is pure, so
//! the same stored incident always renders the same bytes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chart::{self, Chart};
use super::sentences;
use crate::incident::command::PostmortemField;
use crate::incident::model::Incident;
use crate::incident::timeline::{EntryKind, TimelineEntry, duration_to_the_minute};
use crate::people::Names;
use crate::runbook::report::{self, DrillReport};
use crate::store::{ActionItem, AttachedRunbook, RunbookMilestones};

#[derive(Debug, Clone, Serialize)]
pub struct PostmortemView {
    pub number: String,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub drill: bool,
    /// The document's own record: when it was written, by whom.
    pub doc: DocMeta,
    pub key_times: Vec<KeyTime>,
    pub durations: Vec<DurationRow>,
    /// Which moment the durations count from, in words.
    pub durations_from: String,
    /// What happened, in sentences.
    pub timeline: Vec<Row>,
    /// Bookkeeping (action items added or done), kept apart from what happened.
    pub appendix: Vec<Row>,
    pub roles: Vec<RoleRow>,
    pub role_changes: Vec<Row>,
    pub updates: Vec<UpdateRow>,
    pub freeze: Vec<Row>,
    pub recent_changes: Vec<Row>,
    pub actions: Vec<ActionGroup>,
    pub sections: Vec<Section>,
    /// The runbook planned against what happened, for an incident with one.
    pub runbook: Option<DrillReport>,
    #[serde(skip)]
    pub chart: Chart,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocMeta {
    /// The date of the incident (its declaration), `YYYY-MM-DD`.
    pub date: String,
    /// `draft`, `in-review` or `final` (`postmortem status …`).
    pub status: String,
    /// Everyone who wrote a section, by name.
    pub authors: Vec<String>,
    /// The reviewers named with `postmortem reviewer add`, by name.
    pub reviewers: Vec<String>,
    /// The declaration and the resolution as RFC 3339, for front matter.
    pub declared: String,
    pub resolved: Option<String>,
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
    /// The entry as stored, people by name.
    pub text: String,
    /// The entry told as a sentence.
    pub sentence: String,
    /// The author's own Markdown (updates, notes), shown after the sentence.
    pub body: Option<String>,
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

/// Everything stored about one incident.
pub struct Facts<'a> {
    pub incident: &'a Incident,
    pub timeline: &'a [TimelineEntry],
    pub promises: &'a [(DateTime<Utc>, DateTime<Utc>)],
    pub fields: &'a [(String, String)],
    pub actions: &'a [ActionItem],
    /// Who wrote the sections (identities).
    pub authors: &'a [String],
    /// The document's status, if one was set, and its reviewers (identities).
    pub review: &'a (Option<String>, Vec<String>),
    /// Display names for the people the record names by identity.
    pub names: &'a Names,
    /// The incident's runbook and the milestones its report measures, if it has one.
    pub runbook: Option<(&'a AttachedRunbook, &'a RunbookMilestones)>,
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
    let sections = sections(f);
    let (durations, durations_from) = durations(i);
    PostmortemView {
        number: i.number.to_string(),
        title: i.title.clone(),
        severity: i.severity.to_string(),
        status: i.status.to_string(),
        drill: i.drill,
        doc: doc_meta(f),
        key_times: key_times(i),
        durations,
        durations_from,
        timeline: f
            .timeline
            .iter()
            .filter(|e| e.kind != EntryKind::ActionItem)
            .map(row)
            .collect(),
        appendix: of_kind(&[EntryKind::ActionItem]),
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
        sections,
        runbook: runbook(f),
        chart: chart(f),
    }
}

fn runbook(f: &Facts<'_>) -> Option<DrillReport> {
    let (runbook, milestones) = f.runbook?;
    Some(report::build(&report::Facts {
        incident: f.incident,
        runbook,
        milestones,
        names: f.names,
    }))
}

fn sections(f: &Facts<'_>) -> Vec<Section> {
    PostmortemField::ALL
        .into_iter()
        .map(|field| Section {
            title: field.title(),
            field: field.as_str(),
            text: f
                .fields
                .iter()
                .find(|(k, _)| k == field.as_str())
                .map(|(_, v)| v.clone()),
        })
        .collect()
}

fn doc_meta(f: &Facts<'_>) -> DocMeta {
    let i = f.incident;
    let (status, reviewers) = f.review;
    DocMeta {
        date: i.declared_at.format("%Y-%m-%d").to_string(),
        status: status.clone().unwrap_or_else(|| "draft".into()),
        authors: f.authors.iter().map(|a| f.names.name(a)).collect(),
        reviewers: reviewers.iter().map(|r| f.names.name(r)).collect(),
        declared: rfc3339(i.declared_at),
        resolved: i.resolved_at.map(rfc3339),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn spans_days(f: &Facts<'_>) -> bool {
    let first = f.timeline.iter().map(|e| e.occurred_at.date_naive()).min();
    let last = f.timeline.iter().map(|e| e.occurred_at.date_naive()).max();
    first != last
        || f.incident
            .resolved_at
            .is_some_and(|r| r.date_naive() != f.incident.declared_at.date_naive())
}

/// `HH:MM:SS`, with the date first when the incident spans days. (Written out rather than
/// through `format`, which parses its pattern on every call: a long timeline has thousands.)
fn stamp(t: DateTime<Utc>, with_date: bool) -> String {
    use chrono::{Datelike, Timelike};
    let time = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if with_date {
        format!("{:04}-{:02}-{:02} {time}", t.year(), t.month(), t.day())
    } else {
        time
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

/// Where the clock starts for the durations: the impact start when it was recorded
/// (`--started`), else the detection, else the declaration; and that choice in words.
fn impact_start(i: &Incident) -> (DateTime<Utc>, String) {
    let at = |t: DateTime<Utc>| format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S"));
    match (i.started_at, i.detected_at) {
        (Some(s), _) => (s, format!("Durations count from impact start, {}.", at(s))),
        (None, Some(d)) => (
            d,
            format!(
                "Durations count from detection, {}: impact start was not recorded.",
                at(d)
            ),
        ),
        (None, None) => (
            i.declared_at,
            format!(
                "Durations count from the declaration, {}: impact start was not recorded.",
                at(i.declared_at)
            ),
        ),
    }
}

fn durations(i: &Incident) -> (Vec<DurationRow>, String) {
    let (start, basis) = impact_start(i);
    let between = |label: &'static str, to: (&str, Option<DateTime<Utc>>)| match to.1 {
        Some(b) if b < start => DurationRow {
            label,
            value: format!("impossible order: {} before impact start", to.0),
            flagged: true,
        },
        Some(b) => DurationRow {
            label,
            value: duration_to_the_minute(b - start),
            flagged: false,
        },
        None => DurationRow {
            label,
            value: "not recorded".into(),
            flagged: false,
        },
    };
    let customer_facing_end = i.mitigated_at.or(i.resolved_at);
    let [detect, declare] = detection_rows(i, &between);
    let rows = vec![
        between(
            "Customer-facing duration",
            ("the end of impact", customer_facing_end),
        ),
        detect,
        declare,
        between("Time to acknowledge", ("acknowledged", i.acknowledged_at)),
        between("Time to mitigate", ("mitigated", i.mitigated_at)),
        between("Time to resolve", ("resolved", i.resolved_at)),
    ];
    (rows, basis)
}

/// A duration row from impact start to a named moment, if it was recorded.
type Between<'a> = dyn Fn(&'static str, (&str, Option<DateTime<Utc>>)) -> DurationRow + 'a;

/// Time to detect and to declare. Without an impact start they would count from the
/// detection (or the declaration) itself and read 0s, so they say so instead; a detection
/// after the declaration is flagged.
fn detection_rows(i: &Incident, between: &Between<'_>) -> [DurationRow; 2] {
    let unknown = |label: &'static str| DurationRow {
        label,
        value: "not recorded (impact start unknown)".into(),
        flagged: false,
    };
    let detect = match (i.started_at, i.detected_at) {
        (_, Some(d)) if d > i.declared_at => DurationRow {
            label: "Time to detect",
            value: "impossible order: detected after the declaration".into(),
            flagged: true,
        },
        (None, _) => unknown("Time to detect"),
        (Some(_), detected) => between(
            "Time to detect",
            ("detected", detected.or(Some(i.declared_at))),
        ),
    };
    let declare = match (i.started_at, i.detected_at) {
        (None, None) => unknown("Time to declare"),
        _ => between("Time to declare", ("declared", Some(i.declared_at))),
    };
    [detect, declare]
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
    let actor = f.names.name(&e.actor);
    let told = sentences::tell(e.kind, &text, &actor);
    Row {
        time: stamp(e.occurred_at, multi_day),
        offset: e.offset_from(f.incident.declared_at),
        kind: e.kind.to_string(),
        sentence: told.sentence,
        body: told.body,
        actor,
        text,
    }
}

/// Each status update against the promise in force when it was posted.
fn updates(f: &Facts<'_>, multi_day: bool) -> Vec<UpdateRow> {
    f.timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Update)
        .map(|e| {
            let promise = promise_before(f, e.occurred_at);
            UpdateRow {
                row: named_row(f, e, multi_day),
                due: promise.map_or("no promise on record".into(), |d| stamp(d, multi_day)),
                on_time: promise.map(|d| e.occurred_at <= d),
            }
        })
        .collect()
}

/// The promise in force when `at` came: the latest one set before it.
fn promise_before(f: &Facts<'_>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    f.promises
        .iter()
        .rev()
        .find(|(set, _)| *set < at)
        .map(|(_, due)| *due)
}

/// Status phases, the impact before the declaration, the freeze window and the updates
/// against their promises, in ms from the chart's origin.
fn chart(f: &Facts<'_>) -> Chart {
    let declared = f.incident.declared_at;
    let origin = f
        .incident
        .started_at
        .filter(|s| *s < declared)
        .unwrap_or(declared);
    let ms = |t: DateTime<Utc>| chart::offset(origin, t);
    let end = f
        .incident
        .resolved_at
        .or_else(|| f.timeline.last().map(|e| e.occurred_at))
        .unwrap_or(declared)
        .max(declared);
    let span_ms = ms(end).max(1);
    let declared_ms = ms(declared);
    let mut phases = Vec::new();
    if declared_ms > 0 {
        phases.push((chart::IMPACT.into(), 0, declared_ms));
    }
    let (mut status, mut since) = ("investigating".to_string(), declared_ms);
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
        .map(|e| chart::Update {
            at: ms(e.occurred_at),
            due: promise_before(f, e.occurred_at).map(ms),
        })
        .collect();
    Chart {
        span_ms,
        declared_ms,
        phases,
        freeze,
        updates,
    }
}
