//! The pages' forms: declare (`POST /incidents`, on the list), and post an update, change
//! the status and resolve (`POST /incidents/{number}/updates|status|resolve`, on an
//! incident). Only a signed-in session posts them: the guard has checked its CSRF token, and
//! an API token is refused there (`auth::Need::Session`; machines use `/api/…`). Each form
//! builds the command chat would and runs it through `IncidentService::apply` as the
//! session's actor, so `[permissions]` and the text rules are the same as everywhere.
//!
//! Every form carries a one-time `form_id` made when the page is rendered. It is the
//! form's idempotency key: an inbound delivery (source `web`, id `<actor>:<form_id>`)
//! recorded in the same transaction as the change, with a digest of what was sent, as the
//! API's `Idempotency-Key` is. So a form sent twice (a double click, a resent POST) changes
//! things once, and the second answer is the first one's redirect.
//!
//! Success is a 303 to the incident's page. A refusal the user can fix shows the page again
//! with the sentence in `<p class="error">` (403 forbidden, 404 no such incident, 409
//! changed meanwhile, 422 otherwise) and writes nothing but what the service records for
//! every refused command. Internal errors are logged and shown as a generic sentence.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::incident::{IncidentDraft, incident_html};
use super::list::{DeclareDraft, refused_list};
use super::{Header, PagesState, internal, plain};
use crate::auth::Scope;
use crate::http::guard::SessionCaller;
use crate::http::idempotency::KEY_WINDOW;
use crate::incident::command::{Change, Declare};
use crate::incident::{Command, IncidentNumber, ServiceError, Severity, Status, UserError};
use crate::store::Delivery;

/// The inbound-delivery source form ids are recorded under.
const SOURCE: &str = "web";

/// What a form's id may be: what [`new_form_id`] makes, give or take.
const FORM_ID_MAX: usize = 64;

