//! Removing holds: `unfreeze`, an incident's resolve and an expiry all end here, which writes
//! the scopes' new wanted state and a timeline entry saying what still holds each scope.

use chrono::{DateTime, Utc};

use super::{and_list, write_wanted};
use crate::incident::model::{Incident, IncidentId};
use crate::incident::permissions::Actor;
use crate::incident::timeline::{EntryKind, NewEntry};
use crate::store::{FreezeHold, Tx};

/// What removing holds did: the new generation (none when nothing was removed) and a
/// sentence saying what remains.
pub(super) struct Released {
    pub generation: Option<i64>,
    pub text: String,
}

/// Removes `holder_key`'s holds (every hold when `None`) on `scopes`, writes the wanted
/// state and a timeline entry that says what remains. `whose` names the holds removed
/// ("INC-3's hold", "every hold"); `why` is appended to the timeline entry.
#[allow(clippy::too_many_arguments)]
pub(super) async fn release(
    tx: &mut Tx,
    scopes: &[String],
    holder: Option<&str>,
    whose: &str,
    why: &str,
    incident: Option<&Incident>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Released> {
    // Taken first, as in `request`: removals and placements take turns.
    let generation = tx.next_freeze_generation().await?;
    let mut lifted = Vec::new();
    let mut untouched = Vec::new();
    let mut removed = Vec::new();
    for scope in scopes {
        let gone = tx.remove_holds(scope, holder).await?;
        if gone.is_empty() {
            untouched.push(scope.clone());
        } else {
            lifted.push(scope.clone());
            removed.extend(gone);
        }
    }
    let holds = tx.freeze_holds().await?;
    if lifted.is_empty() {
        let mut text = format!("{whose} is on none of {}", untouched.join(", "));
        let held: Vec<String> = untouched
            .iter()
            .filter(|s| holds.iter().any(|h| &h.scope == *s))
            .cloned()
            .collect();
        if held.is_empty() {
            text.push('.');
        } else {
            text.push_str(&format!(
                "; {}. `unfreeze --all` lifts every hold.",
                remaining(&holds, &held)
            ));
        }
        return Ok(Released {
            generation: None,
            text,
        });
    }
    write_wanted(tx, generation, &lifted, incident, actor, now).await?;
    let text = format!(
        "{whose} on {} is lifted{why}; {}.",
        lifted.join(", "),
        remaining(&holds, &lifted)
    );
    tx.append_timeline(&NewEntry {
        incident_id: incident.map(|i| i.id.clone()),
        occurred_at: now,
        actor: actor.identity().to_string(),
        source: actor.source,
        kind: EntryKind::UnfreezeRequested,
        text: format!("{} (generation {generation}).", text.trim_end_matches('.')),
    })
    .await?;
    let how = if holder.is_none() {
        " with `unfreeze --all`"
    } else {
        ""
    };
    for (other, on) in lifted_for_others(&removed, incident) {
        tx.append_timeline(&NewEntry {
            incident_id: Some(other),
            occurred_at: now,
            actor: actor.identity().to_string(),
            source: actor.source,
            kind: EntryKind::UnfreezeRequested,
            text: format!(
                "{} lifted this incident's merge freeze hold on {}{how}{why} (generation {generation}); {}.",
                actor.name,
                on.join(", "),
                remaining(&holds, &on)
            ),
        })
        .await?;
    }
    Ok(Released {
        generation: Some(generation),
        text,
    })
}

/// The incidents other than `acting` whose holds were removed, each with the scopes it
/// lost: `unfreeze --all` says so on their timelines too, not only where it was run.
fn lifted_for_others(
    removed: &[FreezeHold],
    acting: Option<&Incident>,
) -> Vec<(IncidentId, Vec<String>)> {
    let mut out: Vec<(IncidentId, Vec<String>)> = Vec::new();
    for h in removed {
        let Some(id) = &h.incident_id else { continue };
        if acting.is_some_and(|i| &i.id == id) {
            continue;
        }
        match out.iter_mut().find(|(i, _)| i == id) {
            Some((_, scopes)) => scopes.push(h.scope.clone()),
            None => out.push((id.clone(), vec![h.scope.clone()])),
        }
    }
    out
}

/// "acme/api stays frozen: held by INC-2 (SEV1 …) and alice (release week). acme/web is no
/// longer held; its ruleset comes off." Scopes with the same holders share a sentence; a
/// hold on `acme/*` keeps `acme/api` frozen too, and is named with its scope.
pub(super) fn remaining(holds: &[FreezeHold], scopes: &[String]) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for scope in scopes {
        let labels: Vec<String> = holds
            .iter()
            .filter(|h| crate::incident::exemption::covers(&h.scope, scope))
            .map(|h| match h.scope.eq_ignore_ascii_case(scope) {
                true => h.label(),
                false => format!("{} on {}", h.label(), h.scope),
            })
            .collect();
        let key = and_list(&labels);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, s)) => s.push(scope),
            None => groups.push((key, vec![scope])),
        }
    }
    groups
        .into_iter()
        .map(|(held_by, scopes)| {
            let (names, many) = (scopes.join(", "), scopes.len() > 1);
            if held_by.is_empty() {
                let its = if many {
                    "their rulesets come"
                } else {
                    "its ruleset comes"
                };
                format!("nothing holds {names} any more, so {its} off")
            } else {
                let stay = if many { "stay" } else { "stays" };
                format!("{names} {stay} frozen: held by {held_by}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
