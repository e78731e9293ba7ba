//! The runbook checklist as Discord messages (pure): the steps in pages of
//! [`STEPS_PER_PAGE`], one message each, every page's content within 2,000 characters and
//! a green "Done" button under it for each open manual step on it (at most ten, so two rows
//! of five; Discord allows five). A runbook of more than [`MAX_PAGES`] pages shows the rest
//! as a count. Pages never move: a step is always on the page its position puts it on, so
//! each page is one message edited in place.
//!
//! A button's `custom_id` is `fb:rbdone:<incident number>:<step id>`
//! ([`reply::step_custom_id`]); pressing it is `runbook done <step>` as the presser.
//! Everything people wrote (notes, reasons) and every title is escaped; the only mentions
//! are the `<@id>` of whoever ended a step, which never ping (`allowed_mentions` parses
//! nothing).

use chrono::{DateTime, Utc};
use serenity::all::{ButtonStyle, CreateActionRow, CreateButton};

use super::embeds::person;
use super::reply;
use super::text::{escape, fit, limit};
use crate::incident::model::{Incident, IncidentNumber};
use crate::runbook::checklist::{self, Line, LineState};
use crate::store::AttachedRunbook;

/// Steps per message: ten lines of up to ~170 characters fit one message's content, and
/// their buttons two rows.
pub const STEPS_PER_PAGE: usize = 10;

/// Messages at most (100 steps); what is beyond is counted on the last one.
pub const MAX_PAGES: usize = 10;

/// Discord's component limits.
const BUTTONS_PER_ROW: usize = 5;
const ROWS: usize = 5;
const LABEL: usize = 80;
const CUSTOM_ID: usize = 100;

/// Characters kept of a step's title, a note, and an owner, before the line is fitted.
const TITLE: usize = 100;
const NOTE: usize = 80;
const OWNER: usize = 40;

const _: () = assert!(STEPS_PER_PAGE <= BUTTONS_PER_ROW * ROWS);

/// How to tick and skip, under the last page.
const HINT: &str = "Press a step's button when it is done, or use `/incident runbook` with `done` or `skip` and the step.";

/// One message of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The message's content, within Discord's 2,000 characters.
    pub content: String,
    /// The open manual steps on this page, each with a Done button.
    pub open: Vec<String>,
}

/// The checklist of `runbook` on `incident` as of `now`, one page per message.
pub fn pages(incident: &Incident, runbook: &AttachedRunbook, now: DateTime<Utc>) -> Vec<Page> {
    let lines = checklist::lines(runbook, incident.declared_at, now);
    let heading = format!(
        "📋 **Runbook: {}** ({})",
        fit(&escape(&runbook.runbook.title), TITLE),
        fit(&escape(&runbook.runbook.name), TITLE)
    );
    paginate(&heading, &lines)
}

/// Lines in pages (pure): the heading on each, numbered when there are several; the hint,
/// and a count of any steps past the last page, under the last.
pub fn paginate(heading: &str, lines: &[Line]) -> Vec<Page> {
    let chunks: Vec<&[Line]> = lines.chunks(STEPS_PER_PAGE).take(MAX_PAGES).collect();
    let count = chunks.len().max(1);
    let hidden = lines.len().saturating_sub(MAX_PAGES * STEPS_PER_PAGE);
    (0..count)
        .map(|i| {
            let chunk = chunks.get(i).copied().unwrap_or_default();
            let top = match count {
                1 => heading.to_string(),
                n => format!("{heading} · {}/{n}", i + 1),
            };
            let bottom = (i + 1 == count).then(|| footer(hidden));
            page(&top, chunk, bottom.as_deref())
        })
        .collect()
}

fn footer(hidden: usize) -> String {
    match hidden {
        0 => HINT.to_string(),
        n => format!("…and {n} more steps: `/incident runbook` lists them all.\n{HINT}"),
    }
}

