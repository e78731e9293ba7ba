//! How a merge freeze is shown (`freeze status` in chat, the CLI and the API): a summary
//! line and a view per target, computed from the wanted state and what the reconciler last
//! recorded of GitHub. Pure functions over the store's rows, so the core can say it without
//! knowing the adapter that records them.

use crate::incident::model::IncidentId;
use crate::store::{FreezeHold, FreezeScope, FreezeTarget};

/// What a target's `actual` says about enforcement: only `active` blocks merges.
pub fn enforced(actual: &str) -> bool {
    actual == "active"
}

/// The one-line summary of `freeze status`: what is wanted now, and on how many targets
/// GitHub actually blocks merges as last read. Never "0/0": with no target recorded yet it
/// says the freeze is not in place yet. Drill-only scopes are listed apart (a drill blocks
/// nothing, and with no `evaluate` on GitHub it is statuses only); errors are listed only
/// for targets something is wanted on now.
pub fn status_summary(scopes: &[FreezeScope], targets: &[FreezeTarget]) -> String {
    let names = |drill: bool| -> Vec<&str> {
        scopes
            .iter()
            .filter(|s| s.frozen && s.drill == drill)
            .map(|s| s.scope.as_str())
            .collect()
    };
    let (frozen, drills) = (names(false), names(true));
    let enforcing = |t: &FreezeTarget| covering(scopes, t).is_some_and(|s| !s.drill);
    let wanted: Vec<&FreezeTarget> = targets.iter().filter(|t| enforcing(t)).collect();
    let enforced_n = wanted.iter().filter(|t| enforced(&t.actual)).count();
    let mut text = if frozen.is_empty() {
        let still = targets.iter().filter(|t| t.actual == "active").count();
        match (still, drills.is_empty()) {
            (0, true) => "No merge freeze is wanted.".to_string(),
            (0, false) => "No merge freeze is enforced.".to_string(),
            (n, _) => format!(
                "No merge freeze is wanted; a ruleset is still active on {n} targets (being lifted)."
            ),
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
    if !drills.is_empty() {
        let statuses_only = targets
            .iter()
            .any(|t| drills.contains(&t.scope.as_str()) && t.actual == "statuses-only");
        let how = if statuses_only {
            "not enforced: GitHub offers no `evaluate` here, so DRILL statuses only"
        } else {
            "`evaluate` only, nothing blocked"
        };
        text.push_str(&format!(" Drill ({how}): {}.", drills.join(", ")));
    }
    let drifted: Vec<&str> = targets
        .iter()
        .filter(|t| t.actual == "drifted")
        .map(|t| t.target.as_str())
        .collect();
    if !drifted.is_empty() {
        text.push_str(&format!(" Drifted: {}.", drifted.join(", ")));
    }
    let lifting: Vec<&str> = targets
        .iter()
        .filter(|t| !frozen.is_empty() && !wanted_now(scopes, t) && enforced(&t.actual))
        .map(|t| t.target.as_str())
        .collect();
    if !lifting.is_empty() {
        text.push_str(&format!(
            " Still blocking, being lifted: {}.",
            lifting.join(", ")
        ));
    }
    for (label, retryable) in [("Failing", false), ("Retrying", true)] {
        let listed: Vec<String> = targets
            .iter()
            .filter(|t| error_current(scopes, t))
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

/// The part of the freeze one incident is concerned with (borrowed from the whole view, so
/// [`target_view`] still decides each target from every scope).
#[derive(Debug, Default, PartialEq)]
pub struct IncidentFreeze<'a> {
    /// The scopes it holds or last changed, and the ones now deciding their targets (an
    /// `owner/*` someone else froze over a repository it froze), in the view's order.
    pub scopes: Vec<&'a FreezeScope>,
    /// The targets of those scopes.
    pub targets: Vec<&'a FreezeTarget>,
    /// Every hold on those scopes, its own and others'.
    pub holds: Vec<&'a FreezeHold>,
}

/// What of the freeze concerns `incident`: the scopes it holds (or last changed, so a
/// lifted freeze still shows its targets until they are released), the targets those
/// scopes name or decide, the scopes that decide those targets now, and their holds.
pub fn for_incident<'a>(
    scopes: &'a [FreezeScope],
    targets: &'a [FreezeTarget],
    holds: &'a [FreezeHold],
    incident: &IncidentId,
) -> IncidentFreeze<'a> {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let held: Vec<&str> = scopes
        .iter()
        .filter(|s| {
            s.incident_id.as_ref() == Some(incident)
                || holds
                    .iter()
                    .any(|h| h.incident_id.as_ref() == Some(incident) && same(&h.scope, &s.scope))
        })
        .map(|s| s.scope.as_str())
        .collect();
    let is_held = |name: &str| held.iter().any(|h| same(h, name));
    let mine: Vec<&FreezeTarget> = targets
        .iter()
        .filter(|t| {
            is_held(&t.scope)
                || is_held(&t.target)
                || covering(scopes, t).is_some_and(|s| is_held(&s.scope))
        })
        .collect();
    let deciding: Vec<&str> = mine
        .iter()
        .filter_map(|t| covering(scopes, t))
        .map(|s| s.scope.as_str())
        .collect();
    let shown = |name: &str| is_held(name) || deciding.iter().any(|d| same(d, name));
    IncidentFreeze {
        scopes: scopes.iter().filter(|s| shown(&s.scope)).collect(),
        holds: holds.iter().filter(|h| shown(&h.scope)).collect(),
        targets: mine,
    }
}

/// Whether anything (a freeze or a drill) is wanted on `t` now.
fn wanted_now(scopes: &[FreezeScope], t: &FreezeTarget) -> bool {
    covering(scopes, t).is_some()
}

/// The frozen scope that decides `t` now: its own, or its owner's `owner/*` (in any case,
/// as GitHub's names are), a real freeze before a drill. `None`: nothing is wanted on it.
pub fn covering<'a>(scopes: &'a [FreezeScope], t: &FreezeTarget) -> Option<&'a FreezeScope> {
    let owner = t.target.split('/').next().unwrap_or_default();
    let wildcard = format!("{owner}/*");
    let covers = |s: &&FreezeScope| {
        s.frozen
            && (s.scope.eq_ignore_ascii_case(&t.scope)
                || s.scope.eq_ignore_ascii_case(&t.target)
                || s.scope.eq_ignore_ascii_case(&wildcard))
    };
    let all: Vec<&FreezeScope> = scopes.iter().filter(covers).collect();
    all.iter().find(|s| !s.drill).or(all.first()).copied()
}

