//! Chat platforms. Each adapter verifies requests, turns payloads into core commands, and
//! renders replies; everything it sends back goes through the effects queue.

pub mod discord;
pub mod records;
pub mod slack;

use serde::Deserialize;

use crate::incident::model::Severity;

/// Company-wide notice channels per severity, as the platform names them (Slack `C…` ids,
/// Discord channel snowflakes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnounceChannels {
    #[serde(rename = "SEV1")]
    pub sev1: Vec<String>,
    #[serde(rename = "SEV2")]
    pub sev2: Vec<String>,
    #[serde(rename = "SEV3")]
    pub sev3: Vec<String>,
    #[serde(rename = "SEV4")]
    pub sev4: Vec<String>,
}

impl AnnounceChannels {
    pub fn for_severity(&self, severity: Severity) -> &[String] {
        match severity {
            Severity::Sev1 => &self.sev1,
            Severity::Sev2 => &self.sev2,
            Severity::Sev3 => &self.sev3,
            Severity::Sev4 => &self.sev4,
        }
    }

    /// No severity announces anywhere.
    pub fn is_empty(&self) -> bool {
        [&self.sev1, &self.sev2, &self.sev3, &self.sev4]
            .iter()
            .all(|c| c.is_empty())
    }
}