/// One page: each line fitted to an equal share of what the heading and footer leave.
fn page(top: &str, lines: &[Line], bottom: Option<&str>) -> Page {
    let top = fit(top, limit::CONTENT / 4);
    let bottom = bottom.map(|b| fit(b, limit::CONTENT / 4));
    let fixed = top.chars().count() + bottom.as_ref().map_or(0, |b| b.chars().count() + 1);
    let share = limit::CONTENT.saturating_sub(fixed) / lines.len().max(1);
    let mut content = top;
    for line in lines {
        content.push('\n');
        content.push_str(&render(line, share.saturating_sub(1)));
    }
    if let Some(bottom) = bottom {
        content.push('\n');
        content.push_str(&bottom);
    }
    Page {
        content: fit(&content, limit::CONTENT),
        open: lines
            .iter()
            .filter(|l| l.wants_ticking())
            .map(|l| l.step_id.clone())
            .collect(),
    }
}

/// `✅ T+3m `restore-db` Restore databases (team dba, manual) · done T+4m by @bob: note`,
/// within `budget` characters: the title and the note (the free text) are cut to what the
/// rest leaves, so what became of the step always shows.
fn render(line: &Line, budget: usize) -> String {
    let head = format!("{} {} `{}` ", line.mark(), line.target, line.step_id);
    let (status, note) = status(line);
    let tail = format!(
        " ({}, {}) · {status}",
        fit(&escape(&line.owner), OWNER),
        line.action
    );
    let room = budget.saturating_sub(head.chars().count() + tail.chars().count());
    let title_room = match note {
        Some(_) => room * 3 / 5,
        None => room,
    };
    let title = fit(&escape(&line.title), title_room.min(TITLE));
    let mut out = format!("{head}{title}{tail}");
    if let Some(note) = note {
        let left = room.saturating_sub(title.chars().count() + 2);
        if left > 0 {
            out.push_str(": ");
            out.push_str(&fit(&note, left.min(NOTE)));
        }
    }
    fit(&out, budget)
}

/// What became of a step, and its note (people's text, escaped) apart, to be cut first.
fn status(line: &Line) -> (String, Option<String>) {
    let LineState::Ended {
        outcome,
        at,
        by,
        note,
    } = &line.state
    else {
        return (line.status(), None);
    };
    let mut s = format!("{} {at}", outcome.as_str());
    if let Some(by) = by {
        s.push_str(" by ");
        s.push_str(&person(by));
    }
    (s, note.as_deref().map(escape))
}