/// Whether `t`'s last error is about now: something is wanted on it, or its ruleset is
/// still active while being lifted (a lift GitHub refused still blocks merges).
fn error_current(scopes: &[FreezeScope], t: &FreezeTarget) -> bool {
    wanted_now(scopes, t) || enforced(&t.actual)
}

/// One target as `freeze status` shows it: what is wanted *now* (from the current scopes,
/// not what was last applied), what GitHub had as last read and when that was (the last
/// successful read; a failure does not move it), and the last error with its time, marked
/// retrying (with the next retry, if known) or permanent. An error recorded while nothing
/// is wanted on the target any more is not current: it is shown as `past_error`. Times are
/// RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetView {
    pub target: String,
    pub wanted: &'static str,
    pub actual: String,
    /// `None`: GitHub was never read successfully for this target.
    pub read_at: Option<String>,
    pub error: Option<String>,
    pub error_at: Option<String>,
    pub retryable: Option<bool>,
    pub next_retry: Option<String>,
    pub past_error: Option<String>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn target_view(scopes: &[FreezeScope], t: &FreezeTarget) -> TargetView {
    let wanted = match covering(scopes, t) {
        Some(s) if s.drill => "drill",
        Some(_) => "frozen",
        None => "unfrozen",
    };
    let current = error_current(scopes, t);
    let error = t.last_error.clone().filter(|_| current);
    let retryable = error.as_deref().map(error_retryable);
    TargetView {
        target: t.target.clone(),
        wanted,
        actual: t.actual.clone(),
        read_at: t.verified().map(rfc3339),
        error_at: t.failed_at().map(rfc3339).filter(|_| error.is_some()),
        next_retry: t
            .next_retry()
            .map(rfc3339)
            .filter(|_| retryable == Some(true)),
        retryable,
        past_error: t.last_error.clone().filter(|_| !current),
        error,
    }
}

