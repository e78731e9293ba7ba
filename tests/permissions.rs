//! One gate for every surface: every write verb, run by a caller who is on none of the
//! `[permissions]` lists, is refused with the same sentence and recorded (on the incident's
//! timeline, or the audit log outside an incident) — through the service as a CLI and a
//! Slack actor, through the real Slack endpoints (slash command, `@firebreak` mention, card
//! buttons, forms), and through the built binary with `cli_trusted = false`. Nothing the
//! verbs would change is changed. On SQLite and Postgres.

mod common;

use common::fake_slack::FakeSlack;
use common::process::{Cli, stderr};
use common::slack::{SLACK_CONFIG, SlackSender, integrations};
use common::*;
use firebreak::incident::{
    Action, Actor, Command, EntryKind, IncidentNumber, ParseOptions, ServiceError, Source,
    UserError, command,
};
use firebreak::store::Store;
use serde_json::{Value, json};

on_both!(
    the_service_refuses_every_write_verb_for_cli_and_slack_actors,
    the_slack_endpoints_refuse_every_write_verb,
    the_binary_refuses_every_write_verb_when_the_cli_is_not_trusted,
    absent_lists_still_allow_everyone,
    the_declare_form_needs_only_declare,
);

/// Everyone is restricted to one Slack user, and the CLI is not trusted.
const RESTRICTED: &str = "[permissions]\n\
    declare = [\"slack:U0BOSS\"]\n\
    respond = [\"slack:U0BOSS\"]\n\
    freeze = [\"slack:U0BOSS\"]\n\
    resolve = [\"slack:U0BOSS\"]\n\
    postmortem = [\"slack:U0BOSS\"]\n\
    cli_trusted = false\n";

/// Every write verb in the chat grammar (naming INC-1), and the list it needs. `audit` says
/// the refusal lands in the audit log because the verb is about no incident.
struct Case {
    line: &'static str,
    action: Action,
    audit: bool,
}

const fn case(line: &'static str, action: Action) -> Case {
    Case {
        line,
        action,
        audit: false,
    }
}

const CASES: &[Case] = &[
    Case {
        line: "declare sev2 Fake outage",
        action: Action::Declare,
        audit: true,
    },
    case("ack INC-1", Action::Respond),
    case("update INC-1 All fine, ignore the pager", Action::Respond),
    case("status INC-1 mitigated", Action::Respond),
    case("status INC-1 resolved", Action::Resolve),
    case("severity INC-1 sev4", Action::Respond),
    case("assign INC-1 commander slack:U0MALLORY", Action::Respond),
    case("note INC-1 nothing to see", Action::Respond),
    case("resolve INC-1 it was nothing", Action::Resolve),
    case("freeze INC-1 acme/api --reason because", Action::Freeze),
    case("unfreeze INC-1 acme/api", Action::Freeze),
    Case {
        line: "freeze exempt acme/api#7 --reason my hotfix",
        action: Action::Freeze,
        audit: true,
    },
    case("action add INC-1 Delete the logs", Action::Postmortem),
    case("action done INC-1 1", Action::Postmortem),
    case("postmortem set INC-1 root-cause Nobody", Action::Postmortem),
    case("postmortem publish INC-1", Action::Postmortem),
];

fn sentence(action: Action) -> String {
    format!("You are not allowed to {}", action.describe())
}

fn parse(line: &str) -> Command {
    command::parse_line(line, ParseOptions::default())
        .unwrap_or_else(|e| panic!("`{line}` does not parse: {e}"))
}

fn boss() -> Actor {
    Actor::new(Source::Slack, "U0BOSS", "boss")
}

/// Every refusal recorded so far: (on INC-1's timeline, in the audit log).
async fn refusals(store: &Store) -> (Vec<String>, Vec<String>) {
    let mut timeline = Vec::new();
    if let Some(inc) = store.incident_by_number(IncidentNumber(1)).await.unwrap() {
        for e in store.timeline(&inc.id).await.unwrap() {
            if e.kind == EntryKind::Refused {
                timeline.push(e.text);
            }
        }
    }
    let audit = store
        .audit_log(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Refused)
        .map(|e| e.text)
        .collect();
    (timeline, audit)
}

async fn refusal_count(store: &Store) -> usize {
    let (timeline, audit) = refusals(store).await;
    timeline.len() + audit.len()
}

