//! Runbooks on Discord, at parity with Slack, on SQLite and Postgres: an incident that gets
//! a runbook has its checklist in its channel with a Done button per open manual step;
//! pressing one ends the step as the presser (once, however often it is pressed) and the
//! message is edited without that button (posted again if someone deleted it);
//! `/incident runbook` ticks, skips, starts and shows; a late step's nudge pings its Discord owner
//! and no one else; and a 30-step runbook stays within Discord's limits (the fake refuses
//! what Discord would).

mod common;

use chrono::Utc;
use common::discord::{self as dc, DiscordSender, Member, bob, content};
use common::fake_discord::{FakeDiscord, Message, config_toml, pings};
use common::*;
use firebreak::incident::EntryKind;
use firebreak::incident::clock::ManualClock;
use firebreak::store::{AttachedRunbook, StepOutcome};
use serde_json::{Value, json};

on_both!(
    a_checklist_button_ends_its_step_once_and_goes_away,
    the_runbook_subcommand_ticks_skips_and_shows,
    a_late_steps_nudge_pings_only_its_discord_owner,
    thirty_steps_stay_within_discords_limits,
);

/// Where the slash commands are typed before the incident has a channel.
const OPS: &str = "1600000000000000001";

const SMALL: &str = r#"
title = "Checkout outage"
severities = ["sev2"]

[[step]]
id = "restore-db"
title = "Restore the database"
at = "T+3m"
owner = "commander"

[[step]]
id = "confirm_deps"
title = "Confirm the affected dependencies"
at = "T+5m"
owner = "team:dba"

[[step]]
id = "bridge"
title = "Open the bridge"
at = "T+2m"
action = "link"
url = "https://meet.example.com/x"
"#;

struct Rig {
    app: TestApp,
    discord: FakeDiscord,
    send: DiscordSender,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

/// The app with Discord (its REST calls to a fake, its interactions signed by the test
/// key), the runbook `text` as the only one, and a manual clock.
async fn rig(backend: Backend, text: &str) -> Rig {
    let discord = FakeDiscord::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("checkout.toml"), text).expect("write runbook");
    let config = format!(
        "{}[runbooks]\ndir = \"{}\"\nnudge_after = \"1m\"\n",
        config_toml(),
        dir.path().display()
    );
    let clock = ManualClock::starting_at(Utc::now());
    let app = spawn_app_with(
        backend,
        test_config(&config),
        dc::integrations(&discord.url),
        Some(clock.clone()),
    )
    .await;
    let send = DiscordSender::new(&app);
    Rig {
        app,
        discord,
        send,
        clock,
        _dir: dir,
    }
}

fn carol() -> Member {
    Member {
        id: "4300000000000000043",
        username: "carol",
        roles: vec![],
    }
}

fn s(v: &str) -> Value {
    json!(v)
}

impl Rig {
    /// `/incident declare` as bob; the channel it got once everything has run.
    async fn declare(&self, title: &str) -> String {
        let options = [("title", 3, s(title)), ("severity", 3, s("sev2"))];
        let resp = self
            .send
            .ok(&dc::incident("declare", &options, OPS, &bob()))
            .await;
        assert!(
            content(&resp).contains("Runbook checkout attached"),
            "{resp}"
        );
        self.settle().await;
        self.room()
    }

    /// The incident's room.
    fn room(&self) -> String {
        let made: Vec<_> = self
            .discord
            .channels()
            .into_iter()
            .filter(|c| c.name.starts_with("inc-1-"))
            .collect();
        made.last().expect("incident room created").id.clone()
    }

    /// The checklist's messages in the room, in order.
    fn checklist(&self, room: &str) -> Vec<Message> {
        self.discord
            .messages_in(room)
            .into_iter()
            .filter(|m| m.content.starts_with("📋"))
            .collect()
    }

    async fn runbook(&self) -> AttachedRunbook {
        let (inc, _) = incident_timeline(&self.app.app.store, 1).await;
        let store = &self.app.app.store;
        store.runbook(&inc.id).await.unwrap().expect("a runbook")
    }

    /// What became of `step`, and who ended it.
    async fn ended(&self, step: &str) -> Option<(StepOutcome, String)> {
        let rb = self.runbook().await;
        let r = rb.step(step).expect("the step");
        Some((r.outcome?, r.finished_by.clone().unwrap_or_default()))
    }

