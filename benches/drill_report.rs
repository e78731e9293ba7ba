//! Benchmark: build the drill report of a 50-step runbook (every outcome, notes with
//! Markdown and HTML to escape, some long enough to be cut) and render it to Markdown and
//! to the HTML page (target: under 10 ms). Prints p50/p99/max over 500 runs.
//! Run with `cargo bench --bench drill_report`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use firebreak::incident::model::{Incident, IncidentId, IncidentNumber, Severity, Status};
use firebreak::people::Names;
use firebreak::runbook::report::{self, Facts};
use firebreak::runbook::{Action, Destination, Owner, Runbook, Step};
use firebreak::store::{AttachedRunbook, RunbookMilestones, StepOutcome, StepPost, StepRecord};

const STEPS: usize = 50;
const RUNS: usize = 500;

fn main() {
    let declared = Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap();
    let incident = incident(declared);
    let runbook = attached(declared);
    let milestones = RunbookMilestones {
        first_notice_at: Some(declared + chrono::Duration::seconds(40)),
        first_freeze_applied_at: Some(declared + chrono::Duration::minutes(3)),
        step_posts: vec![StepPost {
            step_id: "step-4".into(),
            delivered: true,
            at: declared + chrono::Duration::minutes(9),
        }],
    };
    let names = Names::new(HashMap::from([(
        "slack:U_ALICE".to_string(),
        "Alice Liddell".to_string(),
    )]));
    let facts = Facts {
        incident: &incident,
        runbook: &runbook,
        milestones: &milestones,
        names: &names,
    };
    let mut samples = Vec::with_capacity(RUNS);
    let mut sizes = (0, 0);
    for _ in 0..RUNS {
        let start = Instant::now();
        let r = report::build(&facts);
        let md = report::markdown(&r).unwrap();
        let html = report::html(&r).unwrap();
        samples.push(start.elapsed());
        sizes = (md.len(), html.len());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    println!(
        "drill report for {STEPS} steps (view + Markdown {} KiB + HTML {} KiB), {RUNS} runs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target: under 10 ms)",
        sizes.0 / 1024,
        sizes.1 / 1024,
        at(0.50),
        at(0.99),
        ms(*samples.last().unwrap())
    );
}

fn incident(declared: DateTime<Utc>) -> Incident {
    Incident {
        id: IncidentId::new(),
        number: IncidentNumber(42),
        title: "Region <eu-west> down | checkout & payments".into(),
        severity: Severity::Sev1,
        status: Status::Resolved,
        drill: true,
        started_at: None,
        detected_at: None,
        declared_at: declared,
        acknowledged_at: Some(declared + chrono::Duration::minutes(1)),
        mitigated_at: Some(declared + chrono::Duration::minutes(95)),
        resolved_at: Some(declared + chrono::Duration::hours(3)),
        commander: Some("slack:U_ALICE".into()),
        comms: None,
        scribe: None,
        summary: None,
        last_update_at: None,
        next_update_due: None,
        reminded_due: None,
        declared_by: "slack:U_ALICE".into(),
        version: 1,
    }
}

/// Fifty steps of every action, ended every way.
fn attached(declared: DateTime<Utc>) -> AttachedRunbook {
    let steps: Vec<Step> = (0..STEPS).map(step).collect();
    let runbook = Runbook {
        name: "regional".into(),
        title: "Regional outage: fail over <everything> | the whole region".into(),
        severities: vec![Severity::Sev1],
        services: Vec::new(),
        recovery_objective: Some(Duration::from_secs(2 * 3600)),
        steps: steps.clone(),
    };
    let records = steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| record(declared, i, s))
        .collect();
    AttachedRunbook {
        runbook,
        attached_at: declared,
        steps: records,
    }
}

fn step(i: usize) -> Step {
    let action = match i % 5 {
        0 => Action::Announce,
        1 => Action::Freeze { repos: Vec::new() },
        2 | 3 => Action::Manual,
        _ => Action::Notify {
            to: Destination::Webhook("statuspage".into()),
            text: "We are investigating.".into(),
        },
    };
    Step {
        id: format!("step-{i}"),
        title: format!("Step {i}: check the *replicas* in <region> | and [report](https://x)"),
        at: Duration::from_secs(60 * i as u64),
        owner: if i % 3 == 0 {
            Owner::Team("dba | ops".into())
        } else {
            Owner::Commander
        },
        action,
    }
}

fn record(declared: DateTime<Utc>, i: usize, step: Step) -> StepRecord {
    let target = declared + chrono::Duration::minutes(i as i64);
    let outcome = match i % 4 {
        0 | 1 => Some(StepOutcome::Done),
        2 => Some(StepOutcome::Skipped),
        _ => (i % 8 == 3).then_some(StepOutcome::Failed),
    };
    let note = match i % 6 {
        0 => Some(format!(
            "Note {i}: <script>alert(1)</script> | `code` & *more*\n{}",
            "long ".repeat(60)
        )),
        1 => Some("short note".to_string()),
        _ => None,
    };
    StepRecord {
        step,
        target_at: target,
        started_at: None,
        started_by: None,
        outcome,
        finished_at: outcome.map(|_| target + chrono::Duration::seconds(45 * (i as i64 % 5))),
        finished_by: outcome.map(|_| "slack:U_ALICE".to_string()),
        note,
        nudged_at: None,
    }
}
