//! Reading runbook files: good ones with their defaults, bad ones refused with file, line
//! and key.

use super::*;

fn read(text: &str) -> Result<Runbook, SpecError> {
    parse(Path::new("runbooks/regional.toml"), text)
}

const GOOD: &str = r#"
title = "Regional outage"
severities = ["sev1"]
recovery_objective = "3h"

[[step]]
id = "announce"
title = "Tell the company"
at = "T+0"
owner = "comms"
action = "announce"

[[step]]
id = "restore"
title = "Restore databases"
at = "T+3m"
owner = "team:dba"

[[step]]
id = "customers"
title = "Tell customers"
at = "T+10m"
action = "notify"
webhook = "statuspage"
text = "We are investigating."
"#;

#[test]
fn a_good_runbook_reads_with_every_default() {
    let rb = read(GOOD).unwrap();
    assert_eq!(rb.name, "regional");
    assert_eq!(rb.severities, vec![Severity::Sev1]);
    assert_eq!(rb.recovery_objective, Some(Duration::from_secs(3 * 3600)));
    assert_eq!(rb.steps[1].owner, Owner::Team("dba".into()));
    assert_eq!(rb.steps[1].action, Action::Manual);
    assert_eq!(rb.steps[1].at, Duration::from_secs(180));
    assert_eq!(
        rb.steps[2].action,
        Action::Notify {
            to: Destination::Webhook("statuspage".into()),
            text: "We are investigating.".into()
        }
    );
}

#[test]
fn an_unknown_key_is_refused_with_file_line_and_key() {
    let text = GOOD.replace(
        "owner = \"team:dba\"",
        "owner = \"team:dba\"\nwhen = \"soon\"",
    );
    let e = read(&text).unwrap_err();
    assert_eq!(e.file, "runbooks/regional.toml");
    assert_eq!(e.line, 18, "{e}");
    assert!(e.message.starts_with("when: unknown key"), "{e}");
}

#[test]
fn a_step_without_a_target_is_refused_where_the_step_is() {
    let text = GOOD.replace("at = \"T+3m\"\n", "");
    let e = read(&text).unwrap_err();
    assert!(e.message.starts_with("at: missing key"), "{e}");
    assert!(e.message.contains("missing field `at`"), "{e}");
    assert_eq!(e.line, 13, "the step's [[step]] line: {e}");
}

#[test]
fn a_duplicate_step_id_is_refused_at_the_second() {
    let text = GOOD.replace("id = \"customers\"", "id = \"restore\"");
    let e = read(&text).unwrap_err();
    assert_eq!(e.line, 20, "{e}");
    assert!(
        e.message
            .starts_with("id: step id \"restore\" is used twice"),
        "{e}"
    );
}

#[test]
fn keys_of_another_action_and_bad_values_are_refused() {
    let text = GOOD.replace(
        "owner = \"team:dba\"",
        "owner = \"team:dba\"\nurl = \"https://x\"",
    );
    assert!(
        read(&text)
            .unwrap_err()
            .message
            .starts_with("url: a manual step takes no url")
    );
    let text = GOOD.replace("T+3m", "3m");
    assert!(
        read(&text)
            .unwrap_err()
            .message
            .starts_with("at: \"3m\" is not a target time")
    );
    let text = GOOD.replace("\"comms\"", "\"ceo\"");
    assert!(
        read(&text)
            .unwrap_err()
            .message
            .starts_with("owner: \"ceo\" is not an owner")
    );
    let text = GOOD.replace("[\"sev1\"]", "[\"sev9\"]");
    assert!(
        read(&text)
            .unwrap_err()
            .message
            .contains("\"sev9\" is not a severity")
    );
    let text = GOOD.replace("webhook = \"statuspage\"\n", "");
    assert!(
        read(&text)
            .unwrap_err()
            .message
            .contains("exactly one of webhook or channel")
    );
}

#[test]
fn offsets_read_like_the_sop() {
    assert_eq!(parse_offset("T+0").unwrap(), Duration::ZERO);
    assert_eq!(parse_offset("T+1h30m").unwrap(), Duration::from_secs(5400));
    assert!(parse_offset("T-5m").is_err());
    assert!(parse_offset("T+30d").is_err());
}
