//! The drill report: an incident's runbook, planned against what happened. Each step's
//! target T+ against when it ended, how and by whom; the steps skipped, failed, late and
//! never done; the time to announce, to freeze and to tell customers against the runbook's
//! targets; and whether the recovery objective was met. Built only from stored facts
//! ([`build`] is pure), rendered to Markdown and to a self-contained HTML page through the
//! askama templates `drill_report.md` and `drill_report.html`. The post-mortem shows the
//! same step table, milestones and recovery line (`templates/runbook/`).

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::incident::IncidentNumber;
use crate::incident::model::Incident;
use crate::incident::timeline::{format_offset, short_duration};
use crate::people::Names;
use crate::runbook::{Action, Runbook};
use crate::store::{AttachedRunbook, RunbookMilestones, StepOutcome, StepRecord, Store};

/// A step counts as late when it ends more than this after its target (as `timing` says).
const ON_TARGET_WITHIN: Duration = Duration::seconds(59);

/// The most characters of a note the step table shows; the lists below it show it whole.
pub const TABLE_NOTE_CHARS: usize = 160;

/// The identity the core ends steps as (`Actor::system()`).
const SYSTEM: &str = "system:firebreak";

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub number: String,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub drill: bool,
    /// `drill` or `real incident`.
    pub kind: &'static str,
    /// The declaration, `YYYY-MM-DD HH:MM:SS UTC`.
    pub declared: String,
    /// The runbook's file name (what `--runbook` takes) and title.
    pub runbook_name: String,
    pub runbook_title: String,
    pub steps: Vec<StepRow>,
    pub skipped: Vec<StepRef>,
    pub failed: Vec<StepRef>,
    pub late: Vec<StepRef>,
    /// Open steps, and those the incident's resolution ended before anyone got to them.
    pub never_done: Vec<StepRef>,
    /// Done steps whose note the table cuts short, with the whole note (skips and failures
    /// have theirs in full in their lists).
    pub long_notes: Vec<StepRef>,
    /// Time to announce, to freeze and to tell customers.
    pub milestones: Vec<Milestone>,
    pub recovery: Recovery,
}

/// One step: planned, and what happened.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub id: String,
    pub title: String,
    pub owner: String,
    /// `manual`, `announce`, `freeze`, …
    pub action: &'static str,
    /// `T+3m`.
    pub target: String,
    /// `T+5m` when it ended; `—` while open.
    pub actual: String,
    /// `done`, `skipped`, `failed`, `started` (open, someone is on it) or `open`.
    pub outcome: &'static str,
    /// Who ended it (or started it, while open), by display name; "" if nobody.
    pub who: String,
    /// `2m late`, when it ended more than a minute after its target.
    pub late: Option<String>,
    /// The note, cut to [`TABLE_NOTE_CHARS`] for the table.
    pub note: Option<String>,
}

/// A step in one of the lists, with its whole note.
#[derive(Debug, Clone, Serialize)]
pub struct StepRef {
    pub id: String,
    pub title: String,
    /// The note, the lateness or the target, in words.
    pub detail: String,
}

/// Time to announce, freeze or tell customers.
#[derive(Debug, Clone, Serialize)]
pub struct Milestone {
    /// `Time to announce`.
    pub label: &'static str,
    /// The runbook's target (`T+2m`), or `no step` when the runbook has none for it.
    pub target: String,
    /// `T+4m`, or `not done`.
    pub actual: String,
    /// `2m late`.
    pub late: Option<String>,
    /// Where the actual time comes from, or why there is none.
    pub basis: String,
}

/// Whether the runbook's recovery objective was met.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    /// `met`, `missed`, `not yet` or `no objective`.
    pub verdict: &'static str,
    /// The verdict in a sentence.
    pub sentence: String,
}

/// Everything the report is built from.
pub struct Facts<'a> {
    pub incident: &'a Incident,
    pub runbook: &'a AttachedRunbook,
    pub milestones: &'a RunbookMilestones,
    pub names: &'a Names,
}

