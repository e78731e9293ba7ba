//! Benchmark: build the post-mortem view and render the Markdown and the HTML page with its
//! SVG chart for an incident with 10,000 timeline entries (target: under 50 ms).
//! Run with `cargo bench --bench postmortem`.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use firebreak::incident::model::{Incident, IncidentId, IncidentNumber, Severity, Status};
use firebreak::incident::timeline::{EntryKind, Source, TimelineEntry};
use firebreak::postmortem::{render, view};

fn main() {
    let declared = Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap();
    let incident = Incident {
        id: IncidentId::new(),
        number: IncidentNumber(42),
        title: "Checkout API returns 502".into(),
        severity: Severity::Sev1,
        status: Status::Resolved,
        drill: false,
        started_at: Some(declared - chrono::Duration::minutes(18)),
        detected_at: Some(declared - chrono::Duration::minutes(9)),
        declared_at: declared,
        acknowledged_at: Some(declared + chrono::Duration::minutes(3)),
        mitigated_at: Some(declared + chrono::Duration::hours(20)),
        resolved_at: Some(declared + chrono::Duration::hours(30)),
        commander: Some("carol".into()),
        comms: Some("bob".into()),
        scribe: None,
        summary: None,
        last_update_at: None,
        next_update_due: None,
        reminded_due: None,
        declared_by: "alice".into(),
        version: 1,
    };
    let kinds = [
        EntryKind::Note,
        EntryKind::Update,
        EntryKind::Note,
        EntryKind::RoleAssigned,
        EntryKind::StatusChanged,
    ];
    let timeline: Vec<TimelineEntry> = (0..10_000)
        .map(|i| TimelineEntry {
            id: i,
            incident_id: Some(incident.id.clone()),
            occurred_at: declared + chrono::Duration::seconds(i * 10),
            recorded_at: declared + chrono::Duration::seconds(i * 10),
            actor: format!("responder-{}", i % 7),
            source: Source::Slack,
            kind: kinds[i as usize % kinds.len()],
            // Updates are authored Markdown: emphasis, code, a link, and raw HTML to defuse.
            text: format!(
                "Entry {i}: something <happened> & was *noted* in `pool` ([graph](https://grafana.example/{i})) → identified"
            ),
        })
        .collect();
    let promises: Vec<_> = (0..2000)
        .map(|i| {
            (
                declared + chrono::Duration::seconds(i * 50),
                declared + chrono::Duration::seconds(i * 50 + 1800),
            )
        })
        .collect();
    let facts = view::Facts {
        incident: &incident,
        timeline: &timeline,
        promises: &promises,
        fields: &[],
        actions: &[],
        authors: &["alice".to_string()],
        review: &(Some("in-review".to_string()), vec!["dana".to_string()]),
        names: &firebreak::people::Names::default(),
        runbook: None,
    };
    let mut samples = Vec::new();
    let mut sizes = (0, 0);
    for _ in 0..20 {
        let start = Instant::now();
        let v = view::build(&facts);
        let md = render::markdown(&v).unwrap();
        let html = render::html(&v).unwrap();
        samples.push(start.elapsed());
        sizes = (md.len(), html.len());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "post-mortem for 10,000 entries (view + Markdown {} KiB + HTML/SVG {} KiB): median {:.1} ms, max {:.1} ms",
        sizes.0 / 1024,
        sizes.1 / 1024,
        ms(samples[samples.len() / 2]),
        ms(*samples.last().unwrap())
    );
}
