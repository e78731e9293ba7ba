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
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::blocks;
use super::decode::{self, Decoded};
use super::inbound;
use super::verify;
use crate::incident::command::{self, Change, Command, ParseOptions, PostmortemVerb, Verb};
use crate::incident::{Actor, Identity, IncidentService, ServiceError, Source, UserError};
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

mod events;
mod interactions;

pub use events::events;
pub use interactions::interactions;

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
