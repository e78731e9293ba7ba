//! Reads: `show`, `list`, `help`. They need no permission and change nothing.
//!
//! `list` takes filters, the same in chat and on the CLI: `--open` (not resolved),
//! `--severity sev1` (repeatable, and each value may be a comma list: `--severity sev1,sev2`),
//! `--drill` (drills only) and `--no-drill` (real incidents only).

use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::{IncidentNumber, Severity};
use crate::incident::reply::{Reply, ReplyBody};
use crate::incident::service::{IncidentService, Outcome};

use super::{Args, HELP, Verb};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Show,
    List(ListFilter),
    Help,
}

/// Which incidents `list` shows; the default shows every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListFilter {
    /// `--open`: only incidents not yet resolved.
    pub open_only: bool,
    /// `--severity`: bit n set shows SEV(n+1); no bit set shows every severity.
    severities: u8,
    /// `--drill` (`Some(true)`: drills only) or `--no-drill` (`Some(false)`: no drills).
    pub drill: Option<bool>,
}

impl ListFilter {
    /// Also shows incidents of `severity` (the first one narrows the list to it).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severities |= 1 << Self::bit(severity);
        self
    }

    fn bit(severity: Severity) -> usize {
        Severity::ALL
            .iter()
            .position(|s| *s == severity)
            .unwrap_or_default()
    }

    /// The severities asked for, most severe first; empty for all of them.
    pub fn severities(&self) -> Vec<Severity> {
        Severity::ALL
            .into_iter()
            .filter(|s| self.severities & (1 << Self::bit(*s)) != 0)
            .collect()
    }

    /// Whether any filter is set.
    pub fn is_filtered(&self) -> bool {
        *self != Self::default()
    }

    /// The filter as an SQL condition (`TRUE` for none). Built from constants only: no
    /// text a person typed reaches it.
    pub fn sql(&self) -> String {
        let mut conditions = Vec::new();
        if self.open_only {
            conditions.push("status <> 'resolved'".to_string());
        }
        let severities = self.severities();
        if !severities.is_empty() {
            let list: Vec<String> = severities
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            conditions.push(format!("severity IN ({})", list.join(", ")));
        }
        if let Some(drill) = self.drill {
            conditions.push(format!("drill = {}", i32::from(drill)));
        }
        if conditions.is_empty() {
            "1 = 1".to_string()
        } else {
            conditions.join(" AND ")
        }
    }

    /// The filter in words, for the list's summary: "open SEV1 or SEV2 drills".
    fn describe(&self) -> String {
        let mut words = Vec::new();
        if self.open_only {
            words.push("open".to_string());
        }
        let severities: Vec<&str> = self.severities().iter().map(|s| s.as_str()).collect();
        if !severities.is_empty() {
            words.push(severities.join(" or "));
        }
        words.push(
            match self.drill {
                Some(true) => "drills",
                Some(false) => "non-drill incidents",
                None => "incidents",
            }
            .to_string(),
        );
        words.join(" ")
    }
}

impl Query {
    pub fn name(self) -> &'static str {
        match self {
            Self::Show => "show",
            Self::List(_) => "list",
            Self::Help => "help",
        }
    }

    pub(super) fn takes_target(self) -> bool {
        self == Self::Show
    }

    pub(crate) async fn apply(
        self,
        service: &IncidentService,
        target: Option<IncidentNumber>,
    ) -> Result<Outcome, ServiceError> {
        match self {
            Self::Help => Ok(Outcome::reply(Reply::private(HELP))),
            Self::List(filter) => list(service, filter).await,
            Self::Show => {
                show(
                    service,
                    target.ok_or(UserError::NeedsIncident("show".into()))?,
                )
                .await
            }
        }
    }
}

pub(super) fn parse(verb: &str, args: &mut Args<'_>) -> Result<Verb, UserError> {
    Ok(Verb::Query(match verb {
        "show" => Query::Show,
        "list" => Query::List(parse_filter(args)?),
        _ => Query::Help,
    }))
}