    /// Waits until every effect that is due has run (wake-ups for later stay pending), and
    /// checks that none failed: Discord (the fake) refused nothing.
    async fn settle(&self) {
        let store = self.app.app.store.clone();
        let idle = eventually(30, || {
            let store = store.clone();
            async move {
                let open = store.unfinished_effects(500).await.unwrap();
                open.iter()
                    .filter(|e| !e.state.is_finished())
                    .all(|e| e.kind == "runbook.due" && e.run_at > Utc::now())
            }
        })
        .await;
        assert!(idle, "effects did not settle");
        let failed = store.list_effects(true, 20).await.unwrap();
        assert!(
            failed.is_empty(),
            "effects failed: {:?}",
            failed
                .iter()
                .map(|e| (&e.kind, &e.last_error))
                .collect::<Vec<_>>()
        );
    }

    /// Moves the clock `seconds` on and runs what is due.
    async fn later(&self, seconds: i64) -> usize {
        self.clock.advance(chrono::Duration::seconds(seconds));
        let acted = self.app.app.service.run_runbooks().await.unwrap();
        self.settle().await;
        acted
    }
}

/// The buttons' custom ids under a message, row by row.
fn custom_ids(m: &Message) -> Vec<String> {
    m.components
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| b["custom_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn is_private(resp: &Value) -> bool {
    resp["data"]["flags"] == json!(64)
}

async fn a_checklist_button_ends_its_step_once_and_goes_away(backend: Backend) {
    let t = rig(backend, SMALL).await;
    let room = t.declare("Checkout slow").await;
    let pages = t.checklist(&room);
    assert_eq!(pages.len(), 1, "one checklist message");
    let list = &pages[0];
    assert!(
        list.content.contains("Runbook: Checkout outage")
            && list.content.contains("`restore-db`")
            && list.content.contains("`bridge`"),
        "{}",
        list.content
    );
    assert_eq!(list.allowed_mentions["parse"], json!([]));
    // The bridge is automatic: no button for it.
    assert_eq!(
        custom_ids(list),
        ["fb:rbdone:1:restore-db", "fb:rbdone:1:confirm_deps"]
    );

    let click = dc::button("fb:rbdone:1:restore-db", &room, &bob());
    let resp = t.send.ok(&click).await;
    assert!(is_private(&resp), "answered to the presser only: {resp}");
    assert!(
        content(&resp).contains("Runbook step `restore-db` (Restore the database) done at T+0s"),
        "{resp}"
    );
    assert_eq!(
        t.ended("restore-db").await,
        Some((StepOutcome::Done, format!("discord:{}", bob().id)))
    );
    t.settle().await;
    let pages = t.checklist(&room);
    assert_eq!(pages.len(), 1, "edited in place, never posted again");
    let list = &pages[0];
    assert!(list.edits >= 1);
    assert_eq!(custom_ids(list), ["fb:rbdone:1:confirm_deps"]);
    assert!(
        list.content.contains(&format!(
            "✅ T+3m `restore-db` Restore the database (commander, manual) · done T+0s by <@{}>",
            bob().id
        )),
        "{}",
        list.content
    );
    assert!(pings(list).is_empty(), "the checklist pings no one");

    // A second press (a stale message, someone else) changes nothing and says why; the
    // same interaction delivered twice gets its first answer.
    let again = t
        .send
        .ok(&dc::button("fb:rbdone:1:restore-db", &room, &carol()))
        .await;
    assert!(is_private(&again));
    assert!(
        content(&again).contains("Runbook step `restore-db` already ended: done at T+0s"),
        "{again}"
    );
    assert_eq!(
        t.send.ok(&click).await,
        resp,
        "a retry gets the first answer"
    );
    assert_eq!(
        t.ended("restore-db").await,
        Some((StepOutcome::Done, format!("discord:{}", bob().id)))
    );
    let (_, timeline) = incident_timeline(&t.app.app.store, 1).await;
    let records = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::RunbookStep && e.text.contains("`restore-db`"))
        .count();
    assert_eq!(records, 1, "one record: {timeline:#?}");
    // A button for a step the runbook does not have, or a forged id, is a sentence.
    let nope = t
        .send
        .ok(&dc::button("fb:rbdone:1:nope", &room, &bob()))
        .await;
    assert!(content(&nope).contains("has no step \"nope\""), "{nope}");
    let forged = t
        .send
        .ok(&dc::button("fb:rbdone:1:NOPE<@1>", &room, &bob()))
        .await;
    assert!(
        content(&forged).contains("does not know this button"),
        "{forged}"
    );
    // Someone deleted the checklist: the next change posts it again.
    t.discord.delete_message(&list.id);
    let press = dc::button("fb:rbdone:1:confirm_deps", &room, &carol());
    assert!(content(&t.send.ok(&press).await).contains("done"));
    t.settle().await;
    let pages = t.checklist(&room);
    assert_eq!(pages.len(), 1);
    assert_ne!(pages[0].id, list.id);
    assert!(
        custom_ids(&pages[0]).is_empty(),
        "{:?}",
        pages[0].components
    );
}

