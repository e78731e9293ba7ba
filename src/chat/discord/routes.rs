//! `POST /discord/interactions`: the one endpoint Discord posts slash commands, button
//! presses and form submissions to. The signature is checked on the raw bytes first (401 and
//! nothing done otherwise); then the interaction is parsed
//! ([`DiscordInbound`](super::interactions::DiscordInbound)), mapped onto the core grammar
//! ([`options`](super::options)), run through `IncidentService::apply_checked`, and
//! answered at once as an interaction response ([`reply`](super::reply)): every call back to
//! Discord is a queued effect, so the 3-second deadline never waits on Discord itself.
//!
//! A runbook checklist's Done button (`fb:rbdone:<n>:<step>`) is `runbook done <step>` as
//! the presser, answered to them alone.
//!
//! People are taken by their Discord ids: the actor as `discord:<user id>`, with the
//! member's roles as `discord-role:<role id>` groups for `[permissions]`.
//!
//! Every interaction is applied once: its id is recorded in the transaction of whatever it
//! changes, and its answer kept, so Discord's retry (same id) gets the first answer again.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::interactions::{self, CommandCall, DiscordInbound, Invocation};
use super::options::{self, Intent};
use super::reply;
use super::verify::DiscordVerifier;
use crate::incident::command::{self, Change, Declare, RunbookVerb};
use crate::incident::{
    Actor, Command, Identity, IncidentNumber, IncidentService, ServiceError, Severity, Source,
    UserError,
};
use crate::read::ReadModel;
use crate::store::{Delivery, Seen};

/// What the Discord endpoint needs.
pub struct DiscordEdge {
    pub service: IncidentService,
    /// Which incident a channel belongs to.
    pub read: ReadModel,
    pub verifier: DiscordVerifier,
    /// The people this process noted lately, so a burst notes each once.
    pub noted: crate::people::RecentlyNoted,
}

/// What handling an interaction came to.
enum Answer {
    /// The response, kept for a retry of the same interaction.
    Keep(Value),
    /// Something broke on our side and nothing was applied: answered, not kept, so a retry
    /// may try again.
    Retry(Value),
    /// The interaction was applied before (a retry overtook the first delivery).
    Duplicate,
}

/// `POST /discord/interactions`.
pub async fn interactions(
    State(edge): State<Arc<DiscordEdge>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = edge.verifier.verify(
        header("x-signature-timestamp"),
        header("x-signature-ed25519"),
        &body,
        Utc::now().timestamp(),
    );
    if let Err(e) = verified {
        tracing::warn!(reason = %e, "rejected a Discord request");
        return (
            StatusCode::UNAUTHORIZED,
            format!("invalid Discord request signature: {e}"),
        )
            .into_response();
    }
    let inbound = match interactions::parse(&body) {
        Ok(i) => i,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("malformed Discord interaction: {e}"),
            )
                .into_response();
        }
    };
    match inbound {
        DiscordInbound::Ping => Json(reply::pong()).into_response(),
        DiscordInbound::Other => Json(reply::ephemeral(
            "firebreak does not handle this interaction.",
        ))
        .into_response(),
        DiscordInbound::Command(who, call) => {
            edge.once(&who, |s| edge.command(s, &who, &call)).await
        }
        DiscordInbound::Component(who, id) => edge.once(&who, |s| edge.button(s, &who, &id)).await,
        DiscordInbound::ModalSubmit(who, id, fields) => {
            edge.once(&who, |s| edge.form(s, &who, &id, &fields)).await
        }
    }
}

