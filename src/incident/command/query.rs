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
    let incidents = service.store().list_incidents(false, 50).await?;
    let open = incidents.iter().filter(|i| i.status.is_open()).count();
    let text = match incidents.len() {
        0 => "No incidents yet.".to_string(),
        1 => format!("1 incident, {open} open."),
        n => format!("{n} incidents, {open} open."),
    };
    Ok(Outcome::reply(
        Reply::private(text).with_body(ReplyBody::List { incidents }),
    ))
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