pub fn build(f: &Facts<'_>) -> DrillReport {
    let i = f.incident;
    let rb = &f.runbook.runbook;
    let steps = &f.runbook.steps;
    DrillReport {
        number: i.number.to_string(),
        title: i.title.clone(),
        severity: i.severity.to_string(),
        status: i.status.to_string(),
        drill: i.drill,
        kind: if i.drill { "drill" } else { "real incident" },
        declared: i.declared_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        runbook_name: rb.name.clone(),
        runbook_title: rb.title.clone(),
        steps: steps.iter().map(|r| step_row(f, r)).collect(),
        skipped: refs(steps, |r| {
            human_skip(r).then(|| note_or(r, "no reason given"))
        }),
        failed: refs(steps, |r| {
            (r.outcome == Some(StepOutcome::Failed)).then(|| note_or(r, "no reason recorded"))
        }),
        late: refs(steps, |r| late_done(r).map(|l| late_detail(i, r, &l))),
        never_done: refs(steps, |r| never_done(i, r)),
        long_notes: refs(steps, long_note),
        milestones: milestones(f),
        recovery: recovery(i, rb),
    }
}

fn step_row(f: &Facts<'_>, r: &StepRecord) -> StepRow {
    let declared = f.incident.declared_at;
    let ended = r.finished_at.filter(|_| r.outcome.is_some());
    StepRow {
        id: r.step.id.clone(),
        title: r.step.title.clone(),
        owner: r.step.owner.label(),
        action: r.step.action.name(),
        target: format_offset(r.target_at - declared),
        actual: ended.map_or("—".into(), |at| format_offset(at - declared)),
        outcome: outcome(r),
        who: r
            .finished_by
            .as_deref()
            .or(r.started_by.as_deref())
            .map_or(String::new(), |w| f.names.name(w)),
        late: ended.and_then(|at| lateness(r.target_at, at)),
        note: r.note.as_deref().map(|n| shorten(n, TABLE_NOTE_CHARS)),
    }
}

fn outcome(r: &StepRecord) -> &'static str {
    match (r.outcome, r.started_at) {
        (Some(o), _) => o.as_str(),
        (None, Some(_)) => "started",
        (None, None) => "open",
    }
}

/// `2m late` when `at` is more than a minute past `target` (pure).
pub fn lateness(target: DateTime<Utc>, at: DateTime<Utc>) -> Option<String> {
    let by = at - target;
    (by > ON_TARGET_WITHIN).then(|| format!("{} late", short_duration(by)))
}

/// `text` cut to `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn refs(steps: &[StepRecord], detail: impl Fn(&StepRecord) -> Option<String>) -> Vec<StepRef> {
    steps
        .iter()
        .filter_map(|r| {
            detail(r).map(|detail| StepRef {
                id: r.step.id.clone(),
                title: r.step.title.clone(),
                detail,
            })
        })
        .collect()
}

fn note_or(r: &StepRecord, none: &str) -> String {
    r.note
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| none.into())
}

/// Skipped by a person (the core's own skips are steps the resolution overtook).
fn human_skip(r: &StepRecord) -> bool {
    r.outcome == Some(StepOutcome::Skipped) && r.finished_by.as_deref() != Some(SYSTEM)
}

/// How late a done step was, if it was.
fn late_done(r: &StepRecord) -> Option<String> {
    let at = r
        .finished_at
        .filter(|_| r.outcome == Some(StepOutcome::Done))?;
    lateness(r.target_at, at)
}

fn late_detail(i: &Incident, r: &StepRecord, late: &str) -> String {
    let at = r.finished_at.unwrap_or(r.target_at);
    format!(
        "done at {}, target {}: {late}",
        format_offset(at - i.declared_at),
        format_offset(r.target_at - i.declared_at)
    )
}

/// A done step's note, when the table cuts it short.
fn long_note(r: &StepRecord) -> Option<String> {
    let note = r.note.as_ref()?;
    let cut = note.chars().nth(TABLE_NOTE_CHARS).is_some();
    (cut && r.outcome == Some(StepOutcome::Done)).then(|| note.clone())
}