/// `list`'s flags; anything else left over is refused by the caller.
fn parse_filter(args: &mut Args<'_>) -> Result<ListFilter, UserError> {
    let mut filter = ListFilter {
        open_only: args.flag("--open"),
        ..ListFilter::default()
    };
    while let Some(value) = args.option("--severity")? {
        for word in value.split(',').filter(|w| !w.trim().is_empty()) {
            filter = filter.with_severity(word.parse()?);
        }
    }
    filter.drill = match (args.flag("--drill"), args.flag("--no-drill")) {
        (true, true) => {
            return Err(UserError::invalid(
                "`list` takes --drill or --no-drill, not both.",
            ));
        }
        (true, false) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    Ok(filter)
}

async fn list(service: &IncidentService, filter: ListFilter) -> Result<Outcome, ServiceError> {
    let incidents = service
        .store()
        .incidents_open_first(&filter, LIST_LIMIT)
        .await?;
    let (total, open) = service.store().incident_counts(&filter).await?;
    let mut text = list_summary(total, open, incidents.len());
    if filter.is_filtered() && total == 0 {
        text = format!("No {} yet.", filter.describe());
    } else if filter.is_filtered() {
        text = format!("Showing {}: {}", filter.describe(), lower_first(&text));
    }
    Ok(Outcome::reply(
        Reply::private(text).with_body(ReplyBody::List { incidents }),
    ))
}

/// The most incidents a chat list shows.
const LIST_LIMIT: i64 = 50;

/// "55 incidents, 55 open; showing the 50 most severe open ones." (pure)
fn list_summary(total: i64, open: i64, shown: usize) -> String {
    let counted = match total {
        0 => return "No incidents yet.".to_string(),
        1 => format!("1 incident, {open} open"),
        n => format!("{n} incidents, {open} open"),
    };
    let shown = i64::try_from(shown).unwrap_or(i64::MAX);
    match shown {
        s if s >= total => format!("{counted}."),
        s if s >= open => format!(
            "{counted}; showing the open ones and the {} latest resolved.",
            s - open
        ),
        s => format!("{counted}; showing the {s} most severe open ones."),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_lowercase().chain(chars).collect::<String>()
    })
}

async fn show(service: &IncidentService, number: IncidentNumber) -> Result<Outcome, ServiceError> {
    let incident = service
        .store()
        .incident_by_number(number)
        .await?
        .ok_or(UserError::NotFound(number))?;
    let timeline = service.store().timeline(&incident.id).await?;
    let text = format!("{} is {}.", incident.headline(), incident.status);
    let body = ReplyBody::Incident {
        incident: Box::new(incident),
        timeline,
    };
    Ok(Outcome::reply(Reply::private(text).with_body(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_sql_of_constants_and_words() {
        assert_eq!(ListFilter::default().sql(), "1 = 1");
        let f = ListFilter {
            open_only: true,
            drill: Some(false),
            ..ListFilter::default()
        }
        .with_severity(Severity::Sev2)
        .with_severity(Severity::Sev1);
        assert_eq!(
            f.sql(),
            "status <> 'resolved' AND severity IN ('SEV1', 'SEV2') AND drill = 0"
        );
        assert_eq!(f.describe(), "open SEV1 or SEV2 non-drill incidents");
    }

    #[test]
    fn the_list_says_what_it_leaves_out() {
        assert_eq!(list_summary(0, 0, 0), "No incidents yet.");
        assert_eq!(list_summary(1, 1, 1), "1 incident, 1 open.");
        assert_eq!(list_summary(3, 1, 3), "3 incidents, 1 open.");
        assert_eq!(
            list_summary(80, 10, 50),
            "80 incidents, 10 open; showing the open ones and the 40 latest resolved."
        );
        assert_eq!(
            list_summary(55, 55, 50),
            "55 incidents, 55 open; showing the 50 most severe open ones."
        );
    }
}
