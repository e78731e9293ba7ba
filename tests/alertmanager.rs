//! `POST /api/alertmanager` with Alertmanager's real webhook payloads
//! (tests/fixtures/alertmanager): one incident per alert group with the mapped severity, an
//! update only when the set of firing alerts changes, a note (and a resolution when
//! configured) on `resolved`, a new incident when a group people resolved fires again, and
//! de-duplication that survives a restart and racing deliveries. On SQLite and Postgres.

mod common;

use common::machine::{Answer, MachineApi};
use common::*;
use firebreak::incident::{EntryKind, IncidentNumber, Severity, Source, Status};
use serde_json::Value;

on_both!(
    a_firing_group_declares_with_the_mapped_severity,
    a_repeated_firing_adds_nothing,
    a_new_alert_in_the_group_adds_one_update,
    resolved_adds_a_note_and_resolves_only_when_configured,
    each_group_gets_its_own_incident,
    a_group_people_resolved_opens_a_new_incident_when_it_fires_again,
    a_restart_keeps_the_groups,
    racing_deliveries_of_one_group_declare_once,
    truncated_groups_say_so,
    a_firing_notification_without_alerts_does_nothing,
    another_payload_version_is_refused,
);

const MAPPING: &str = "[alertmanager]\nseverity_label = \"severity\"\nseverity_map = { critical = \"SEV1\", warning = \"sev3\" }\ndefault_severity = \"SEV4\"\n";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/alertmanager/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn start(backend: Backend, extra: &str) -> MachineApi {
    MachineApi::start(
        backend,
        test_config(&format!("{MAPPING}{extra}")),
        "alertmanager",
        &["declare"],
    )
    .await
}

async fn send(api: &MachineApi, name: &str) -> Answer {
    let a = api.post("/api/alertmanager", &fixture(name), None).await;
    assert_eq!(a.status, 200, "{name}: {:?}", a.body);
    a
}

async fn incident(api: &MachineApi, n: i64) -> firebreak::incident::Incident {
    api.app
        .store
        .incident_by_number(IncidentNumber(n))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("INC-{n} exists"))
}

fn count(timeline: &[firebreak::incident::TimelineEntry], kind: EntryKind) -> usize {
    timeline.iter().filter(|e| e.kind == kind).count()
}

async fn a_firing_group_declares_with_the_mapped_severity(backend: Backend) {
    let api = start(backend, "").await;
    let a = send(&api, "firing").await;
    assert_eq!(a.body["action"], "declared");
    assert_eq!(a.body["incident"], "INC-1");
    let inc = incident(&api, 1).await;
    assert_eq!(inc.severity, Severity::Sev1, "critical maps to SEV1");
    assert_eq!(inc.title, "Checkout API error rate above 5%");
    assert_eq!(inc.declared_by, "api:alertmanager");
    let timeline = api.timeline(1).await;
    assert!(timeline.iter().all(|e| e.source == Source::Api));
    let note = timeline
        .iter()
        .find(|e| e.kind == EntryKind::Note)
        .expect("a note");
    assert!(note.text.contains("1 alert firing"), "{}", note.text);
    assert!(note.text.contains("HighErrorRate"), "{}", note.text);
    assert!(
        note.text.contains("http://alertmanager.example.com:9093"),
        "{}",
        note.text
    );
}

async fn a_repeated_firing_adds_nothing(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "firing").await;
    let before = api.timeline(1).await.len();
    let a = send(&api, "repeated").await;
    assert_eq!(a.body["action"], "nothing");
    assert_eq!(a.body["incident"], "INC-1");
    assert_eq!(api.timeline(1).await.len(), before);
    assert_eq!(api.incident_count().await, 1);
}

async fn a_new_alert_in_the_group_adds_one_update(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "firing").await;
    let a = send(&api, "repeated_new_alert").await;
    assert_eq!(a.body["action"], "updated");
    let timeline = api.timeline(1).await;
    assert_eq!(count(&timeline, EntryKind::Update), 1);
    let update = timeline
        .iter()
        .find(|e| e.kind == EntryKind::Update)
        .unwrap();
    assert!(
        update.text.contains("2 alerts firing now"),
        "{}",
        update.text
    );
    assert!(update.text.contains("api-2:9090"), "{}", update.text);
    // The same two alerts again: nothing.
    assert_eq!(
        send(&api, "repeated_new_alert").await.body["action"],
        "nothing"
    );
    // Back to one alert: the set changed again.
    assert_eq!(send(&api, "firing").await.body["action"], "updated");
    let timeline = api.timeline(1).await;
    assert_eq!(count(&timeline, EntryKind::Update), 2);
    assert!(
        timeline
            .last()
            .unwrap()
            .text
            .contains("1 alert no longer firing")
    );
    assert_eq!(api.incident_count().await, 1);
}

async fn resolved_adds_a_note_and_resolves_only_when_configured(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "firing").await;
    let notes = count(&api.timeline(1).await, EntryKind::Note);
    let a = send(&api, "resolved").await;
    assert_eq!(a.body["action"], "noted");
    assert_eq!(count(&api.timeline(1).await, EntryKind::Note), notes + 1);
    assert_ne!(incident(&api, 1).await.status, Status::Resolved);
    assert_eq!(
        send(&api, "resolved").await.body["action"],
        "nothing",
        "noted once"
    );

    let api = start(backend, "resolve_on_resolved = true\n").await;
    send(&api, "firing").await;
    let a = send(&api, "resolved").await;
    assert_eq!(a.body["action"], "resolved");
    let inc = incident(&api, 1).await;
    assert_eq!(inc.status, Status::Resolved);
    assert_eq!(count(&api.timeline(1).await, EntryKind::Resolved), 1);
}