/// A new one-time form id: 32 random hex digits.
pub(super) fn new_form_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A posted form's fields, read leniently (an unreadable body has none).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// A digest of the form posted to `path`, without its CSRF token and form id (which
    /// are not what it asks for).
    fn digest(&self, path: &str) -> String {
        let mut fields: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(n, _)| n != "csrf" && n != "form_id")
            .collect();
        fields.sort();
        let mut h = Sha256::new();
        h.update(path.as_bytes());
        for (n, v) in fields {
            for part in [n, v] {
                h.update([0]);
                h.update(part.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}

/// The form's idempotency key as a delivery, or the sentence to show when its `form_id` is
/// missing or not one this page made.
fn delivery(caller: &SessionCaller, fields: &Fields, path: &str) -> Result<Delivery, String> {
    let form_id = fields.get("form_id").unwrap_or_default();
    let fits = !form_id.is_empty()
        && form_id.len() <= FORM_ID_MAX
        && form_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !fits {
        return Err(
            "This form came without its one-time id; reload the page and send it again.".into(),
        );
    }
    let id = format!("{}:{form_id}", caller.actor().identity());
    Ok(Delivery::within(SOURCE, id, KEY_WINDOW).with_request(fields.digest(path)))
}

/// How a refusal the user can fix is answered.
fn status_of(e: &UserError) -> StatusCode {
    match e {
        UserError::Forbidden { .. } => StatusCode::FORBIDDEN,
        UserError::NotFound(_) => StatusCode::NOT_FOUND,
        UserError::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// A form was refused: `status`, and the sentence to show.
struct Refused {
    status: StatusCode,
    sentence: String,
}

impl Refused {
    fn new(status: StatusCode, sentence: impl Into<String>) -> Self {
        Self {
            status,
            sentence: sentence.into(),
        }
    }

    /// What the service said, as a refusal (a duplicate is answered before this).
    fn of(e: ServiceError, what: &str) -> Self {
        match e {
            ServiceError::User(e) => Self::new(status_of(&e), e.to_string()),
            ServiceError::Duplicate => still_running(),
            ServiceError::Internal(e) => Self::internal(e, what),
        }
    }

    /// An internal error: logged with what was being done, shown as a generic sentence.
    fn internal(e: anyhow::Error, what: &str) -> Self {
        tracing::error!(error = %format!("{e:#}"), "{what} for a web form failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something failed on the server; see its log, and try again in a moment.",
        )
    }
}

fn header_for(caller: &SessionCaller) -> Header {
    Header {
        signed_in_as: caller.describe(),
        csrf: caller.csrf.clone(),
    }
}

/// The answer when no session came with the form (only without the guard in front).
fn no_session() -> Response {
    plain(
        StatusCode::UNAUTHORIZED,
        "This form needs a signed-in session; sign in at /signin.".into(),
    )
}

fn to_incident(n: IncidentNumber) -> Response {
    Redirect::to(&format!("/incidents/{n}")).into_response()
}

/// `POST /incidents`: declare.
pub(super) async fn declare(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    body: Bytes,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return no_session();
    };
    let fields = Fields::parse(&body);
    let severity: Result<Severity, UserError> = fields.text("severity").parse();
    let draft = DeclareDraft {
        severity: severity.as_ref().ok().copied(),
        title: fields.text("title"),
        drill: fields.get("drill") == Some("1"),
    };
    let outcome = run_declare(&pages, &caller, &fields, severity, &draft).await;
    match outcome {
        Ok(n) => to_incident(n),
        Err(refused) => {
            let html = refused_list(&pages, header_for(&caller), draft, refused.sentence).await;
            match html {
                Ok(html) => (refused.status, Html(html)).into_response(),
                Err(e) => internal("showing a refused declaration", e),
            }
        }
    }
}

async fn run_declare(
    pages: &PagesState,
    caller: &SessionCaller,
    fields: &Fields,
    severity: Result<Severity, UserError>,
    draft: &DeclareDraft,
) -> Result<IncidentNumber, Refused> {
    if !caller.may(Scope::Declare) {
        return Err(Refused::new(
            StatusCode::FORBIDDEN,
            "You cannot declare incidents here: this session does not have the declare scope.",
        ));
    }
    let severity =
        severity.map_err(|e| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    if draft.title.trim().is_empty() {
        return Err(Refused::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Give the incident a title: what is broken, as people will search for it.",
        ));
    }
    let delivery = delivery(caller, fields, "/incidents")
        .map_err(|s| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, s))?;
    let mut declare = Declare::new(severity, draft.title.clone());
    declare.drill = draft.drill;
    let service = pages.service.for_delivery(delivery.clone());
    match service
        .apply(Command::untargeted(declare), &caller.actor())
        .await
    {
        Ok(outcome) => outcome.reply.incident().map(|i| i.number).ok_or_else(|| {
            let e = anyhow::anyhow!("a declaration answered without its incident");
            Refused::internal(e, "declaring")
        }),
        Err(ServiceError::Duplicate) => declared_before(pages, &delivery).await,
        Err(e) => Err(Refused::of(e, "declaring")),
    }
}

/// The incident a form sent before declared, or why it cannot be shown.
async fn declared_before(
    pages: &PagesState,
    delivery: &Delivery,
) -> Result<IncidentNumber, Refused> {
    let store = pages.service.store();
    let record = sent_before(pages, delivery).await?;
    let Some(id) = record else {
        return Err(still_running());
    };
    match store.incident_by_id(&id).await {
        Ok(Some(incident)) => Ok(incident.number),
        Ok(None) => Err(still_running()),
        Err(e) => Err(Refused::internal(e, "finding what a form declared")),
    }
}

/// What a form sent before was recorded with: the incident it declared, if any; a refusal
/// when it was sent with other fields.
async fn sent_before(
    pages: &PagesState,
    delivery: &Delivery,
) -> Result<Option<crate::incident::IncidentId>, Refused> {
    let record = match pages.service.store().delivery_record(delivery).await {
        Ok(r) => r,
        Err(e) => return Err(Refused::internal(e, "reading a form's id")),
    };
    let Some(record) = record else {
        return Err(still_running());
    };
    if record.request != delivery.request {
        return Err(Refused::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This form was already sent with other content; here is the page again, send it from here.",
        ));
    }
    Ok(record.incident)
}

fn still_running() -> Refused {
    Refused::new(
        StatusCode::CONFLICT,
        "This form was already sent and is still being handled; reload the page in a moment.",
    )
}

/// `POST /incidents/{number}/updates`: a status update.
pub(super) async fn update(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let draft = IncidentDraft {
        text: fields.text("text"),
        ..IncidentDraft::default()
    };
    let change = Ok(Change::Update {
        text: draft.text.clone(),
        next: None,
    });
    change_form(pages, caller, number, "updates", fields, change, draft).await
}

/// `POST /incidents/{number}/status`: a new status.
pub(super) async fn status(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let status: Result<Status, UserError> = match fields.get("status") {
        Some(s) if !s.trim().is_empty() => s.parse(),
        _ => Err(UserError::invalid("Choose a status.")),
    };
    let draft = IncidentDraft {
        status: status.as_ref().ok().copied(),
        ..IncidentDraft::default()
    };
    let change = status.map(Change::Status);
    change_form(pages, caller, number, "status", fields, change, draft).await
}

/// `POST /incidents/{number}/resolve`: resolve, with an optional summary.
pub(super) async fn resolve(
    State(pages): State<PagesState>,
    caller: Option<Extension<SessionCaller>>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let draft = IncidentDraft {
        summary: fields.text("summary"),
        ..IncidentDraft::default()
    };
    let summary = Some(draft.summary.clone()).filter(|s| !s.trim().is_empty());
    let change = Ok(Change::Resolve { summary });
    change_form(pages, caller, number, "resolve", fields, change, draft).await
}

/// One of the incident page's forms: `change` on incident `number`, then back to its page,
/// or the page again with the refusal.
async fn change_form(
    pages: PagesState,
    caller: Option<Extension<SessionCaller>>,
    number: String,
    what: &str,
    fields: Fields,
    change: Result<Change, UserError>,
    draft: IncidentDraft,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return no_session();
    };
    let Some(n) = IncidentNumber::parse(&number, true) else {
        let sentence = format!(
            "\"{}\" is not an incident number like INC-42.",
            number.chars().take(40).collect::<String>()
        );
        return refused_elsewhere(
            &pages,
            &caller,
            Refused::new(StatusCode::NOT_FOUND, sentence),
        )
        .await;
    };
    let path = format!("/incidents/{}/{what}", n.0);
    let refused = match run_change(&pages, &caller, n, &path, &fields, change).await {
        Ok(()) => return to_incident(n),
        Err(r) => r,
    };
    match incident_html(
        &pages,
        Some(header_for(&caller)),
        n,
        draft,
        Some(refused.sentence.clone()),
    )
    .await
    {
        Ok(Some(html)) => (refused.status, Html(html)).into_response(),
        Ok(None) => refused_elsewhere(&pages, &caller, refused).await,
        Err(e) => internal("showing a refused change", e),
    }
}

