//! One incident's page (`GET /incidents/{number}`): severity, status, roles, the forms that
//! post an update, change the status and resolve (`forms`), and the timeline with UTC times
//! and T+ offsets, kept live by `live` (each entry is `pages/entry.html`, here and there).

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::forms::new_form_id;
use super::{Header, PagesState, age, header_of, internal, plain, utc};
use crate::http::api::incident_view;
use crate::http::guard::SessionCaller;
use crate::incident::{IncidentNumber, Status, TimelineEntry};
use crate::people::Names;

/// One timeline line on the incident page (and in the live stream).
pub(super) struct Line {
    pub id: i64,
    pub at: String,
    pub offset: String,
    pub actor: String,
    pub kind: String,
    pub text: String,
}

impl Line {
    /// `entry` as a line of the timeline of an incident declared at `declared_at`.
    pub fn of(entry: TimelineEntry, declared_at: DateTime<Utc>, names: &Names) -> Self {
        Self {
            id: entry.id,
            at: utc(entry.occurred_at),
            offset: entry.offset_from(declared_at),
            actor: names.name(&entry.actor),
            kind: entry.kind.to_string(),
            text: entry.text,
        }
    }
}

/// One `<li>` of the timeline, alone (what the live stream sends).
#[derive(Template)]
#[template(path = "pages/entry.html")]
pub(super) struct EntryItem {
    pub l: Line,
}

/// What the forms show: nothing yet, or what was sent when one was refused.
#[derive(Debug, Clone, Default)]
pub(super) struct IncidentDraft {
    pub text: String,
    pub summary: String,
    pub status: Option<Status>,
}

/// Each form's one-time id (its idempotency key, see `forms`).
struct FormIds {
    update: String,
    status: String,
    resolve: String,
}

#[derive(Template)]
#[template(path = "pages/incident.html")]
struct IncidentPage {
    header: Option<Header>,
    error: Option<String>,
    key: String,
    title: String,
    severity: String,
    status: String,
    open: bool,
    drill: bool,
    declared_at: String,
    since: String,
    roles: Vec<(&'static str, String)>,
    summary: Option<String>,
    lines: Vec<Line>,
    /// The highest entry id shown: the live stream starts after it.
    last_id: i64,
    form_ids: FormIds,
    /// Each status with whether it is the one selected.
    statuses: Vec<(&'static str, bool)>,
    draft: IncidentDraft,
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
    let header = header_of(caller);
    match incident_html(&pages, header, n, IncidentDraft::default(), None).await {
        Ok(Some(html)) => Html(html).into_response(),
        Ok(None) => plain(StatusCode::NOT_FOUND, format!("There is no incident {n}.")),
        Err(e) => internal("loading an incident for its page", e),
    }
}

/// Incident `n`'s page (`None`: there is no such incident), with `error` above forms that
/// still hold `draft`.
pub(super) async fn incident_html(
    pages: &PagesState,
    header: Option<Header>,
    n: IncidentNumber,
    draft: IncidentDraft,
    error: Option<String>,
) -> anyhow::Result<Option<String>> {
    let Some(v) = incident_view(&pages.read, n).await? else {
        return Ok(None);
    };
    let role = |name: &Option<String>| name.clone().unwrap_or_else(|| "nobody yet".into());
    let roles = vec![
        ("Commander", role(&v.commander_name)),
        ("Comms", role(&v.comms_name)),
        ("Scribe", role(&v.scribe_name)),
        ("Declared by", v.declared_by_name.clone()),
    ];
    let lines: Vec<Line> = v
        .timeline
        .unwrap_or_default()
        .into_iter()
        .map(|e| Line {
            id: e.entry.id,
            at: utc(e.entry.occurred_at),
            offset: e.offset,
            actor: e.actor_name,
            kind: e.entry.kind.to_string(),
            text: e.entry.text,
        })
        .collect();
    let i = v.incident;
    let chosen = draft.status.unwrap_or(i.status);
    let template = IncidentPage {
        header,
        error,
        key: v.key,
        title: i.title,
        severity: i.severity.to_string(),
        status: i.status.to_string(),
        open: i.status != Status::Resolved,
        drill: i.drill,
        declared_at: utc(i.declared_at),
        since: age(i.declared_at, Utc::now()),
        roles,
        summary: i.summary,
        last_id: lines.iter().map(|l| l.id).max().unwrap_or(0),
        lines,
        form_ids: FormIds {
            update: new_form_id(),
            status: new_form_id(),
            resolve: new_form_id(),
        },
        statuses: Status::ALL
            .into_iter()
            .map(|s| (s.as_str(), s == chosen))
            .collect(),
        draft,
    };
    Ok(Some(template.render()?))
}
