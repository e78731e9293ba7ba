//! Read-only HTTP handlers. Internal errors are logged with context and answered with a
//! generic 500; nothing internal is echoed to the caller.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::App;
use crate::incident::{Incident, IncidentNumber, Status, TimelineEntry};
use crate::postmortem::overrides::Format;

/// An incident as the API shows it: the stored fields plus its `INC-n` key.
#[derive(Serialize)]
pub struct IncidentView {
    pub key: String,
    #[serde(flatten)]
    pub incident: Incident,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntryView>>,
}

/// A timeline entry with its T+ offset from the declaration.
#[derive(Serialize)]
pub struct TimelineEntryView {
    pub offset: String,
    #[serde(flatten)]
    pub entry: TimelineEntry,
}

impl IncidentView {
    pub fn new(incident: Incident, timeline: Option<Vec<TimelineEntry>>) -> Self {
        let declared = incident.declared_at;
        Self {
            key: incident.number.to_string(),
            timeline: timeline.map(|entries| {
                entries
                    .into_iter()
                    .map(|entry| TimelineEntryView {
                        offset: entry.offset_from(declared),
                        entry,
                    })
                    .collect()
            }),
            incident,
        }
    }
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready means the store takes writes (every command is a write), checked with a write that
/// is rolled back, and answered within a second whatever the database is doing.
pub async fn readyz(State(app): State<App>) -> Response {
    let probe = tokio::time::timeout(READY_WITHIN, app.store.probe_write()).await;
    let problem = match probe {
        Ok(Ok(())) => {
            return Json(json!({ "status": "ready", "database": "ok" })).into_response();
        }
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "readiness check: the database refused a write");
            "refuses writes"
        }
        Err(_) => {
            tracing::error!("readiness check: the database did not answer within 1 s");
            "unreachable"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "not ready", "database": problem })),
    )
        .into_response()
}

const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    open: bool,
}

pub async fn list_incidents(State(app): State<App>, Query(q): Query<ListQuery>) -> Response {
    match app.store.list_incidents(q.open, 500).await {
        Ok(list) => Json(
            list.into_iter()
                .map(|i| IncidentView::new(i, None))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => internal("listing incidents", e),
    }
}

pub async fn show_incident(State(app): State<App>, Path(number): Path<String>) -> Response {
    let Some(n) = IncidentNumber::parse(&number, true) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("\"{number}\" is not an incident number like INC-42") })),
        )
            .into_response();
    };
    let incident = match app.store.incident_by_number(n).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("There is no incident {n}.") })),
            )
                .into_response();
        }
        Err(e) => return internal("loading an incident", e),
    };
    match app.store.timeline(&incident.id).await {
        Ok(timeline) => Json(IncidentView::new(incident, Some(timeline))).into_response(),
        Err(e) => internal("loading a timeline", e),
    }
}

/// Prometheus text exposition of the numbers an on-call dashboard wants.
pub async fn metrics(State(app): State<App>) -> Response {
    let open = app.store.list_incidents(true, 10_000).await;
    let counts = app.store.effect_counts(Utc::now()).await;
    let (open, counts) = match (open, counts) {
        (Ok(o), Ok(c)) => (o, c),
        (Err(e), _) | (_, Err(e)) => return internal("collecting metrics", e),
    };
    let mut out = String::from(
        "# HELP firebreak_open_incidents Incidents not yet resolved, by severity.\n# TYPE firebreak_open_incidents gauge\n",
    );
    for sev in crate::incident::Severity::ALL {
        let n = open
            .iter()
            .filter(|i| i.severity == sev && i.status != Status::Resolved)
            .count();
        out.push_str(&format!(
            "firebreak_open_incidents{{severity=\"{sev}\"}} {n}\n"
        ));
    }
    out.push_str("# HELP firebreak_effects Effects in the queue, by state.\n# TYPE firebreak_effects gauge\n");
    for (state, n) in [
        ("pending", counts.pending),
        ("running", counts.running),
        ("failed", counts.failed),
    ] {
        out.push_str(&format!("firebreak_effects{{state=\"{state}\"}} {n}\n"));
    }
    out.push_str("# HELP firebreak_effects_oldest_due_seconds Age of the oldest due effect.\n# TYPE firebreak_effects_oldest_due_seconds gauge\n");
    out.push_str(&format!(
        "firebreak_effects_oldest_due_seconds {}\n",
        counts.oldest_due_age_secs
    ));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

fn internal(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "{what} failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "internal error; see the server log" })),
    )
        .into_response()
}

/// Every freeze scope's wanted state and every target's verified state.
pub async fn freeze_status(State(app): State<App>) -> Response {
    let scopes = app.store.freeze_scopes().await;
    let targets = app.store.freeze_targets().await;
    match (scopes, targets) {
        (Ok(scopes), Ok(targets)) => {
            let targets: Vec<Value> = targets
                .into_iter()
                .map(|t| {
                    let verified = t.verified().to_rfc3339();
                    let mut v = serde_json::to_value(t).unwrap_or_default();
                    v["verified_at"] = Value::String(verified);
                    v
                })
                .collect();
            let rate = app.github_client.as_ref().map(|c| c.rate());
            Json(json!({ "scopes": scopes, "targets": targets, "github_rate_limit": rate }))
                .into_response()
        }
        (Err(e), _) | (_, Err(e)) => internal("reading freeze state", e),
    }
}

/// `GET /incidents/{id}/postmortem.md` and `/incidents/{id}/postmortem.html`.
pub async fn postmortem(
    State(app): State<App>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let Some(n) = IncidentNumber::parse(&id, true) else {
        return (
            StatusCode::BAD_REQUEST,
            "not an incident number like INC-42",
        )
            .into_response();
    };
    let view = match crate::postmortem::load(&app.store, n).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, format!("There is no incident {n}.")).into_response();
        }
        Err(e) => return internal("loading a post-mortem", e),
    };
    let (format, content_type) = match name.as_str() {
        "postmortem.md" => (Format::Markdown, "text/markdown; charset=utf-8"),
        "postmortem.html" => (Format::Html, "text/html; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let rendered = crate::postmortem::overrides::render(
        app.config.postmortem.templates_dir.as_deref(),
        &view,
        format,
    )
    .map(|r| ([(axum::http::header::CONTENT_TYPE, content_type)], r.text).into_response());
    rendered.unwrap_or_else(|e| internal("rendering a post-mortem", e))
}
