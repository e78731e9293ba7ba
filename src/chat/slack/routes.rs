//! The three Slack endpoints. Each verifies the signature on the raw bytes first (401 and
//! nothing done otherwise), parses into [`SlackInbound`](super::inbound::SlackInbound), runs
//! the core transaction, and answers at once: Slack's 3-second deadline is never at the
//! mercy of Slack's own API, because every call back to Slack is a queued effect.
//!
//! On the way in, Slack's escaping is undone ([`decode`](super::decode)) and people are
//! taken by their Slack ids: the actor as `slack:U…`, and a person a command names from the
//! mention Slack sent (`<@U1|bob>`), never from the name.
//!
//! Every delivery is applied once. Events by their `event_id`; a form submission by its
//! view and content ([`ViewSubmission::key`]); a slash command by the digest of its body
//! within [`COMMAND_RETRY_WINDOW`] (Slack retries with a fresh signature and the same
//! body), and a retry gets the first answer again.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::blocks::{self, ACTION_ACK, ACTION_RESOLVE, ACTION_UPDATE, VIEW_DECLARE, VIEW_UPDATE};
use super::checklist;
use super::decode::{self, Decoded};
use super::inbound::{self, Button, Mention, Reaction, SlackInbound, ViewSubmission};
use super::mrkdwn::Mrkdwn;
use super::planner;
use super::verify;
use crate::incident::command::{
    self, Change, Command, Declare, ParseOptions, PostmortemVerb, RunbookVerb, Verb,
};
use crate::incident::{
    Action, Actor, Identity, IncidentNumber, IncidentService, Reply, ServiceError, Severity,
    Source, UserError,
};
use crate::read::ReadModel;
use crate::store::{Delivery, Seen};

/// How long the same slash-command body counts as a retry rather than a new command. Slack
/// retries within seconds; its trigger id in the body makes two real commands differ anyway.
pub const COMMAND_RETRY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// What the Slack endpoints need.
pub struct SlackEdge {
    pub service: IncidentService,
    /// Which incident a channel belongs to.
    pub read: ReadModel,
    pub signing_secret: SecretString,
    /// The people this process noted lately, so a burst notes each once.
    pub noted: crate::people::RecentlyNoted,
}

pub type Edge = State<Arc<SlackEdge>>;

