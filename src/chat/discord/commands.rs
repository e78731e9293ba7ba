//! The application commands firebreak registers with Discord: `/incident` with one
//! subcommand per verb of the core grammar (`runbook` included), `/freeze` and `/unfreeze`, with typed options and
//! choices for severity, status and role. [`options`](super::options) maps what Discord sends
//! back onto the core [`Command`](crate::incident::Command); the names here and there are
//! the same constants.
//!
//! [`definitions`] is the JSON body of Discord's bulk overwrite; [`normalize`] projects
//! both it and what Discord reports back onto the fields that matter, so `discord register`
//! can tell whether anything would change.

use serde_json::{Value, json};

use crate::incident::Status;
use crate::incident::command::PostmortemField;

/// Option types.
const SUB_COMMAND: u8 = 1;
const STRING: u8 = 3;
const INTEGER: u8 = 4;
const BOOLEAN: u8 = 5;
const USER: u8 = 6;

/// Discord caps a string option's description at 100 characters and a title typed into an
/// option at 6000; the core's own limits apply after that.
const TEXT_MAX: u16 = 4000;

/// Runbook step ids are at most 40 characters.
const STEP_MAX: u16 = 40;

fn option(kind: u8, name: &str, description: &str, required: bool) -> Value {
    let mut o = json!({ "type": kind, "name": name, "description": description });
    if required {
        o["required"] = json!(true);
    }
    o
}

fn text(name: &str, description: &str, required: bool) -> Value {
    let mut o = option(STRING, name, description, required);
    o["max_length"] = json!(TEXT_MAX);
    o
}

fn choices(name: &str, description: &str, required: bool, values: &[(&str, &str)]) -> Value {
    let mut o = option(STRING, name, description, required);
    o["choices"] = values
        .iter()
        .map(|(label, value)| json!({ "name": label, "value": value }))
        .collect();
    o
}

fn incident() -> Value {
    let mut o = option(
        INTEGER,
        "incident",
        "The incident number (not needed in its channel)",
        false,
    );
    o["min_value"] = json!(1);
    o
}

fn severity(required: bool) -> Value {
    choices(
        "severity",
        "How bad it is",
        required,
        &[
            ("SEV1", "sev1"),
            ("SEV2", "sev2"),
            ("SEV3", "sev3"),
            ("SEV4", "sev4"),
        ],
    )
}

fn sub(name: &str, description: &str, options: Vec<Value>) -> Value {
    json!({ "type": SUB_COMMAND, "name": name, "description": description, "options": options })
}

fn incident_command() -> Value {
    let statuses: Vec<(&str, &str)> = Status::ALL
        .iter()
        .map(|s| (s.as_str(), s.as_str()))
        .collect();
    let sections: Vec<(&str, &str)> = PostmortemField::ALL
        .iter()
        .map(|f| (f.as_str(), f.as_str()))
        .collect();
    let roles = [
        ("commander", "commander"),
        ("comms", "comms"),
        ("scribe", "scribe"),
    ];
    let subs = vec![
        sub(
            "declare",
            "Declare an incident (without a title, a form opens)",
            vec![
                text("title", "What is broken", false),
                severity(false),
                option(BOOLEAN, "drill", "A drill, not a real incident", false),
                text(
                    "started",
                    "When it began: RFC 3339 or an age like 15m",
                    false,
                ),
                text("detected", "When it was noticed: RFC 3339 or an age", false),
            ],
        ),
        sub(
            "ack",
            "Acknowledge; you become commander if there is none",
            vec![incident()],
        ),
        sub(
            "update",
            "Post a status update",
            vec![
                text("text", "What changed", true),
                text("next", "When the next update is due, e.g. 30m", false),
                incident(),
            ],
        ),
        sub(
            "status",
            "Set the status",
            vec![
                choices("status", "The new status", true, &statuses),
                incident(),
            ],
        ),
        sub(
            "severity",
            "Change the severity",
            vec![severity(true), incident()],
        ),
        sub(
            "assign",
            "Give someone a role",
            vec![
                choices("role", "The role", true, &roles),
                option(USER, "user", "Who takes it", true),
                incident(),
            ],
        ),
        sub(
            "note",
            "Add a note to the timeline",
            vec![text("text", "The note", true), incident()],
        ),
        sub(
            "resolve",
            "Resolve the incident",
            vec![text("summary", "What fixed it", false), incident()],
        ),
        sub(
            "postmortem",
            "The post-mortem: the draft, a section, or publishing it",
            vec![
                choices(
                    "do",
                    "What to do (default: show the draft)",
                    false,
                    &[("draft", "draft"), ("publish", "publish"), ("set", "set")],
                ),
                choices("section", "The section to set", false, &sections),
                text("text", "The section's text", false),
                incident(),
            ],
        ),
        runbook(),
        sub("show", "Show an incident", vec![incident()]),
        sub("list", "List incidents", vec![]),
        sub("help", "How to use firebreak", vec![]),
    ];
    json!({ "name": "incident", "type": 1, "description": "Declare and work incidents", "options": subs })
}

