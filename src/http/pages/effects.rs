//! The effects page (`GET /effects`): effects still pending, running or failed, newest
//! first, and the retry form for failed ones (`POST /effects/{id}/retry`), which re-queues
//! an effect as `firebreak effects retry` does. Who may retry is [`retry_refusal`]'s rule.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Header, PagesState, age, header_of, internal, page, plain};
use crate::auth::Scope;
use crate::effects::worker::due_in;
use crate::effects::{Effect, EffectState};
use crate::http::guard::SessionCaller;
use crate::incident::permissions::{Action, Permissions};
use crate::incident::{Incident, IncidentId};

/// At most this many effects are listed (the newest).
const SHOWN: i64 = 200;

/// One effect on the page.
struct Row {
    id: i64,
    kind: String,
    state: &'static str,
    failed: bool,
    /// `INC-3` and its title, linked, when the effect belongs to an incident.
    incident: Option<(String, i64, String)>,
    target: String,
    attempts: u32,
    error: Option<String>,
    next_run: String,
    queued: String,
}

#[derive(Template)]
#[template(path = "pages/effects.html")]
struct EffectsPage {
    header: Option<Header>,
    /// What the last retry did, in a sentence.
    said: Option<String>,
    rows: Vec<Row>,
    at_limit: bool,
    /// The session's CSRF token, when it may retry (the forms are shown then).
    retry_csrf: Option<String>,
    /// Why this caller sees no retry button, when there are failed effects.
    no_retry_because: Option<String>,
}

/// `?said=retried&effect=7`: what the retry the browser was sent back from did. Only known
/// words and a number are read, so a crafted link cannot put its own text on the page.
#[derive(Deserialize, Default)]
pub struct Said {
    said: Option<String>,
    effect: Option<String>,
}

/// The sentence for a [`Said`], if it names a known outcome.
fn said_sentence(q: &Said) -> Option<String> {
    let id = q.effect.as_deref().and_then(|e| e.parse::<i64>().ok());
    let name = id.map_or_else(|| "That effect".to_string(), |id| format!("Effect {id}"));
    Some(match q.said.as_deref()? {
        "retried" => format!("{name} is queued again; the worker runs it shortly."),
        "not_failed" => format!(
            "{name} has not failed (it may have been retried already), so there was nothing to retry."
        ),
        "unknown" => match id {
            Some(id) => format!("There is no effect {id}."),
            None => "There is no such effect.".to_string(),
        },
        _ => return None,
    })
}

/// Why `caller` may not retry effects, in a sentence; `None`: they may. The rule: the
/// session must be one that may change things (its token has the `update` scope), and its
/// actor must pass `[permissions] unfreeze_all`, the admin-level list that `firebreak token
/// create` checks too (absent, whoever `freeze` allows).
pub(super) fn retry_refusal(caller: &SessionCaller, permissions: &Permissions) -> Option<String> {
    let who = caller.actor().identity();
    if !caller.may(Scope::Update) {
        return Some(format!(
            "Retrying an effect changes things, and {who} was signed in with a token without the update scope."
        ));
    }
    if !permissions.allows(&caller.actor(), Action::UnfreezeAll) {
        return Some(format!(
            "Retrying effects needs the unfreeze_all permission, and {who} is not on that list in [permissions]."
        ));
    }
    None
}

/// `GET /effects`.
pub(super) async fn effects_page(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Query(q): Query<Said>,
) -> Response {
    let effects = match pages.read.unfinished_effects(SHOWN).await {
        Ok(list) => list,
        Err(e) => return internal("listing effects for their page", e),
    };
    let incidents = match incidents_of(&pages, &effects).await {
        Ok(found) => found,
        Err(e) => return internal("naming the incidents of effects", e),
    };
    let refusal = caller.as_ref().map_or_else(
        || Some("Retrying needs a signed-in session.".to_string()),
        |Extension(c)| retry_refusal(c, &pages.permissions),
    );
    let retry_csrf = match (&caller, &refusal) {
        (Some(Extension(c)), None) => Some(c.csrf.clone()),
        _ => None,
    };
    let now = Utc::now();
    let rows: Vec<Row> = effects
        .iter()
        .map(|e| row(e, &incidents, pages.worker.target_of(e), now))
        .collect();
    let any_failed = rows.iter().any(|r| r.failed);
    page(&EffectsPage {
        header: header_of(caller),
        said: said_sentence(&q),
        at_limit: rows.len() as i64 == SHOWN,
        rows,
        retry_csrf,
        no_retry_because: refusal.filter(|_| any_failed),
    })
}