/// The Done buttons of one page, five to a row; a step whose id would not make a valid
/// `custom_id` gets none (the grammar still ticks it).
pub fn buttons(number: IncidentNumber, open: &[String]) -> Vec<CreateActionRow> {
    let buttons: Vec<CreateButton> = open
        .iter()
        .map(|step| (step, reply::step_custom_id(number, step)))
        .filter(|(_, id)| id.len() <= CUSTOM_ID && reply::parse_step_custom_id(id).is_some())
        .take(BUTTONS_PER_ROW * ROWS)
        .map(|(step, id)| {
            CreateButton::new(id)
                .label(fit(&format!("Done: {step}"), LABEL))
                .style(ButtonStyle::Success)
        })
        .collect();
    buttons
        .chunks(BUTTONS_PER_ROW)
        .map(|row| CreateActionRow::Buttons(row.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StepOutcome;
    use serde_json::Value;

    fn line(i: usize, action: &'static str, state: LineState) -> Line {
        Line {
            step_id: format!("step-{i:02}-{}", "x".repeat(30)),
            title: format!("Do the *thing* number {i} {}", "and more ".repeat(20)),
            owner: "team dba".into(),
            target: format!("T+{i}m"),
            action,
            state,
        }
    }

    fn open(late: bool) -> LineState {
        LineState::Open {
            late,
            started: None,
        }
    }

    fn ended(note: &str) -> LineState {
        LineState::Ended {
            outcome: StepOutcome::Skipped,
            at: "T+12h30m".into(),
            by: Some("discord:80351110224678912".into()),
            note: Some(note.into()),
        }
    }

    /// Thirty manual steps with long titles and notes, every other one ended.
    fn thirty() -> Vec<Line> {
        (0..30)
            .map(|i| match i % 2 {
                0 => line(i, "manual", open(i < 4)),
                _ => line(i, "manual", ended(&"@everyone <@&1> ".repeat(40))),
            })
            .collect()
    }

    fn rows(number: i64, open: &[String]) -> Value {
        serde_json::to_value(buttons(IncidentNumber(number), open)).unwrap()
    }

    #[test]
    fn thirty_steps_stay_within_discords_limits() {
        let heading = format!("📋 **Runbook: {}** (big)", "T".repeat(300));
        let pages = paginate(&heading, &thirty());
        assert_eq!(pages.len(), 3);
        for (i, p) in pages.iter().enumerate() {
            assert!(p.content.chars().count() <= limit::CONTENT, "page {i}");
            assert!(
                p.content.contains(&format!(" · {}/3", i + 1)),
                "{}",
                p.content
            );
            assert!(!p.content.contains("@everyone") && !p.content.contains("<@&1>"));
            assert_eq!(p.open.len(), 5, "every other step is open");
            let lines: Vec<&str> = p.content.lines().skip(1).take(10).collect();
            assert!(lines.iter().all(|l| l.contains("`step-")), "{lines:?}");
            for ended in lines.iter().filter(|l| l.starts_with("⏭️")) {
                assert!(
                    ended.contains("skipped T+12h30m by <@80351110224678912>: "),
                    "what became of a step survives the cut: {ended}"
                );
            }
            let rows = rows(i64::MAX, &p.open);
            let rows = rows.as_array().unwrap();
            assert!(rows.len() <= ROWS);
            for row in rows {
                let buttons = row["components"].as_array().unwrap();
                assert!((1..=BUTTONS_PER_ROW).contains(&buttons.len()));
                for b in buttons {
                    assert!(b["custom_id"].as_str().unwrap().len() <= CUSTOM_ID);
                    assert!(b["label"].as_str().unwrap().chars().count() <= LABEL);
                }
            }
        }
        assert!(pages[2].content.ends_with(HINT), "{}", pages[2].content);
    }

    #[test]
    fn the_buttons_are_the_open_manual_steps_five_to_a_row() {
        let lines = vec![
            line(1, "manual", open(false)),
            line(2, "freeze", open(false)),
            line(3, "manual", ended("done")),
            line(4, "manual", open(true)),
        ];
        let pages = paginate("📋 Runbook", &lines);
        assert_eq!(pages.len(), 1);
        assert_eq!(
            pages[0].open,
            [lines[0].step_id.clone(), lines[3].step_id.clone()]
        );
        assert!(!pages[0].content.contains(" · 1/1"));
        let shown = rows(7, &pages[0].open);
        assert_eq!(shown.as_array().unwrap().len(), 1);
        let first = &shown[0]["components"][0];
        assert_eq!(
            first["custom_id"],
            format!("fb:rbdone:7:{}", lines[0].step_id)
        );
        assert_eq!(first["label"], format!("Done: {}", lines[0].step_id));
        let twelve: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
        let sizes: Vec<usize> = rows(7, &twelve)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["components"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [5, 5, 2]);
        assert!(buttons(IncidentNumber(7), &["Bad Id".into()]).is_empty());
    }

    #[test]
    fn past_the_last_page_steps_are_counted() {
        let lines: Vec<Line> = (0..105).map(|i| line(i, "manual", open(false))).collect();
        let pages = paginate("📋 Runbook", &lines);
        assert_eq!(pages.len(), MAX_PAGES);
        let last = &pages[MAX_PAGES - 1].content;
        assert!(last.contains("…and 5 more steps"), "{last}");
        assert!(last.chars().count() <= limit::CONTENT);
        assert_eq!(
            paginate("📋 Runbook", &[]).len(),
            1,
            "an empty runbook is one message"
        );
    }
}
