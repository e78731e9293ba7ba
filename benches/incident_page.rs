//! Benchmark: the incident page (`GET /incidents/INC-1`, signed in with a read token) for an
//! incident with 10,000 timeline entries, over loopback against `serve`'s router on SQLite:
//! load from the database, name the people, read the freeze and chat rooms, render the
//! askama page (target: under 50 ms on the server). Prints p50/p99/max of the whole round
//! trip and a breakdown of the reads. Run with `cargo bench --bench incident_page`.

use std::time::{Duration, Instant};

use chrono::Utc;
use firebreak::app::App;
use firebreak::auth::{Scopes, new_token, token_hash};
use firebreak::config::Config;
use firebreak::incident::command::{self, ParseOptions};
use firebreak::incident::timeline::{EntryKind, NewEntry, Source};
use firebreak::incident::{Actor, IncidentNumber};
use firebreak::store::{NewToken, Store};
use tokio_util::sync::CancellationToken;

const ENTRIES: i64 = 10_000;
const REQUESTS: usize = 50;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url).await.unwrap();
    let app = App::with_store(Config::default(), store.clone(), Default::default()).unwrap();
    let declare = command::parse_line(
        "declare sev1 Checkout API returns 502",
        ParseOptions::default(),
    )
    .unwrap();
    let alice = Actor::new(Source::Slack, "U_ALICE", "alice");
    app.service.apply(declare, &alice).await.unwrap();
    let incident = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    fill_timeline(&store, &incident.id).await;
    let token = new_token();
    let scopes = Scopes::parse("read").unwrap();
    store
        .create_token(&NewToken {
            name: "bench",
            hash: &token_hash(&token),
            scopes: &scopes,
            created_by: "cli:bench",
            at: Utc::now(),
        })
        .await
        .unwrap();

    stages(&app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.serve(listener, shutdown.clone()));
    let http = reqwest::Client::new();
    let page = format!("{base}/incidents/INC-1");
    let mut samples = Vec::with_capacity(REQUESTS);
    let mut size = 0;
    for i in 0..REQUESTS + 5 {
        let start = Instant::now();
        let resp = http.get(&page).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        size = resp.bytes().await.unwrap().len();
        if i >= 5 {
            samples.push(start.elapsed());
        }
    }
    shutdown.cancel();
    report(samples, size);
}

/// Where a page's time goes: the incident row, its timeline (the page's narrow read, and
/// the full entries `GET /api/incidents/{n}` reads, for comparison), naming the people, the
/// freeze view. What the page takes beyond these is rendering and the HTTP round trip.
async fn stages(app: &App) {
    let n = IncidentNumber(1);
    let (mut incident, mut shown, mut full, mut names, mut freeze) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10 {
        let start = Instant::now();
        let i = app.store.incident_by_number(n).await.unwrap().unwrap();
        incident.push(start.elapsed());
        let start = Instant::now();
        let entries = app.store.timeline_shown(&i.id).await.unwrap();
        shown.push(start.elapsed());
        let start = Instant::now();
        let _ = app.store.timeline(&i.id).await.unwrap();
        full.push(start.elapsed());
        let start = Instant::now();
        let actors: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.actor.as_str()).collect();
        let _ = app
            .store
            .names(firebreak::people::named_in(&i, &[], actors))
            .await
            .unwrap();
        names.push(start.elapsed());
        let start = Instant::now();
        let _ = app.read.freeze().await.unwrap();
        freeze.push(start.elapsed());
    }
    let ms = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    println!(
        "  stages (p50): incident {:.1} ms, timeline as the page reads it {:.1} ms \
         (full entries: {:.1} ms), names {:.1} ms, freeze {:.1} ms",
        ms(&mut incident),
        ms(&mut shown),
        ms(&mut full),
        ms(&mut names),
        ms(&mut freeze),
    );
}

/// `ENTRIES` entries of the usual kinds, in one transaction.
async fn fill_timeline(store: &Store, incident: &firebreak::incident::IncidentId) {
    let kinds = [EntryKind::Note, EntryKind::Update, EntryKind::StatusChanged];
    let start = Utc::now() - chrono::Duration::hours(30);
    let mut tx = store.begin().await.unwrap();
    for i in 0..ENTRIES {
        tx.append_timeline(&NewEntry {
            incident_id: Some(incident.clone()),
            occurred_at: start + chrono::Duration::seconds(i * 10),
            actor: format!("slack:U{}", i % 7),
            source: Source::Slack,
            kind: kinds[i as usize % kinds.len()],
            text: format!("Entry {i}: something <happened> & was *noted* → identified"),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

fn report(mut samples: Vec<Duration>, size: usize) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "incident page, {ENTRIES} timeline entries ({} KB of HTML), {REQUESTS} requests: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target: under 50 ms)",
        size / 1024,
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
    );
}