async fn the_runbook_subcommand_ticks_skips_and_shows(backend: Backend) {
    let t = rig(backend, SMALL).await;
    let room = t.declare("Checkout slow").await;
    let me = bob();
    // In the incident's channel the incident is implied.
    let done = [
        ("action", 3, s("done")),
        ("step", 3, s("confirm_deps")),
        ("note", 3, s("payments and search")),
    ];
    let resp = t.send.ok(&dc::incident("runbook", &done, &room, &me)).await;
    assert!(
        content(&resp).contains("Runbook step `confirm_deps`") && content(&resp).contains("done"),
        "{resp}"
    );
    assert_eq!(
        t.ended("confirm_deps").await,
        Some((StepOutcome::Done, format!("discord:{}", me.id)))
    );
    assert_eq!(
        t.runbook()
            .await
            .step("confirm_deps")
            .unwrap()
            .note
            .as_deref(),
        Some("payments and search")
    );
    // A skip needs its reason, as the note.
    let bare_skip = [("action", 3, s("skip")), ("step", 3, s("restore-db"))];
    let resp = t
        .send
        .ok(&dc::incident("runbook", &bare_skip, &room, &me))
        .await;
    assert!(is_private(&resp));
    assert!(
        content(&resp).contains("`runbook skip` needs why it is skipped"),
        "{resp}"
    );
    assert_eq!(t.ended("restore-db").await, None);
    // Taking a step on shows in the checklist, and leaves it open.
    let start = [("action", 3, s("start")), ("step", 3, s("restore-db"))];
    let resp = t
        .send
        .ok(&dc::incident("runbook", &start, &room, &me))
        .await;
    assert!(
        content(&resp).contains("Runbook step `restore-db` (Restore the database) started"),
        "{resp}"
    );
    t.settle().await;
    let started = &t.checklist(&room)[0];
    assert!(
        started.content.contains("🔄 T+3m `restore-db`"),
        "{}",
        started.content
    );
    assert_eq!(custom_ids(started), ["fb:rbdone:1:restore-db"]);
    // From elsewhere, with the incident named.
    let skip = [
        ("action", 3, s("skip")),
        ("step", 3, s("restore-db")),
        ("note", 3, s("replica promoted @everyone")),
        ("incident", 4, json!(1)),
    ];
    t.send.ok(&dc::incident("runbook", &skip, OPS, &me)).await;
    assert_eq!(
        t.ended("restore-db").await.map(|e| e.0),
        Some(StepOutcome::Skipped)
    );
    let shown = t.send.ok(&dc::incident("runbook", &[], &room, &me)).await;
    assert!(
        content(&shown).contains("✅ T+5m `confirm_deps`")
            && content(&shown).contains("⏭️ T+3m `restore-db`"),
        "{shown}"
    );
    t.settle().await;
    let pages = t.checklist(&room);
    assert_eq!(pages.len(), 1);
    assert!(custom_ids(&pages[0]).is_empty(), "no step is left to press");
    assert!(
        pages[0]
            .content
            .contains("skipped T+0s by <@4200000000000000042>: replica promoted @\u{200d}everyone"),
        "{}",
        pages[0].content
    );
    assert!(pings(&pages[0]).is_empty());
}

