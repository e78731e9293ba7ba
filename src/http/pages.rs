//! The web pages: sign-in with an API token (`/signin`, `/signout`), the incidents list
//! (`/`) and one incident (`/incidents/{number}`), server-rendered with askama (HTML
//! autoescaped). The guard (`http::guard`) has checked the session before a page handler
//! runs; these handlers only render, and make or end sessions.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::{IncidentView, incident_view};
use super::guard::SessionCaller;
use super::session::{self, SessionKey};
use crate::auth::{self, Scope};
use crate::incident::timeline::format_offset;
use crate::incident::{Incident, IncidentNumber, Severity, Status};
use crate::read::ReadModel;
use crate::store::Store;

/// What the pages need.
#[derive(Clone)]
pub struct PagesState {
    pub read: ReadModel,
    pub store: Store,
    pub sessions: Arc<SessionKey>,
    /// `server.public_url`: cookies are `Secure` when it is https, and it is a valid origin.
    pub public_url: Option<String>,
}

impl PagesState {
    fn secure(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// The pages' routes (the guard wraps them with everything else).
pub fn router(state: PagesState) -> Router {
    Router::new()
        .route("/", get(incidents_page))
        .route("/incidents/{number}", get(incident_page))
        .route("/signin", get(sign_in_form).post(sign_in))
        .route("/signout", post(sign_out))
        .with_state(state)
}

#[derive(Template)]
#[template(path = "pages/signin.html")]
struct SignInPage<'a> {
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /signin`: the form.
async fn sign_in_form(Query(q): Query<NextQuery>) -> Response {
    let next = session::safe_next(q.next.as_deref());
    page(&SignInPage {
        next: &next,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /signin`: a token with the `read` scope makes a session; anything else shows the
/// form again with a sentence, and no cookie (200, as a form shown again is; 403 for a post
/// from another site).
async fn sign_in(
    State(pages): State<PagesState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = session::safe_next(form.next.as_deref());
    let again = |status: StatusCode, error: &str| {
        let mut response = page(&SignInPage {
            next: &next,
            error: Some(error),
        });
        *response.status_mut() = status;
        response
    };
    if !origin_ok(&headers, pages.public_url.as_deref()) {
        return again(
            StatusCode::FORBIDDEN,
            "This sign-in came from another site, so it was refused. Sign in from this page.",
        );
    }
    let token = form.token.trim();
    let found = match pages.store.token_by_hash(&auth::token_hash(token)).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "looking up a token to sign in failed");
            return again(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Signing in failed on the server; try again shortly.",
            );
        }
    };
    let Some(found) = found.filter(|_| !token.is_empty()) else {
        return again(
            StatusCode::OK,
            "That token is not valid: it is unknown or has been revoked.",
        );
    };
    if !found.scopes.contains(Scope::Read) {
        return again(
            StatusCode::OK,
            &format!(
                "The token \"{}\" has the scopes {}; signing in needs one with the read scope.",
                found.name, found.scopes
            ),
        );
    }
    let value = pages.sessions.issue(found.id, Utc::now());
    tracing::info!(token = %found.name, "signed in to the web pages");
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&value, pages.secure()),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

/// The sign-in post's `Origin` (or else `Referer`), when the browser sends one, must be
/// this site.
fn origin_ok(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().unwrap_or(""));
    from.is_none_or(|from| session::same_origin(from, host, public_url))
}

/// `POST /signout` (the guard has checked the session and its CSRF token): clears the
/// cookie.
async fn sign_out(State(pages): State<PagesState>) -> Response {
    (
        [(header::SET_COOKIE, session::clear_cookie(pages.secure()))],
        Redirect::to("/signin"),
    )
        .into_response()
}

/// The signed-in token and its CSRF token, for the sign-out form in every page's header.
struct Header {
    token_name: String,
    csrf: String,
}

fn header_of(caller: Option<Extension<SessionCaller>>) -> Option<Header> {
    caller.map(|Extension(c)| Header {
        token_name: c.token_name,
        csrf: c.csrf,
    })
}

#[derive(Deserialize, Default)]
pub struct ListFilter {
    open: Option<String>,
    severity: Option<String>,
    drill: Option<String>,
}

/// The list's filters, read leniently: an unreadable value is no filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Filter {
    open: bool,
    severity: Option<Severity>,
    drill: Option<bool>,
}

impl Filter {
    fn from_query(q: &ListFilter) -> Self {
        let flag = |v: &Option<String>| match v.as_deref() {
            Some("1" | "true" | "yes") => Some(true),
            Some("0" | "false" | "no") => Some(false),
            _ => None,
        };
        Self {
            open: flag(&q.open).unwrap_or(false),
            severity: q.severity.as_deref().and_then(|s| s.parse().ok()),
            drill: flag(&q.drill),
        }
    }

    fn keeps(&self, i: &Incident) -> bool {
        (!self.open || i.status != Status::Resolved)
            && self.severity.is_none_or(|s| i.severity == s)
            && self.drill.is_none_or(|d| i.drill == d)
    }