/// Why a step was never done: still open, or the resolution came first.
fn never_done(i: &Incident, r: &StepRecord) -> Option<String> {
    let target = format_offset(r.target_at - i.declared_at);
    match (r.outcome, r.started_at) {
        (None, Some(at)) => Some(format!(
            "started at {}, still open (target {target})",
            format_offset(at - i.declared_at)
        )),
        (None, None) => Some(format!("still open (target {target})")),
        (Some(StepOutcome::Skipped), _) if !human_skip(r) => Some(format!(
            "not reached before the incident was resolved (target {target})"
        )),
        _ => None,
    }
}

/// What a milestone measures: its label, the step actions it belongs to, and when it
/// happened by the effects and the timeline (before falling back to the steps).
struct Measure {
    label: &'static str,
    wants: fn(&Action) -> bool,
    recorded: Option<(DateTime<Utc>, &'static str)>,
}

fn milestones(f: &Facts<'_>) -> Vec<Milestone> {
    let m = f.milestones;
    let delivered = m
        .step_posts
        .iter()
        .filter(|p| p.delivered && is_notify(f.runbook, &p.step_id))
        .map(|p| p.at)
        .min();
    [
        Measure {
            label: "Time to announce",
            wants: |a| matches!(a, Action::Announce),
            recorded: m
                .first_notice_at
                .map(|t| (t, "the first company-wide notice was delivered")),
        },
        Measure {
            label: "Time to freeze",
            wants: |a| matches!(a, Action::Freeze { .. }),
            recorded: m
                .first_freeze_applied_at
                .map(|t| (t, "GitHub applied the merge freeze")),
        },
        Measure {
            label: "Time to tell customers",
            wants: |a| matches!(a, Action::Notify { .. }),
            recorded: delivered.map(|t| (t, "the customer notice was delivered")),
        },
    ]
    .into_iter()
    .map(|measure| milestone(f, &measure))
    .collect()
}

fn is_notify(runbook: &AttachedRunbook, step_id: &str) -> bool {
    runbook
        .step(step_id)
        .is_some_and(|r| matches!(r.step.action, Action::Notify { .. }))
}

/// One milestone: the earliest target among its steps, against the recorded moment, else
/// the first of its steps done, else why there is none.
fn milestone(f: &Facts<'_>, m: &Measure) -> Milestone {
    let declared = f.incident.declared_at;
    let steps: Vec<&StepRecord> = f
        .runbook
        .steps
        .iter()
        .filter(|r| (m.wants)(&r.step.action))
        .collect();
    let target = steps.iter().map(|r| r.target_at).min();
    let done = steps
        .iter()
        .filter(|r| r.outcome == Some(StepOutcome::Done))
        .filter_map(|r| r.finished_at.map(|at| (at, *r)))
        .min_by_key(|(at, _)| *at);
    let (actual, basis) = match (m.recorded, done) {
        (Some((at, why)), _) => (Some(at), why.to_string()),
        (None, Some((at, r))) => (Some(at), done_basis(r)),
        (None, None) => (None, missing_basis(&steps)),
    };
    Milestone {
        label: m.label,
        target: target.map_or("no step".into(), |t| format_offset(t - declared)),
        actual: actual.map_or("not done".into(), |a| format_offset(a - declared)),
        late: target.zip(actual).and_then(|(t, a)| lateness(t, a)),
        basis,
    }
}

fn done_basis(r: &StepRecord) -> String {
    format!("step {} was done (no delivery on record)", r.step.id)
}

/// Why a milestone has no time: no step for it, or what became of its steps.
fn missing_basis(steps: &[&StepRecord]) -> String {
    let Some(first) = steps.first() else {
        return "the runbook has no step for it, and nothing was recorded".into();
    };
    let id = &first.step.id;
    match (first.outcome, first.note.as_deref()) {
        (Some(o), Some(note)) if !note.is_empty() => {
            format!(
                "step {id} {}: {}",
                o.as_str(),
                shorten(note, TABLE_NOTE_CHARS)
            )
        }
        (Some(o), _) => format!("step {id} {}", o.as_str()),
        (None, _) => format!("step {id} is still open"),
    }
}

/// Mitigated (else resolved) minus declared, against the objective (pure).
pub fn recovery(i: &Incident, rb: &Runbook) -> Recovery {
    let Some(objective) = rb.recovery_objective else {
        return Recovery {
            verdict: "no objective",
            sentence: "No recovery objective: the runbook sets none.".into(),
        };
    };
    let objective = Duration::from_std(objective).unwrap_or(Duration::MAX);
    let goal = short_duration(objective);
    let end = match (i.mitigated_at, i.resolved_at) {
        (Some(m), _) => Some((m, "mitigated")),
        (None, Some(r)) => Some((r, "resolved")),
        (None, None) => None,
    };
    let Some((at, how)) = end else {
        return Recovery {
            verdict: "not yet",
            sentence: format!(
                "Recovery objective not met yet: the incident is neither mitigated nor resolved (objective {goal})."
            ),
        };
    };
    let took = at - i.declared_at;
    let when = format_offset(took);
    match took <= objective {
        true => Recovery {
            verdict: "met",
            sentence: format!("Recovery objective met: {how} at {when}, within {goal}."),
        },
        false => Recovery {
            verdict: "missed",
            sentence: format!(
                "Recovery objective missed: {how} at {when}, {} past {goal}.",
                short_duration(took - objective)
            ),
        },
    }
}

/// What looking an incident's report up found.
pub enum Lookup {
    NoIncident,
    NoRunbook,
    Found(Box<DrillReport>),
}

/// Why incident `number` has no drill report, in a sentence.
pub fn no_runbook(number: IncidentNumber) -> String {
    format!(
        "{number} has no runbook, so it has no drill report. A runbook is attached when an incident is declared (`declare … --runbook <name>`, or chosen by severity and title)."
    )
}

/// Loads what the report needs from the store and builds it.
pub async fn load(store: &Store, number: IncidentNumber) -> anyhow::Result<Lookup> {
    let Some(incident) = store.incident_by_number(number).await? else {
        return Ok(Lookup::NoIncident);
    };
    let Some(runbook) = store.runbook(&incident.id).await? else {
        return Ok(Lookup::NoRunbook);
    };
    let milestones = store.runbook_milestones(&incident.id).await?;
    let names = store.names(people(&runbook)).await?;
    let facts = Facts {
        incident: &incident,
        runbook: &runbook,
        milestones: &milestones,
        names: &names,
    };
    Ok(Lookup::Found(Box::new(build(&facts))))
}

/// The identities that started or ended steps, for their display names.
pub fn people(runbook: &AttachedRunbook) -> impl Iterator<Item = &str> {
    runbook
        .steps
        .iter()
        .flat_map(|r| [r.finished_by.as_deref(), r.started_by.as_deref()])
        .flatten()
}

#[derive(Template)]
#[template(path = "drill_report.md", escape = "none")]
struct Markdown<'a> {
    r: &'a DrillReport,
}

impl Markdown<'_> {
    fn md(&self, text: &str) -> String {
        crate::postmortem::render::md(text)
    }
}

#[derive(Template)]
#[template(path = "drill_report.html")]
struct Html<'a> {
    r: &'a DrillReport,
}

/// Room for the document: a row is a few hundred bytes.
fn capacity(r: &DrillReport) -> usize {
    4 * 1024 + 512 * r.steps.len()
}

pub fn markdown(r: &DrillReport) -> anyhow::Result<String> {
    let mut out = String::with_capacity(capacity(r));
    Markdown { r }.render_into(&mut out)?;
    Ok(out)
}

pub fn html(r: &DrillReport) -> anyhow::Result<String> {
    let mut out = String::with_capacity(2 * capacity(r));
    Html { r }.render_into(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