/// What the refused verbs would have changed, to compare before and after.
async fn state(store: &Store) -> String {
    let incidents = store.list_incidents(false, 10).await.unwrap();
    let inc = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .expect("INC-1");
    let actions = store.action_items(&inc.id).await.unwrap();
    let fields = store.postmortem_fields(&inc.id).await.unwrap();
    let scopes = store.freeze_scopes().await.unwrap();
    let timeline: Vec<_> = store
        .timeline(&inc.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind != EntryKind::Refused)
        .map(|e| (e.kind, e.text))
        .collect();
    format!(
        "{} incidents; {:?} {} v{} {:?}; actions {actions:?}; fields {fields:?}; scopes {scopes:?}; timeline {timeline:?}",
        incidents.len(),
        inc.status,
        inc.severity,
        inc.version,
        inc.commander,
    )
}

/// Asserts that exactly one more refusal was recorded since `before`, in the right place
/// (the incident's timeline, or the audit log), naming the verb, `who` and the list.
async fn assert_recorded(
    store: &Store,
    before: &(Vec<String>, Vec<String>),
    case: &Case,
    who: &str,
    surface: &str,
) {
    let after = refusals(store).await;
    let grown = |now: &[String], then: &[String]| now.len() - then.len();
    let (timeline_new, audit_new) = (grown(&after.0, &before.0), grown(&after.1, &before.1));
    assert_eq!(
        (timeline_new, audit_new),
        if case.audit { (0, 1) } else { (1, 0) },
        "{surface}: `{}` records one refusal in the right place: {after:?}",
        case.line
    );
    // The timeline is oldest first, the audit log newest first.
    let fresh = if case.audit {
        &after.1[..1]
    } else {
        &after.0[before.0.len()..]
    };
    let verb = parse(case.line).name();
    assert!(
        fresh
            .iter()
            .any(|text| text.contains(&format!("Refused `{verb}`"))
                && text.contains(who)
                && text.contains(case.action.as_str())),
        "{surface}: `{}` recorded as {fresh:?}",
        case.line
    );
}

async fn the_service_refuses_every_write_verb_for_cli_and_slack_actors(backend: Backend) {
    let t = service(backend, test_config(RESTRICTED)).await;
    let store = &t.app.store;
    t.app
        .service
        .apply(parse("declare sev2 Checkout down"), &boss())
        .await
        .unwrap();
    let before = state(store).await;
    let actors = [
        (Actor::new(Source::Cli, "carol", "carol"), "cli:carol"),
        (
            Actor::new(Source::Slack, "U0MALLORY", "mallory"),
            "slack:U0MALLORY",
        ),
    ];
    for (actor, who) in &actors {
        for case in CASES {
            let n = refusals(store).await;
            let err = t
                .app
                .service
                .apply(parse(case.line), actor)
                .await
                .expect_err(case.line);
            assert!(
                matches!(
                    &err,
                    ServiceError::User(UserError::Forbidden { list, .. }) if *list == case.action.as_str()
                ),
                "{who} `{}`: {err}",
                case.line
            );
            assert!(
                err.user_message().starts_with(&sentence(case.action)),
                "{}",
                err.user_message()
            );
            assert_recorded(store, &n, case, who, "service").await;
        }
    }
    assert_eq!(state(store).await, before, "refused verbs changed nothing");
}

struct SlackApp {
    app: TestApp,
    slack: FakeSlack,
    send: SlackSender,
}

async fn slack_app(backend: Backend) -> SlackApp {
    let slack = FakeSlack::start().await;
    let config = test_config(&format!("{SLACK_CONFIG}{RESTRICTED}"));
    let app = spawn_app_with(backend, config, integrations(&slack.url), None).await;
    let send = SlackSender::new(&app);
    SlackApp { app, slack, send }
}

impl SlackApp {
    async fn settle(&self) {
        assert!(
            queue_idle(&self.app.app.store, 15).await,
            "effects did not settle"
        );
    }

    /// The `chat.postEphemeral` texts sent so far.
    fn ephemerals(&self) -> Vec<String> {
        self.slack
            .successful_calls()
            .into_iter()
            .filter(|c| c.method == "chat.postEphemeral")
            .map(|c| c.body.to_string())
            .collect()
    }
}