/// The scopes (each with its holds, the holder apart from the reason) and targets (each
/// with its [`TargetView`] fields) as JSON: one shape for `/api/freeze` and `freeze status
/// --json`. A stale error of a target nothing is wanted on is `past_error`, not
/// `last_error`.
pub fn freeze_json(
    scopes: &[FreezeScope],
    targets: &[FreezeTarget],
    holds: &[FreezeHold],
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    use serde_json::{Value, json};
    let scope_rows = scopes
        .iter()
        .map(|s| {
            let on: Vec<Value> = holds
                .iter()
                .filter(|h| h.scope == s.scope)
                .map(|h| {
                    let mut v = serde_json::to_value(h).unwrap_or_default();
                    v["holder_title"] = Value::String(h.holder_title());
                    v
                })
                .collect();
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["holds"] = Value::Array(on);
            v
        })
        .collect();
    let target_rows = targets
        .iter()
        .map(|t| {
            let view = target_view(scopes, t);
            let mut v = serde_json::to_value(t).unwrap_or_default();
            // `verified_at`/`read_at`: the last successful read of GitHub (null: never); a
            // failure keeps its own `error_at` and `next_retry_at`.
            v["verified_at"] = json!(view.read_at);
            v["read_at"] = json!(view.read_at);
            v["wanted_now"] = Value::String(view.wanted.into());
            v["last_error"] = json!(view.error);
            v["error_at"] = json!(view.error_at);
            v["error_retryable"] = json!(view.retryable);
            v["next_retry_at"] = json!(view.next_retry);
            v["past_error"] = json!(view.past_error);
            v
        })
        .collect();
    (scope_rows, target_rows)
}

/// Fills in the next retry of each target being retried: the time GitHub named if any, else
/// `due`, when the pending reconcile that retries it runs.
pub fn with_scheduled_retry(
    mut targets: Vec<FreezeTarget>,
    due: Option<chrono::DateTime<chrono::Utc>>,
) -> Vec<FreezeTarget> {
    for t in &mut targets {
        let retrying = t.last_error.as_deref().is_some_and(error_retryable);
        if retrying && t.retry_at.is_none() {
            // A reconcile due before the failure was recorded is the one running now (or
            // about to): the retry is not earlier than the error it retries.
            t.retry_at = due.map(|d| d.timestamp_millis().max(t.error_at.unwrap_or(0)));
        }
    }
    targets
}

