//! `[runbooks]` in the config: where the runbook files are, where drills send what would
//! otherwise reach customers or pagers, and where stale runbooks are reported.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbooksConfig {
    /// The directory of runbook files (`*.toml`). Runbooks are off without it.
    pub dir: Option<PathBuf>,
    /// A drill's company-wide notices go to this Slack channel instead of the announcement
    /// channels (and its `notify` steps to a Slack channel, too).
    pub drill_channel: Option<String>,
    /// A drill's webhook notices, customer notices and pages go to this configured webhook
    /// instead (labelled DRILL). Without it a drill sends none of them.
    pub drill_webhook: Option<String>,
    /// A step still open this long after its target nudges its owner, once.
    #[serde(with = "humantime_serde")]
    pub nudge_after: Duration,
    /// How often `serve` checks that what the runbooks name still exists and answers.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// The Slack channel a stale runbook is reported to (once per problem).
    pub report_channel: Option<String>,
    /// The configured webhook a stale runbook is reported to (once per problem).
    pub report_webhook: Option<String>,
}

impl Default for RunbooksConfig {
    fn default() -> Self {
        Self {
            dir: None,
            drill_channel: None,
            drill_webhook: None,
            nudge_after: Duration::from_secs(60),
            check_interval: Duration::from_secs(3600),
            report_channel: None,
            report_webhook: None,
        }
    }
}

impl RunbooksConfig {
    /// The runbooks in `dir`, or none when no directory is configured.
    pub fn load(&self) -> Result<super::Runbooks, String> {
        let Some(dir) = &self.dir else {
            return Ok(super::Runbooks::default());
        };
        super::Runbooks::load(dir).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("runbooks: {}", lines.join("; "))
        })
    }

    pub(crate) fn validate(&self, webhooks: &[String]) -> Result<(), String> {
        if self.check_interval.is_zero() {
            return Err("runbooks.check_interval must be longer than zero".into());
        }
        for (key, name) in [
            ("drill_webhook", &self.drill_webhook),
            ("report_webhook", &self.report_webhook),
        ] {
            if let Some(name) = name.as_ref().filter(|n| !webhooks.contains(n)) {
                return Err(format!(
                    "runbooks.{key}: \"{name}\" is not a configured [[notify.webhook]] name"
                ));
            }
        }
        Ok(())
    }
}
