//! Alertmanager's webhook payload, version 4, as it is sent (`webhook_configs`): the group's
//! status, its alerts (each with its own status, labels, annotations, times and fingerprint)
//! and the labels and annotations they share. Unknown fields are ignored, so a newer
//! Alertmanager that adds some still works.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One notification for one alert group.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(default)]
    pub version: String,
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: GroupStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

/// `firing` while any alert of the group fires; `resolved` once all have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Firing,
    Resolved,
}

impl GroupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: GroupStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// The payload version this reads (Alertmanager's `webhook_config` sends `"version": "4"`).
pub const SUPPORTED_VERSION: &str = "4";

impl Notification {
    /// Why this payload cannot be read, in a sentence: a version other than
    /// [`SUPPORTED_VERSION`]; `None` when it can.
    pub fn unsupported(&self) -> Option<String> {
        (self.version != SUPPORTED_VERSION).then(|| {
            format!(
                "Alertmanager webhook payload version \"{}\" is not supported; firebreak reads version \"{SUPPORTED_VERSION}\".",
                self.version.chars().take(20).collect::<String>()
            )
        })
    }

    /// The alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == GroupStatus::Firing)
    }
}

impl Alert {
    /// `alertname` and its distinguishing labels, for a line in a note:
    /// `HighErrorRate {instance="api-1", job="api"}`.
    pub fn describe(&self, common: &BTreeMap<String, String>) -> String {
        let name = self.labels.get("alertname").map_or("alert", String::as_str);
        let own: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, v)| *k != "alertname" && common.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let summary = self
            .annotations
            .get("summary")
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        if own.is_empty() {
            format!("{name}{summary}")
        } else {
            format!("{name} {{{}}}{summary}", own.join(", "))
        }
    }
}
