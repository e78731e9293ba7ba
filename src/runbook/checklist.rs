//! The checklist of an attached runbook as every surface shows it (pure): one line per
//! step with its target, its owner and what became of it. Slack adds Done buttons to the
//! open manual steps; Discord and the CLI show the plain text.

use chrono::{DateTime, Utc};

use crate::incident::timeline::format_offset;
use crate::store::{AttachedRunbook, StepOutcome, StepRecord};

/// One step, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub step_id: String,
    pub title: String,
    pub owner: String,
    /// `T+3m`.
    pub target: String,
    /// `manual`, `freeze`, `notify`, …
    pub action: &'static str,
    pub state: LineState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineState {
    /// Not ended; `late` once its target has passed; `started` (`T+3m`) once someone
    /// took it on.
    Open { late: bool, started: Option<String> },
    /// Ended at `at` (`T+4m`) by `by` (a stored identity), with a note for skips and failures.
    Ended {
        outcome: StepOutcome,
        at: String,
        by: Option<String>,
        note: Option<String>,
    },
}

impl Line {
    /// Whether a person can tick it from the checklist.
    pub fn wants_ticking(&self) -> bool {
        self.action == "manual" && matches!(self.state, LineState::Open { .. })
    }

    /// `✅`, `⏭️`, `❌`, `⏰` (open and late) or `⬜`.
    pub fn mark(&self) -> &'static str {
        match &self.state {
            LineState::Open {
                started: Some(_), ..
            } => "🔄",
            LineState::Open { late: false, .. } => "⬜",
            LineState::Open { late: true, .. } => "⏰",
            LineState::Ended { outcome, .. } => match outcome {
                StepOutcome::Done => "✅",
                StepOutcome::Skipped => "⏭️",
                StepOutcome::Failed => "❌",
            },
        }
    }

    /// What became of it, in words: `done T+4m`, `skipped T+9m: not needed`, `due T+3m`.
    pub fn status(&self) -> String {
        match &self.state {
            LineState::Open {
                started: Some(at),
                late,
            } => match late {
                true => format!("started {at}, late (due {})", self.target),
                false => format!("started {at} (due {})", self.target),
            },
            LineState::Open { late: true, .. } => format!("late (due {})", self.target),
            LineState::Open { late: false, .. } => format!("due {}", self.target),
            LineState::Ended {
                outcome, at, note, ..
            } => match note {
                Some(n) => format!("{} {at}: {n}", outcome.as_str()),
                None => format!("{} {at}", outcome.as_str()),
            },
        }
    }
}

/// Every step of `runbook` in file order, as of `now`.
pub fn lines(
    runbook: &AttachedRunbook,
    declared_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Line> {
    runbook
        .steps
        .iter()
        .map(|r| line(r, declared_at, now))
        .collect()
}

fn line(r: &StepRecord, declared_at: DateTime<Utc>, now: DateTime<Utc>) -> Line {
    let state = match (r.outcome, r.finished_at) {
        (Some(outcome), Some(at)) => LineState::Ended {
            outcome,
            at: format_offset(at - declared_at),
            by: r.finished_by.clone(),
            note: r.note.clone(),
        },
        _ => LineState::Open {
            late: now > r.target_at,
            started: r.started_at.map(|t| format_offset(t - declared_at)),
        },
    };
    Line {
        step_id: r.step.id.clone(),
        title: r.step.title.clone(),
        owner: r.step.owner.label(),
        target: format_offset(r.target_at - declared_at),
        action: r.step.action.name(),
        state,
    }
}

/// The checklist as plain text: a heading, then one line per step.
pub fn plain_text(
    runbook: &AttachedRunbook,
    declared_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let mut out = format!(
        "📋 Runbook: {} ({})",
        runbook.runbook.title, runbook.runbook.name
    );
    for l in lines(runbook, declared_at, now) {
        out.push_str(&format!(
            "\n{} {} `{}` {} ({}, {}) · {}",
            l.mark(),
            l.target,
            l.step_id,
            l.title,
            l.owner,
            l.action,
            l.status()
        ));
    }
    out.push_str(
        "\nTick a step with `runbook done <step>`; skip one with `runbook skip <step> <why>`.",
    );
    out
}