impl DiscordEdge {
    /// Runs `handle` once per interaction id, and answers a retry with the first answer.
    async fn once<'a, F, Fut>(&'a self, who: &Invocation, handle: F) -> Response
    where
        F: FnOnce(IncidentService) -> Fut,
        Fut: std::future::Future<Output = Answer> + 'a,
    {
        let delivery = Delivery::new("discord", who.id.clone());
        match self.service.store().delivery_reply(&delivery).await {
            Ok(Seen::Answered(kept)) => return kept_answer(&kept),
            Ok(Seen::Yes) => return self.first_answer(&delivery).await,
            Ok(Seen::No) => {}
            Err(e) => return internal("checking for a retried interaction", e),
        }
        let answer = handle(self.service.for_delivery(delivery.clone())).await;
        let value = match answer {
            Answer::Duplicate => return self.first_answer(&delivery).await,
            Answer::Retry(v) => return Json(v).into_response(),
            Answer::Keep(v) => v,
        };
        if let Err(e) = self
            .service
            .store()
            .save_delivery_reply(&delivery, &value.to_string())
            .await
        {
            tracing::warn!(error = %format!("{e:#}"), "keeping an interaction's answer failed");
        }
        self.remember(who).await;
        Json(value).into_response()
    }

    async fn command(
        &self,
        service: IncidentService,
        who: &Invocation,
        call: &CommandCall,
    ) -> Answer {
        match options::intent(call, &who.resolved, Utc::now()) {
            Ok(Intent::DeclareForm) => Answer::Keep(reply::declare_modal()),
            Ok(Intent::Help) => {
                Answer::Keep(reply::help("The slash commands:", &super::commands::help()))
            }
            Ok(Intent::Run(cmd)) => self.run(&service, cmd, who, None).await,
            Err(e) => Answer::Keep(reply::ephemeral(&e.to_string())),
        }
    }

    async fn button(&self, service: IncidentService, who: &Invocation, id: &str) -> Answer {
        if let Some((number, step)) = reply::parse_step_custom_id(id) {
            return self.step_done(&service, who, number, step).await;
        }
        let (action, parts) = reply::parse_custom_id(id).unwrap_or_default();
        let change = match action {
            reply::ACK => Change::Ack,
            reply::RESOLVE => Change::Resolve { summary: None },
            reply::UPDATE if !parts.is_empty() => {
                return Answer::Keep(reply::update_modal(IncidentNumber(parts[0])));
            }
            _ => return unknown_button(),
        };
        let [number, version] = parts[..] else {
            return unknown_button();
        };
        let cmd = Command::on(IncidentNumber(number), change);
        self.run(&service, cmd, who, Some(version)).await
    }

    /// A runbook step's Done button: `runbook done <step>` on its incident, as the presser,
    /// answered to them alone. A second press (or a second person) gets "already ended", and
    /// one record is kept; the checklist message loses the button when its edit runs.
    async fn step_done(
        &self,
        service: &IncidentService,
        who: &Invocation,
        number: IncidentNumber,
        step: String,
    ) -> Answer {
        let cmd = Command::on(number, RunbookVerb::Done { step, note: None });
        match self.run(service, cmd, who, None).await {
            Answer::Keep(v) => Answer::Keep(privately(v)),
            other => other,
        }
    }

    async fn form(
        &self,
        service: IncidentService,
        who: &Invocation,
        id: &str,
        fields: &std::collections::HashMap<String, String>,
    ) -> Answer {
        let field = |name: &str| {
            fields
                .get(name)
                .map(|v| super::decode::decode(v.trim(), &who.resolved))
                .filter(|v| !v.is_empty())
        };
        let cmd = match reply::parse_custom_id(id) {
            Some((reply::DECLARE, _)) => {
                declare_from_form(field("title"), field("severity"), field("description"))
            }
            Some((reply::UPDATE, parts)) if !parts.is_empty() => {
                update_from_form(IncidentNumber(parts[0]), field("text"), field("next"))
            }
            _ => Err(UserError::invalid(
                "firebreak does not know this form; it may be from an older version.",
            )),
        };
        match cmd {
            Ok(cmd) => self.run(&service, cmd, who, None).await,
            Err(e) => Answer::Keep(reply::ephemeral(&e.to_string())),
        }
    }

    /// Applies `cmd` as the person behind `who`, defaulting to the incident whose channel
    /// this is, and renders what came of it.
    async fn run(
        &self,
        service: &IncidentService,
        cmd: Command,
        who: &Invocation,
        version: Option<i64>,
    ) -> Answer {
        let room = match cmd.wants_context_target() {
            true => self.read.room_incident("discord", &who.channel_id).await,
            false => Ok(None),
        };
        let cmd = match room {
            Ok(Some(number)) => cmd.with_default_target(number),
            Ok(None) => cmd,
            Err(e) => return self.failed(&ServiceError::Internal(e)),
        };
        let actor = self.actor(who).await;
        match service.apply_checked(cmd, &actor, version).await {
            Ok(out) => Answer::Keep(reply::response(&out.reply)),
            Err(ServiceError::Duplicate) => Answer::Duplicate,
            Err(ServiceError::User(UserError::Unknown { message, help })) => {
                Answer::Keep(reply::help(&message, &help))
            }
            Err(ServiceError::User(UserError::Conflict {
                number,
                seen,
                current,
            })) => Answer::Keep(reply::ephemeral(&format!(
                "{number} changed since this was shown (version {seen}, now {current}), so nothing was done; look at its latest state and try again."
            ))),
            Err(e @ ServiceError::Internal(_)) => self.failed(&e),
            Err(e) => Answer::Keep(reply::ephemeral(&e.user_message())),
        }
    }

    /// An internal failure: logged with its detail, shown as a sentence, not kept.
    fn failed(&self, e: &ServiceError) -> Answer {
        if let ServiceError::Internal(inner) = e {
            tracing::error!(error = %format!("{inner:#}"), "a Discord interaction failed");
        }
        Answer::Retry(reply::ephemeral(&e.user_message()))
    }

    /// The person behind an interaction, as `discord:<id>` with their roles as groups, and
    /// the best name known for sentences.
    async fn actor(&self, who: &Invocation) -> Actor {
        self.person(&who.user_id, who.user_name.as_deref(), &who.roles)
            .await
    }

    /// The Discord user `user_id` as an actor, their `roles` as groups; named from the
    /// people cache, else `name`, else `discord:<id>`.
    pub(super) async fn person(
        &self,
        user_id: &str,
        name: Option<&str>,
        roles: &[String],
    ) -> Actor {
        let groups = roles.iter().map(|r| format!("discord-role:{r}"));
        let cached = match Identity::new("discord", user_id) {
            Some(identity) => match self.service.store().recent_person(&identity).await {
                Ok(Some(p)) => Some(p.display_name),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reading the people cache failed");
                    None
                }
            },
            None => None,
        };
        let name = cached
            .or_else(|| name.map(str::to_string))
            .unwrap_or_else(|| format!("discord:{user_id}"));
        Actor::new(Source::Discord, user_id, name).with_groups(groups)
    }

    /// The names Discord sent with an interaction (the caller's, and those of people its
    /// options name) go into the people cache when it has none or a day-old one, so
    /// documents and the CLI can name them. Failures only cost a name: logged.
    async fn remember(&self, who: &Invocation) {
        let now = Utc::now();
        let caller = who.user_name.as_ref().map(|n| (&who.user_id, n));
        for (id, name) in caller.into_iter().chain(&who.resolved.users) {
            let Some(identity) = Identity::new("discord", id) else {
                continue;
            };
            if !self.noted.first_time(identity.as_ref()) {
                continue;
            }
            let store = self.service.store();
            let fresh = match store.person(&identity).await {
                Ok(p) => p.is_some_and(|p| !crate::people::is_stale(p.fetched_at, now)),
                Err(_) => true,
            };
            if fresh {
                continue;
            }
            if let Err(e) = store.put_person(&identity, name, now).await {
                tracing::warn!(error = %format!("{e:#}"), "caching a Discord name failed");
            }
        }
    }

    /// The answer the first delivery of an interaction got, waiting briefly for it to be
    /// kept when the retry overtook it.
    async fn first_answer(&self, delivery: &Delivery) -> Response {
        for _ in 0..20 {
            match self.service.store().delivery_reply(delivery).await {
                Ok(Seen::Answered(kept)) => return kept_answer(&kept),
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return internal("reading an interaction's first answer", e),
            }
        }
        Json(reply::ephemeral("This was already handled.")).into_response()
    }
}

