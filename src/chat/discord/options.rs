//! A slash command's typed options, mapped onto the core [`Command`]: the same verbs and
//! the same values the chat grammar produces, built from Discord's fields instead of words,
//! so nothing is re-parsed and a title that starts with `sev2` stays a title. Free text has
//! Discord's mention syntax made neutral ([`decode`](super::decode)); the core's text
//! pipeline does the rest in `apply_checked`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::decode;
use super::interactions::{CommandCall, CommandOption, Resolved};
use crate::incident::command::{
    self, Change, Declare, FreezeVerb, PostmortemField, PostmortemVerb, Query, RunbookVerb,
};
use crate::incident::{Command, Identity, IncidentNumber, UserError};

/// What a slash command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// A core command.
    Run(Command),
    /// `/incident declare` with no title: open the declare form.
    DeclareForm,
    /// `/incident help`: the slash commands, as Discord users type them.
    Help,
}

/// The options of one (sub)command, looked up by name.
struct Options<'a> {
    options: &'a [CommandOption],
    names: &'a Resolved,
}

impl<'a> Options<'a> {
    fn value(&self, name: &str) -> Option<&'a Value> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.value.as_ref())
    }

    /// A string option, mentions decoded, blank as absent.
    fn text(&self, name: &str) -> Option<String> {
        let raw = self.value(name)?.as_str()?;
        let text = decode::decode(raw, self.names);
        (!text.trim().is_empty()).then(|| text.trim().to_string())
    }

    fn required(&self, name: &str, verb: &str, what: &str) -> Result<String, UserError> {
        self.text(name)
            .ok_or_else(|| UserError::invalid(format!("`{verb}` needs {what}.")))
    }

    fn flag(&self, name: &str) -> bool {
        self.value(name).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The `incident` option, if given.
    fn incident(&self) -> Result<Option<IncidentNumber>, UserError> {
        match self.value("incident") {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|n| *n > 0)
                .map(|n| Some(IncidentNumber(n)))
                .ok_or_else(|| UserError::invalid("The incident is a number such as 42.")),
        }
    }

    /// The `repos` option as scopes, split on spaces and commas.
    fn scopes(&self) -> Result<Vec<String>, UserError> {
        self.text("repos")
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(command::parse_scope)
            .collect()
    }
}

/// Maps a slash command onto the core grammar. `now` anchors ages such as `--started 15m`.
pub fn intent(
    call: &CommandCall,
    names: &Resolved,
    now: DateTime<Utc>,
) -> Result<Intent, UserError> {
    let (path, options) = call.path();
    let o = Options { options, names };
    let target = o.incident()?;
    let cmd = match path.as_slice() {
        ["incident", "declare"] => return declare(&o, now),
        ["incident", "postmortem"] => Command::new(target, postmortem(&o)?),
        ["incident", "runbook"] => Command::new(target, runbook(&o)?),
        ["incident", "show"] => Command::new(target, Query::Show),
        ["incident", "list"] => Command::untargeted(Query::List(Default::default())),
        ["incident", "help"] => return Ok(Intent::Help),
        ["incident", verb] => Command::new(target, change(verb, &o)?),
        ["freeze", "merges"] => Command::new(
            target,
            FreezeVerb::Freeze {
                scopes: o.scopes()?,
                reason: o.text("reason"),
                expires: o
                    .text("for")
                    .map(|w| command::parse_expiry(&w))
                    .transpose()?,
            },
        ),
        ["freeze", "status"] => Command::untargeted(FreezeVerb::Status),
        ["freeze", "exempt"] => Command::untargeted(exempt(&o)?),
        ["unfreeze"] => Command::new(
            target,
            FreezeVerb::Unfreeze {
                scopes: o.scopes()?,
                all: o.flag("all"),
            },
        ),
        _ => {
            return Err(UserError::invalid(format!(
                "firebreak does not handle /{}; run `firebreak discord register` to update the commands.",
                path.join(" ")
            )));
        }
    };
    Ok(Intent::Run(cmd))
}