fn submission(callback: &str, metadata: &str, values: Value, view: &str) -> Value {
    json!({
        "type": "view_submission", "user": { "id": "U0MALLORY", "username": "mallory" },
        "team": { "id": "T0" }, "trigger_id": format!("{view}.trigger"),
        "view": { "id": view, "callback_id": callback, "private_metadata": metadata,
                  "state": { "values": values } }
    })
}

async fn the_slack_endpoints_refuse_every_write_verb(backend: Backend) {
    let t = slack_app(backend).await;
    let store = &t.app.app.store;
    t.app
        .app
        .service
        .apply(parse("declare sev2 Checkout down"), &boss())
        .await
        .unwrap();
    t.settle().await;
    let before = state(store).await;
    let who = "slack:U0MALLORY";

    // The slash command, for every verb; its answer is the sentence.
    for case in CASES {
        let n = refusals(store).await;
        let reply = t.send.command(case.line, "C_ORIGIN", "U0MALLORY").await;
        assert!(
            reply.to_string().contains(&sentence(case.action)),
            "slash `{}`: {reply}",
            case.line
        );
        assert_recorded(store, &n, case, who, "slash command").await;
    }
    // `/freeze` and `/unfreeze` are the same verbs.
    for (slash, text) in [("/freeze", "INC-1 acme/api"), ("/unfreeze", "INC-1")] {
        let n = refusals(store).await;
        let resp = t
            .send
            .post(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                SlackSender::command_body(slash, text, "C_ORIGIN", "U0MALLORY"),
            )
            .await;
        let reply: Value = resp.json().await.unwrap();
        assert!(
            reply.to_string().contains(&sentence(Action::Freeze)),
            "{slash}: {reply}"
        );
        assert_eq!(
            refusal_count(store).await,
            n.0.len() + n.1.len() + 1,
            "{slash}"
        );
    }

    // `@firebreak <verb>`, for every verb; the answer is an ephemeral message.
    for (i, case) in CASES.iter().enumerate() {
        let n = refusals(store).await;
        let mention = json!({ "type": "app_mention", "user": "U0MALLORY", "channel": "C_ORIGIN",
            "text": format!("<@U0BOT> {}", case.line), "ts": format!("1700000300.{i:06}"),
            "event_ts": format!("1700000300.{i:06}") });
        let resp = t.send.event(&format!("Ev_REFUSED_{i}"), mention).await;
        assert_eq!(resp.status(), 200, "mention `{}`", case.line);
        assert_recorded(store, &n, case, who, "mention").await;
    }
    t.settle().await;
    let answers = t.ephemerals();
    for case in CASES {
        let s = sentence(case.action);
        assert!(
            answers.iter().any(|a| a.contains(&s)),
            "a mention was answered with {s}: {answers:?}"
        );
    }

    // The card's buttons: acknowledge and resolve.
    let version = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap()
        .version;
    for (action_id, case) in [
        ("fb_ack", case("ack INC-1", Action::Respond)),
        ("fb_resolve", case("resolve INC-1", Action::Resolve)),
    ] {
        let n = refusals(store).await;
        let resp = t
            .send
            .button(action_id, &format!("1:{version}"), "C_ORIGIN", "U0MALLORY")
            .await;
        assert_eq!(resp.status(), 200, "{action_id}");
        assert_recorded(store, &n, &case, who, "button").await;
        t.settle().await;
        let s = sentence(case.action);
        assert!(
            t.ephemerals().iter().any(|a| a.contains(&s)),
            "{action_id} answered with {s}"
        );
    }

    // The forms: declare and update. The sentence comes back on the form's field.
    let declare = json!({
        "title": { "title": { "type": "plain_text_input", "value": "Fake outage" } },
        "severity": { "severity": { "type": "static_select", "selected_option": { "value": "sev1" } } },
    });
    let update = json!({
        "text": { "text": { "type": "plain_text_input", "value": "All fine" } },
    });
    for (callback, metadata, values, field, case) in [
        ("fb_declare", "C_ORIGIN", declare, "title", &CASES[0]),
        (
            "fb_update",
            "1:C_ORIGIN",
            update,
            "text",
            &case("update INC-1 All fine", Action::Respond),
        ),
    ] {
        let n = refusals(store).await;
        let resp = t
            .send
            .interaction(submission(
                callback,
                metadata,
                values,
                &format!("V_{callback}"),
            ))
            .await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["response_action"], "errors", "{callback}: {body}");
        let shown = body["errors"][field].as_str().unwrap_or_default();
        assert!(
            shown.starts_with(&sentence(case.action)),
            "{callback}: {body}"
        );
        assert_recorded(store, &n, case, who, "form").await;
    }

    t.settle().await;
    assert_eq!(state(store).await, before, "refused verbs changed nothing");
}

