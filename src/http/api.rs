//! Read-only HTTP handlers. Internal errors are logged with context and answered with a
//! generic 500; nothing internal is echoed to the caller.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::HttpState;
use crate::incident::{Incident, IncidentNumber, TimelineEntry};
use crate::people::Names;
use crate::postmortem::overrides::Format;
use crate::read::{FreezeView, ReadModel, Readiness};

/// An incident as the API shows it: the stored fields plus its `INC-n` key. People are
/// stored identities (`commander: "slack:U024BE7LH"`); each has a display name beside it
/// (`commander_name`), from the people cache or the identity itself.
#[derive(Serialize)]
pub struct IncidentView {
    pub key: String,
    #[serde(flatten)]
    pub incident: Incident,
    pub commander_name: Option<String>,
    pub comms_name: Option<String>,
    pub scribe_name: Option<String>,
    pub declared_by_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntryView>>,
}

/// A timeline entry with its T+ offset from the declaration and its actor's display name.
#[derive(Serialize)]
pub struct TimelineEntryView {
    pub offset: String,
    pub actor_name: String,
    #[serde(flatten)]
    pub entry: TimelineEntry,
}

impl IncidentView {
    /// The view with people shown by identity alone; see [`IncidentView::named`].
    pub fn new(incident: Incident, timeline: Option<Vec<TimelineEntry>>) -> Self {
        Self::named(incident, timeline, &Names::default())
    }

    pub fn named(incident: Incident, timeline: Option<Vec<TimelineEntry>>, names: &Names) -> Self {
        let declared = incident.declared_at;
        let name = |who: &Option<String>| who.as_deref().map(|w| names.name(w));
        Self {
            key: incident.number.to_string(),
            commander_name: name(&incident.commander),
            comms_name: name(&incident.comms),
            scribe_name: name(&incident.scribe),
            declared_by_name: names.name(&incident.declared_by),
            timeline: timeline.map(|entries| {
                entries
                    .into_iter()
                    .map(|entry| TimelineEntryView {
                        offset: entry.offset_from(declared),
                        actor_name: names.name(&entry.actor),
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
pub async fn readyz(State(http): State<HttpState>) -> Response {
    let problem = match http.read.readiness().await {
        Readiness::Ready => {
            return Json(json!({ "status": "ready", "database": "ok" })).into_response();
        }
        Readiness::RefusesWrites => "refuses writes",
        Readiness::Unreachable => "unreachable",
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "not ready", "database": problem })),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    open: bool,
}

pub async fn list_incidents(State(http): State<HttpState>, Query(q): Query<ListQuery>) -> Response {
    let list = match http.read.incidents(q.open, 500).await {
        Ok(list) => list,
        Err(e) => return internal("listing incidents", e),
    };
    let all: Vec<&Incident> = list.iter().collect();
    let names = match http.read.names(&all, &[]).await {
        Ok(n) => n,
        Err(e) => return internal("naming people", e),
    };
    Json(
        list.into_iter()
            .map(|i| IncidentView::named(i, None, &names))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

pub async fn show_incident(State(http): State<HttpState>, Path(number): Path<String>) -> Response {
    let Some(n) = IncidentNumber::parse(&number, true) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("\"{number}\" is not an incident number like INC-42") })),
        )
            .into_response();
    };
    match incident_view(&http.read, n).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("There is no incident {n}.") })),
        )
            .into_response(),
        Err(e) => internal("loading an incident", e),
    }
}

/// Incident `n` as `GET /api/incidents/{n}` shows it: with its timeline, people named.
pub async fn incident_view(
    read: &ReadModel,
    n: IncidentNumber,
) -> anyhow::Result<Option<IncidentView>> {
    let Some(d) = read.incident(n).await? else {
        return Ok(None);
    };
    let names = read.names(&[&d.incident], &d.timeline).await?;
    Ok(Some(IncidentView::named(
        d.incident,
        Some(d.timeline),
        &names,
    )))
}

/// Prometheus text exposition: the process's recorder (commands, acknowledgement latency,
/// effects, breakers, GitHub's rate limit) and the store's counts, read as aggregates.
pub async fn metrics(State(http): State<HttpState>) -> Response {
    let counts = match http.read.metric_counts(Utc::now()).await {
        Ok(c) => c,
        Err(e) => return internal("collecting metrics", e),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::render(&counts),
    )
        .into_response()
}

