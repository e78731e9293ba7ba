//! The pure parts of the drill report: the recovery verdict, the milestones and their
//! fallbacks, the lists, and hostile text in the rendered table cells.

use std::time::Duration as StdDuration;

use chrono::TimeZone;

use super::*;
use crate::incident::model::{IncidentId, Severity, Status};
use crate::runbook::{Destination, Owner, Step};
use crate::store::StepPost;

fn declared() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    declared() + Duration::minutes(minutes)
}

fn incident(mitigated: Option<i64>, resolved: Option<i64>) -> Incident {
    Incident {
        id: IncidentId("inc".into()),
        number: IncidentNumber(7),
        title: "Region down".into(),
        severity: Severity::Sev1,
        status: if resolved.is_some() {
            Status::Resolved
        } else {
            Status::Investigating
        },
        drill: true,
        started_at: None,
        detected_at: None,
        declared_at: declared(),
        acknowledged_at: None,
        mitigated_at: mitigated.map(at),
        resolved_at: resolved.map(at),
        commander: None,
        comms: None,
        scribe: None,
        summary: None,
        last_update_at: None,
        next_update_due: None,
        reminded_due: None,
        declared_by: "cli:alice".into(),
        version: 1,
    }
}

fn step(id: &str, minutes: u64, action: Action) -> Step {
    Step {
        id: id.into(),
        title: format!("Step {id}"),
        at: StdDuration::from_secs(minutes * 60),
        owner: Owner::Commander,
        action,
    }
}

fn runbook(objective: Option<u64>) -> Runbook {
    Runbook {
        name: "regional".into(),
        title: "Regional outage".into(),
        severities: vec![Severity::Sev1],
        services: Vec::new(),
        recovery_objective: objective.map(|m| StdDuration::from_secs(m * 60)),
        steps: vec![
            step("announce", 0, Action::Announce),
            step("freeze", 2, Action::Freeze { repos: Vec::new() }),
            step("restore", 3, Action::Manual),
            step(
                "customers",
                10,
                Action::Notify {
                    to: Destination::Webhook("statuspage".into()),
                    text: "We are on it.".into(),
                },
            ),
            step("cleanup", 30, Action::Manual),
        ],
    }
}

/// How a step ended: its outcome, the minute, who, and the note.
type End<'a> = Option<(StepOutcome, i64, &'a str, Option<&'a str>)>;

/// The runbook with each step ended as `ends` says.
fn attached(rb: Runbook, ends: &[End<'_>]) -> AttachedRunbook {
    let steps = rb
        .steps
        .iter()
        .zip(ends.iter().chain(std::iter::repeat(&None)))
        .map(|(s, end)| StepRecord {
            step: s.clone(),
            target_at: declared() + Duration::from_std(s.at).unwrap(),
            started_at: None,
            started_by: None,
            outcome: end.map(|e| e.0),
            finished_at: end.map(|e| at(e.1)),
            finished_by: end.map(|e| e.2.to_string()),
            note: end.and_then(|e| e.3.map(str::to_string)),
            nudged_at: None,
        })
        .collect();
    AttachedRunbook {
        runbook: rb,
        attached_at: declared(),
        steps,
    }
}

fn report(i: &Incident, rb: &AttachedRunbook, m: &RunbookMilestones) -> DrillReport {
    build(&Facts {
        incident: i,
        runbook: rb,
        milestones: m,
        names: &Names::default(),
    })
}

#[test]
fn the_recovery_objective_is_met_missed_not_yet_or_absent() {
    let rb = runbook(Some(60));
    let met = recovery(&incident(Some(45), Some(90)), &rb);
    assert_eq!(met.verdict, "met");
    assert_eq!(
        met.sentence,
        "Recovery objective met: mitigated at T+45m, within 1h00m."
    );
    let missed = recovery(&incident(None, Some(75)), &rb);
    assert_eq!(missed.verdict, "missed");
    assert_eq!(
        missed.sentence,
        "Recovery objective missed: resolved at T+1h15m, 15m past 1h00m."
    );
    let exactly = recovery(&incident(Some(60), None), &rb);
    assert_eq!(exactly.verdict, "met", "on the objective is within it");
    assert_eq!(recovery(&incident(None, None), &rb).verdict, "not yet");
    let none = recovery(&incident(Some(5), None), &runbook(None));
    assert_eq!(none.verdict, "no objective");
}

#[test]
fn steps_show_target_actual_who_and_lateness() {
    use StepOutcome::*;
    let rb = attached(
        runbook(Some(180)),
        &[
            Some((Done, 0, "system:firebreak", Some("queued"))),
            Some((
                Failed,
                2,
                "system:firebreak",
                Some("GitHub is not configured"),
            )),
            Some((Done, 5, "cli:alice", None)),
        ],
    );
    let r = report(&incident(None, None), &rb, &RunbookMilestones::default());
    let restore = &r.steps[2];
    assert_eq!(
        (restore.target.as_str(), restore.actual.as_str()),
        ("T+3m", "T+5m")
    );
    assert_eq!(restore.late.as_deref(), Some("2m late"));
    assert_eq!(restore.who, "alice");
    assert_eq!(r.steps[0].who, "firebreak");
    assert_eq!(r.steps[1].outcome, "failed");
    assert_eq!(
        (r.steps[3].outcome, r.steps[3].actual.as_str()),
        ("open", "—")
    );
    assert_eq!(r.failed[0].detail, "GitHub is not configured");
    assert_eq!(r.late[0].id, "restore");
    assert_eq!(r.late[0].detail, "done at T+5m, target T+3m: 2m late");
    let never: Vec<&str> = r.never_done.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(never, ["customers", "cleanup"]);
    assert!(r.skipped.is_empty());
    assert_eq!(r.kind, "drill");
}

#[test]
fn a_started_step_is_open_with_who_started_it() {
    let mut rb = attached(runbook(None), &[]);
    rb.steps[2].started_at = Some(at(4));
    rb.steps[2].started_by = Some("cli:bob".into());
    let r = report(&incident(None, None), &rb, &RunbookMilestones::default());
    let restore = &r.steps[2];
    assert_eq!(
        (
            restore.outcome,
            restore.actual.as_str(),
            restore.who.as_str()
        ),
        ("started", "—", "bob")
    );
    assert_eq!(
        r.never_done[2].detail,
        "started at T+4m, still open (target T+3m)"
    );
}

#[test]
fn a_persons_skip_is_skipped_and_the_resolutions_is_never_done() {
    use StepOutcome::*;
    let rb = attached(
        runbook(None),
        &[
            None,
            Some((Skipped, 1, "slack:U1", Some("repos already frozen"))),
            None,
            None,
            Some((Skipped, 40, "system:firebreak", Some("not reached"))),
        ],
    );
    let r = report(
        &incident(None, Some(40)),
        &rb,
        &RunbookMilestones::default(),
    );
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].detail, "repos already frozen");
    assert_eq!(
        r.never_done.last().unwrap().detail,
        "not reached before the incident was resolved (target T+30m)"
    );
}