/// `/incident runbook [action] [step] [note]`: the checklist, or a step done, skipped (the
/// note is the reason a skip needs) or started.
fn runbook() -> Value {
    let mut step = option(
        STRING,
        "step",
        "The step's id, as the checklist shows it",
        false,
    );
    step["max_length"] = json!(STEP_MAX);
    sub(
        "runbook",
        "The runbook checklist; tick a step done, skip it, or start it",
        vec![
            choices(
                "action",
                "What to do (default: show the checklist)",
                false,
                &[
                    ("done", "done"),
                    ("skip", "skip"),
                    ("start", "start"),
                    ("show", "show"),
                ],
            ),
            step,
            text(
                "note",
                "What was done, or why it is skipped (needed to skip)",
                false,
            ),
            incident(),
        ],
    )
}

fn freeze_command() -> Value {
    let subs = vec![
        sub(
            "merges",
            "Hold merges (default: the configured repositories)",
            vec![
                text(
                    "repos",
                    "owner/repo or owner/* (several separated by spaces)",
                    false,
                ),
                text("reason", "Why", false),
                text("for", "How long the hold lasts, e.g. 4h", false),
                incident(),
            ],
        ),
        sub("status", "What is frozen", vec![]),
        sub(
            "exempt",
            "Let one pull request through",
            vec![
                text("pr", "owner/repo#123", true),
                text("reason", "Why", false),
            ],
        ),
    ];
    json!({ "name": "freeze", "type": 1, "description": "Freeze merges through GitHub", "options": subs })
}

fn unfreeze_command() -> Value {
    json!({ "name": "unfreeze", "type": 1, "description": "Remove your hold on a merge freeze", "options": [
        text("repos", "owner/repo or owner/* (default: everywhere you hold)", false),
        option(BOOLEAN, "all", "Remove every hold, not only yours", false),
        incident(),
    ]})
}

/// The commands, as the body of `PUT /applications/{id}/commands`.
pub fn definitions() -> Value {
    json!([incident_command(), freeze_command(), unfreeze_command()])
}

/// The parts of a command list that registering sets, in a canonical form: commands sorted
/// by name, default values dropped, Discord's own fields (ids, versions) ignored.
pub fn normalize(commands: &Value) -> Value {
    let mut list: Vec<Value> = commands
        .as_array()
        .map(|a| a.iter().map(normalize_one).collect())
        .unwrap_or_default();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Value::Array(list)
}

fn normalize_one(v: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["name", "description"] {
        out.insert(key.into(), v.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert(
        "type".into(),
        v.get("type").cloned().unwrap_or_else(|| json!(1)),
    );
    let keep_if = |key: &str, skip: &dyn Fn(&Value) -> bool| {
        v.get(key).filter(|x| !x.is_null() && !skip(x)).cloned()
    };
    let empty = |x: &Value| x.as_array().is_some_and(Vec::is_empty);
    if let Some(r) = keep_if("required", &|x| x == &json!(false)) {
        out.insert("required".into(), r);
    }
    if let Some(c) = keep_if("choices", &empty) {
        let c = c
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| json!({ "name": c["name"], "value": c["value"] }))
            .collect();
        out.insert("choices".into(), Value::Array(c));
    }
    for key in ["min_value", "max_value", "min_length", "max_length"] {
        if let Some(x) = keep_if(key, &|_| false) {
            out.insert(key.into(), normalize_number(x));
        }
    }
    if let Some(o) = keep_if("options", &empty) {
        let o = o
            .as_array()
            .into_iter()
            .flatten()
            .map(normalize_one)
            .collect();
        out.insert("options".into(), Value::Array(o));
    }
    Value::Object(out)
}

/// `1` and `1.0` are the same bound.
fn normalize_number(x: Value) -> Value {
    match x.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => json!(f as i64),
        _ => x,
    }
}

