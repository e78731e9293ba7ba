//! The API for machines: declare an incident, post an update, change its status, resolve
//! it (JSON in, the incident as `GET /api/incidents/{n}` shows it out), and Prometheus
//! Alertmanager's webhook. Each request runs as the API token's actor (`api:<name>`)
//! through `IncidentService::apply`, the same gate and permissions as chat and the CLI.
//! User errors are 4xx with a JSON `error` sentence; internal errors are logged and
//! answered with a generic 500.

use std::future::Future;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::api::{incident_view, internal};
use super::caller::ApiCaller;
use super::idempotency::{self, Replay};
use super::refusal::Refusal;
use crate::alerts::{self, AlertmanagerConfig, Notification};
use crate::auth::Scope;
use crate::incident::command::{Change, Declare, parse_cadence};
use crate::incident::{
    Command, IncidentId, IncidentNumber, IncidentService, ServiceError, Severity, Status, UserError,
};
use crate::read::ReadModel;
use crate::store::Delivery;

/// What the machine routes need.
#[derive(Clone)]
pub struct MachineState {
    pub service: IncidentService,
    pub read: ReadModel,
    pub alertmanager: AlertmanagerConfig,
}

/// The answer for an update's `next` that is not a duration from 1m to 24h.
const NEXT_RANGE: &str = "\"next\" must be between 1m and 24h, written like 30m or 1h.";

/// The scope that declares (`POST /api/incidents`, Alertmanager).
const DECLARE: Scope = Scope::Declare;
/// The scope for changes to an incident (updates, status, resolve).
const UPDATE: Scope = Scope::Update;

