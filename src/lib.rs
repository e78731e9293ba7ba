//! firebreak: an incident-response bot. A map of the code:
//!
//! - [`incident`]: the platform-neutral core. [`incident::IncidentService`] applies a
//!   [`incident::Command`] in one database transaction: state machine, permissions,
//!   compare-and-set, timeline, and the effects to run.
//! - [`effects`]: the durable outbox. Side effects are typed rows written in that same
//!   transaction, one per intent and target; a [`effects::worker::Worker`] claims them under a
//!   named lease, retries transient failures until `give_up_after` (backoff, jitter,
//!   `Retry-After`), holds a failing target behind a circuit breaker without spending
//!   attempts, and releases everything waiting on a target the moment it answers again.
//! - [`notify`]: company-wide notices, rendered from `templates/notice.txt` and posted to
//!   Slack-compatible incoming webhooks.
//! - [`postmortem`]: post-mortems from the record, Markdown and HTML with an SVG chart.
//! - [`store`]: sqlx on SQLite (embedded default) or Postgres (several replicas), same SQL.
//! - [`chat`]: Slack (slash commands, events, interactivity, Block Kit, one Web API effect per
//!   channel).
//! - [`github`]: the merge freeze: rulesets, PR statuses, reconciler, webhook.
//! - [`people`]: display names for stored identities (`slack:U…`), cached from Slack.
//! - [`read`]: the one read model (incidents, the freeze and its holds, the audit log, the
//!   queue, readiness) that the CLI, HTTP and chat show from.
//! - [`http`]: the axum router on its own small state: health, readiness, the JSON API,
//!   behind a guard that lets only the probes and the platforms' signed endpoints through
//!   without an API token ([`auth`]: scopes, token hashing, which path needs what).
//!   The API for machines (declare, update, status, resolve, with `Idempotency-Key`) is
//!   part of it.
//! - [`telemetry`]: Prometheus metrics (the `metrics` facade, one recorder per process)
//!   and the store's counts, rendered on `/metrics`.
//! - [`alerts`]: Prometheus Alertmanager's webhook: one incident per alert group.
//! - [`runbook`]: runbooks as code (TOML files of timed steps) and how an incident gets one.
//! - [`config`]: `firebreak.toml` plus environment; secrets only from the environment.
//! - [`app`]: wires it all together and runs until shutdown.
//! - [`cli`]: the `firebreak` command line, a thin edge over the same service as chat.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod effects;
pub mod github;
pub mod http;
pub mod incident;
pub mod notify;
pub mod people;
pub mod postmortem;
pub mod read;
pub mod runbook;
pub mod store;
pub mod telemetry;
