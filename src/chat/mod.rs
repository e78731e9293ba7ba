//! Chat platforms. Each adapter verifies requests, turns payloads into core commands, and
//! renders replies; everything it sends back goes through the effects queue.

pub mod discord;
pub mod records;
pub mod slack;

use serde::Deserialize;

use crate::incident::model::{Incident, Severity};

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

/// `{prefix}-42-checkout-api-returns-502`: the incident's number and its title in lower case,
/// each run of characters `keep` refuses turned into one dash, cut to `max` characters;
/// `attempt` > 0 adds a suffix for a name already in use (pure). Each platform passes its
/// own character set and length limit.
pub fn channel_name(
    prefix: &str,
    incident: &Incident,
    attempt: u32,
    max: usize,
    keep: fn(char) -> bool,
) -> String {
    let mut slug = String::new();
    for c in incident.title.to_lowercase().chars() {
        if keep(c) {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let base = format!("{prefix}-{}-{}", incident.number.0, slug.trim_matches('-'));
    let suffix = if attempt == 0 {
        String::new()
    } else {
        format!("-{}", attempt + 1)
    };
    let base: String = base.chars().take(max - suffix.len()).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}