    /// The query string for this filter (`?open=1&severity=SEV1`), `` for none.
    fn query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.open {
            pairs.push(("open", "1".into()));
        }
        if let Some(s) = self.severity {
            pairs.push(("severity", s.as_str().into()));
        }
        if let Some(d) = self.drill {
            pairs.push(("drill", if d { "1" } else { "0" }.into()));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!(
                "?{}",
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            )
        }
    }
}

/// A filter link: its label, where it goes, and whether it is the current filter.
struct FilterLink {
    label: String,
    href: String,
    current: bool,
}

fn filter_links(f: Filter) -> Vec<Vec<FilterLink>> {
    let link = |label: &str, to: Filter| FilterLink {
        label: label.to_string(),
        href: format!("/{}", to.query()),
        current: to == f,
    };
    let open = vec![
        link("All", Filter { open: false, ..f }),
        link("Open", Filter { open: true, ..f }),
    ];
    let mut severity = vec![link(
        "Any severity",
        Filter {
            severity: None,
            ..f
        },
    )];
    for s in Severity::ALL {
        severity.push(link(
            s.as_str(),
            Filter {
                severity: Some(s),
                ..f
            },
        ));
    }
    let drill = vec![
        link("Drills and real", Filter { drill: None, ..f }),
        link(
            "Real only",
            Filter {
                drill: Some(false),
                ..f
            },
        ),
        link(
            "Drills only",
            Filter {
                drill: Some(true),
                ..f
            },
        ),
    ];
    vec![open, severity, drill]
}

/// One row of the list.
struct Row {
    key: String,
    number: i64,
    title: String,
    severity: String,
    status: String,
    open: bool,
    drill: bool,
    commander: String,
    age: String,
}

#[derive(Template)]
#[template(path = "pages/incidents.html")]
struct IncidentsPage {
    header: Option<Header>,
    filters: Vec<Vec<FilterLink>>,
    rows: Vec<Row>,
}

/// How long ago `at` was, in the timeline's units (`45s`, `2m`, `1h05m`, `1d02h`).
fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format_offset(now - at).trim_start_matches("T+").to_string()
}

/// Open incidents first, each group newest first (the store's order kept within a group).
fn open_first(list: &mut [IncidentView]) {
    list.sort_by_key(|v| v.incident.status == Status::Resolved);
}

/// `GET /`: the incidents list.
async fn incidents_page(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Query(q): Query<ListFilter>,
) -> Response {
    let filter = Filter::from_query(&q);
    let list = match pages.read.incidents(filter.open, 500).await {
        Ok(list) => list,
        Err(e) => return internal("listing incidents for the page", e),
    };
    let kept: Vec<Incident> = list.into_iter().filter(|i| filter.keeps(i)).collect();
    let refs: Vec<&Incident> = kept.iter().collect();
    let names = match pages.read.names(&refs, &[]).await {
        Ok(n) => n,
        Err(e) => return internal("naming people for the page", e),
    };
    let mut views: Vec<IncidentView> = kept
        .into_iter()
        .map(|i| IncidentView::named(i, None, &names))
        .collect();
    open_first(&mut views);
    let now = Utc::now();
    let rows = views
        .into_iter()
        .map(|v| Row {
            number: v.incident.number.0,
            title: v.incident.title.clone(),
            severity: v.incident.severity.to_string(),
            status: v.incident.status.to_string(),
            open: v.incident.status != Status::Resolved,
            drill: v.incident.drill,
            commander: v.commander_name.clone().unwrap_or_else(|| "—".into()),
            age: age(v.incident.declared_at, now),
            key: v.key,
        })
        .collect();
    page(&IncidentsPage {
        header: header_of(caller),
        filters: filter_links(filter),
        rows,
    })
}

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

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `GET /incidents/{number}`: one incident.
async fn incident_page(
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

fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => internal("rendering a page", e.into()),
    }
}

fn plain(status: StatusCode, sentence: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        sentence,
    )
        .into_response()
}

fn internal(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "{what} failed");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something failed on the server; see its log.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_leniently_and_write_back_as_links() {
        let q = ListFilter {
            open: Some("1".into()),
            severity: Some("sev1".into()),
            drill: Some("0".into()),
        };
        let f = Filter::from_query(&q);
        assert_eq!(
            f,
            Filter {
                open: true,
                severity: Some(Severity::Sev1),
                drill: Some(false)
            }
        );
        assert_eq!(f.query(), "?open=1&severity=SEV1&drill=0");
        let junk = ListFilter {
            open: Some("x".into()),
            severity: Some("SEV9".into()),
            drill: None,
        };
        assert_eq!(Filter::from_query(&junk), Filter::default());
        assert_eq!(Filter::default().query(), "");
        let links = filter_links(f);
        let current: Vec<&str> = links
            .iter()
            .flatten()
            .filter(|l| l.current)
            .map(|l| l.label.as_str())
            .collect();
        assert_eq!(current, ["Open", "SEV1", "Real only"]);
    }

    #[test]
    fn ages_use_the_timeline_units() {
        let now = Utc::now();
        assert_eq!(age(now - chrono::TimeDelta::minutes(65), now), "1h05m");
    }
}
