//! Ruleset drift: what differs between the ruleset firebreak wants on a target and the one
//! GitHub has, field by field, so the reconciler repairs only what someone changed. Pure.

use serde_json::{Value, json};

/// What differs between the wanted ruleset body and the one GitHub has, field by field:
/// target, enforcement, each condition's include and exclude, the rules and the bypass
/// actors. Empty when nothing that matters differs (order and GitHub's extra fields aside).
pub fn drift(wanted: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["name", "target", "enforcement"] {
        if wanted[key] != actual[key] {
            out.push(format!(
                "{key}: wanted {}, found {}",
                wanted[key], actual[key]
            ));
        }
    }
    let mut condition_keys: Vec<&String> = wanted["conditions"]
        .as_object()
        .into_iter()
        .chain(actual["conditions"].as_object())
        .flat_map(|o| o.keys())
        .collect();
    condition_keys.sort();
    condition_keys.dedup();
    for key in condition_keys {
        for part in ["include", "exclude"] {
            let (w, a) = (
                strings(&wanted["conditions"][key][part]),
                strings(&actual["conditions"][key][part]),
            );
            if w != a {
                out.push(format!(
                    "conditions.{key}.{part}: wanted [{}], found [{}]",
                    w.join(", "),
                    a.join(", ")
                ));
            }
        }
    }
    let (w, a) = (rules(wanted), rules(actual));
    if w != a {
        out.push(format!(
            "rules: wanted [{}], found [{}]",
            w.join(", "),
            a.join(", ")
        ));
    }
    let actors = |v: &Value| -> Vec<String> {
        let mut r: Vec<String> = v["bypass_actors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{} {} ({})",
                    a["actor_type"].as_str().unwrap_or("?"),
                    a["actor_id"],
                    a["bypass_mode"].as_str().unwrap_or("always")
                )
            })
            .collect();
        r.sort();
        r
    };
    let (w, a) = (actors(wanted), actors(actual));
    if w != a {
        out.push(format!(
            "bypass_actors: wanted [{}], found [{}]",
            w.join(", "),
            a.join(", ")
        ));
    }
    out
}

/// A ruleset's rules, each as its type and its parameters with GitHub's defaults filled
/// in, sorted: `{"type": "update"}` and the `update_allows_fetch_and_merge: false` GitHub
/// echoes back are the same rule, while a parameter changed by hand is not.
fn rules(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(normalized_rule)
        .collect();
    out.sort();
    out
}

fn normalized_rule(rule: &Value) -> String {
    let kind = rule["type"].as_str().unwrap_or("?");
    let mut parameters = rule_defaults(kind);
    if let Some(given) = rule["parameters"].as_object() {
        for (key, value) in given {
            parameters.insert(key.clone(), value.clone());
        }
    }
    if parameters.is_empty() {
        return kind.to_string();
    }
    let mut pairs: Vec<String> = parameters
        .iter()
        .map(|(key, value)| format!("{key}: {value}"))
        .collect();
    pairs.sort();
    format!("{kind} ({})", pairs.join(", "))
}

/// The parameters GitHub fills in for a rule given without them.
fn rule_defaults(kind: &str) -> serde_json::Map<String, Value> {
    let mut defaults = serde_json::Map::new();
    if kind == "update" {
        defaults.insert("update_allows_fetch_and_merge".into(), json!(false));
    }
    defaults
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::client::RulesetScope;
    use crate::github::config::GitHubConfig;
    use crate::github::freeze::{RulesetAction, Wanted, own_actor, ruleset_action, ruleset_body};
    #[test]
    fn every_field_of_the_ruleset_is_compared() {
        let config = GitHubConfig {
            branches: vec!["main".into()],
            ..GitHubConfig::default()
        };
        let wanted = Wanted {
            scope: "a/b".into(),
            frozen: true,
            drill: false,
            generation: 1,
            reason: None,
        };
        let own = own_actor(&config, Some(99));
        let body = ruleset_body(
            &RulesetScope::Repo("a/b".into()),
            &wanted,
            &config,
            own.as_ref(),
        );
        assert_eq!(body["bypass_actors"][0]["actor_type"], "Integration");
        let mut actual = body.clone();
        actual["id"] = json!(7);
        actual["rules"] = json!([{ "type": "update", "parameters": {} }]);
        assert!(
            drift(&body, &actual).is_empty(),
            "GitHub's extra fields are not drift"
        );
        actual["rules"] =
            json!([{ "type": "update", "parameters": { "update_allows_fetch_and_merge": false } }]);
        assert!(
            drift(&body, &actual).is_empty(),
            "GitHub echoing a rule's default parameters is not drift"
        );
        for (path, value, field) in [
            ("/rules", json!([{ "type": "deletion" }]), "rules"),
            (
                "/rules",
                json!([{ "type": "update", "parameters": { "update_allows_fetch_and_merge": true } }]),
                "rules",
            ),
            (
                "/rules",
                json!([{ "type": "update" }, { "type": "deletion" }]),
                "rules",
            ),
            (
                "/conditions/ref_name/include",
                json!(["refs/heads/nothing"]),
                "conditions.ref_name.include",
            ),
            (
                "/conditions/ref_name/exclude",
                json!(["refs/heads/main"]),
                "conditions.ref_name.exclude",
            ),
            ("/bypass_actors", json!([]), "bypass_actors"),
            ("/enforcement", json!("disabled"), "enforcement"),
            ("/target", json!("tag"), "target"),
        ] {
            let mut changed = body.clone();
            *changed.pointer_mut(path).unwrap() = value;
            let found = drift(&body, &changed);
            assert!(
                found.len() == 1 && found[0].starts_with(field),
                "{path}: {found:?}"
            );
            assert_eq!(
                ruleset_action(&wanted, Some((7, Some("active"))), &body, &found),
                RulesetAction::Update(7)
            );
        }
    }
}
