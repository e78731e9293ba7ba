//! The incidents list (`GET /`), with its filters (open, severity, drill) and the form
//! that declares an incident (posted to `forms::declare`, which shows this page again with
//! its sentence when it is refused).

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::forms::new_form_id;
use super::{Header, PagesState, age, header_of, internal, page};
use crate::http::api::IncidentView;
use crate::http::guard::SessionCaller;
use crate::incident::command::DEFAULT_SEVERITY;
use crate::incident::{Incident, Severity, Status};

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

/// What the declare form shows: nothing yet, or what was sent when it was refused.
#[derive(Debug, Clone, Default)]
pub(super) struct DeclareDraft {
    pub severity: Option<Severity>,
    pub title: String,
    pub drill: bool,
}

#[derive(Template)]
#[template(path = "pages/incidents.html")]
struct IncidentsPage {
    header: Option<Header>,
    filters: Vec<Vec<FilterLink>>,
    rows: Vec<Row>,
    /// Why the declare form was refused, as a sentence.
    error: Option<String>,
    /// The declare form's one-time id (its idempotency key).
    form_id: String,
    /// Each severity with whether it is the one selected.
    severities: Vec<(&'static str, bool)>,
    draft: DeclareDraft,
}

/// Open incidents first, each group newest first (the store's order kept within a group).
fn open_first(list: &mut [IncidentView]) {
    list.sort_by_key(|v| v.incident.status == Status::Resolved);
}

/// `GET /`: the incidents list.
pub(super) async fn incidents_page(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Query(q): Query<ListFilter>,
) -> Response {
    let filter = Filter::from_query(&q);
    let header = header_of(caller);
    match list_page(&pages, header, filter, DeclareDraft::default(), None).await {
        Ok(p) => page(&p),
        Err(e) => internal("listing incidents for the page", e),
    }
}

/// The list's HTML, unfiltered, with `error` above a declare form that still holds `draft`.
pub(super) async fn refused_list(
    pages: &PagesState,
    header: Header,
    draft: DeclareDraft,
    error: String,
) -> anyhow::Result<String> {
    let page = list_page(pages, Some(header), Filter::default(), draft, Some(error)).await?;
    Ok(page.render()?)
}

async fn list_page(
    pages: &PagesState,
    header: Option<Header>,
    filter: Filter,
    draft: DeclareDraft,
    error: Option<String>,
) -> anyhow::Result<IncidentsPage> {
    let list = pages.read.incidents(filter.open, 500).await?;
    let kept: Vec<Incident> = list.into_iter().filter(|i| filter.keeps(i)).collect();
    let refs: Vec<&Incident> = kept.iter().collect();
    let names = pages.read.names(&refs, &[]).await?;
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
    let chosen = draft.severity.unwrap_or(DEFAULT_SEVERITY);
    Ok(IncidentsPage {
        header,
        filters: filter_links(filter),
        rows,
        error,
        form_id: new_form_id(),
        severities: Severity::ALL
            .into_iter()
            .map(|s| (s.as_str(), s == chosen))
            .collect(),
        draft,
    })
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
}