async fn the_binary_refuses_every_write_verb_when_the_cli_is_not_trusted(backend: Backend) {
    let cli = Cli::new(backend, "").await;
    cli.ok(&["incident", "declare", "sev2", "Checkout", "down"])
        .await;
    std::fs::write(cli.dir.path().join("firebreak.toml"), RESTRICTED).unwrap();
    let store = cli.db.store().await;
    let before = state(&store).await;
    for case in CASES {
        // The CLI names the incident with a bare number, for every verb.
        let words: Vec<&str> = case
            .line
            .split_whitespace()
            .map(|w| if w == "INC-1" { "1" } else { w })
            .collect();
        let mut args = vec!["incident"];
        args.extend(&words);
        let n = refusals(&store).await;
        let out = cli.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: {}", sentence(case.action))),
            "{args:?}: {err}"
        );
        assert_recorded(&store, &n, case, "cli:", "binary").await;
    }
    // The top-level aliases are the same verbs.
    for args in [
        &["freeze", "1", "acme/api"][..],
        &["unfreeze", "1", "acme/api"],
        &["freeze", "exempt", "acme/api#7", "--reason", "hotfix"],
    ] {
        let n = refusals(&store).await;
        let out = cli.run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(&sentence(Action::Freeze)), "{args:?}");
        assert_eq!(
            refusal_count(&store).await,
            n.0.len() + n.1.len() + 1,
            "{args:?}"
        );
    }
    assert_eq!(state(&store).await, before, "refused verbs changed nothing");
    // Reads need no permission.
    for args in [
        &["incident", "show", "1"][..],
        &["incident", "list"],
        &["incident", "help"],
        &["incident", "postmortem", "1"],
    ] {
        cli.ok(args).await;
    }
}

/// A list left out still lets everyone act: the new `respond` and `postmortem` lists change
/// nothing for a config that does not name them.
async fn absent_lists_still_allow_everyone(backend: Backend) {
    let t = service(backend, test_config("[permissions]\ncli_trusted = false\n")).await;
    let anyone = Actor::new(Source::Slack, "U0ANYONE", "anyone");
    for line in [
        "declare sev3 Search is slow",
        "ack INC-1",
        "update INC-1 Reindexing",
        "note INC-1 index was stale",
        "assign INC-1 comms bob",
        "severity INC-1 sev2",
        "action add INC-1 Alert on index age",
        "action done INC-1 1",
        "postmortem set INC-1 summary The index went stale.",
        "status INC-1 mitigated",
        "resolve INC-1 reindexed",
    ] {
        t.app
            .service
            .apply(parse(line), &anyone)
            .await
            .unwrap_or_else(|e| panic!("`{line}`: {e}"));
    }
    assert_eq!(refusal_count(&t.app.store).await, 0);
}

/// The declare form's description is part of the declaration: someone who may declare but
/// not respond gets the incident and its first note, in one go.
async fn the_declare_form_needs_only_declare(backend: Backend) {
    let slack = FakeSlack::start().await;
    let config = test_config(&format!(
        "{SLACK_CONFIG}[permissions]\ndeclare = [\"slack:U0MALLORY\"]\nrespond = []\n"
    ));
    let app = spawn_app_with(backend, config, integrations(&slack.url), None).await;
    let send = SlackSender::new(&app);
    let values = json!({
        "title": { "title": { "type": "plain_text_input", "value": "Payments API timing out" } },
        "description": { "description": { "type": "plain_text_input", "value": "Since the \u{1b}[31m02:40 deploy" } },
    });
    let resp = send
        .interaction(submission("fb_declare", "C_ORIGIN", values, "V_DESC"))
        .await;
    assert_eq!(resp.status(), 200);
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    // What the form wrote (the worker may already have recorded a delivered notice).
    let kinds: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind != EntryKind::EffectSucceeded)
        .map(|e| (e.kind, e.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                EntryKind::Declared,
                "Declared SEV3: Payments API timing out"
            ),
            (EntryKind::Note, "Since the 02:40 deploy"),
        ]
    );
}