async fn a_late_steps_nudge_pings_only_its_discord_owner(backend: Backend) {
    let t = rig(backend, SMALL).await;
    let room = t.declare("Checkout slow").await;
    let ack = [("incident", 4, json!(1))];
    t.send.ok(&dc::incident("ack", &ack, &room, &bob())).await;
    t.settle().await;
    // T+4m30s: restore-db (the commander's, due T+3m) is late by more than a minute; the
    // bridge (automatic, T+2m) fires.
    assert_eq!(t.later(270).await, 2, "a fire and a nudge");
    let nudges: Vec<Message> = t
        .discord
        .messages_in(&room)
        .into_iter()
        .filter(|m| m.content.contains("still open"))
        .collect();
    assert_eq!(nudges.len(), 1, "{nudges:#?}");
    let nudge = &nudges[0];
    assert!(
        nudge.content.starts_with(&format!(
            "<@{}> ⏰ commander: runbook step `restore-db`",
            bob().id
        )),
        "{}",
        nudge.content
    );
    assert_eq!(nudge.allowed_mentions["parse"], json!([]));
    assert_eq!(nudge.allowed_mentions["users"], json!([bob().id]));
    assert_eq!(nudge.allowed_mentions["roles"], json!([]));
    // T+7m: confirm_deps (team dba, due T+5m) is late too: a team has no Discord user, so
    // it is named, not pinged.
    assert_eq!(t.later(180).await, 1);
    let all = t.discord.messages();
    let team = all
        .iter()
        .find(|m| m.content.contains("`confirm_deps`") && m.content.contains("still open"))
        .expect("the team's nudge");
    assert!(team.content.starts_with("⏰ team dba"), "{}", team.content);
    let pinged: Vec<String> = all.iter().flat_map(pings).collect();
    assert_eq!(
        pinged,
        [format!("user:{}", bob().id)],
        "the commander's nudge is the only ping"
    );
}

/// Thirty manual steps with the longest ids and long titles.
fn thirty_steps() -> String {
    let mut text = String::from("title = \"A very long runbook\"\nseverities = [\"sev2\"]\n");
    for i in 0..30 {
        text.push_str(&format!(
            "\n[[step]]\nid = \"{}\"\ntitle = \"{}\"\nat = \"T+{i}m\"\nowner = \"team:platform-reliability-engineering\"\n",
            step_id(i),
            format!("Step {i}: check *everything* `twice` <@&1> ").repeat(8).trim_end()
        ));
    }
    text
}

/// 40 characters, the most a step id may have.
fn step_id(i: usize) -> String {
    format!("step-{i:02}-{}", "x".repeat(32))
}

async fn thirty_steps_stay_within_discords_limits(backend: Backend) {
    let t = rig(backend, &thirty_steps()).await;
    let room = t.declare("Everything is slow").await;
    let pages = t.checklist(&room);
    assert_eq!(pages.len(), 3, "thirty steps, ten to a message");
    let ids: Vec<String> = pages.iter().flat_map(custom_ids).collect();
    let expected: Vec<String> = (0..30)
        .map(|i| format!("fb:rbdone:1:{}", step_id(i)))
        .collect();
    assert_eq!(ids, expected, "a button for every step, each on its page");
    // Long notes on many steps, then a press on the last page.
    let service = &t.app.app.service;
    for i in (0..30).step_by(3) {
        let note = "@here <@&1> [x](https://evil.example) ".repeat(12);
        let line = format!("runbook skip INC-1 {} {note}", step_id(i));
        let cmd = firebreak::incident::command::parse_line(&line, Default::default()).unwrap();
        service.apply(cmd, &alice()).await.expect("skip");
    }
    let last = step_id(29);
    let resp = t
        .send
        .ok(&dc::button(&format!("fb:rbdone:1:{last}"), &room, &bob()))
        .await;
    assert!(content(&resp).contains("done"), "{resp}");
    t.settle().await;
    let pages = t.checklist(&room);
    assert_eq!(pages.len(), 3, "the pages are edited, never posted again");
    for page in &pages {
        assert!(page.content.chars().count() <= 2_000);
        let rows = page.components.as_array().unwrap();
        assert!(rows.len() <= 5);
        assert!(
            rows.iter()
                .all(|r| r["components"].as_array().unwrap().len() <= 5)
        );
        assert!(pings(page).is_empty());
        assert!(!page.content.contains("](https://evil"), "{}", page.content);
    }
    let left: Vec<String> = pages.iter().flat_map(custom_ids).collect();
    assert_eq!(left.len(), 30 - 10 - 1);
    assert!(!left.contains(&format!("fb:rbdone:1:{last}")));
    assert!(
        pages[2].content.contains(&format!("✅ T+29m `{last}`")),
        "{}",
        pages[2].content
    );
    assert_eq!(
        t.ended(&last).await,
        Some((StepOutcome::Done, format!("discord:{}", bob().id)))
    );
}
