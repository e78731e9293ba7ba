//! `POST /slack/events`: mentions of the bot run as commands, and a `:pushpin:` reaction in an
//! incident channel captures the message. Each event is applied once, by its `event_id`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Edge, SlackEdge, bad_request, internal, parse};
use crate::chat::slack::blocks;
use crate::chat::slack::decode;
use crate::chat::slack::inbound::{self, Mention, Reaction, SlackInbound};
use crate::chat::slack::mrkdwn::Mrkdwn;
use crate::chat::slack::planner;
use crate::incident::{Action, ServiceError, UserError};
use crate::store::Delivery;

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
    let delivery = Delivery::new("slack", event_id);
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

impl SlackEdge {
    /// An `@firebreak …` mention: the command runs in the event's transaction, and the
    /// answer is keyed by the event, so a retried event never answers twice.
    async fn mention(&self, m: Mention, delivery: Delivery) -> Result<(), ServiceError> {
        // The text after the mention(s) of the bot that start it, as typed.
        let raw: String = m
            .text
            .split_whitespace()
            .skip_while(|w| w.starts_with("<@") && w.ends_with('>'))
            .collect::<Vec<_>>()
            .join(" ");
        let decoded = decode::decode(&raw);
        let actor = self.actor(&m.user, None).await;
        let key = format!("ephemeral:event:{}", delivery.id);
        let service = self.service.for_delivery(delivery);
        let text = match parse(&decoded.text, &decoded) {
            Ok((cmd, named)) => match self
                .apply_with(&service, cmd, &m.channel, &actor, None)
                .await
            {
                Ok(out) => {
                    self.remember(&m.user, None, &named).await;
                    blocks::reply_mrkdwn(&out.reply, Some(&m.user))
                }
                Err(e @ (ServiceError::Duplicate | ServiceError::Internal(_))) => return Err(e),
                Err(e) => Mrkdwn::text(&self.explain(&e)),
            },
            Err(ServiceError::User(UserError::Unknown { message, help })) => {
                blocks::help_mrkdwn(&message, &help)
            }
            Err(e) => Mrkdwn::text(&self.explain(&e)),
        };
        // A read-only command (or a refusal) records the event with its answer; one that
        // wrote recorded it already, and the answer's key alone keeps it single.
        let answer = planner::ephemeral(&m.channel, &m.user, text, key);
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
        // Pinning writes to the timeline: the same gate as `note`, the same refusal record,
        // and the refusal told to the person once (keyed by the event).
        // A retried event that was refused before is not refused (and recorded) again.
        if self.service.store().delivery_seen(&delivery).await? {
            return Ok(());
        }
        let actor = self.actor(&r.user, None).await;
        let incident = Some(&detail.incident.id);
        let service = self.service.for_delivery(delivery.clone());
        if let Err(e) = self
            .service
            .authorize(Action::Respond, &actor, incident, "pin")
            .await
        {
            let key = format!("ephemeral:event:{}", delivery.id);
            let answer =
                planner::ephemeral(&r.channel, &r.user, Mrkdwn::text(&self.explain(&e)), key);
            return service.enqueue(&answer).await.map(drop);
        }
        let capture = planner::capture_pin(&detail.incident.id, &r.channel, &r.ts, &r.user);
        service.enqueue(&capture).await?;
        Ok(())
    }
}