async fn each_group_gets_its_own_incident(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "firing").await;
    let a = send(&api, "grouped").await;
    assert_eq!(
        (a.body["action"].as_str(), a.body["incident"].as_str()),
        (Some("declared"), Some("INC-2"))
    );
    assert_eq!(api.incident_count().await, 2);
    let grouped = incident(&api, 2).await;
    assert_eq!(grouped.title, "NodeFilesystemAlmostFull");
    assert_eq!(
        grouped.severity,
        Severity::Sev1,
        "the most severe alert of the group"
    );
    let note = api
        .timeline(2)
        .await
        .into_iter()
        .find(|e| e.kind == EntryKind::Note)
        .unwrap();
    assert!(note.text.contains("2 alerts firing"), "{}", note.text);
    assert!(
        note.text.contains("node-7:9100") && note.text.contains("node-9:9100"),
        "{}",
        note.text
    );
    // Both groups again: nothing new for either.
    assert_eq!(send(&api, "grouped").await.body["action"], "nothing");
    assert_eq!(send(&api, "firing").await.body["action"], "nothing");
    assert_eq!(api.incident_count().await, 2);
}

async fn a_group_people_resolved_opens_a_new_incident_when_it_fires_again(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "firing").await;
    api.as_caller("oncall", &["update"])
        .await
        .post("/api/incidents/1/resolve", &serde_json::json!({}), None)
        .await;
    assert_eq!(incident(&api, 1).await.status, Status::Resolved);
    assert_eq!(send(&api, "resolved").await.body["action"], "nothing");
    let a = send(&api, "firing").await;
    assert_eq!(
        (a.body["action"].as_str(), a.body["incident"].as_str()),
        (Some("declared"), Some("INC-2"))
    );
    assert_eq!(send(&api, "repeated").await.body["action"], "nothing");
    assert_eq!(api.incident_count().await, 2);
}

async fn a_restart_keeps_the_groups(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "firing").await;
    let before = api.timeline(1).await.len();
    let api = api.restart(test_config(MAPPING)).await;
    assert_eq!(send(&api, "repeated").await.body["action"], "nothing");
    assert_eq!(api.timeline(1).await.len(), before);
    assert_eq!(
        send(&api, "repeated_new_alert").await.body["action"],
        "updated"
    );
    assert_eq!(api.incident_count().await, 1);
}

async fn racing_deliveries_of_one_group_declare_once(backend: Backend) {
    let api = start(backend, "").await;
    let body = fixture("firing");
    let answers =
        futures::future::join_all((0..6).map(|_| api.post("/api/alertmanager", &body, None))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(api.incident_count().await, 1, "{answers:?}");
    assert_eq!(count(&api.timeline(1).await, EntryKind::Declared), 1);
    let grown = fixture("repeated_new_alert");
    let answers =
        futures::future::join_all((0..6).map(|_| api.post("/api/alertmanager", &grown, None)))
            .await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(
        count(&api.timeline(1).await, EntryKind::Update),
        1,
        "{answers:?}"
    );
}

async fn truncated_groups_say_so(backend: Backend) {
    let api = start(backend, "").await;
    send(&api, "truncated").await;
    let inc = incident(&api, 1).await;
    assert_eq!(inc.severity, Severity::Sev3, "warning maps to SEV3");
    let note = api
        .timeline(1)
        .await
        .into_iter()
        .find(|e| e.kind == EntryKind::Note)
        .unwrap();
    assert!(note.text.contains("52 alerts firing"), "{}", note.text);
    assert!(note.text.contains("and 50 more"), "{}", note.text);
    let unscoped = api
        .as_caller("readonly", &["read"])
        .await
        .post("/api/alertmanager", &fixture("firing"), None)
        .await;
    assert_eq!(unscoped.status, 403);
    let bad = api
        .post_raw("/api/alertmanager", "{\"status\": \"firing\"}")
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().contains("groupKey"), "{}", bad.error());
}

/// `alerts: []` with status firing (a hand-made or broken sender) declares nothing, and
/// adds nothing to a group's open incident.
async fn a_firing_notification_without_alerts_does_nothing(backend: Backend) {
    let api = start(backend, "").await;
    let mut empty = fixture("firing");
    empty["alerts"] = Value::Array(vec![]);
    let a = api.post("/api/alertmanager", &empty, None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["action"], "nothing", "{:?}", a.body);
    assert!(
        a.body["detail"].as_str().unwrap().contains("no alerts"),
        "{:?}",
        a.body
    );
    assert_eq!(api.incident_count().await, 0);
    send(&api, "firing").await;
    let before = api.timeline(1).await.len();
    let a = api.post("/api/alertmanager", &empty, None).await;
    assert_eq!(a.body["action"], "nothing", "{:?}", a.body);
    assert_eq!(api.timeline(1).await.len(), before);
}

/// Alertmanager sends `"version": "4"`; another version is refused with a sentence that
/// names the one read, and changes nothing.
async fn another_payload_version_is_refused(backend: Backend) {
    let api = start(backend, "").await;
    for version in [Value::from("5"), Value::Null] {
        let mut payload = fixture("firing");
        match &version {
            Value::Null => {
                payload.as_object_mut().unwrap().remove("version");
            }
            v => payload["version"] = v.clone(),
        }
        let a = api.post("/api/alertmanager", &payload, None).await;
        assert_eq!(a.status, 400, "{version}: {:?}", a.body);
        assert!(a.error().contains("version \"4\""), "{}", a.error());
    }
    assert_eq!(api.incident_count().await, 0);
}
