//! The pure part of the merge freeze: which targets a set of scopes means, what ruleset
//! each frozen target needs, and what to do given what GitHub has now. The reconciler
//! calls these with state it has just read; nothing here does I/O.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::{RulesetScope, RulesetSummary};
use super::config::{BypassActor, GitHubConfig};
pub use crate::incident::freeze_view::{
    TargetView, enforced, error_retryable, status_summary, target_view,
};
use crate::store::FreezeScope;

/// The ruleset firebreak owns, found by this name before anything is created.
pub const RULESET_NAME: &str = "firebreak-freeze";
/// The commit-status context shown on pull requests.
pub const STATUS_CONTEXT: &str = "firebreak/merge-freeze";

/// What one target should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub scope: String,
    pub frozen: bool,
    pub drill: bool,
    pub generation: i64,
    pub reason: Option<String>,
}

/// Whether `new` takes a target (or a pull request's status) from `old` where scopes
/// overlap (`acme/*` and `acme/api`). A scope is frozen while any hold is on it, so a
/// frozen scope keeps the target frozen however new the lifted one is: lifting `acme/api`
/// leaves it frozen while `acme/*` is held. Between two frozen scopes a real freeze beats a
/// drill, and otherwise the newer generation speaks (its reason is the one shown).
pub fn overrides(new: &Wanted, old: &Wanted) -> bool {
    takes_over(
        (new.frozen, new.drill, new.generation),
        (old.frozen, old.drill, old.generation),
    )
}

/// [`overrides`] for stored scopes.
pub fn scope_overrides(new: &FreezeScope, old: &FreezeScope) -> bool {
    takes_over(
        (new.frozen, new.drill, new.generation),
        (old.frozen, old.drill, old.generation),
    )
}

fn takes_over(new: (bool, bool, i64), old: (bool, bool, i64)) -> bool {
    let ((new_frozen, new_drill, new_gen), (old_frozen, old_drill, old_gen)) = (new, old);
    if new_frozen != old_frozen {
        return new_frozen;
    }
    if new_frozen && new_drill != old_drill {
        return !new_drill;
    }
    new_gen >= old_gen
}

