//! One incident's page (`GET /incidents/{number}`): severity, status, roles and the timeline
//! with UTC times and T+ offsets.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::{Header, PagesState, age, header_of, internal, page, plain, utc};
use crate::http::api::incident_view;
use crate::http::guard::SessionCaller;
use crate::incident::IncidentNumber;

/// One timeline line on the incident page.
struct Line {
    at: String,
    offset: String,
    actor: String,
    kind: String,
    text: String,
}

#[derive(Template)]
#[template(path = "pages/incident.html")]
struct IncidentPage {
    header: Option<Header>,
    key: String,
    title: String,
    severity: String,
    status: String,
    drill: bool,
    declared_at: String,
    since: String,
    roles: Vec<(&'static str, String)>,
    summary: Option<String>,
    lines: Vec<Line>,
}

/// `GET /incidents/{number}`: one incident.
pub(super) async fn incident_page(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Path(number): Path<String>,
) -> Response {
    let Some(n) = IncidentNumber::parse(&number, true) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("\"{number}\" is not an incident number like INC-42."),
        );
    };
    let v = match incident_view(&pages.read, n).await {
        Ok(Some(v)) => v,
        Ok(None) => return plain(StatusCode::NOT_FOUND, format!("There is no incident {n}.")),
        Err(e) => return internal("loading an incident for its page", e),
    };
    let role = |name: &Option<String>| name.clone().unwrap_or_else(|| "nobody yet".into());
    let roles = vec![
        ("Commander", role(&v.commander_name)),
        ("Comms", role(&v.comms_name)),
        ("Scribe", role(&v.scribe_name)),
        ("Declared by", v.declared_by_name.clone()),
    ];
    let lines = v
        .timeline
        .unwrap_or_default()
        .into_iter()
        .map(|e| Line {
            at: utc(e.entry.occurred_at),
            offset: e.offset,
            actor: e.actor_name,
            kind: e.entry.kind.to_string(),
            text: e.entry.text,
        })
        .collect();
    let i = v.incident;
    page(&IncidentPage {
        header: header_of(caller),
        key: v.key,
        title: i.title,
        severity: i.severity.to_string(),
        status: i.status.to_string(),
        drill: i.drill,
        declared_at: utc(i.declared_at),
        since: age(i.declared_at, Utc::now()),
        roles,
        summary: i.summary,
        lines,
    })
}
