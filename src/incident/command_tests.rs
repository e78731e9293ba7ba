//! Tests of the command grammar, including the property test that no input panics it.
use super::*;
use proptest::prelude::*;

fn chat(line: &str) -> Result<Command, UserError> {
    parse_line(line, ParseOptions::default())
}

fn cli(words: &[&str]) -> Result<Command, UserError> {
    parse_words(
        words,
        ParseOptions {
            bare_number_is_ref: true,
        },
        Utc::now(),
    )
}

#[test]
fn declare_with_severity_and_drill() {
    let cmd = chat("declare sev1 Checkout API returns 502 --drill").unwrap();
    let Command::Declare {
        severity,
        title,
        drill,
        ..
    } = cmd
    else {
        panic!()
    };
    assert_eq!(severity, Severity::Sev1);
    assert_eq!(title, "Checkout API returns 502");
    assert!(drill);
}

#[test]
fn declare_defaults_severity_and_needs_a_title() {
    let Command::Declare { severity, .. } = chat("declare DB is slow").unwrap() else {
        panic!()
    };
    assert_eq!(severity, DEFAULT_SEVERITY);
    assert!(
        chat("declare sev2")
            .unwrap_err()
            .to_string()
            .contains("needs a title")
    );
    assert!(
        chat("declare sev9 Broken")
            .unwrap_err()
            .to_string()
            .contains("not a severity")
    );
}

#[test]
fn declare_accepts_started_as_age() {
    let now = Utc::now();
    let cmd = parse_words(
        &["declare", "x", "--started", "15m"],
        ParseOptions::default(),
        now,
    )
    .unwrap();
    let Command::Declare { started_at, .. } = cmd else {
        panic!()
    };
    assert_eq!(started_at, Some(now - chrono::Duration::minutes(15)));
}

#[test]
fn update_with_cadence_and_reference() {
    let cmd = chat("update INC-42 Rolled back the deploy --next 30m").unwrap();
    assert_eq!(
        cmd,
        Command::Update {
            target: Some(IncidentNumber(42)),
            text: "Rolled back the deploy".into(),
            next: Some(Duration::from_secs(1800)),
        }
    );
}

#[test]
fn bare_numbers_are_references_only_on_the_cli() {
    let Command::Update { target, text, .. } = chat("update 42 pods restarted").unwrap() else {
        panic!()
    };
    assert_eq!((target, text.as_str()), (None, "42 pods restarted"));
    let Command::Update { target, text, .. } =
        cli(&["update", "42", "Rolled back deploy"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (target, text.as_str()),
        (Some(IncidentNumber(42)), "Rolled back deploy")
    );
}

#[test]
fn text_keeps_apostrophes_and_strips_outer_quotes() {
    let Command::Note { text, .. } = chat("note \"it's the cache\"").unwrap() else {
        panic!()
    };
    assert_eq!(text, "it's the cache");
}

#[test]
fn unknown_command_suggests_the_nearest() {
    let err = chat("delcare sev1 x").unwrap_err();
    assert!(err.to_string().contains("Did you mean `declare`?"), "{err}");
    let UserError::Unknown { help, .. } = err else {
        panic!()
    };
    assert!(help.contains("declare [sev1..sev4]"));
}

#[test]
fn stray_arguments_and_options_are_rejected() {
    assert!(chat("status INC-1 mitigated now").is_err());
    assert!(
        chat("update INC-1 fixed --nxt 5m")
            .unwrap_err()
            .to_string()
            .contains("--nxt")
    );
    assert!(
        chat("update INC-1 fixed --next")
            .unwrap_err()
            .to_string()
            .contains("needs a value")
    );
    assert!(chat("update INC-1 x --next 5s").is_err());
    assert!(chat("list extra").is_err());
}

#[test]
fn freeze_grammar() {
    assert_eq!(
        chat("freeze acme/api acme/* --reason Checkout is down").unwrap(),
        Command::Freeze {
            target: None,
            scopes: vec!["acme/api".into(), "acme/*".into()],
            reason: Some("Checkout is down".into())
        }
    );
    assert_eq!(
        chat("freeze").unwrap(),
        Command::Freeze {
            target: None,
            scopes: vec![],
            reason: None
        }
    );
    assert_eq!(
        chat("unfreeze INC-3 acme/api").unwrap(),
        Command::Unfreeze {
            target: Some(IncidentNumber(3)),
            scopes: vec!["acme/api".into()]
        }
    );
    assert_eq!(chat("freeze status").unwrap(), Command::FreezeStatus);
    assert_eq!(
        chat("freeze exempt acme/api#123 --reason hotfix for the outage").unwrap(),
        Command::FreezeExempt {
            repo: "acme/api".into(),
            pr: 123,
            reason: Some("hotfix for the outage".into())
        }
    );
    assert!(
        chat("freeze not-a-repo")
            .unwrap_err()
            .to_string()
            .contains("owner/repo")
    );
    assert!(chat("freeze exempt acme/api#x").is_err());
    assert!(chat("freeze exempt acme/*#1").is_err());
}

#[test]
fn action_and_postmortem_grammar() {
    assert_eq!(
        chat("action add INC-4 Add a canary stage --owner @dana --term medium").unwrap(),
        Command::ActionAdd {
            target: Some(IncidentNumber(4)),
            text: "Add a canary stage".into(),
            owner: Some("dana".into()),
            term: Term::Medium
        }
    );
    assert_eq!(
        chat("action done 2").unwrap(),
        Command::ActionDone {
            target: None,
            number: 2
        }
    );
    assert_eq!(
        chat("postmortem set root-cause A config push disabled the pool").unwrap(),
        Command::PostmortemSet {
            target: None,
            field: PostmortemField::RootCause,
            text: "A config push disabled the pool".into()
        }
    );
    assert!(
        chat("postmortem set mood bad")
            .unwrap_err()
            .to_string()
            .contains("not a post-mortem section")
    );
    assert!(chat("action add x --term soon").is_err());
}

#[test]
fn empty_input_is_help() {
    assert_eq!(chat("   ").unwrap(), Command::Help);
}

proptest! {
    #[test]
    fn never_panics_on_any_input(line in "\\PC{0,200}") {
        let _ = chat(&line);
        let _ = parse_line(&line, ParseOptions { bare_number_is_ref: true });
    }

    #[test]
    fn never_panics_on_grammar_shaped_input(
        verb in prop::sample::select(VERBS.to_vec()),
        words in prop::collection::vec("(--[a-z]{1,8}(=\\S{0,4})?|INC-[0-9]{0,20}|sev[0-9]|[\\PC&&\\S]{1,12})", 0..8),
    ) {
        let line = format!("{verb} {}", words.join(" "));
        let _ = chat(&line);
        let _ = parse_line(&line, ParseOptions { bare_number_is_ref: true });
    }
}