fn declare(o: &Options<'_>, now: DateTime<Utc>) -> Result<Intent, UserError> {
    let Some(title) = o.text("title") else {
        return Ok(Intent::DeclareForm);
    };
    let when = |name: &str| {
        o.text(name)
            .map(|w| command::parse_when(&w, now))
            .transpose()
    };
    let severity = match o.text("severity") {
        Some(s) => s.parse()?,
        None => command::DEFAULT_SEVERITY,
    };
    let declare = Declare {
        drill: o.flag("drill"),
        started_at: when("started")?,
        detected_at: when("detected")?,
        ..Declare::new(severity, title)
    };
    Ok(Intent::Run(Command::untargeted(declare)))
}

fn change(verb: &str, o: &Options<'_>) -> Result<Change, UserError> {
    Ok(match verb {
        "ack" => Change::Ack,
        "update" => Change::Update {
            text: o.required("text", "update", "what changed")?,
            next: o.text("next").map(command::parse_cadence).transpose()?,
        },
        "status" => Change::Status(o.required("status", "status", "a status")?.parse()?),
        "severity" => Change::Severity(o.required("severity", "severity", "a severity")?.parse()?),
        "assign" => Change::Assign {
            role: o.required("role", "assign", "a role")?.parse()?,
            user: user(o)?,
        },
        "note" => Change::Note {
            text: o.required("text", "note", "the note")?,
        },
        "resolve" => Change::Resolve {
            summary: o.text("summary"),
        },
        other => {
            return Err(UserError::invalid(format!(
                "firebreak does not handle /incident {other}; run `firebreak discord register` to update the commands."
            )));
        }
    })
}

/// The `user` option: Discord sends the id of the person picked, stored as `discord:ID`.
fn user(o: &Options<'_>) -> Result<String, UserError> {
    let id = o
        .value("user")
        .and_then(Value::as_str)
        .ok_or_else(|| UserError::invalid("`assign` needs a user."))?;
    Identity::new("discord", id)
        .map(|i| i.to_string())
        .ok_or_else(|| UserError::invalid(format!("\"{id}\" is not a Discord user id.")))
}

fn postmortem(o: &Options<'_>) -> Result<PostmortemVerb, UserError> {
    Ok(match o.text("do").as_deref() {
        None | Some("draft") => PostmortemVerb::Draft,
        Some("publish") => PostmortemVerb::Publish,
        Some("set") => PostmortemVerb::Set {
            field: PostmortemField::parse(&o.required(
                "section",
                "postmortem set",
                "a section",
            )?)?,
            text: o.required("text", "postmortem set", "the section's text")?,
        },
        Some(other) => {
            return Err(UserError::invalid(format!(
                "\"{other}\" is not something `postmortem` does; use draft, publish or set."
            )));
        }
    })
}

/// `action` done, skip, start or show (the default); `step` as the grammar takes it (lower case,
/// backticks dropped); `note` is what was done, or, for a skip, the reason it needs.
fn runbook(o: &Options<'_>) -> Result<RunbookVerb, UserError> {
    let step = |verb: &str| {
        o.required("step", verb, "the step's id")
            .map(|s| s.trim_matches('`').trim().to_ascii_lowercase())
    };
    Ok(match o.text("action").as_deref() {
        None | Some("show") => RunbookVerb::Show,
        Some("done") => RunbookVerb::Done {
            step: step("runbook done")?,
            note: o.text("note"),
        },
        Some("skip") => RunbookVerb::Skip {
            step: step("runbook skip")?,
            reason: o.required("note", "runbook skip", "why it is skipped, as the note")?,
        },
        Some("start") => RunbookVerb::Start {
            step: step("runbook start")?,
        },
        Some(other) => {
            return Err(UserError::invalid(format!(
                "\"{other}\" is not something `runbook` does; use done, skip, start or show."
            )));
        }
    })
}