pub fn router(state: MachineState) -> Router {
    Router::new()
        .route("/api/incidents", post(declare))
        .route("/api/incidents/{number}/updates", post(update))
        .route("/api/incidents/{number}/status", post(status))
        .route("/api/incidents/{number}/resolve", post(resolve))
        .route("/api/alertmanager", post(alertmanager))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclareBody {
    title: String,
    severity: String,
    description: Option<String>,
    #[serde(default)]
    drill: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    text: String,
    /// When the next update is due: `30m`, `1h`.
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    summary: Option<String>,
}

async fn declare(
    State(state): State<MachineState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = caller.require(DECLARE, "declare incidents") {
        return r.into_response();
    }
    let path = "/api/incidents";
    let parsed: DeclareBody = match parse(&body, path) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let severity: Severity = match parsed.severity.parse() {
        Ok(s) => s,
        Err(e) => return user_error(e),
    };
    let mut declare = Declare::new(severity, parsed.title);
    declare.description = parsed.description;
    declare.drill = parsed.drill;
    let request = Request {
        state: &state,
        caller: &caller,
        headers: &headers,
        path,
        body: &body,
        success: StatusCode::CREATED,
        target: None,
    };
    let actor = caller.actor();
    request
        .run(|service| async move {
            let outcome = service.apply(Command::untargeted(declare), &actor).await?;
            number_of(&outcome)
        })
        .await
}

async fn update(
    State(state): State<MachineState>,
    caller: ApiCaller,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: UpdateBody = match parse(&body, "/api/incidents/{n}/updates") {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let next = match parsed.next.map(parse_cadence).transpose() {
        Ok(n) => n,
        // The command's sentence names the CLI's `--next`; the API's field is `next`.
        Err(_) => return Refusal::bad_request(NEXT_RANGE).into_response(),
    };
    let change = Change::Update {
        text: parsed.text,
        next,
    };
    change_incident(state, caller, number, "updates", headers, body, change).await
}

async fn status(
    State(state): State<MachineState>,
    caller: ApiCaller,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: StatusBody = match parse(&body, "/api/incidents/{n}/status") {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let status: Status = match parsed.status.parse() {
        Ok(s) => s,
        Err(e) => return user_error(e),
    };
    let change = Change::Status(status);
    change_incident(state, caller, number, "status", headers, body, change).await
}

async fn resolve(
    State(state): State<MachineState>,
    caller: ApiCaller,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: ResolveBody = match parse(&body, "/api/incidents/{n}/resolve") {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let change = Change::Resolve {
        summary: parsed.summary,
    };
    change_incident(state, caller, number, "resolve", headers, body, change).await
}

/// `POST /api/incidents/{number}/{what}`: `change` on the incident, as the caller.
async fn change_incident(
    state: MachineState,
    caller: ApiCaller,
    number: String,
    what: &str,
    headers: HeaderMap,
    body: Bytes,
    change: Change,
) -> Response {
    if let Err(r) = caller.require(UPDATE, "change incidents") {
        return r.into_response();
    }
    let Some(n) = IncidentNumber::parse(&number, true) else {
        return Refusal::bad_request(format!(
            "\"{}\" is not an incident number like INC-42.",
            number.chars().take(40).collect::<String>()
        ))
        .into_response();
    };
    let path = format!("/api/incidents/{}/{what}", n.0);
    let request = Request {
        state: &state,
        caller: &caller,
        headers: &headers,
        path: &path,
        body: &body,
        success: StatusCode::OK,
        target: Some(n),
    };
    let actor = caller.actor();
    request
        .run(|service| async move {
            let outcome = service.apply(Command::on(n, change), &actor).await?;
            number_of(&outcome)
        })
        .await
}

/// `POST /api/alertmanager`: one notification for one alert group.
async fn alertmanager(
    State(state): State<MachineState>,
    caller: ApiCaller,
    body: Bytes,
) -> Response {
    if let Err(r) = caller.require(DECLARE, "send Alertmanager notifications") {
        return r.into_response();
    }
    let notification: Notification = match parse(&body, "/api/alertmanager") {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    if let Some(why) = notification.unsupported() {
        return Refusal::bad_request(why).into_response();
    }
    match alerts::receive(
        &state.service,
        &state.alertmanager,
        &caller.actor(),
        &notification,
    )
    .await
    {
        Ok(receipt) => Json(receipt).into_response(),
        Err(e) => service_error(e),
    }
}

/// One write request: where its answer comes from and how it is kept for its key.
struct Request<'a> {
    state: &'a MachineState,
    caller: &'a ApiCaller,
    headers: &'a HeaderMap,
    path: &'a str,
    body: &'a Bytes,
    success: StatusCode,
    /// The incident the request changes (`None` for a declaration).
    target: Option<IncidentNumber>,
}

impl Request<'_> {
    /// Runs `apply` once per `Idempotency-Key` (see [`idempotency`]) and answers with the
    /// incident it names.
    async fn run<F, Fut>(self, apply: F) -> Response
    where
        F: FnOnce(IncidentService) -> Fut,
        Fut: Future<Output = Result<IncidentNumber, ServiceError>>,
    {
        let delivery = match idempotency::delivery(
            self.headers,
            &self.caller.name,
            "POST",
            self.path,
            self.body,
        ) {
            Ok(d) => d,
            Err(r) => return r.into_response(),
        };
        if let Some(d) = &delivery {
            if let Some(answer) = self.replay(d).await {
                return answer;
            }
        }
        let service = match &delivery {
            Some(d) => self.state.service.for_delivery(d.clone()),
            None => self.state.service.clone(),
        };
        match apply(service).await {
            Ok(number) => self.answer(number, delivery.as_ref()).await,
            Err(ServiceError::Duplicate) => {
                // Another request with this key got there first.
                let d = delivery
                    .as_ref()
                    .expect("only a keyed request is a duplicate");
                self.replay(d).await.unwrap_or_else(|| {
                    internal(
                        "replaying an idempotent request",
                        anyhow::anyhow!("a duplicate key left no record"),
                    )
                })
            }
            Err(e) => service_error(e),
        }
    }

    /// The answer for a key seen before; `None` if it was not.
    async fn replay(&self, delivery: &Delivery) -> Option<Response> {
        let store = self.state.service.store();
        match idempotency::replay(store, delivery).await {
            Replay::NotSeen => None,
            Replay::Answer(answer) => Some(answer),
            Replay::Lost(declared) => Some(self.answer_lost(declared, delivery).await),
        }
    }

    /// For a key whose answer was lost: the incident it changed (or declared) as it is now.
    async fn answer_lost(&self, declared: Option<IncidentId>, delivery: &Delivery) -> Response {
        let number = match (self.target, declared) {
            (Some(n), _) => n,
            (None, Some(id)) => match self.state.service.store().incident_by_id(&id).await {
                Ok(Some(incident)) => incident.number,
                Ok(None) => return idempotency::still_running(),
                Err(e) => return internal("loading the incident a key declared", e),
            },
            (None, None) => return idempotency::still_running(),
        };
        let answer = self.kept_answer(number, Some(delivery), true).await;
        if answer.status() == self.success {
            idempotency::lost(answer)
        } else {
            answer
        }
    }

    /// Incident `number` as the answer, kept for the key if there is one.
    async fn answer(&self, number: IncidentNumber, delivery: Option<&Delivery>) -> Response {
        self.kept_answer(number, delivery, false).await
    }

    /// Incident `number` as the answer, kept for the key if there is one (`lost`: in place
    /// of a first answer that was lost).
    async fn kept_answer(
        &self,
        number: IncidentNumber,
        delivery: Option<&Delivery>,
        lost: bool,
    ) -> Response {
        let view = match incident_view(&self.state.read, number).await {
            Ok(Some(view)) => view,
            Ok(None) => return user_error(UserError::NotFound(number)),
            Err(e) => return internal("loading an incident after a change", e),
        };
        let mut body = match serde_json::to_value(&view) {
            Ok(b) => b,
            Err(e) => return internal("showing an incident", e.into()),
        };
        latest_entries_only(&mut body, number);
        if let Some(d) = delivery {
            idempotency::keep(self.state.service.store(), d, self.success, &body, lost).await;
        }
        (self.success, Json(body)).into_response()
    }
}

/// How many of the newest timeline entries a write answers with.
pub const ANSWER_ENTRIES: usize = 20;

/// Keeps the [`ANSWER_ENTRIES`] newest entries of an incident's `timeline` (oldest first, as
/// `GET` shows it), with `timeline_total` and `timeline_url` for the whole of it.
fn latest_entries_only(body: &mut serde_json::Value, number: IncidentNumber) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    let Some(serde_json::Value::Array(timeline)) = object.get_mut("timeline") else {
        return;
    };
    let total = timeline.len();
    timeline.drain(..total.saturating_sub(ANSWER_ENTRIES));
    object.insert("timeline_total".into(), total.into());
    object.insert(
        "timeline_url".into(),
        format!("/api/incidents/{number}").into(),
    );
}

fn number_of(outcome: &crate::incident::Outcome) -> Result<IncidentNumber, ServiceError> {
    outcome
        .reply
        .incident()
        .map(|i| i.number)
        .ok_or_else(|| anyhow::anyhow!("a change answered without its incident").into())
}

/// The JSON body as `T` (an empty body is `{}`: every field optional), or a 400 that says
/// what is wrong with it.
fn parse<T: DeserializeOwned>(body: &[u8], path: &str) -> Result<T, Refusal> {
    let body = if body.trim_ascii().is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        Refusal::bad_request(format!(
            "The body is not what POST {path} takes: {e}. Send JSON with Content-Type: application/json."
        ))
    })
}

fn user_error(e: UserError) -> Response {
    let status = match &e {
        UserError::NotFound(_) => StatusCode::NOT_FOUND,
        UserError::Forbidden { .. } => StatusCode::FORBIDDEN,
        UserError::Conflict { .. } | UserError::AlreadyResolved => StatusCode::CONFLICT,
        UserError::Invalid(_) | UserError::Unknown { .. } | UserError::NeedsIncident(_) => {
            StatusCode::BAD_REQUEST
        }
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

fn service_error(e: ServiceError) -> Response {
    match e {
        ServiceError::User(e) => user_error(e),
        ServiceError::Duplicate => (
            StatusCode::CONFLICT,
            Json(json!({ "error": "That was already done." })),
        )
            .into_response(),
        ServiceError::Internal(e) => internal("applying an API command", e),
    }
}