/// Whether a target's recorded error will be retried (the reconciler notes those as
/// `will retry: …`).
pub fn error_retryable(error: &str) -> bool {
    error.starts_with("will retry")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str, frozen: bool) -> FreezeScope {
        FreezeScope {
            scope: name.into(),
            frozen,
            generation: 1,
            incident_id: None,
            reason: None,
            drill: false,
            requested_by: "cli:ops".into(),
            updated_at: chrono::Utc::now(),
            frozen_since: None,
        }
    }

    fn target(name: &str, scope: &str, actual: &str, error: Option<&str>) -> FreezeTarget {
        FreezeTarget {
            target: name.into(),
            scope: scope.into(),
            desired: "frozen".into(),
            actual: actual.into(),
            ruleset_id: Some(7),
            applied_generation: 1,
            verified_at: 1_000,
            last_error: error.map(str::to_string),
            error_at: error.map(|_| 5_000),
            retry_at: None,
        }
    }

    #[test]
    fn a_lift_github_refused_still_blocks_and_says_so() {
        let scopes = [scope("acme/api", true), scope("acme/web", false)];
        let targets = [
            target("acme/api", "acme/api", "active", None),
            target(
                "acme/web",
                "acme/web",
                "active",
                Some("will retry: HTTP 503"),
            ),
        ];
        let view = target_view(&scopes, &targets[1]);
        assert_eq!(view.wanted, "unfrozen");
        assert_eq!(view.error.as_deref(), Some("will retry: HTTP 503"));
        assert_eq!(view.past_error, None);
        let summary = status_summary(&scopes, &targets);
        assert!(
            summary.contains("Still blocking, being lifted: acme/web")
                && summary.contains("Retrying: acme/web"),
            "{summary}"
        );
        assert!(summary.contains("Ruleset in place on 1/1"), "{summary}");
    }

    #[test]
    fn a_repository_under_a_frozen_owner_is_wanted_frozen() {
        let scopes = [scope("beta/*", true), scope("beta/two", false)];
        let targets = [
            target("beta/one", "beta/*", "active", None),
            target("beta/two", "beta/two", "active", None),
        ];
        assert_eq!(target_view(&scopes, &targets[1]).wanted, "frozen");
        let summary = status_summary(&scopes, &targets);
        assert!(summary.contains("Ruleset in place on 2/2"), "{summary}");
        assert!(!summary.contains("being lifted"), "{summary}");
    }

    #[test]
    fn the_next_retry_is_never_before_the_error() {
        let t = target(
            "acme/api",
            "acme/api",
            "active",
            Some("will retry: HTTP 500"),
        );
        let due = chrono::DateTime::from_timestamp_millis(2_000);
        let [t] = <[FreezeTarget; 1]>::try_from(with_scheduled_retry(vec![t], due)).unwrap();
        assert_eq!(t.retry_at, Some(5_000));
    }

    fn hold(scope: &str, incident: Option<&str>, holder: &str) -> FreezeHold {
        FreezeHold {
            scope: scope.into(),
            holder_key: holder.into(),
            holder: holder.into(),
            holder_name: holder.into(),
            incident_id: incident.map(|i| IncidentId(i.into())),
            incident: None,
            reason: Some("why".into()),
            drill: false,
            requested_by: "cli:ops".into(),
            started_at: chrono::Utc::now(),
            expires_at: None,
        }
    }

    #[test]
    fn an_incident_sees_its_scopes_their_targets_and_what_decides_them() {
        let mut lifted = scope("acme/old", false);
        lifted.incident_id = Some(IncidentId("inc-1".into()));
        let scopes = [
            scope("acme/*", true),
            scope("Acme/API", true),
            scope("beta/x", true),
            lifted,
        ];
        let targets = [
            target("acme/api", "acme/api", "active", None),
            target("acme/web", "acme/*", "active", None),
            target("beta/x", "beta/x", "active", None),
            target("acme/old", "acme/old", "active", Some("HTTP 403")),
        ];
        let holds = [
            hold("acme/*", None, "cli:ops"),
            hold("acme/api", Some("inc-1"), "INC-1"),
            hold("beta/x", Some("inc-2"), "INC-2"),
        ];
        let mine = for_incident(&scopes, &targets, &holds, &IncidentId("inc-1".into()));
        let names = |v: Vec<&str>| v.join(",");
        assert_eq!(
            names(mine.targets.iter().map(|t| t.target.as_str()).collect()),
            "acme/api,acme/old"
        );
        assert_eq!(
            names(mine.scopes.iter().map(|s| s.scope.as_str()).collect()),
            "acme/*,Acme/API,acme/old"
        );
        assert_eq!(
            names(mine.holds.iter().map(|h| h.holder.as_str()).collect()),
            "cli:ops,INC-1"
        );
        let none = for_incident(&scopes, &targets, &holds, &IncidentId("inc-9".into()));
        assert_eq!(none, IncidentFreeze::default());
    }
}