fn exempt(o: &Options<'_>) -> Result<FreezeVerb, UserError> {
    let usage = || UserError::invalid("Name the pull request as owner/repo#123.");
    let pr_ref = o.required("pr", "freeze exempt", "a pull request")?;
    let (repo, pr) = pr_ref.split_once('#').ok_or_else(usage)?;
    let repo = command::parse_scope(repo)?;
    if repo.ends_with("/*") {
        return Err(usage());
    }
    let pr = pr
        .parse()
        .map_err(|_| UserError::invalid(format!("\"{pr}\" is not a pull request number.")))?;
    Ok(FreezeVerb::Exempt {
        repo,
        pr,
        reason: o.text("reason"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::command::ParseOptions;
    use serde_json::json;

    fn call(v: Value) -> CommandCall {
        serde_json::from_value(v).unwrap()
    }

    fn sub(name: &str, sub: &str, options: Value) -> CommandCall {
        call(json!({"name": name, "options": [{"name": sub, "type": 1, "options": options}]}))
    }

    fn run(c: &CommandCall) -> Command {
        match intent(c, &Resolved::default(), Utc::now()).unwrap() {
            Intent::Run(cmd) => cmd,
            other => panic!("a command, not {other:?}"),
        }
    }

    /// The same command as the chat grammar parses from `line`.
    fn typed(line: &str) -> Command {
        command::parse_line(line, ParseOptions::default()).unwrap()
    }

    #[test]
    fn options_build_what_the_grammar_parses() {
        let cases = [
            (
                sub(
                    "incident",
                    "declare",
                    json!([{"name": "title", "type": 3, "value": "sev2 is a word here"}, {"name": "severity", "type": 3, "value": "sev1"}]),
                ),
                "declare sev1 sev2 is a word here",
            ),
            (
                sub(
                    "incident",
                    "ack",
                    json!([{"name": "incident", "type": 4, "value": 4}]),
                ),
                "ack INC-4",
            ),
            (
                sub(
                    "incident",
                    "update",
                    json!([{"name": "text", "type": 3, "value": "rolled back"}, {"name": "next", "type": 3, "value": "30m"}]),
                ),
                "update rolled back --next 30m",
            ),
            (
                sub(
                    "incident",
                    "status",
                    json!([{"name": "status", "type": 3, "value": "mitigated"}]),
                ),
                "status mitigated",
            ),
            (
                sub(
                    "incident",
                    "severity",
                    json!([{"name": "severity", "type": 3, "value": "sev2"}]),
                ),
                "severity sev2",
            ),
            (
                sub(
                    "incident",
                    "assign",
                    json!([{"name": "role", "type": 3, "value": "comms"}, {"name": "user", "type": 6, "value": "42"}]),
                ),
                "assign comms discord:42",
            ),
            (
                sub(
                    "incident",
                    "note",
                    json!([{"name": "text", "type": 3, "value": "it's DNS"}]),
                ),
                "note it's DNS",
            ),
            (sub("incident", "resolve", json!([])), "resolve"),
            (sub("incident", "list", json!([])), "list"),
            (
                sub(
                    "incident",
                    "postmortem",
                    json!([{"name": "do", "type": 3, "value": "set"}, {"name": "section", "type": 3, "value": "impact"}, {"name": "text", "type": 3, "value": "none"}]),
                ),
                "postmortem set impact none",
            ),
            (
                sub(
                    "freeze",
                    "merges",
                    json!([{"name": "repos", "type": 3, "value": "acme/web acme/*"}, {"name": "reason", "type": 3, "value": "release"}, {"name": "for", "type": 3, "value": "4h"}]),
                ),
                "freeze acme/web acme/* --reason release --for 4h",
            ),
            (sub("freeze", "status", json!([])), "freeze status"),
            (sub("incident", "runbook", json!([])), "runbook"),
            (
                sub(
                    "incident",
                    "runbook",
                    json!([{"name": "action", "type": 3, "value": "done"}, {"name": "step", "type": 3, "value": "`Restore-DB`"}, {"name": "incident", "type": 4, "value": 4}]),
                ),
                "runbook done INC-4 restore-db",
            ),
            (
                sub(
                    "incident",
                    "runbook",
                    json!([{"name": "action", "type": 3, "value": "done"}, {"name": "step", "type": 3, "value": "restore-db"}, {"name": "note", "type": 3, "value": "two of three back"}]),
                ),
                "runbook done restore-db two of three back",
            ),
            (
                sub(
                    "incident",
                    "runbook",
                    json!([{"name": "action", "type": 3, "value": "skip"}, {"name": "step", "type": 3, "value": "bridge"}, {"name": "note", "type": 3, "value": "no bridge needed"}]),
                ),
                "runbook skip bridge no bridge needed",
            ),
            (
                sub(
                    "incident",
                    "runbook",
                    json!([{"name": "action", "type": 3, "value": "start"}, {"name": "step", "type": 3, "value": "bridge"}]),
                ),
                "runbook start bridge",
            ),
            (
                sub(
                    "freeze",
                    "exempt",
                    json!([{"name": "pr", "type": 3, "value": "acme/web#12"}, {"name": "reason", "type": 3, "value": "hotfix"}]),
                ),
                "freeze exempt acme/web#12 --reason hotfix",
            ),
            (
                call(
                    json!({"name": "unfreeze", "options": [{"name": "all", "type": 5, "value": true}]}),
                ),
                "unfreeze --all",
            ),
        ];
        for (c, line) in cases {
            assert_eq!(run(&c), typed(line), "{line}");
        }
    }

    #[test]
    fn a_bare_declare_is_the_form_and_bad_values_are_sentences() {
        assert_eq!(
            intent(
                &sub("incident", "help", json!([])),
                &Resolved::default(),
                Utc::now()
            )
            .unwrap(),
            Intent::Help
        );
        let bare = sub(
            "incident",
            "declare",
            json!([{"name": "severity", "type": 3, "value": "sev1"}]),
        );
        assert_eq!(
            intent(&bare, &Resolved::default(), Utc::now()).unwrap(),
            Intent::DeclareForm
        );
        let blank = sub(
            "incident",
            "declare",
            json!([{"name": "title", "type": 3, "value": "   "}]),
        );
        assert_eq!(
            intent(&blank, &Resolved::default(), Utc::now()).unwrap(),
            Intent::DeclareForm
        );
        for bad in [
            sub(
                "incident",
                "status",
                json!([{"name": "status", "type": 3, "value": "sleeping"}]),
            ),
            sub(
                "incident",
                "ack",
                json!([{"name": "incident", "type": 4, "value": -1}]),
            ),
            sub(
                "freeze",
                "exempt",
                json!([{"name": "pr", "type": 3, "value": "acme/*#1"}]),
            ),
            sub("incident", "frobnicate", json!([])),
            sub(
                "incident",
                "runbook",
                json!([{"name": "action", "type": 3, "value": "skip"}, {"name": "step", "type": 3, "value": "bridge"}]),
            ),
            sub(
                "incident",
                "runbook",
                json!([{"name": "action", "type": 3, "value": "done"}]),
            ),
        ] {
            let e = intent(&bad, &Resolved::default(), Utc::now()).unwrap_err();
            assert!(e.to_string().ends_with('.'), "{e}");
        }
    }

    #[test]
    fn mentions_in_text_options_are_made_neutral() {
        let mut names = Resolved::default();
        names.users.insert("42".into(), "bob".into());
        let c = sub(
            "incident",
            "note",
            json!([{"name": "text", "type": 3, "value": "<@42> paged <@&7> @everyone"}]),
        );
        let Intent::Run(cmd) = intent(&c, &names, Utc::now()).unwrap() else {
            panic!()
        };
        assert_eq!(cmd, typed("note @bob paged @role-7 @everyone"));
    }
}
