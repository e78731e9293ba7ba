//! The three Slack endpoints. Each verifies the signature on the raw bytes first (401 and
//! nothing done otherwise), parses into [`SlackInbound`](super::inbound::SlackInbound), runs
//! the core transaction, and answers at once: Slack's 3-second deadline is never at the
//! mercy of Slack's own API, because every call back to Slack is a queued effect.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::blocks::{self, ACTION_ACK, ACTION_RESOLVE, ACTION_UPDATE, VIEW_DECLARE, VIEW_UPDATE};
use super::inbound::{self, Button, Mention, Reaction, SlackInbound, ViewSubmission};
use super::planner;
use super::verify;
use crate::incident::command::{self, Change, Command, Declare, ParseOptions};
use crate::incident::{
    Actor, IncidentNumber, IncidentService, ServiceError, Severity, Source, UserError,
};
use crate::read::ReadModel;
use crate::store::Delivery;

/// What the Slack endpoints need.
pub struct SlackEdge {
    pub service: IncidentService,
    /// Which incident a channel belongs to.
    pub read: ReadModel,
    pub signing_secret: SecretString,
}

pub type Edge = State<Arc<SlackEdge>>;

/// `POST /slack/commands`: `/incident …`, `/freeze …`, `/unfreeze …`.
pub async fn commands(State(edge): Edge, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = edge.verify(&headers, &body) {
        return resp;
    }
    let cmd = match inbound::parse_command(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(&e.0),
    };
    let text = blocks::normalize_mentions(cmd.text.trim());
    let line = match cmd.command.as_str() {
        "/incident" => text,
        "/freeze" => format!("freeze {text}"),
        "/unfreeze" => format!("unfreeze {text}"),
        other => {
            return Json(ephemeral(&format!("firebreak does not handle {other}."))).into_response();
        }
    };
    if line.trim().eq_ignore_ascii_case("declare") {
        return match edge
            .open_modal(&cmd.trigger_id, blocks::declare_modal(&cmd.channel_id))
            .await
        {
            Ok(()) => StatusCode::OK.into_response(),
            Err(e) => Json(ephemeral(&edge.explain(&e))).into_response(),
        };
    }
    let actor = Actor::new(
        Source::Slack,
        &cmd.user_id,
        display_name(&cmd.user_name, &cmd.user_id),
    );
    // A replayed request (the same signature, within the five minutes the timestamp check
    // allows) is recorded with what it changes, and applied once.
    let replay_guard = Delivery {
        source: "slack-request",
        id: headers
            .get("x-slack-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    };
    let service = edge.service.for_delivery(replay_guard);
    let outcome = match command::parse_line(&line, ParseOptions::default()) {
        Ok(parsed) => {
            edge.apply_with(&service, parsed, &cmd.channel_id, &actor, None)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(reply) => Json(blocks::command_response(&reply.reply)).into_response(),
        Err(ServiceError::User(UserError::Unknown { message, help })) => {
            Json(blocks::help_response(&message, &help)).into_response()
        }
        Err(e) => Json(ephemeral(&edge.explain(&e))).into_response(),
    }
}

/// `POST /slack/events`: `url_verification`, `app_mention`, `reaction_added`.
pub async fn events(State(edge): Edge, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = edge.verify(&headers, &body) {
        return resp;
    }
    let event = match inbound::parse_event(&body) {
        Ok(e) => e,
        Err(e) => return bad_request(&e.0),
    };
    let event_id = match &event {
        SlackInbound::UrlVerification { challenge } => {
            return Json(json!({ "challenge": challenge })).into_response();
        }
        SlackInbound::Mention(m) => m.event_id.clone(),
        SlackInbound::Reaction(r) => r.event_id.clone(),
        SlackInbound::OtherEvent { .. } => return StatusCode::OK.into_response(),
        SlackInbound::Button(_)
        | SlackInbound::ViewSubmission(_)
        | SlackInbound::OtherInteraction => return bad_request("not an event"),
    };
    // Slack retries deliveries it thinks failed (X-Slack-Retry-Num); the event id is the
    // same. It is recorded in the transaction of whatever the event causes, so a retry is
    // answered 200 and does nothing, and a failure leaves it unrecorded for the retry.
    let delivery = Delivery {
        source: "slack",
        id: event_id,
    };
    let handled = match event {
        SlackInbound::Mention(m) => edge.mention(m, delivery).await,
        SlackInbound::Reaction(r) => edge.reaction(r, delivery).await,
        _ => Ok(()),
    };
    match handled {
        Ok(()) | Err(ServiceError::Duplicate) => StatusCode::OK.into_response(),
        Err(e) => internal("handling a Slack event", anyhow::anyhow!("{e}")),
    }
}

/// `POST /slack/interactions`: card buttons and modal submissions.
pub async fn interactions(State(edge): Edge, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(resp) = edge.verify(&headers, &body) {
        return resp;
    }
    match inbound::parse_interaction(&body) {
        Ok(SlackInbound::Button(b)) => edge.button(b).await,
        Ok(SlackInbound::ViewSubmission(v)) => edge.submission(v).await,
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => bad_request(&e.0),
    }
}

impl SlackEdge {
    #[allow(clippy::result_large_err)]
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let secret = self.signing_secret.expose_secret().as_bytes();
        verify::verify(
            secret,
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            body,
            Utc::now().timestamp(),
        )
        .map_err(|e| {
            tracing::warn!(reason = %e, "rejected a Slack request");
            (
                StatusCode::UNAUTHORIZED,
                format!("invalid Slack signature: {e}"),
            )
                .into_response()
        })
    }

    /// Parses a chat line and applies it, defaulting to the incident whose channel this is.
    /// Applies `cmd` through `service`, defaulting to the incident whose channel this is.
    async fn apply_with(
        &self,
        service: &IncidentService,
        cmd: Command,
        channel: &str,
        actor: &Actor,
        version: Option<i64>,
    ) -> Result<crate::incident::Outcome, ServiceError> {
        let cmd = match self.read.room_incident("slack", channel).await? {
            Some(number) => cmd.with_default_target(number),
            None => cmd,
        };
        service.apply_checked(cmd, actor, version).await
    }

    /// An `@firebreak …` mention: the command runs in the event's transaction, and the
    /// answer is keyed by the event, so a retried event never answers twice.
    async fn mention(&self, m: Mention, delivery: Delivery) -> Result<(), ServiceError> {
        let line: String = m
            .text
            .split_whitespace()
            .skip_while(|w| w.starts_with("<@"))
            .collect::<Vec<_>>()
            .join(" ");
        let actor = Actor::new(Source::Slack, &m.user, blocks::mention(&m.user));
        let key = format!("ephemeral:event:{}", delivery.id);
        let service = self.service.for_delivery(delivery);
        let cmd = command::parse_line(&blocks::normalize_mentions(&line), ParseOptions::default());
        let text = match cmd {
            Ok(cmd) => match self
                .apply_with(&service, cmd, &m.channel, &actor, None)
                .await
            {
                Ok(out) => out.reply.text,
                Err(e @ (ServiceError::Duplicate | ServiceError::Internal(_))) => return Err(e),
                Err(e) => self.explain(&e),
            },
            Err(UserError::Unknown { message, help }) => format!("{message}\n```{help}```"),
            Err(e) => e.to_string(),
        };
        // A read-only command (or a refusal) records the event with its answer; one that
        // wrote recorded it already, and the answer's key alone keeps it single.
        let answer = planner::ephemeral(&m.channel, &m.user, &text, key);
        match service.enqueue(&answer).await {
            Err(ServiceError::Duplicate) => self.service.enqueue(&answer).await.map(drop),
            other => other.map(drop),
        }
    }

    /// A `:pushpin:` reaction in an incident channel: capture the message, once per event.
    async fn reaction(&self, r: Reaction, delivery: Delivery) -> Result<(), ServiceError> {
        if r.reaction != "pushpin" {
            return Ok(());
        }
        let Some(number) = self.read.room_incident("slack", &r.channel).await? else {
            return Ok(());
        };
        let Some(detail) = self.read.incident(number).await? else {
            return Ok(());
        };
        let capture = planner::capture_pin(&detail.incident.id, &r.channel, &r.ts, &r.user);
        self.service
            .for_delivery(delivery)
            .enqueue(&capture)
            .await?;
        Ok(())
    }

    async fn button(&self, b: Button) -> Response {
        let Some((number, version)) = parse_button_value(&b.value) else {
            return bad_request("malformed button value");
        };
        let channel = b.channel_id.clone().unwrap_or_default();
        let actor = Actor::new(Source::Slack, &b.user_id, blocks::mention(&b.user_id));
        let cmd = match b.action_id.as_str() {
            ACTION_ACK => Command::on(number, Change::Ack),
            ACTION_RESOLVE => Command::on(number, Change::Resolve { summary: None }),
            ACTION_UPDATE => {
                return match self
                    .open_modal(&b.trigger_id, blocks::update_modal(number, &channel))
                    .await
                {
                    Ok(()) => StatusCode::OK.into_response(),
                    Err(e) => internal("opening the update form", anyhow::anyhow!("{e}")),
                };
            }
            _ => return StatusCode::OK.into_response(),
        };
        // The button carries the version the card showed: a stale card gets a conflict.
        let text = match self.service.apply_checked(cmd, &actor, Some(version)).await {
            Ok(out) => out.reply.text,
            Err(e) => self.explain(&e),
        };
        if !channel.is_empty() {
            let key = format!("ephemeral:trigger:{}", b.trigger_id);
            if let Err(e) = self.tell(&channel, &b.user_id, &text, key).await {
                return internal("answering a button", e);
            }
        }
        StatusCode::OK.into_response()
    }

    async fn submission(&self, v: ViewSubmission) -> Response {
        let actor = Actor::new(Source::Slack, &v.user_id, blocks::mention(&v.user_id));
        // A form submitted twice (a double click) is one view: applied once.
        let service = self.service.for_delivery(Delivery {
            source: "slack-view",
            id: v.view_id.clone().unwrap_or_else(|| v.key()),
        });
        let (result, origin, field) = match v.callback_id.as_str() {
            VIEW_DECLARE => (
                self.declare_from_form(&service, &v, &actor).await,
                v.private_metadata.clone(),
                "title",
            ),
            VIEW_UPDATE => {
                let (number, origin) = v.private_metadata.split_once(':').unwrap_or(("", ""));
                (
                    self.update_from_form(&service, number, &v, &actor).await,
                    origin.to_string(),
                    "text",
                )
            }
            _ => return StatusCode::OK.into_response(),
        };
        match result {
            Ok(text) => {
                if !origin.is_empty() {
                    let key = format!("ephemeral:view:{}", v.key());
                    if let Err(e) = self.tell(&origin, &v.user_id, &text, key).await {
                        tracing::warn!(error = %format!("{e:#}"), "answering a form failed");
                    }
                }
                StatusCode::OK.into_response()
            }
            Err(ServiceError::Duplicate) => StatusCode::OK.into_response(),
            Err(ServiceError::User(e)) => {
                Json(json!({ "response_action": "errors", "errors": { field: e.to_string() } }))
                    .into_response()
            }
            Err(e) => {
                Json(json!({ "response_action": "errors", "errors": { field: self.explain(&e) } }))
                    .into_response()
            }
        }
    }

    async fn declare_from_form(
        &self,
        service: &IncidentService,
        v: &ViewSubmission,
        actor: &Actor,
    ) -> Result<String, ServiceError> {
        let title = v
            .values
            .get("title")
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        if title.is_empty() {
            return Err(UserError::invalid("Give the incident a title.").into());
        }
        let severity: Severity = v
            .values
            .get("severity")
            .map_or("sev3", String::as_str)
            .parse()?;
        // The form's description is part of the declaration (a first note, in the same
        // transaction and under the same permission).
        let declare = Declare {
            description: v.values.get("description").cloned(),
            ..Declare::new(severity, title)
        };
        let out = service.apply(Command::untargeted(declare), actor).await?;
        Ok(out.reply.text)
    }

    async fn update_from_form(
        &self,
        service: &IncidentService,
        number: &str,
        v: &ViewSubmission,
        actor: &Actor,
    ) -> Result<String, ServiceError> {
        let n = IncidentNumber::parse(number, true)
            .ok_or_else(|| UserError::invalid("This form lost track of its incident."))?;
        let text = v
            .values
            .get("text")
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            return Err(UserError::invalid("Say what changed.").into());
        }
        let next = match v
            .values
            .get("next")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            Some(s) => Some(command::parse_cadence(s.to_string())?),
            None => None,
        };
        Ok(service
            .apply(Command::on(n, Change::Update { text, next }), actor)
            .await?
            .reply
            .text)
    }

    async fn open_modal(
        &self,
        trigger_id: &str,
        view: anyhow::Result<slack_morphism::prelude::SlackView>,
    ) -> Result<(), ServiceError> {
        let view = serde_json::to_value(view?).map_err(anyhow::Error::from)?;
        let expires = Utc::now().timestamp_millis() + 3000;
        self.service
            .enqueue(&planner::open_modal(trigger_id, view, expires))
            .await?;
        Ok(())
    }

    /// An ephemeral message to one user in a channel, through the queue, once per `key`
    /// (built from the trigger or event that caused it).
    async fn tell(&self, channel: &str, user: &str, text: &str, key: String) -> anyhow::Result<()> {
        self.service
            .enqueue(&planner::ephemeral(channel, user, text, key))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// The sentence to show for an error; internal details are logged, not shown.
    fn explain(&self, e: &ServiceError) -> String {
        if let ServiceError::Internal(inner) = e {
            tracing::error!(error = %format!("{inner:#}"), "a Slack command failed");
        }
        e.user_message()
    }
}

fn parse_button_value(value: &str) -> Option<(IncidentNumber, i64)> {
    let (n, v) = value.split_once(':')?;
    Some((IncidentNumber::parse(n, true)?, v.parse().ok()?))
}

fn display_name(name: &str, id: &str) -> String {
    if name.is_empty() {
        blocks::mention(id)
    } else {
        name.to_string()
    }
}

fn ephemeral(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": text })
}

fn bad_request(reason: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("malformed Slack payload: {reason}"),
    )
        .into_response()
}

fn internal(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "{what} failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the firebreak log",
    )
        .into_response()
}