/// The incidents these effects belong to, by id.
async fn incidents_of(
    pages: &PagesState,
    effects: &[Effect],
) -> anyhow::Result<HashMap<IncidentId, Incident>> {
    let mut found = HashMap::new();
    for id in effects.iter().filter_map(|e| e.incident_id.as_ref()) {
        if found.contains_key(id) {
            continue;
        }
        if let Some(incident) = pages.store.incident_by_id(id).await? {
            found.insert(id.clone(), incident);
        }
    }
    Ok(found)
}

fn row(
    e: &Effect,
    incidents: &HashMap<IncidentId, Incident>,
    target: Option<String>,
    now: DateTime<Utc>,
) -> Row {
    let incident = e
        .incident_id
        .as_ref()
        .and_then(|id| incidents.get(id))
        .map(|i| (i.number.to_string(), i.number.0, i.title.clone()));
    Row {
        id: e.id,
        kind: e.kind.clone(),
        state: e.state.as_str(),
        failed: e.state == EffectState::Failed,
        incident,
        target: target.unwrap_or_else(|| "—".into()),
        attempts: e.attempts,
        error: e.last_error.clone(),
        next_run: next_run(e, now),
        queued: age(e.created_at, now),
    }
}

fn next_run(e: &Effect, now: DateTime<Utc>) -> String {
    match e.state {
        EffectState::Pending => due_in(e.run_at, now),
        EffectState::Running => "running now".into(),
        EffectState::Failed => "not retried (gave up)".into(),
        EffectState::Done => "—".into(),
    }
}

/// `POST /effects/{id}/retry` (the guard has checked the session and its CSRF token): a
/// failed effect is queued again with a fresh attempt budget, then the browser goes back to
/// `/effects` with what happened. An effect that is not failed (a double submit) or unknown
/// is a sentence there, not an error. Not on the timeline, as with the CLI's retry; logged.
pub(super) async fn retry(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Path(id): Path<String>,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return plain(
            StatusCode::FORBIDDEN,
            "Retrying an effect needs a signed-in session.".into(),
        );
    };
    if let Some(sentence) = retry_refusal(&caller, &pages.permissions) {
        return plain(StatusCode::FORBIDDEN, sentence);
    }
    let Ok(id) = id.parse::<i64>() else {
        return back("unknown", None);
    };
    match pages.store.retry_effect(id).await {
        Ok(true) => {
            tracing::info!(effect = id, by = %caller.actor().identity(), "effect retried from the web");
            pages.worker.wake();
            back("retried", Some(id))
        }
        Ok(false) => match pages.store.effect(id).await {
            Ok(Some(_)) => back("not_failed", Some(id)),
            Ok(None) => back("unknown", Some(id)),
            Err(e) => internal("looking up an effect to retry", e),
        },
        Err(e) => internal("retrying an effect", e),
    }
}

/// 303 to `/effects?said=…&effect=…`.
fn back(said: &str, effect: Option<i64>) -> Response {
    let mut pairs = vec![("said", said.to_string())];
    if let Some(id) = effect {
        pairs.push(("effect", id.to_string()));
    }
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    Redirect::to(&format!("/effects?{query}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;
    use crate::http::guard::SignedIn;

    fn session(name: &str, scopes: &str) -> SessionCaller {
        SessionCaller {
            who: SignedIn::Token {
                name: name.into(),
                scopes: Scopes::parse(scopes).unwrap(),
            },
            csrf: "x".into(),
        }
    }

    #[test]
    fn retrying_needs_a_writing_session_on_the_unfreeze_all_list() {
        let open = Permissions::default();
        assert_eq!(retry_refusal(&session("ops", "read,update"), &open), None);
        let reader = retry_refusal(&session("viewer", "read"), &open).unwrap();
        assert!(reader.contains("api:viewer") && reader.contains("update scope"));
        let listed = Permissions {
            unfreeze_all: Some(vec!["api:ops".into()]),
            ..Permissions::default()
        };
        assert_eq!(retry_refusal(&session("ops", "read,update"), &listed), None);
        let other = retry_refusal(&session("alerts", "read,update"), &listed).unwrap();
        assert_eq!(
            other,
            "Retrying effects needs the unfreeze_all permission, and api:alerts is not on that list in [permissions]."
        );
    }

    #[test]
    fn only_known_outcomes_become_sentences() {
        let said = |s: &str, e: Option<&str>| {
            said_sentence(&Said {
                said: Some(s.into()),
                effect: e.map(str::to_string),
            })
        };
        assert_eq!(
            said("retried", Some("7")).unwrap(),
            "Effect 7 is queued again; the worker runs it shortly."
        );
        assert_eq!(
            said("unknown", Some("<b>")).unwrap(),
            "There is no such effect."
        );
        assert_eq!(said("Your account is locked", Some("7")), None);
        assert_eq!(said_sentence(&Said::default()), None);
    }
}