/// Turns wanted scopes into wanted targets. `owner/*` becomes one org target when org
/// rulesets are on, or is expanded with `org_repos` (fetched by the caller) otherwise.
/// Where scopes overlap, [`overrides`] decides.
pub fn targets(
    scopes: &[FreezeScope],
    config: &GitHubConfig,
    org_repos: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<RulesetScope, Wanted> {
    let mut out: BTreeMap<RulesetScope, Wanted> = BTreeMap::new();
    let mut sorted: Vec<&FreezeScope> = scopes.iter().collect();
    sorted.sort_by_key(|s| s.generation);
    for s in sorted {
        let wanted = Wanted {
            scope: s.scope.clone(),
            frozen: s.frozen,
            drill: s.drill,
            generation: s.generation,
            reason: s.reason.clone(),
        };
        let mut put = |target: RulesetScope| {
            // One repository, however its name is cased (`Beta/Two` listed by GitHub,
            // `beta/two` typed): the spelling seen first stays the key.
            let target = out
                .keys()
                .find(|k| k.same_as(&target))
                .cloned()
                .unwrap_or(target);
            match out.get(&target) {
                Some(old) if !overrides(&wanted, old) => {}
                _ => {
                    out.insert(target, wanted.clone());
                }
            }
        };
        match s.scope.strip_suffix("/*") {
            Some(org) if config.org_rulesets => put(RulesetScope::Org(org.to_string())),
            Some(org) => {
                for repo in org_repos.get(org).into_iter().flatten() {
                    put(RulesetScope::Repo(repo.clone()));
                }
            }
            None => put(RulesetScope::Repo(s.scope.clone())),
        }
    }
    out
}

/// The orgs whose repository lists a set of scopes needs: every `owner/*`. Without org
/// rulesets they are the targets; with them, one org ruleset enforces the freeze but each
/// repository's pull requests still need their status, frozen or lifted.
pub fn orgs_to_expand(scopes: &[FreezeScope]) -> Vec<String> {
    let mut orgs: Vec<String> = scopes
        .iter()
        .filter_map(|s| s.scope.strip_suffix("/*").map(str::to_string))
        .collect();
    orgs.sort();
    orgs.dedup();
    orgs
}

/// The ruleset body for a frozen target: an `update` rule (only bypass actors may move the
/// branch, so merges are blocked) on the configured branches or the default branch. Drills
/// use `evaluate`: nothing is blocked, but GitHub records what would have been.
///
/// The bypass list is the configured one plus `own`, the actor firebreak itself merges
/// exemptions as (see [`own_actor`]).
pub fn ruleset_body(
    scope: &RulesetScope,
    wanted: &Wanted,
    config: &GitHubConfig,
    own: Option<&BypassActor>,
) -> Value {
    let refs: Vec<String> = if config.branches.is_empty() {
        vec!["~DEFAULT_BRANCH".into()]
    } else {
        config
            .branches
            .iter()
            .map(|b| format!("refs/heads/{b}"))
            .collect()
    };
    let mut conditions = json!({ "ref_name": { "include": refs, "exclude": [] } });
    if matches!(scope, RulesetScope::Org(_)) {
        conditions["repository_name"] = json!({ "include": ["~ALL"], "exclude": [] });
    }
    json!({
        "name": RULESET_NAME,
        "target": "branch",
        "enforcement": enforcement(wanted),
        "conditions": conditions,
        "rules": [{ "type": "update" }],
        "bypass_actors": bypass(config.bypass.iter().chain(own.filter(|o| !config.bypass.contains(o)))),
    })
}

/// The bypass actor firebreak merges exempted pull requests as: the GitHub App
/// (`Integration`, its id) with App auth, else the configured `merge_actor`.
pub fn own_actor(config: &GitHubConfig, app_id: Option<u64>) -> Option<BypassActor> {
    match app_id {
        Some(id) => Some(BypassActor {
            actor_id: id,
            actor_type: "Integration".into(),
            bypass_mode: "always".into(),
        }),
        None => config.merge_actor.clone(),
    }
}

/// Firebreak's ruleset among a target's: the one with the id it recorded (renamed by hand,
/// it is still firebreak's, to repair or to lift), else the one named [`RULESET_NAME`].
pub fn our_ruleset(list: Vec<RulesetSummary>, known: Option<i64>) -> Option<RulesetSummary> {
    let known = known.and_then(|id| u64::try_from(id).ok());
    let (by_id, by_name): (Vec<_>, Vec<_>) = list
        .into_iter()
        .filter(|r| Some(r.id) == known || r.name == RULESET_NAME)
        .partition(|r| Some(r.id) == known);
    by_id.into_iter().chain(by_name).next()
}

pub fn enforcement(wanted: &Wanted) -> &'static str {
    if wanted.drill { "evaluate" } else { "active" }
}

fn bypass<'a>(actors: impl Iterator<Item = &'a BypassActor>) -> Value {
    Value::Array(
        actors
            .map(|a| json!({ "actor_id": a.actor_id, "actor_type": a.actor_type, "bypass_mode": a.bypass_mode }))
            .collect(),
    )
}

/// What the reconciler must do to one target, given the ruleset GitHub has now (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesetAction {
    Create,
    Update(u64),
    Delete(u64),
    Nothing,
}

/// `drifted` is what [`drift`] found in GitHub's full ruleset (empty if it was not read).
pub fn ruleset_action(
    wanted: &Wanted,
    existing: Option<(u64, Option<&str>)>,
    body: &Value,
    drifted: &[String],
) -> RulesetAction {
    match (wanted.frozen, existing) {
        (true, None) => RulesetAction::Create,
        (true, Some((id, enforcement)))
            if enforcement != body["enforcement"].as_str() || !drifted.is_empty() =>
        {
            RulesetAction::Update(id)
        }
        (true, Some(_)) => RulesetAction::Nothing,
        (false, Some((id, _))) => RulesetAction::Delete(id),
        (false, None) => RulesetAction::Nothing,
    }
}

/// The status a pull request's head should carry: `failure` while frozen (unless exempt),
/// `success` once lifted or exempted, and `success` during a drill, whose description says
/// DRILL: a drill blocks nothing even where the status is a required check.
pub fn pr_status(frozen: bool, exempt: bool, drill: bool) -> &'static str {
    if frozen && !exempt && !drill {
        "failure"
    } else {
        "success"
    }
}

