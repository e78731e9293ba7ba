//! The platform-neutral incident core. Nothing in here knows about Slack, Discord or HTTP:
//! edges turn their payloads into a [`command::Command`] and an [`permissions::Actor`],
//! call [`service::IncidentService::apply`], and render the [`reply::Reply`] it returns.
//!
//! - [`clock`]: where "now" comes from (a manual clock in tests).
//! - [`model`]: the incident, its severity, status, roles, and the checked state machine.
//! - [`command`]: the one chat/CLI grammar: a target and a verb, one module per verb group.
//! - [`rules`]: pure decisions (new state, timeline entries, announcements).
//! - [`freeze`]: merge freezes as wanted state with generations.
//! - [`freeze_view`]: how a freeze is shown: the summary line and each target.
//! - [`service`]: applies a command in one transaction with compare-and-set.
//! - [`timeline`]: append-only entries and T+ offsets.
//! - [`permissions`]: actors, and the list each write verb needs.
//! - [`identity`]: who someone is, as stored: `slack:U…`, `discord:…`, `cli:name`.
//! - [`text`]: the one inbound text pipeline (control characters, bidi overrides, limits).
//! - [`error`]: user errors versus internal errors.
//! - [`json_time`]: times in JSON, to the millisecond.

pub mod clock;
pub mod command;
pub mod error;
mod exemption;
pub mod freeze;
pub mod freeze_view;
pub mod identity;
pub mod json_time;
pub mod material;
pub mod model;
pub mod permissions;
mod queued;
pub mod reply;
pub mod rules;
pub mod runbook;
pub mod service;
pub mod text;
pub mod timeline;

pub use command::{Command, ParseOptions};
pub use error::{ServiceError, UserError};
pub use identity::Identity;
pub use model::{Incident, IncidentId, IncidentNumber, Role, Severity, Status};
pub use permissions::{Action, Actor, Permissions};
pub use reply::{Reply, ReplyBody, Visibility};
pub use service::{IncidentService, Outcome, Policy};
pub use timeline::{EntryKind, NewEntry, Source, TimelineEntry};