#[test]
fn milestones_prefer_the_record_then_the_step_then_say_why() {
    use StepOutcome::*;
    let rb = attached(
        runbook(None),
        &[
            Some((Done, 0, "system:firebreak", None)),
            Some((Failed, 2, "system:firebreak", Some("no GitHub"))),
            None,
            Some((Done, 10, "system:firebreak", Some("queued"))),
        ],
    );
    let m = RunbookMilestones {
        first_notice_at: Some(at(1) + Duration::seconds(30)),
        first_freeze_applied_at: None,
        step_posts: vec![
            StepPost {
                step_id: "announce".into(),
                delivered: true,
                at: at(0),
            },
            StepPost {
                step_id: "customers".into(),
                delivered: true,
                at: at(13),
            },
        ],
    };
    let r = report(&incident(None, None), &rb, &m);
    let [announce, freeze, customers] = &r.milestones[..] else {
        panic!("three milestones: {:?}", r.milestones)
    };
    assert_eq!(
        (announce.target.as_str(), announce.actual.as_str()),
        ("T+0s", "T+1m")
    );
    assert_eq!(announce.late.as_deref(), Some("1m late"));
    assert_eq!(
        announce.basis,
        "the first company-wide notice was delivered"
    );
    assert_eq!(freeze.actual, "not done");
    assert_eq!(freeze.basis, "step freeze failed: no GitHub");
    assert_eq!(customers.actual, "T+13m");
    assert_eq!(customers.late.as_deref(), Some("3m late"));
    let without = report(&incident(None, None), &rb, &RunbookMilestones::default());
    assert_eq!(without.milestones[2].actual, "T+10m");
    assert_eq!(
        without.milestones[2].basis,
        "step customers was done (no delivery on record)"
    );
}

#[test]
fn a_runbook_without_the_step_says_so() {
    let mut rb = runbook(None);
    rb.steps.retain(|s| s.action.is_manual());
    let r = report(
        &incident(None, None),
        &attached(rb, &[]),
        &RunbookMilestones::default(),
    );
    assert_eq!(r.milestones[0].target, "no step");
    assert_eq!(
        r.milestones[0].basis,
        "the runbook has no step for it, and nothing was recorded"
    );
}

const HOSTILE: &str = "<script>alert('x')</script> | pipe *em* [l](javascript:x) `c`\nline 2";

#[test]
fn hostile_text_stays_in_its_cell() {
    let mut rb = runbook(Some(60));
    rb.title = HOSTILE.into();
    rb.steps[2].title = HOSTILE.into();
    let long = format!("{HOSTILE} {}", "x".repeat(4000));
    let rb = attached(
        rb,
        &[
            None,
            None,
            Some((StepOutcome::Skipped, 4, "cli:alice", Some(&long))),
        ],
    );
    let mut i = incident(None, None);
    i.title = HOSTILE.into();
    let r = report(&i, &rb, &RunbookMilestones::default());
    assert!(r.steps[2].note.as_ref().unwrap().chars().count() <= TABLE_NOTE_CHARS + 1);
    assert_eq!(r.skipped[0].detail, long, "the list keeps the whole note");
    let md = markdown(&r).unwrap();
    assert!(!md.contains("<script>"), "{md}");
    for line in md.lines().filter(|l| l.starts_with("| `")) {
        let unescaped = line
            .match_indices('|')
            .filter(|(i, _)| !line[..*i].ends_with('\\'));
        assert_eq!(unescaped.count(), 9, "eight cells: {line}");
    }
    let html = html(&r).unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;"));
}