pub(crate) fn internal(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "{what} failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "internal error; see the server log" })),
    )
        .into_response()
}

/// Every freeze scope's wanted state and every target's verified state.
pub async fn freeze_status(State(http): State<HttpState>) -> Response {
    match http.read.freeze().await {
        Ok(FreezeView {
            scopes,
            targets,
            holds,
        }) => {
            let (scope_rows, targets) =
                crate::incident::freeze_view::freeze_json(&scopes, &targets, &holds);
            let rate = http.github.as_ref().map(|c| c.rate());
            Json(json!({ "scopes": scope_rows, "targets": targets, "github_rate_limit": rate }))
                .into_response()
        }
        Err(e) => internal("reading freeze state", e),
    }
}

/// `GET /api/audit[?limit=N]`: timeline entries outside any incident (manual freezes and
/// their repairs, refused declarations, exemptions), newest first: at most `limit` (default
/// 100, at most 1000; 0 gives none, as `firebreak audit --limit 0` does). A negative limit
/// is refused with a sentence.
pub async fn audit(State(http): State<HttpState>, Query(q): Query<AuditQuery>) -> Response {
    let limit = match q.limit.as_deref().map(str::parse::<i64>) {
        None => 100,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "limit must be a whole number, 0 or more (0 shows no entries)." })),
            )
                .into_response();
        }
    };
    let limit = limit.min(1000);
    match http.read.audit(limit).await {
        Ok(entries) => Json(json!({ "entries": entries })).into_response(),
        Err(e) => internal("reading the audit log", e),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    /// Taken as text so that `?limit=abc` gets the same sentence as `?limit=-1`.
    pub limit: Option<String>,
}

const MARKDOWN: &str = "text/markdown; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// `GET /incidents/{id}/postmortem.md|.html` and `/incidents/{id}/drill-report.md|.html`.
pub async fn incident_document(
    State(http): State<HttpState>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let Some(n) = IncidentNumber::parse(&id, true) else {
        return (
            StatusCode::BAD_REQUEST,
            "not an incident number like INC-42",
        )
            .into_response();
    };
    match name.as_str() {
        "postmortem.md" => postmortem(&http, n, Format::Markdown).await,
        "postmortem.html" => postmortem(&http, n, Format::Html).await,
        "drill-report.md" => drill_report(&http, n, Format::Markdown).await,
        "drill-report.html" => drill_report(&http, n, Format::Html).await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn content_type(format: Format) -> [(axum::http::HeaderName, &'static str); 1] {
    let value = match format {
        Format::Markdown => MARKDOWN,
        Format::Html => HTML,
    };
    [(axum::http::header::CONTENT_TYPE, value)]
}

async fn postmortem(http: &HttpState, n: IncidentNumber, format: Format) -> Response {
    let view = match http.read.postmortem(n).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, format!("There is no incident {n}.")).into_response();
        }
        Err(e) => return internal("loading a post-mortem", e),
    };
    let rendered =
        crate::postmortem::overrides::render(http.postmortem_templates.as_deref(), &view, format)
            .map(|r| (content_type(format), r.logged()).into_response());
    rendered.unwrap_or_else(|e| internal("rendering a post-mortem", e))
}

/// The drill report; 404 with a sentence when there is no incident or it has no runbook.
async fn drill_report(http: &HttpState, n: IncidentNumber, format: Format) -> Response {
    use crate::runbook::report::{self, Lookup};
    let found = match http.read.drill_report(n).await {
        Ok(Lookup::Found(r)) => r,
        Ok(Lookup::NoIncident) => {
            return (StatusCode::NOT_FOUND, format!("There is no incident {n}.")).into_response();
        }
        Ok(Lookup::NoRunbook) => {
            return (StatusCode::NOT_FOUND, report::no_runbook(n)).into_response();
        }
        Err(e) => return internal("loading a drill report", e),
    };
    let rendered = match format {
        Format::Markdown => report::markdown(&found),
        Format::Html => report::html(&found),
    };
    match rendered {
        Ok(text) => (content_type(format), text).into_response(),
        Err(e) => internal("rendering a drill report", e),
    }
}
