//! Reads: `show`, `list`, `help`. They need no permission and change nothing.

use crate::incident::error::{ServiceError, UserError};
use crate::incident::model::IncidentNumber;
use crate::incident::reply::{Reply, ReplyBody};
use crate::incident::service::{IncidentService, Outcome};

use super::{HELP, Verb};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Show,
    List,
    Help,
}

impl Query {
    pub fn name(self) -> &'static str {
        match self {
            Self::Show => "show",
            Self::List => "list",
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
            Self::List => list(service).await,
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

pub(super) fn parse(verb: &str) -> Verb {
    Verb::Query(match verb {
        "show" => Query::Show,
        "list" => Query::List,
        _ => Query::Help,
    })
}

async fn list(service: &IncidentService) -> Result<Outcome, ServiceError> {
    let incidents = service.store().incidents_open_first(LIST_LIMIT).await?;
    let (total, open) = service.store().incident_counts().await?;
    let text = list_summary(total, open, incidents.len());
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
    use super::list_summary;

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