/// `POST /slack/commands`: `/incident …`, `/freeze …`, `/unfreeze …`.
pub async fn commands(State(edge): Edge, headers: HeaderMap, body: Bytes) -> Response {
    // Slack checking the certificate of a slash command's URL wants an empty 200.
    if inbound::is_ssl_check(&body) {
        return StatusCode::OK.into_response();
    }
    if let Err(resp) = edge.verify(&headers, &body) {
        return resp;
    }
    let cmd = match inbound::parse_command(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(&e.0),
    };
    // Slack retries a command it thinks timed out with `X-Slack-Retry-Num` and a fresh
    // signature, but the same body; so does anyone replaying a captured request. The body's
    // digest is recorded with what the command changes (a second delivery finds it there and
    // gets the first one's answer, kept below); a command that changes nothing just runs again.
    let delivery = Delivery::within(
        "slack-command",
        hex::encode(Sha256::digest(&body)),
        COMMAND_RETRY_WINDOW,
    );
    let decoded = decode::decode(cmd.text.trim());
    let text = decoded.text.trim();
    let line = match cmd.command.as_str() {
        "/incident" => text.to_string(),
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
    let actor = edge.actor(&cmd.user_id, Some(&cmd.user_name)).await;
    let service = edge.service.for_delivery(delivery.clone());
    let mut named = Vec::new();
    let outcome = match parse(&line, &decoded) {
        Ok((parsed, people)) => {
            named = people;
            edge.apply_with(&service, parsed, &cmd.channel_id, &actor, None)
                .await
        }
        Err(e) => Err(e),
    };
    let applied = outcome.is_ok();
    let reply = match outcome {
        Ok(reply) => blocks::command_response(&reply.reply, Some(&cmd.user_id)),
        Err(ServiceError::Duplicate) => return edge.first_answer(&delivery).await,
        Err(ServiceError::User(UserError::Unknown { message, help })) => {
            blocks::help_response(&message, &help)
        }
        // Something broke on our side: nothing was applied, so a retry may try again.
        Err(e @ ServiceError::Internal(_)) => {
            return Json(ephemeral(&edge.explain(&e))).into_response();
        }
        Err(e) => ephemeral(&edge.explain(&e)),
    };
    // Bookkeeping after the answer, off the acknowledgement path: the answer kept for a
    // retry (which waits for it, see `first_answer`) and the names of the people involved.
    let kept = reply.to_string();
    tokio::spawn(async move {
        if let Err(e) = edge
            .service
            .store()
            .save_delivery_reply(&delivery, &kept)
            .await
        {
            tracing::warn!(error = %format!("{e:#}"), "keeping a command's answer for retries failed");
        }
        if applied {
            edge.remember(&cmd.user_id, Some(&cmd.user_name), &named)
                .await;
        }
    });
    Json(reply).into_response()
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

    /// Applies `cmd` through `service`, defaulting to the incident whose channel this is.
    async fn apply_with(
        &self,
        service: &IncidentService,
        cmd: Command,
        channel: &str,
        actor: &Actor,
        version: Option<i64>,
    ) -> Result<crate::incident::Outcome, ServiceError> {
        let room = match cmd.wants_context_target() {
            true => self.read.room_incident("slack", channel).await?,
            false => None,
        };
        let cmd = match room {
            Some(number) => cmd.with_default_target(number),
            None => cmd,
        };
        service.apply_checked(cmd, actor, version).await
    }

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

    /// The person behind a Slack request, as `slack:U…` with the best name known for
    /// sentences: the cached display name, else the payload's `hint`, else the id.
    async fn actor(&self, user_id: &str, hint: Option<&str>) -> Actor {
        let hint = hint
            .map(str::trim)
            .filter(|h| !h.is_empty() && *h != user_id);
        let Some(identity) = Identity::slack(user_id) else {
            return Actor::new(Source::Slack, user_id, hint.unwrap_or(user_id));
        };
        let cached = match self.service.store().recent_person(&identity).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reading the people cache failed");
                None
            }
        };
        let name = match (&cached, hint) {
            (Some(p), _) if p.fetched_at.is_some() => p.display_name.clone(),
            (_, Some(hint)) => hint.to_string(),
            (Some(p), None) => p.display_name.clone(),
            (None, None) => identity.to_string(),
        };
        Actor::new(Source::Slack, user_id, name)
    }

    /// After a request was applied: the people it stored (who acted, whom it named) get
    /// their display names looked up if unknown or a day old, for documents and the CLI.
    async fn remember(&self, user_id: &str, hint: Option<&str>, named: &[decode::UserRef]) {
        let hint = hint
            .map(str::trim)
            .filter(|h| !h.is_empty() && *h != user_id);
        let named = named.iter().map(|u| {
            let label = u.shown.trim_start_matches('@');
            (u.id.as_str(), (label != u.id).then_some(label))
        });
        for (user, hint) in std::iter::once((user_id, hint)).chain(named) {
            if let Some(identity) = Identity::slack(user) {
                self.note_person(&identity, hint).await;
            }
        }
    }

    /// Keeps `hint` as a person's name until Slack's is known, and queues the lookup of an
    /// unknown or day-old name. Failures only cost a name: logged.
    async fn note_person(&self, identity: &Identity, hint: Option<&str>) {
        if !self.noted.first_time(identity.as_ref()) {
            return;
        }
        let store = self.service.store();
        let cached = match store.person(identity).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reading the people cache failed");
                return;
            }
        };
        let now = Utc::now();
        if !cached
            .as_ref()
            .is_none_or(|p| crate::people::is_stale(p.fetched_at, now))
        {
            return;
        }
        if let (None, Some(hint)) = (&cached, hint) {
            if let Err(e) = store.hint_person(identity, hint).await {
                tracing::warn!(error = %format!("{e:#}"), "caching a name failed");
            }
        }
        let user = identity.id();
        if let Err(e) = self
            .service
            .enqueue(&super::effects::people::lookup(user, now))
            .await
        {
            tracing::warn!(error = %format!("{e}"), "queueing a name lookup failed");
        }
    }

    /// The answer a retried command's first delivery got, waiting briefly for it to be
    /// kept when the retry overtook it.
    async fn first_answer(&self, delivery: &Delivery) -> Response {
        for _ in 0..20 {
            match self.service.store().delivery_reply(delivery).await {
                Ok(Seen::Answered(reply)) => return stored_reply(&reply),
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return internal("reading a command's first answer", e),
            }
        }
        Json(ephemeral("This command was already handled.")).into_response()
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

/// Parses a decoded chat line. A person the command names (a role holder, an action item's
/// owner) must be one Slack identified, so it is stored by id: `<@U1|bob>` becomes
/// `slack:U1`. A bare `@bob` (Slack sent no id) is refused with the way to fix it. Returns
/// the mentions that named people.
fn parse(line: &str, decoded: &Decoded) -> Result<(Command, Vec<decode::UserRef>), ServiceError> {
    let cmd = command::parse_line(line, ParseOptions::default())?;
    Ok(people_by_id(cmd, decoded)?)
}

/// `cmd` with every person it names turned into the Slack identity Slack sent for them,
/// and the mentions that were used.
fn people_by_id(
    cmd: Command,
    decoded: &Decoded,
) -> Result<(Command, Vec<decode::UserRef>), UserError> {
    let mut named = Vec::new();
    let mut by_id = |who: String| -> Result<String, UserError> {
        if let Some(user) = decoded.user(&who) {
            named.push(user.clone());
            return Identity::slack(&user.id)
                .map(|i| i.to_string())
                .ok_or_else(|| {
                    UserError::invalid(format!("\"{}\" is not a Slack user id.", user.id))
                });
        }
        match Identity::parse(&who) {
            Ok(identity) => Ok(identity.to_string()),
            Err(_) => Err(UserError::invalid(format!(
                "Slack did not say who \"@{}\" is. Pick the person from Slack's autocomplete as you type @ so that Slack sends their id (if it still doesn't, turn on \"Escape channels, users, and links\" for the slash command in the Slack app settings).",
                who.trim_start_matches('@')
            ))),
        }
    };
    let Command { target, verb } = cmd;
    let verb = match verb {
        Verb::Change(Change::Assign { role, user }) => Verb::Change(Change::Assign {
            role,
            user: by_id(user)?,
        }),
        Verb::Postmortem(PostmortemVerb::ActionAdd { text, owner, term }) => {
            Verb::Postmortem(PostmortemVerb::ActionAdd {
                text,
                owner: owner.map(&mut by_id).transpose()?,
                term,
            })
        }
        Verb::Postmortem(PostmortemVerb::ReviewerAdd { who }) => {
            Verb::Postmortem(PostmortemVerb::ReviewerAdd { who: by_id(who)? })
        }
        other => other,
    };
    let cmd = Command { target, verb };
    Ok((cmd, named))
}

/// A kept JSON answer, as the response to a retry.
fn stored_reply(reply: &str) -> Response {
    match serde_json::from_str::<Value>(reply) {
        Ok(v) => Json(v).into_response(),
        Err(_) => Json(ephemeral("This command was already handled.")).into_response(),
    }
}

fn ephemeral(text: &str) -> Value {
    blocks::ephemeral_response(text)
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