/// The commit status description for a pull request: at most 140 characters, GitHub's
/// limit (see [`super::text`]).
pub fn status_description(
    wanted: &Wanted,
    incident: Option<&str>,
    exempt_by: Option<&str>,
) -> String {
    if let Some(by) = exempt_by {
        let by = crate::incident::identity::fallback_name(by);
        return super::text::status_description(&format!("Exempted from the merge freeze by {by}"));
    }
    if !wanted.frozen {
        return "Merge freeze lifted".into();
    }
    let drill = if wanted.drill {
        "DRILL (nothing blocked): "
    } else {
        ""
    };
    let inc = incident.map(|i| format!("{i}: ")).unwrap_or_default();
    let reason = wanted.reason.as_deref().unwrap_or("merges are frozen");
    let reason = if wanted.drill {
        super::text::without_drill_label(reason)
    } else {
        reason
    };
    super::text::status_description(&format!("{drill}{inc}{reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FreezeTarget;

    fn scope(s: &str, frozen: bool, generation: i64) -> FreezeScope {
        FreezeScope {
            scope: s.into(),
            frozen,
            generation,
            incident_id: None,
            reason: None,
            drill: false,
            requested_by: "x".into(),
            updated_at: chrono::Utc::now(),
            frozen_since: frozen.then_some(generation),
        }
    }

    #[test]
    fn wildcards_expand_or_become_org_targets_and_any_hold_keeps_a_target_frozen() {
        let mut config = GitHubConfig::default();
        let repos = BTreeMap::from([(
            "acme".to_string(),
            vec!["acme/api".to_string(), "acme/web".to_string()],
        )]);
        let scopes = [scope("acme/*", true, 1), scope("acme/api", false, 2)];
        let t = targets(&scopes, &config, &repos);
        assert!(t[&RulesetScope::Repo("acme/web".into())].frozen);
        assert!(
            t[&RulesetScope::Repo("acme/api".into())].frozen,
            "lifting acme/api leaves it frozen while acme/* is held"
        );
        let both = [scope("acme/api", true, 1), scope("acme/*", false, 2)];
        let t = targets(&both, &config, &repos);
        assert!(t[&RulesetScope::Repo("acme/api".into())].frozen);
        assert!(!t[&RulesetScope::Repo("acme/web".into())].frozen);
        let newer = [scope("acme/*", true, 1), scope("acme/api", true, 2)];
        assert_eq!(
            targets(&newer, &config, &repos)[&RulesetScope::Repo("acme/api".into())].scope,
            "acme/api",
            "between two freezes the newer one speaks"
        );
        config.org_rulesets = true;
        let t = targets(&scopes, &config, &repos);
        assert!(t[&RulesetScope::Org("acme".into())].frozen);
    }

    #[test]
    fn one_repository_is_one_target_in_any_case() {
        let config = GitHubConfig::default();
        let repos = BTreeMap::from([("beta".to_string(), vec!["Beta/Two".to_string()])]);
        let scopes = [scope("beta/*", true, 1), scope("beta/two", false, 2)];
        let t = targets(&scopes, &config, &repos);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t.values().all(|w| w.frozen));
    }

    #[test]
    fn actions_follow_what_github_has() {
        let config = GitHubConfig::default();
        let mut wanted = Wanted {
            scope: "a/b".into(),
            frozen: true,
            drill: false,
            generation: 1,
            reason: None,
        };
        let body = ruleset_body(&RulesetScope::Repo("a/b".into()), &wanted, &config, None);
        assert_eq!(
            body["conditions"]["ref_name"]["include"][0],
            "~DEFAULT_BRANCH"
        );
        assert_eq!(
            ruleset_action(&wanted, None, &body, &[]),
            RulesetAction::Create
        );
        assert_eq!(
            ruleset_action(&wanted, Some((7, Some("active"))), &body, &[]),
            RulesetAction::Nothing
        );
        assert_eq!(
            ruleset_action(&wanted, Some((7, Some("evaluate"))), &body, &[]),
            RulesetAction::Update(7)
        );
        wanted.frozen = false;
        assert_eq!(
            ruleset_action(&wanted, Some((7, Some("active"))), &body, &[]),
            RulesetAction::Delete(7)
        );
        assert_eq!(pr_status(true, true, false), "success");
        assert_eq!(pr_status(true, false, false), "failure");
        assert_eq!(
            pr_status(true, false, true),
            "success",
            "a drill blocks nothing, even where the status is a required check"
        );
    }

    #[test]
    fn our_ruleset_is_the_recorded_id_under_any_name_else_the_named_one() {
        let summary = |id: u64, name: &str| RulesetSummary {
            id,
            name: name.into(),
            enforcement: Some("active".into()),
            source_type: None,
        };
        let list = || vec![summary(5, "other"), summary(103, "freeze-renamed")];
        assert_eq!(our_ruleset(list(), Some(103)).map(|r| r.id), Some(103));
        assert_eq!(our_ruleset(list(), None).map(|r| r.id), None);
        let mut named = list();
        named.push(summary(104, RULESET_NAME));
        assert_eq!(
            our_ruleset(named.clone(), Some(103)).map(|r| r.id),
            Some(103)
        );
        assert_eq!(our_ruleset(named, Some(7)).map(|r| r.id), Some(104));
    }

    #[test]
    fn the_status_counts_only_what_blocks_and_never_says_0_of_0() {
        let scopes = [scope("acme/api", true, 1), scope("acme/web", true, 1)];
        assert_eq!(
            status_summary(&scopes, &[]),
            "Frozen: acme/api, acme/web. Not in place yet: no target has been applied."
        );
        let target = |name: &str, actual: &str, error: Option<&str>| FreezeTarget {
            target: name.into(),
            scope: name.into(),
            desired: "frozen".into(),
            actual: actual.into(),
            ruleset_id: None,
            applied_generation: 1,
            verified_at: 0,
            last_error: error.map(str::to_string),
            error_at: error.map(|_| 5_000),
            retry_at: None,
        };
        let targets = [
            target("acme/api", "active", None),
            target(
                "acme/web",
                "drifted",
                Some("will retry: GitHub answered HTTP 502"),
            ),
        ];
        let text = status_summary(&scopes, &targets);
        assert!(text.contains("Ruleset in place on 1/2 targets"), "{text}");
        assert!(text.contains("Drifted: acme/web"), "{text}");
        assert!(text.contains("Retrying: acme/web"), "{text}");
        let view = target_view(&scopes, &targets[1]);
        assert_eq!(view.read_at, None, "never read successfully");
        assert_eq!(view.error_at.as_deref(), Some("1970-01-01T00:00:05Z"));
        assert_eq!(view.retryable, Some(true));
        let lifted = [scope("acme/api", false, 2)];
        assert_eq!(
            target_view(&lifted, &targets[0]).wanted,
            "unfrozen",
            "wanted now"
        );
        // Once nothing is wanted on it, a target's last error is past, not current.
        let gone = target(
            "acme/web",
            "error",
            Some("GitHub answered HTTP 404: Not Found"),
        );
        let lifted = [scope("acme/api", true, 2), scope("acme/web", false, 3)];
        let text = status_summary(&lifted, std::slice::from_ref(&gone));
        assert!(!text.contains("Failing"), "{text}");
        let view = target_view(&lifted, &gone);
        assert_eq!((view.error, view.retryable), (None, None));
        assert!(view.past_error.unwrap().contains("404"));
    }

    #[test]
    fn a_drill_only_scope_is_listed_as_a_drill_not_as_frozen() {
        let mut drill = scope("acme/web", true, 2);
        drill.drill = true;
        let scopes = [scope("acme/api", true, 1), drill.clone()];
        let text = status_summary(&scopes, &[]);
        assert!(text.starts_with("Frozen: acme/api. "), "{text}");
        assert!(
            text.contains("Drill (`evaluate` only, nothing blocked): acme/web."),
            "{text}"
        );
        let text = status_summary(std::slice::from_ref(&drill), &[]);
        assert!(text.starts_with("No merge freeze is enforced."), "{text}");
        assert!(!text.contains("Frozen"), "{text}");
    }

    #[test]
    fn a_real_freeze_outranks_a_newer_drill_on_the_same_repository() {
        let config = GitHubConfig {
            branches: vec!["main".into()],
            ..GitHubConfig::default()
        };
        let mut drill = scope("acme/api", true, 5);
        drill.drill = true;
        let scopes = [scope("acme/*", true, 1), drill];
        let repos = BTreeMap::from([("acme".to_string(), vec!["acme/api".to_string()])]);
        let wanted = &targets(&scopes, &config, &repos)[&RulesetScope::Repo("acme/api".into())];
        assert_eq!((wanted.scope.as_str(), wanted.drill), ("acme/*", false));
    }

    #[test]
    fn drills_only_evaluate_and_org_rulesets_cover_all_repos() {
        let config = GitHubConfig {
            branches: vec!["main".into()],
            ..GitHubConfig::default()
        };
        let wanted = Wanted {
            scope: "acme/*".into(),
            frozen: true,
            drill: true,
            generation: 1,
            reason: None,
        };
        let body = ruleset_body(&RulesetScope::Org("acme".into()), &wanted, &config, None);
        assert_eq!(body["enforcement"], "evaluate");
        assert_eq!(body["conditions"]["repository_name"]["include"][0], "~ALL");
        assert_eq!(
            body["conditions"]["ref_name"]["include"][0],
            "refs/heads/main"
        );
    }
}
