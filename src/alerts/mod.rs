//! Incidents from Prometheus Alertmanager: its webhook payload ([`payload`]), the pure
//! decision of what a delivery means for its alert group ([`policy`]), and the edge that
//! remembers groups and applies that decision through `IncidentService` ([`receive`]).
//!
//! One incident per alert group (`groupKey`). A repeated firing adds an update only when
//! the set of firing alerts changed; `resolved` adds a note, and resolves the incident only
//! with `resolve_on_resolved = true`. A group whose incident people resolved opens a new
//! one when it fires again.

pub mod payload;
pub mod policy;
pub mod receive;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::incident::Severity;

pub use payload::Notification;
pub use policy::Step;
pub use receive::{Receipt, receive};

/// `[alertmanager]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// The label whose value picks the severity (`severity`).
    pub severity_label: String,
    /// Label value to severity: `{ critical = "SEV1", warning = "SEV3" }`.
    pub severity_map: BTreeMap<String, SeverityName>,
    /// For a group whose label is missing or not in the map.
    pub default_severity: SeverityName,
    /// Resolve the incident when Alertmanager says the group is resolved (otherwise only a
    /// note is added and people resolve it).
    pub resolve_on_resolved: bool,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            severity_label: "severity".into(),
            severity_map: BTreeMap::new(),
            default_severity: SeverityName(Severity::Sev3),
            resolve_on_resolved: false,
        }
    }
}

/// A severity written in the config as `SEV1`, `sev1` or `1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SeverityName(pub Severity);

impl TryFrom<String> for SeverityName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
            .map(Self)
            .map_err(|e: crate::incident::UserError| e.to_string())
    }
}