async fn run_change(
    pages: &PagesState,
    caller: &SessionCaller,
    n: IncidentNumber,
    path: &str,
    fields: &Fields,
    change: Result<Change, UserError>,
) -> Result<(), Refused> {
    if !caller.may(Scope::Update) {
        return Err(Refused::new(
            StatusCode::FORBIDDEN,
            "You cannot change incidents here: this session does not have the update scope.",
        ));
    }
    let change = change.map_err(|e| Refused::new(status_of(&e), e.to_string()))?;
    let delivery = delivery(caller, fields, path)
        .map_err(|s| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, s))?;
    let service = pages.service.for_delivery(delivery.clone());
    match service.apply(Command::on(n, change), &caller.actor()).await {
        Ok(_) => Ok(()),
        Err(ServiceError::Duplicate) => sent_before(pages, &delivery).await.map(|_| ()),
        Err(e) => Err(Refused::of(e, "changing an incident")),
    }
}

/// A refusal about an incident that cannot be shown: on the list.
async fn refused_elsewhere(
    pages: &PagesState,
    caller: &SessionCaller,
    refused: Refused,
) -> Response {
    let html = refused_list(
        pages,
        header_for(caller),
        DeclareDraft::default(),
        refused.sentence,
    )
    .await;
    match html {
        Ok(html) => (refused.status, Html(html)).into_response(),
        Err(e) => internal("showing a refused form", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_the_csrf_token_the_form_id_and_the_order() {
        let a = Fields::parse(b"csrf=x&form_id=1&title=Down&severity=SEV1");
        let b = Fields::parse(b"severity=SEV1&title=Down&csrf=y&form_id=2");
        let c = Fields::parse(b"severity=SEV1&title=Up&csrf=x&form_id=1");
        assert_eq!(a.digest("/incidents"), b.digest("/incidents"));
        assert_ne!(a.digest("/incidents"), c.digest("/incidents"));
        assert_ne!(a.digest("/incidents"), a.digest("/incidents/1/updates"));
    }

    #[test]
    fn form_ids_are_fresh_and_fit() {
        let (a, b) = (new_form_id(), new_form_id());
        assert_ne!(a, b);
        assert!(a.len() <= FORM_ID_MAX && a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
