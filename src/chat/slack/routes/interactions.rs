//! `POST /slack/interactions`: the card's buttons (acknowledge, update, resolve, a runbook
//! step's Done) and the declare and update forms, whose answers go back through the queue.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::{Edge, SlackEdge, bad_request, internal};
use crate::chat::slack::blocks::{
    self, ACTION_ACK, ACTION_RESOLVE, ACTION_UPDATE, VIEW_DECLARE, VIEW_UPDATE,
};
use crate::chat::slack::checklist;
use crate::chat::slack::inbound::{self, Button, SlackInbound, ViewSubmission};
use crate::chat::slack::mrkdwn::Mrkdwn;
use crate::chat::slack::planner;
use crate::incident::command::{self, Change, Command, Declare, RunbookVerb};
use crate::incident::{
    Actor, IncidentNumber, IncidentService, Reply, ServiceError, Severity, UserError,
};
use crate::store::Delivery;

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
    async fn button(&self, b: Button) -> Response {
        if b.action_id == checklist::ACTION_STEP_DONE {
            return self.step_done(b).await;
        }
        let Some((number, version)) = parse_button_value(&b.value) else {
            return bad_request("malformed button value");
        };
        let channel = b.channel_id.clone().unwrap_or_default();
        let actor = self.actor(&b.user_id, Some(&b.user_name)).await;
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
            Ok(out) => {
                self.remember(&b.user_id, Some(&b.user_name), &[]).await;
                blocks::reply_mrkdwn(&out.reply, Some(&b.user_id))
            }
            Err(e) => Mrkdwn::text(&self.explain(&e)),
        };
        if !channel.is_empty() {
            let key = format!("ephemeral:trigger:{}", b.trigger_id);
            if let Err(e) = self.tell(&channel, &b.user_id, text, key).await {
                return internal("answering a button", e);
            }
        }
        StatusCode::OK.into_response()
    }

    /// A runbook step's Done button: `runbook done <step>` on its incident, as the presser.
    /// A second press (or a second person) gets "already ended", and one record is kept.
    async fn step_done(&self, b: Button) -> Response {
        let Some((number, step)) = checklist::parse_value(&b.value) else {
            return bad_request("malformed button value");
        };
        let actor = self.actor(&b.user_id, Some(&b.user_name)).await;
        let cmd = Command::on(number, RunbookVerb::Done { step, note: None });
        let text = match self.service.apply(cmd, &actor).await {
            Ok(out) => blocks::reply_mrkdwn(&out.reply, Some(&b.user_id)),
            Err(e) => Mrkdwn::text(&self.explain(&e)),
        };
        if let Some(channel) = b.channel_id.as_deref().filter(|c| !c.is_empty()) {
            let key = format!("ephemeral:trigger:{}", b.trigger_id);
            if let Err(e) = self.tell(channel, &b.user_id, text, key).await {
                return internal("answering a runbook button", e);
            }
        }
        StatusCode::OK.into_response()
    }

    async fn submission(&self, v: ViewSubmission) -> Response {
        let actor = self.actor(&v.user_id, Some(&v.user_name)).await;
        // A form submitted twice with the same content (a double click, a retry) is applied
        // once; the same view submitted again with a field fixed is a new submission.
        let service = self
            .service
            .for_delivery(Delivery::new("slack-view", v.key()));
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
            Ok(reply) => {
                self.remember(&v.user_id, Some(&v.user_name), &[]).await;
                if !origin.is_empty() {
                    let key = format!("ephemeral:view:{}", v.key());
                    let text = blocks::reply_mrkdwn(&reply, Some(&v.user_id));
                    if let Err(e) = self.tell(&origin, &v.user_id, text, key).await {
                        tracing::warn!(error = %format!("{e:#}"), "answering a form failed");
                    }
                }
                StatusCode::OK.into_response()
            }
            Err(ServiceError::Duplicate) => StatusCode::OK.into_response(),
            Err(ServiceError::User(e)) => {
                let message = e.to_string();
                // The declare form has two text fields; the error belongs under the one it names.
                let field = if message.starts_with("The description") {
                    "description"
                } else {
                    field
                };
                Json(json!({ "response_action": "errors", "errors": { field: message } }))
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
    ) -> Result<Reply, ServiceError> {
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
        Ok(out.reply)
    }

    async fn update_from_form(
        &self,
        service: &IncidentService,
        number: &str,
        v: &ViewSubmission,
        actor: &Actor,
    ) -> Result<Reply, ServiceError> {
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
            .reply)
    }

    pub(super) async fn open_modal(
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
    async fn tell(
        &self,
        channel: &str,
        user: &str,
        text: Mrkdwn,
        key: String,
    ) -> anyhow::Result<()> {
        self.service
            .enqueue(&planner::ephemeral(channel, user, text, key))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

fn parse_button_value(value: &str) -> Option<(IncidentNumber, i64)> {
    let (n, v) = value.split_once(':')?;
    Some((IncidentNumber::parse(n, true)?, v.parse().ok()?))
}