/// A message response shown to its caller only.
fn privately(mut response: Value) -> Value {
    if response["type"] == reply::CHANNEL_MESSAGE {
        response["data"]["flags"] = Value::from(reply::EPHEMERAL);
    }
    response
}

fn unknown_button() -> Answer {
    Answer::Keep(reply::ephemeral(
        "firebreak does not know this button; it may be from an older version.",
    ))
}

/// The declare form's fields as a declaration; the description is its first note.
fn declare_from_form(
    title: Option<String>,
    severity: Option<String>,
    description: Option<String>,
) -> Result<Command, UserError> {
    let title = title.ok_or_else(|| UserError::invalid("Give the incident a title."))?;
    let severity: Severity = match severity {
        Some(s) => s.parse()?,
        None => command::DEFAULT_SEVERITY,
    };
    Ok(Command::untargeted(Declare {
        description,
        ..Declare::new(severity, title)
    }))
}

fn update_from_form(
    number: IncidentNumber,
    text: Option<String>,
    next: Option<String>,
) -> Result<Command, UserError> {
    let text = text.ok_or_else(|| UserError::invalid("Say what changed."))?;
    let next = next.map(command::parse_cadence).transpose()?;
    Ok(Command::on(number, Change::Update { text, next }))
}

/// A kept JSON answer, as the response to a retry.
fn kept_answer(kept: &str) -> Response {
    match serde_json::from_str::<Value>(kept) {
        Ok(v) => Json(v).into_response(),
        Err(_) => Json(reply::ephemeral("This was already handled.")).into_response(),
    }
}

fn internal(what: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "{what} failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the firebreak log",
    )
        .into_response()
}
