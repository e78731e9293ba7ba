//! How a merge freeze is shown (`freeze status` in chat, the CLI and the API): a summary
//! line and a view per target, computed from the wanted state and what the reconciler last
//! recorded of GitHub. Pure functions over the store's rows, so the core can say it without
//! knowing the adapter that records them.

use crate::store::{FreezeScope, FreezeTarget};

/// What a target's `actual` says about enforcement: only `active` blocks merges.
pub fn enforced(actual: &str) -> bool {
    actual == "active"
}

/// The one-line summary of `freeze status`: what is wanted now, and on how many targets
/// GitHub actually blocks merges as last read. Never "0/0": with no target recorded yet it
/// says the freeze is not in place yet.
pub fn status_summary(scopes: &[FreezeScope], targets: &[FreezeTarget]) -> String {
    let frozen: Vec<&str> = scopes
        .iter()
        .filter(|s| s.frozen)
        .map(|s| s.scope.as_str())
        .collect();
    let wanted_now = |t: &FreezeTarget| scopes.iter().any(|s| s.scope == t.scope && s.frozen);
    let wanted: Vec<&FreezeTarget> = targets.iter().filter(|t| wanted_now(t)).collect();
    let enforced_n = wanted.iter().filter(|t| enforced(&t.actual)).count();
    let drills = scopes.iter().filter(|s| s.frozen && s.drill).count();
    let mut text = if frozen.is_empty() {
        let still = targets.iter().filter(|t| t.actual == "active").count();
        if still > 0 {
            format!(
                "No merge freeze is wanted; a ruleset is still active on {still} targets (being lifted)."
            )
        } else {
            "No merge freeze is wanted.".to_string()
        }
    } else if wanted.is_empty() {
        format!(
            "Frozen: {}. Not in place yet: no target has been applied.",
            frozen.join(", ")
        )
    } else {
        format!(
            "Frozen: {}. Ruleset in place on {enforced_n}/{} targets.",
            frozen.join(", "),
            wanted.len()
        )
    };
    if drills > 0 {
        text.push_str(" Drill: nothing is blocked by a drill.");
    }
    let drifted: Vec<&str> = targets
        .iter()
        .filter(|t| t.actual == "drifted")
        .map(|t| t.target.as_str())
        .collect();
    if !drifted.is_empty() {
        text.push_str(&format!(" Drifted: {}.", drifted.join(", ")));
    }
    for (label, retryable) in [("Failing", false), ("Retrying", true)] {
        let listed: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                let why = t.last_error.as_deref()?;
                (error_retryable(why) == retryable).then(|| format!("{} ({why})", t.target))
            })
            .collect();
        if !listed.is_empty() {
            text.push_str(&format!(" {label}: {}.", listed.join("; ")));
        }
    }
    text
}

/// One target as `freeze status` shows it: what is wanted *now* (from the current scopes,
/// not what was last applied), what GitHub had as last read, when that was (RFC 3339, UTC),
/// and the last error, marked retrying (with when, if known) or permanent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetView {
    pub target: String,
    pub wanted: &'static str,
    pub actual: String,
    pub read_at: String,
    pub error: Option<String>,
    pub retryable: Option<bool>,
}

pub fn target_view(scopes: &[FreezeScope], t: &FreezeTarget) -> TargetView {
    let scope = scopes.iter().find(|s| s.scope == t.scope);
    let wanted = match scope {
        Some(s) if s.frozen && s.drill => "drill",
        Some(s) if s.frozen => "frozen",
        _ => "unfrozen",
    };
    TargetView {
        target: t.target.clone(),
        wanted,
        actual: t.actual.clone(),
        read_at: t
            .verified()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        error: t.last_error.clone(),
        retryable: t.last_error.as_deref().map(error_retryable),
    }
}

/// Whether a target's recorded error will be retried (the reconciler notes those as
/// `will retry: …`).
pub fn error_retryable(error: &str) -> bool {
    error.starts_with("will retry")
}
