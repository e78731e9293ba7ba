//! The incidents list (`GET /`), with its filters (open, severity, drill).

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::{Header, PagesState, age, header_of, internal, page};
use crate::http::api::IncidentView;
use crate::http::guard::SessionCaller;
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

#[derive(Template)]
#[template(path = "pages/incidents.html")]
struct IncidentsPage {
    header: Option<Header>,
    filters: Vec<Vec<FilterLink>>,
    rows: Vec<Row>,
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