/// `/incident help`: the slash commands with their options (`<required>`, `[optional]`),
/// from the same definitions Discord shows, so the two never disagree.
pub fn help() -> String {
    let mut lines = Vec::new();
    for command in definitions().as_array().into_iter().flatten() {
        let name = command["name"].as_str().unwrap_or_default();
        let options = command["options"].as_array().map_or(&[][..], |v| v);
        let subs: Vec<&Value> = options
            .iter()
            .filter(|o| o["type"] == SUB_COMMAND)
            .collect();
        if subs.is_empty() {
            lines.push(usage(&format!("/{name}"), options, command));
        }
        for s in subs {
            let path = format!("/{name} {}", s["name"].as_str().unwrap_or_default());
            let opts = s["options"].as_array().map_or(&[][..], |v| v);
            lines.push(usage(&path, opts, s));
        }
    }
    lines.push(
        "In an incident's channel the incident option can be left out. The same verbs work in Slack and the CLI."
            .into(),
    );
    lines.join("\n")
}

fn usage(path: &str, options: &[Value], about: &Value) -> String {
    let mut line = path.to_string();
    for o in options {
        let name = o["name"].as_str().unwrap_or_default();
        if o["required"] == json!(true) {
            line.push_str(&format!(" <{name}>"));
        } else {
            line.push_str(&format!(" [{name}]"));
        }
    }
    format!(
        "{line}: {}",
        about["description"].as_str().unwrap_or_default()
    )
}

/// Names of the commands in a list, for what `register` prints.
pub fn names(commands: &Value) -> Vec<String> {
    commands
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(|n| format!("/{n}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_stay_within_discords_limits() {
        fn check(o: &Value, depth: usize) {
            let name = o["name"].as_str().unwrap();
            assert!(
                (1..=32).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            let d = o["description"].as_str().unwrap();
            assert!((1..=100).contains(&d.chars().count()), "{d}");
            let opts = o["options"].as_array().map_or(&[][..], |v| v);
            assert!(opts.len() <= 25 && depth <= 3);
            // Required options come first, as Discord demands.
            let first_optional = opts.iter().position(|x| x["required"] != json!(true));
            if let Some(i) = first_optional {
                assert!(
                    opts[i..].iter().all(|x| x["required"] != json!(true)),
                    "{name}"
                );
            }
            for x in opts {
                check(x, depth + 1);
            }
        }
        for c in definitions().as_array().unwrap() {
            check(c, 0);
        }
    }

    #[test]
    fn help_names_every_subcommand_and_fits_one_message() {
        let help = help();
        for line in [
            "/incident declare [title]",
            "/incident assign <role> <user>",
            "/freeze exempt <pr>",
            "/incident runbook [action] [step] [note] [incident]",
            "/unfreeze [repos]",
        ] {
            assert!(help.contains(line), "{line} in {help}");
        }
        assert!(help.chars().count() < 1800, "{}", help.chars().count());
    }

    #[test]
    fn normalize_ignores_discords_own_fields_and_defaults() {
        let ours = definitions();
        let mut theirs = ours.clone();
        for c in theirs.as_array_mut().unwrap() {
            c["id"] = json!("1");
            c["version"] = json!("2");
            c["nsfw"] = json!(false);
            c["options"][0]["required"] = json!(false);
            c["options"][0]["choices"] = json!([]);
        }
        theirs.as_array_mut().unwrap().reverse();
        assert_eq!(normalize(&ours), normalize(&theirs));
        theirs[0]["description"] = json!("changed");
        assert_ne!(normalize(&ours), normalize(&theirs));
    }
}
