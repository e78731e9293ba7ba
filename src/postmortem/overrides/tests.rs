//! The built-in templates written as Jinja render the askama built-ins' bytes, on a view that
//! takes every branch of the templates with hostile text in every field; values print and
//! escape as askama prints and escapes them.

use super::super::chart::{Chart, Update};
use super::super::view::*;
use super::*;
use crate::store::{ActionItem, Flag};

/// Every character the escapers and Markdown care about, and a second line.
const HOSTILE: &str =
    "<script>alert('x')</script> & \"q\" *em* _u_ # [l](javascript:x) | `c` \\ /\nline 2";

fn row(body: Option<&str>) -> Row {
    Row {
        time: "2026-03-14 09:00:00".into(),
        offset: "T+0s".into(),
        actor: HOSTILE.into(),
        kind: "note".into(),
        text: HOSTILE.into(),
        sentence: HOSTILE.into(),
        body: body.map(str::to_string),
    }
}

/// Rows with a body, without one and with an empty one; none unless `full`.
fn rows(full: bool) -> Vec<Row> {
    if !full {
        return Vec::new();
    }
    vec![row(Some(HOSTILE)), row(None), row(Some(""))]
}

fn action(number: i64, owner: Option<&str>, done: bool) -> ActionItem {
    ActionItem {
        number,
        text: format!("{HOSTILE}\n\n- a list"),
        owner: owner.map(str::to_string),
        term: "immediate".into(),
        done: Flag(done),
    }
}

fn doc(full: bool) -> DocMeta {
    let some = |s: &str| full.then(|| s.to_string());
    DocMeta {
        date: "2026-03-14".into(),
        status: "draft".into(),
        authors: some(HOSTILE).into_iter().collect(),
        reviewers: [some("dana"), some(HOSTILE)]
            .into_iter()
            .flatten()
            .collect(),
        declared: "2026-03-14T09:00:00Z".into(),
        resolved: some("2026-03-14T10:00:00Z"),
    }
}

fn durations() -> Vec<DurationRow> {
    [(HOSTILE, true), ("1h", false)]
        .into_iter()
        .map(|(value, flagged)| DurationRow {
            label: "Time to detect",
            value: value.into(),
            flagged,
        })
        .collect()
}

fn actions(full: bool) -> Vec<ActionGroup> {
    let items = match full {
        true => vec![action(1, Some(HOSTILE), true), action(2, None, false)],
        false => Vec::new(),
    };
    vec![
        ActionGroup {
            term: "immediate",
            items,
        },
        ActionGroup {
            term: "long",
            items: Vec::new(),
        },
    ]
}

/// Every other section written, or all of them when `full`.
fn sections(full: bool) -> Vec<Section> {
    (0..10)
        .map(|i| Section {
            title: "A title",
            field: "went-well",
            text: (full || i % 2 == 0).then(|| HOSTILE.to_string()),
        })
        .collect()
}

fn updates(full: bool) -> Vec<UpdateRow> {
    rows(full)
        .into_iter()
        .zip([Some(true), Some(false), None])
        .map(|(row, on_time)| UpdateRow {
            row,
            due: HOSTILE.into(),
            on_time,
        })
        .collect()
}

fn step_ref() -> crate::runbook::report::StepRef {
    crate::runbook::report::StepRef {
        id: "restore".into(),
        title: HOSTILE.into(),
        detail: HOSTILE.into(),
    }
}

/// A runbook report with hostile text everywhere, every option set on one row and unset
/// on the other, and a missed objective (the one verdict with its own markup).
fn runbook() -> crate::runbook::report::DrillReport {
    use crate::runbook::report::{DrillReport, Milestone, Recovery, StepRow};
    let step = |outcome: &'static str, set: bool| StepRow {
        id: "restore".into(),
        title: HOSTILE.into(),
        owner: HOSTILE.into(),
        action: "manual",
        target: "T+3m".into(),
        actual: "T+5m".into(),
        outcome,
        who: HOSTILE.into(),
        late: set.then(|| "2m late".into()),
        note: set.then(|| HOSTILE.into()),
    };
    let milestone = |set: bool| Milestone {
        label: "Time to freeze",
        target: "T+2m".into(),
        actual: "not done".into(),
        late: set.then(|| "1m late".into()),
        basis: HOSTILE.into(),
    };
    DrillReport {
        number: "INC-7".into(),
        title: HOSTILE.into(),
        severity: "SEV1".into(),
        status: "resolved".into(),
        drill: true,
        kind: "drill",
        declared: "2026-03-14 09:00:00 UTC".into(),
        runbook_name: "regional".into(),
        runbook_title: HOSTILE.into(),
        steps: vec![step("failed", true), step("done", false)],
        skipped: vec![step_ref()],
        failed: vec![step_ref()],
        late: vec![step_ref()],
        never_done: vec![step_ref()],
        long_notes: vec![step_ref()],
        milestones: vec![milestone(true), milestone(false)],
        recovery: Recovery {
            verdict: "missed",
            sentence: HOSTILE.into(),
        },
    }
}

fn chart() -> Chart {
    Chart {
        span_ms: 3_600_000,
        declared_ms: 600_000,
        phases: vec![("investigating".into(), 600_000, 3_600_000)],
        freeze: vec![(700_000, 900_000)],
        updates: vec![Update {
            at: 800_000,
            due: Some(700_000),
        }],
    }
}

/// Every list filled and every option set (`full`), or every list empty and every option
/// unset: between them, every branch of the templates.
fn view(full: bool) -> PostmortemView {
    PostmortemView {
        number: "INC-7".into(),
        title: HOSTILE.into(),
        severity: "SEV1".into(),
        status: "resolved".into(),
        drill: full,
        doc: doc(full),
        key_times: vec![KeyTime {
            label: "Started",
            value: HOSTILE.into(),
        }],
        durations: durations(),
        durations_from: HOSTILE.into(),
        timeline: rows(full),
        appendix: rows(full),
        roles: vec![RoleRow {
            role: "Commander",
            holder: HOSTILE.into(),
        }],
        role_changes: rows(full),
        updates: updates(full),
        freeze: rows(full),
        recent_changes: rows(full),
        actions: actions(full),
        sections: sections(full),
        runbook: full.then(runbook),
        chart: chart(),
    }
}

#[test]
fn the_exported_templates_render_the_built_ins_bytes_on_every_branch() {
    for full in [true, false] {
        let v = view(full);
        for (format, built_in) in [
            (Format::Markdown, render::markdown(&v).unwrap()),
            (Format::Html, render::html(&v).unwrap()),
        ] {
            let jinja = render_jinja(format, format.jinja_source().into(), &v).unwrap();
            assert!(
                jinja == built_in,
                "{format:?} (full: {full}):\n{jinja}\n---\n{built_in}"
            );
        }
    }
}

#[test]
fn values_print_and_escape_as_askama_prints_and_escapes_them() {
    let html = HTML
        .render_str(
            "{{ x }}|{{ x|safe }}|{{ t }}",
            context! { x => "<a href='/'>&\"</a>", t => true },
        )
        .unwrap();
    assert_eq!(
        html,
        "&#60;a href=&#39;/&#39;&#62;&#38;&#34;&#60;/a&#62;|<a href='/'>&\"</a>|true"
    );
    let md = MARKDOWN
        .render_str(
            "{{ x }} {{ md(x) }} {{ t }}",
            context! { x => "<b>*", t => false },
        )
        .unwrap();
    assert_eq!(md, "<b>* \\<b\\>\\* false");
}
