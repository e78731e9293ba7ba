//! What one command queued: the ids of the effects due now (for the CLI's drain), and the
//! one line of the reply that says where its company-wide notice goes.

use crate::effects::{Audience, NewEffect};

/// The effects one command queued: their ids (for the CLI's drain) and who its company-wide
/// notice goes to (for the reply).
#[derive(Debug, Default)]
pub(crate) struct Queued {
    pub ids: Vec<i64>,
    pub(super) audiences: Vec<Audience>,
}

impl Queued {
    /// `effects`, just enqueued as `ids`. Wake-ups due later (a runbook's) are left out:
    /// nothing waits for them now (the CLI's drain).
    pub(super) fn of(effects: &[NewEffect], ids: Vec<i64>) -> Self {
        let now_due = effects
            .iter()
            .zip(ids)
            .filter(|(e, _)| e.not_before.is_none());
        Self {
            ids: now_due.map(|(_, id)| id).collect(),
            audiences: effects.iter().filter_map(|e| e.audience).collect(),
        }
    }

    /// " Company-wide notice queued to 2 Slack channels and 1 webhook.", or nothing.
    pub fn notice_summary(&self) -> String {
        notice_summary(&self.audiences)
    }
}

/// New channels per platform, in the order platforms first appear, then the platforms that
/// only edit what they already posted, then webhooks.
fn notice_summary(audiences: &[Audience]) -> String {
    let mut channels: Vec<(&str, usize)> = Vec::new();
    let mut posted: Vec<&str> = Vec::new();
    let mut webhooks = 0;
    for audience in audiences {
        match *audience {
            Audience::Channels { platform, count } => {
                match channels.iter_mut().find(|(p, _)| *p == platform) {
                    Some((_, n)) => *n += count,
                    None => channels.push((platform, count)),
                }
            }
            Audience::Posted { platform } if !posted.contains(&platform) => posted.push(platform),
            Audience::Posted { .. } => {}
            Audience::Webhook => webhooks += 1,
        }
    }
    let counted = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut parts: Vec<String> = posted
        .iter()
        .filter(|p| !channels.iter().any(|(c, n)| c == *p && *n > 0))
        .map(|p| format!("the {p} notices already posted"))
        .collect();
    parts.extend(
        channels
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(p, n)| counted(*n, &format!("{p} channel"))),
    );
    if webhooks > 0 {
        parts.push(counted(webhooks, "webhook"));
    }
    match parts.as_slice() {
        [] => String::new(),
        [one] => format!(" Company-wide notice queued to {one}."),
        [rest @ .., last] => format!(
            " Company-wide notice queued to {} and {last}.",
            rest.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(audiences: &[Audience]) -> String {
        notice_summary(audiences)
    }

    const SLACK: &str = "Slack";
    const DISCORD: &str = "Discord";

    fn new_in(platform: &'static str, count: usize) -> Audience {
        Audience::Channels { platform, count }
    }

    #[test]
    fn the_reply_counts_notices_per_platform() {
        use Audience::*;
        assert_eq!(summary(&[]), "");
        assert_eq!(
            summary(&[new_in(SLACK, 2), Webhook]),
            " Company-wide notice queued to 2 Slack channels and 1 webhook."
        );
        assert_eq!(
            summary(&[Webhook, Webhook, Webhook]),
            " Company-wide notice queued to 3 webhooks."
        );
        assert_eq!(
            summary(&[Posted { platform: SLACK }, Webhook]),
            " Company-wide notice queued to the Slack notices already posted and 1 webhook."
        );
        assert_eq!(
            summary(&[
                new_in(SLACK, 1),
                Posted { platform: SLACK },
                new_in(DISCORD, 1),
                Webhook
            ]),
            " Company-wide notice queued to 1 Slack channel, 1 Discord channel and 1 webhook."
        );
        assert_eq!(
            summary(&[Posted { platform: SLACK }, Posted { platform: DISCORD }]),
            " Company-wide notice queued to the Slack notices already posted and the Discord notices already posted."
        );
    }
}
