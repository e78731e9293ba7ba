//! The edge that turns an Alertmanager notification into commands: it reads what is
//! remembered about the group, asks [`policy::decide`] what to do, applies that through
//! `IncidentService` as the caller, and then moves the group's row.
//!
//! Racing deliveries of one group (an HA pair of Alertmanagers, a retry after a timeout)
//! are kept to one change by two things in the database, not in memory: each command is an
//! inbound delivery whose id names the transition (the group, the incident it is on, the
//! row's version), recorded in the command's own transaction, so only one of them applies;
//! and the group's row moves by compare-and-set on its version. A retry after a crash
//! between the two finds its command already applied and only moves the row.

use sha2::{Digest, Sha256};

use super::AlertmanagerConfig;
use super::payload::Notification;
use super::policy::{self, Remembered, Step};
use crate::incident::command::Change;
use crate::incident::{Actor, Command, IncidentId, IncidentService, ServiceError, Status};
use crate::store::{AlertGroup, Delivery, Store};

/// What a notification did, for the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// `declared`, `updated`, `noted`, `resolved` or `nothing`.
    pub action: &'static str,
    /// `INC-n`, when the group has an incident.
    pub incident: Option<String>,
    /// What happened, in a sentence.
    pub detail: String,
}

/// The inbound source of the commands a notification causes.
const SOURCE: &str = "alertmanager";

/// How many times a notification re-reads its group after losing a race to another.
const ATTEMPTS: usize = 4;

/// Applies `n` for `actor`.
pub async fn receive(
    service: &IncidentService,
    config: &AlertmanagerConfig,
    actor: &Actor,
    n: &Notification,
) -> Result<Receipt, ServiceError> {
    let store = service.store();
    for _ in 0..ATTEMPTS {
        let group = store.alert_group(&n.group_key).await?;
        let open = match &group {
            Some(g) => incident_open(store, &g.incident).await?,
            None => false,
        };
        let remembered = group.as_ref().map(|g| Remembered {
            status: &g.status,
            fingerprints: &g.fingerprints,
            incident_open: open,
        });
        let step = policy::decide(n, remembered.as_ref(), config);
        let seen = group.as_ref().map(|g| g.version);
        let done = match step {
            Step::Nothing(why) => {
                let incident = match group.as_ref().filter(|_| open) {
                    Some(g) => number_of(store, &g.incident).await?,
                    None => None,
                };
                return Ok(Receipt {
                    action: "nothing",
                    incident,
                    detail: why.to_string(),
                });
            }
            Step::Declare(declare) => {
                let previous = group.as_ref().map_or("-", |g| g.incident.0.as_str());
                let delivery = transition(&n.group_key, previous, 0, "declare");
                let cmd = Command::untargeted(declare);
                let incident = match service
                    .for_delivery(delivery.clone())
                    .apply(cmd, actor)
                    .await
                {
                    Ok(outcome) => outcome.reply.incident().map(|i| i.id.clone()),
                    Err(ServiceError::Duplicate) => store
                        .delivery_record(&delivery)
                        .await?
                        .and_then(|r| r.incident),
                    Err(e) => return Err(e),
                };
                let incident = incident.ok_or_else(|| {
                    anyhow::anyhow!(
                        "the declaration for alert group {:?} left no incident",
                        n.group_key
                    )
                })?;
                moved(store, n, seen, &incident, "declared").await?
            }
            Step::Update(text) => {
                let g = group.as_ref().expect("an update is for a remembered group");
                let change = Change::Update { text, next: None };
                match apply_change(service, actor, n, g, "update", change).await? {
                    Applied::Yes => moved(store, n, seen, &g.incident, "updated").await?,
                    Applied::IncidentClosed => None,
                }
            }
            Step::Note { text, resolve } => {
                let g = group.as_ref().expect("a note is for a remembered group");
                match apply_change(service, actor, n, g, "note", Change::Note { text }).await? {
                    Applied::IncidentClosed => None,
                    Applied::Yes => {
                        let mut action = "noted";
                        if resolve {
                            let summary = Some(
                                "Resolved by Alertmanager: every alert of the group is resolved."
                                    .to_string(),
                            );
                            let change = Change::Resolve { summary };
                            if let Applied::Yes =
                                apply_change(service, actor, n, g, "resolve", change).await?
                            {
                                action = "resolved";
                            }
                        }
                        moved(store, n, seen, &g.incident, action).await?
                    }
                }
            }
        };
        if let Some(receipt) = done {
            return Ok(receipt);
        }
    }
    Err(anyhow::anyhow!(
        "alert group {:?} kept changing under this notification",
        n.group_key
    )
    .into())
}

enum Applied {
    /// Applied now, or by an earlier delivery of the same transition.
    Yes,
    /// Someone resolved the incident meanwhile: decide again.
    IncidentClosed,
}

/// Applies `change` to the group's incident as the delivery `what` of this transition.
async fn apply_change(
    service: &IncidentService,
    actor: &Actor,
    n: &Notification,
    g: &AlertGroup,
    what: &str,
    change: Change,
) -> Result<Applied, ServiceError> {
    let store = service.store();
    let Some(incident) = store.incident_by_id(&g.incident).await? else {
        return Err(
            anyhow::anyhow!("alert group {:?} names a missing incident", n.group_key).into(),
        );
    };
    let delivery = transition(&n.group_key, &g.incident.0, g.version, what);
    let cmd = Command::on(incident.number, change);
    match service.for_delivery(delivery).apply(cmd, actor).await {
        Ok(_) | Err(ServiceError::Duplicate) => Ok(Applied::Yes),
        Err(ServiceError::User(e)) if e.is_already_resolved() => Ok(Applied::IncidentClosed),
        Err(e) => Err(e),
    }
}

/// Moves the group's row to what `n` says, if it is still at `seen`; `None` if another
/// delivery moved it first (the caller then decides again).
async fn moved(
    store: &Store,
    n: &Notification,
    seen: Option<i64>,
    incident: &IncidentId,
    action: &'static str,
) -> Result<Option<Receipt>, ServiceError> {
    let fingerprints = policy::fingerprints(n);
    if !store
        .move_alert_group(
            &n.group_key,
            seen,
            incident,
            n.status.as_str(),
            &fingerprints,
        )
        .await?
    {
        return Ok(None);
    }
    let number = number_of(store, incident).await?;
    let key = number.as_deref().unwrap_or("the incident");
    let detail = match action {
        "declared" => format!("Declared {key} for the alert group."),
        "updated" => format!("Added an update to {key}: the firing alerts changed."),
        "resolved" => format!("Added a note to {key} and resolved it."),
        _ => format!("Added a note to {key}: the alert group is resolved."),
    };
    Ok(Some(Receipt {
        action,
        incident: number,
        detail,
    }))
}

async fn incident_open(store: &Store, id: &IncidentId) -> anyhow::Result<bool> {
    Ok(store
        .incident_by_id(id)
        .await?
        .is_some_and(|i| i.status != Status::Resolved))
}

async fn number_of(store: &Store, id: &IncidentId) -> anyhow::Result<Option<String>> {
    Ok(store
        .incident_by_id(id)
        .await?
        .map(|i| i.number.to_string()))
}

/// The delivery for one transition of a group: the group, the incident it is on (`-` for
/// none), the row's version and what is done. The same transition reached twice is the
/// same delivery, so it applies once.
fn transition(group_key: &str, incident: &str, version: i64, what: &str) -> Delivery {
    let mut h = Sha256::new();
    for part in [group_key, incident, &version.to_string(), what] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    Delivery::new(SOURCE, hex::encode(h.finalize()))
}
