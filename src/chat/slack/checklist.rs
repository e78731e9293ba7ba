//! The runbook checklist as Block Kit: a header, the steps as lines (several to a section,
//! within Slack's limits), and Done buttons for the open manual steps, 25 to a row block.
//! A button's value is `<incident number>:<step id>`; pressing it is `runbook done <step>`.

use slack_morphism::prelude::SlackBlock;

use super::blocks::{Blocks, Button, FullText};
use super::mrkdwn::{Mrkdwn, limit};
use crate::incident::model::Incident;
use crate::runbook::checklist::{self, Line};
use crate::store::AttachedRunbook;

/// The action id of a step's Done button.
pub const ACTION_STEP_DONE: &str = "fb_runbook_done";

/// Steps per section: each line is far below the section limit, so 10 always fit.
const LINES_PER_SECTION: usize = 10;

pub fn blocks(
    incident: &Incident,
    runbook: &AttachedRunbook,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let lines = checklist::lines(runbook, incident.declared_at, now);
    let mut b = Blocks::message(Some(FullText::new(incident.number, None)));
    b.header(&format!("Runbook: {}", runbook.runbook.title));
    for chunk in lines.chunks(LINES_PER_SECTION) {
        let mut text = Mrkdwn::markup("");
        for (i, line) in chunk.iter().enumerate() {
            if i > 0 {
                text.push_markup("\n");
            }
            text.push(line_mrkdwn(line));
        }
        b.section(text);
    }
    let open: Vec<&Line> = lines.iter().filter(|l| l.wants_ticking()).collect();
    for (i, row) in open.chunks(limit::ACTION_ELEMENTS).enumerate() {
        let buttons = row
            .iter()
            .map(|l| Button {
                action_id: ACTION_STEP_DONE,
                text: &l.step_id,
                value: format!("{}:{}", incident.number.0, l.step_id),
                style: None,
                confirm: None,
            })
            .collect();
        b.actions(&format!("fb_runbook_{i}"), buttons);
    }
    let fallback = format!(
        "Runbook {} for {}: {} of {} steps ended",
        runbook.runbook.name,
        incident.number,
        lines
            .iter()
            .filter(|l| !matches!(l.state, checklist::LineState::Open { .. }))
            .count(),
        lines.len()
    );
    b.finish(Mrkdwn::text(&fallback))
}

/// `✅ T+3m *restore-db* Restore databases (team dba) · done T+4m`
fn line_mrkdwn(line: &Line) -> Mrkdwn {
    let mut m = Mrkdwn::text(line.mark());
    m.push_markup(" ")
        .push_text(&line.target)
        .push_markup(" *")
        .push_text(&line.step_id)
        .push_markup("* ")
        .push_text(&line.title)
        .push_markup(" (")
        .push_text(&line.owner)
        .push_markup(") · ")
        .push_text(&line.status());
    m
}

/// `42:restore-db` → incident 42, step `restore-db`.
pub fn parse_value(value: &str) -> Option<(crate::incident::IncidentNumber, String)> {
    let (n, step) = value.split_once(':')?;
    let n = n.parse().ok()?;
    (!step.is_empty()).then(|| (crate::incident::IncidentNumber(n), step.to_string()))
}
