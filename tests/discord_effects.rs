//! Discord's outbound half (issue 11): commands applied through the service reach a fake
//! Discord REST API through the durable queue. The room is created once, its pinned card
//! and the company-wide notices are edited (never re-posted) on every change, one bad
//! announcement channel never holds up the others, outages and 429s are waited out, user
//! text never pings, and a restart posts nothing twice. On SQLite and Postgres.

mod common;

use std::time::{Duration, Instant};

use common::fake_discord::{
    self, ANNOUNCE, CATEGORY, COMMS_ROLE, Call, FORUM, FakeDiscord, Message, config_toml,
    integrations, pings,
};
use common::*;
use firebreak::app::App;
use firebreak::config::Config;
use firebreak::incident::clock::ManualClock;
use tokio_util::sync::CancellationToken;

on_both!(
    declare_sets_up_the_room_and_every_change_edits_in_place,
    forum_mode_opens_a_thread_whose_first_message_is_the_card,
    a_bad_announce_channel_among_three_never_blocks_the_others,
    an_outage_longer_than_the_retry_budget_delivers_everything_once_in_order,
    a_429_retry_after_is_honoured_before_any_further_call,
    hostile_text_never_pings_anyone_but_the_comms_role,
    a_restart_mid_delivery_posts_nothing_twice,
    a_shell_without_discord_credentials_queues_for_serve,
    what_failed_for_good_is_made_good_by_the_next_change,
    a_deleted_notice_is_posted_again,
    a_post_whose_answer_was_lost_is_not_made_twice,
);

struct DiscordApp {
    app: TestApp,
    discord: FakeDiscord,
}

async fn discord_app(backend: Backend, config: Config, clock: Option<ManualClock>) -> DiscordApp {
    let discord = FakeDiscord::start().await;
    let app = spawn_app_with(backend, config, integrations(&discord.url), clock).await;
    DiscordApp { app, discord }
}

fn config(extra: &str) -> Config {
    test_config(&format!("{extra}{}", config_toml()))
}

/// Fast breakers, so an outage is probed often (as in the Slack outage tests).
fn outage_config() -> Config {
    let effects = "[effects]\nbase_backoff = \"50ms\"\nmax_backoff = \"200ms\"\npoll_interval = \"20ms\"\n\
                   lease = \"5s\"\nbreaker_threshold = 2\nbreaker_cooldown = \"150ms\"\ncli_wait = \"5s\"\n";
    Config::parse(&format!("{effects}{}", config_toml())).expect("config parses")
}

impl DiscordApp {
    async fn settle(&self) {
        settle(&self.app.app).await;
    }

    /// The incident's room: the channel or thread firebreak created for INC-1.
    fn room(&self) -> String {
        room(&self.discord)
    }
}

fn room(discord: &FakeDiscord) -> String {
    let made: Vec<_> = discord
        .channels()
        .into_iter()
        .filter(|c| c.name.starts_with("inc-1-"))
        .collect();
    // A channel added beforehand (to take a name) comes first.
    made.last().expect("incident room created").id.clone()
}

async fn settle(app: &App) {
    let idle = queue_idle(&app.store, 20).await;
    assert!(
        idle,
        "effects did not settle: {:#?}",
        app.store.list_effects(false, 80).await.unwrap()
    );
}

fn count(calls: &[String], call: &str) -> usize {
    calls.iter().filter(|c| c.as_str() == call).count()
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call} was not made: {calls:#?}"))
}

fn custom_ids(card: &Message) -> Vec<String> {
    card.components[0]["components"]
        .as_array()
        .map(|buttons| {
            buttons
                .iter()
                .map(|b| b["custom_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn declare_sets_up_the_room_and_every_change_edits_in_place(backend: Backend) {
    let t = discord_app(backend, config(""), None).await;
    // Someone already has the obvious name: the room takes the next one.
    t.discord.add_channel("inc-1-checkout-api-returns-502");
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    let room = t.room();
    let channel = t
        .discord
        .channels()
        .into_iter()
        .find(|c| c.id == room)
        .unwrap();
    assert_eq!(channel.name, "inc-1-checkout-api-returns-502-2");
    assert_eq!(channel.parent.as_deref(), Some(CATEGORY));
    let inc = t
        .app
        .app
        .store
        .incident_by_number(firebreak::incident::IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let refs = t.app.app.store.chat_refs(&inc.id, "discord").await.unwrap();
    assert!(
        refs.iter()
            .any(|r| r.role == "channel" && r.channel_id == room),
        "the inbound half finds the room by its ref: {refs:?}"
    );
    let card = t.discord.messages_in(&room).remove(0);
    assert!(card.title().contains("INC-1 · SEV1"), "{}", card.title());
    assert_eq!(
        custom_ids(&card),
        [
            format!("fb:ack:1:{}", inc.version),
            format!("fb:update:1:{}", inc.version),
            format!("fb:resolve:1:{}", inc.version)
        ]
    );
    assert_eq!(t.discord.pins(), [(room.clone(), card.id.clone())]);
    let calls = t.discord.successful();
    let guild = format!("/guilds/{}/channels", fake_discord::GUILD);
    let post_card = format!("POST /channels/{room}/messages");
    assert!(position(&calls, &format!("GET {guild}")) < position(&calls, &format!("POST {guild}")));
    assert!(position(&calls, &format!("POST {guild}")) < position(&calls, &post_card));
    assert!(
        position(&calls, &post_card)
            < position(&calls, &format!("PUT /channels/{room}/pins/{}", card.id))
    );
    for announce in &ANNOUNCE[..2] {
        let notices = t.discord.messages_in(announce);
        assert_eq!(notices.len(), 1, "one notice in {announce}");
        assert!(
            notices[0]
                .description()
                .contains(&format!("Follow along in <#{room}>")),
            "the notice links the room once it exists: {}",
            notices[0].description()
        );
    }

    for line in [
        "ack INC-1",
        "update INC-1 Rolled back deploy 4512 --next 30m",
        "severity INC-1 sev2",
        "resolve INC-1 Fixed by the rollback",
    ] {
        t.app.ok(line).await;
        t.settle().await;
    }
    let calls = t.discord.successful();
    let in_room = t.discord.messages_in(&room);
    let texts: Vec<&str> = in_room[1..].iter().map(|m| m.content.as_str()).collect();
    assert_eq!(in_room.len(), 3, "card, update, resolution: {texts:?}");
    assert!(
        texts[0].contains("📣 Update from alice: Rolled back deploy 4512"),
        "{texts:?}"
    );
    assert!(texts[1].contains("✅ INC-1 resolved by alice") && texts[1].contains("Post-mortem"));
    let card = &in_room[0];
    assert!(
        card.edits >= 4,
        "the card was edited on each change: {}",
        card.edits
    );
    assert!(card.title().starts_with("✅"), "{}", card.title());
    assert!(custom_ids(card).is_empty(), "no buttons once resolved");
    assert_eq!(count(&calls, &post_card), 3, "the card was never re-posted");
    assert_eq!(t.discord.pins().len(), 1, "pinned once");
    // SEV1 → SEV2 announces in the third channel too; the others are edited, not re-posted.
    for announce in ANNOUNCE {
        let notices = t.discord.messages_in(announce);
        assert_eq!(notices.len(), 1, "one notice in {announce}");
        assert!(
            notices[0].title().starts_with("✅"),
            "{}",
            notices[0].title()
        );
        assert!(
            notices[0].description().contains("Fixed")
                || notices[0].description().contains("Rolled back")
        );
    }
    assert!(t.discord.messages_in(ANNOUNCE[0])[0].edits >= 4);
}

async fn forum_mode_opens_a_thread_whose_first_message_is_the_card(backend: Backend) {
    let forum = format!("[discord]\nforum_channel_id = \"{FORUM}\"\n");
    let t = discord_app(backend, test_config(&forum), None).await;
    t.app.ok("declare sev2 Search is slow").await;
    t.settle().await;
    t.app.ok("update INC-1 Reindexing").await;
    t.settle().await;
    let thread = t.room();
    let calls = t.discord.successful();
    assert_eq!(
        calls[..2],
        [
            format!("POST /channels/{FORUM}/threads"),
            format!("PUT /channels/{thread}/pins/{thread}"),
        ],
        "the thread's starter message is the card, pinned: {calls:#?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("/guilds/")),
        "no text channel"
    );
    let messages = t.discord.messages_in(&thread);
    assert_eq!(messages[0].id, thread);
    assert!(messages[0].edits >= 1, "edited in place");
    assert!(
        count(
            &calls,
            &format!("PATCH /channels/{thread}/messages/{thread}")
        ) >= 1
    );
    assert_eq!(messages.len(), 2, "the card and the update");
}

async fn a_bad_announce_channel_among_three_never_blocks_the_others(backend: Backend) {
    let three = format!(
        "[discord]\nguild_id = \"{}\"\n[discord.announce]\nSEV1 = [\"{}\", \"{}\", \"{}\"]\n",
        fake_discord::GUILD,
        ANNOUNCE[0],
        ANNOUNCE[1],
        ANNOUNCE[2]
    );
    let t = discord_app(backend, test_config(&three), None).await;
    t.discord.break_channel(ANNOUNCE[0]);
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    for line in ["update INC-1 Rolled back", "status INC-1 mitigated"] {
        t.app.ok(line).await;
        t.settle().await;
    }
    for good in &ANNOUNCE[1..] {
        let notices = t.discord.messages_in(good);
        assert_eq!(notices.len(), 1, "{good}");
        assert!(notices[0].edits >= 2, "kept current: {}", notices[0].edits);
    }
    assert!(t.discord.messages_in(ANNOUNCE[0]).is_empty());
    let room = t.room();
    let warnings: Vec<String> = t
        .discord
        .messages_in(&room)
        .into_iter()
        .map(|m| m.content)
        .filter(|c| c.starts_with("⚠️"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "⚠️ Could not post the company-wide notice in <#{}>: Discord refused to post a message: HTTP 403 (50001 Missing Access). Give the bot View Channel, Send Messages and Embed Links there, or fix `[discord.announce]`.",
            ANNOUNCE[0]
        )],
        "reported once, though the status change announced there again"
    );
    let failed = t.app.app.store.list_effects(true, 20).await.unwrap();
    assert!(
        failed.iter().all(|e| e.kind == "discord.notice"),
        "only the bad channel's notices failed: {failed:#?}"
    );
}

async fn an_outage_longer_than_the_retry_budget_delivers_everything_once_in_order(
    backend: Backend,
) {
    let t = discord_app(backend, outage_config(), None).await;
    t.discord.set_down(true);
    t.app.ok("declare sev1 Checkout API returns 502").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    t.app.ok("update INC-1 Rolled back deploy 4512").await;
    t.app.ok("status INC-1 identified").await;
    tokio::time::sleep(Duration::from_millis(2800)).await;
    let refused = t.discord.calls();
    let most = most_refused(&refused);
    assert!(
        most > 8,
        "the outage outlasted the former budget of 8 attempts: {most}"
    );
    assert!(t.discord.successful().is_empty());

    t.discord.set_down(false);
    let back = Instant::now();
    t.settle().await;
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "{:?}",
        back.elapsed()
    );
    let room = t.room();
    let calls = t.discord.successful();
    assert_eq!(
        count(
            &calls,
            &format!("POST /guilds/{}/channels", fake_discord::GUILD)
        ),
        1
    );
    assert_eq!(t.discord.pins().len(), 1);
    let in_room = t.discord.messages_in(&room);
    assert_eq!(in_room.len(), 2, "the card once, the update once");
    assert!(in_room[1].content.contains("Rolled back deploy 4512"));
    assert!(in_room[0].description().contains("Rolled back deploy 4512"));
    assert!(
        in_room[0].embeds[0]["fields"][0]["value"] == "identified",
        "{}",
        in_room[0].embeds
    );
    for announce in &ANNOUNCE[..2] {
        let notices = t.discord.messages_in(announce);
        assert_eq!(notices.len(), 1, "{announce}");
        assert!(notices[0].description().contains("identified"));
    }
    let failed = t.app.app.store.list_effects(true, 20).await.unwrap();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// The most times one request (method and path) was refused.
fn most_refused(calls: &[Call]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for c in calls.iter().filter(|c| c.status >= 500) {
        *counts
            .entry((c.method.clone(), c.path.clone()))
            .or_insert(0) += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

async fn a_429_retry_after_is_honoured_before_any_further_call(backend: Backend) {
    let t = discord_app(backend, config(""), None).await;
    // A global limit on the very first call: nothing at all may be called for 1.2 s.
    t.discord.rate_limit_next(1, 1.2, true);
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    let calls = t.discord.calls();
    let limited = calls.iter().position(|c| c.status == 429).expect("a 429");
    // Calls already in flight when the 429 was answered (the other announcement channels)
    // arrive within a moment of it; everything sent after it must wait.
    // (At most the four first calls: the channel list and three notices.)
    let in_flight = Duration::from_millis(100);
    let (racing, after): (Vec<&Call>, Vec<&Call>) = calls[limited + 1..]
        .iter()
        .partition(|c| c.at - calls[limited].at < in_flight);
    assert!(
        racing.len() <= 3,
        "only the concurrent first calls race it: {racing:?}"
    );
    assert!(!after.is_empty());
    for c in after {
        let waited = c.at - calls[limited].at;
        assert!(
            waited >= Duration::from_millis(1150),
            "{} {} was called {waited:?} after a global 429",
            c.method,
            c.path
        );
    }
    // A route limit: that route waits; the effect is delivered once it has.
    t.discord.rate_limit_next(1, 1.0, false);
    t.app.ok("update INC-1 Rolled back").await;
    t.settle().await;
    let calls = t.discord.calls();
    let limited = calls.iter().rposition(|c| c.status == 429).unwrap();
    let refused = &calls[limited];
    let retry = calls[limited + 1..]
        .iter()
        .find(|c| c.method == refused.method && c.path == refused.path)
        .expect("the refused call was made again");
    assert!(
        retry.at - refused.at >= Duration::from_millis(950),
        "retried after {:?}",
        retry.at - refused.at
    );
    assert!(
        t.app
            .app
            .store
            .list_effects(true, 20)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Text people paste during an incident (issue 9's corpus, plus Discord's own syntax).
const CORPUS: &[&str] = &[
    "@channel @here @everyone please look",
    "<@&555555555555555555> and <@80351110224678912> and <@!1> and <#1>",
    "see [bank.example](https://evil.example) now",
    "R&D wiki <b> down & &amp; entity",
    "<script>alert('x')</script>",
    "e\u{301}clair 👩🏽‍💻 中文 **bold** _it_ ~~s~~ `code` ||spoiler||",
    "line one\nline two\r\n\tindented",
];

async fn hostile_text_never_pings_anyone_but_the_comms_role(backend: Backend) {
    let clock = ManualClock::starting_at(chrono::Utc::now());
    let t = discord_app(backend, config(""), Some(clock.clone())).await;
    let hostile = format!("@everyone @here <@80351110224678912> <@&{COMMS_ROLE}> <@!1> down");
    t.app.ok(&format!("declare sev1 {hostile}")).await;
    t.settle().await;
    t.app
        .ok(&format!("update INC-1 {hostile} again --next 10m"))
        .await;
    t.settle().await;
    for typed in CORPUS {
        t.app.ok(&format!("update INC-1 {typed} --next 10m")).await;
    }
    t.settle().await;
    clock.advance(chrono::Duration::minutes(11));
    let reminded = t.app.app.service.remind_overdue().await.unwrap();
    assert_eq!(reminded, 1);
    t.settle().await;
    t.app.ok(&format!("resolve INC-1 {hostile}")).await;
    t.settle().await;

    let messages = t.discord.messages();
    assert_eq!(
        messages.len(),
        6 + CORPUS.len(),
        "card, 2 notices, the updates, reminder, resolution"
    );
    let mut pinged = Vec::new();
    for m in &messages {
        assert_eq!(
            m.allowed_mentions["parse"],
            serde_json::json!([]),
            "every message parses no mentions: {m:?}"
        );
        let all = serde_json::to_string(&(&m.content, &m.embeds))
            .unwrap()
            .replacen(&format!("<@&{COMMS_ROLE}> ⏰"), "the intended tag ⏰", 1)
            // A backslash-escaped `<` (`\\<` once JSON-encoded) shows as text, not a mention.
            .replace("\\\\<", "");
        assert!(
            !all.contains("@everyone")
                && !all.contains("@here")
                && !all.contains("<@&5")
                && !all.contains("<@!1>")
                && !all.contains("](https://evil"),
            "user text is defused everywhere: {all}"
        );
        pinged.extend(pings(m));
    }
    assert_eq!(
        pinged,
        [format!("role:{COMMS_ROLE}")],
        "only the reminder pings, and only the comms role"
    );
    let reminder = messages
        .iter()
        .find(|m| m.content.starts_with("<@&"))
        .unwrap();
    assert!(
        reminder.content.contains("is overdue"),
        "{}",
        reminder.content
    );
}

async fn a_restart_mid_delivery_posts_nothing_twice(backend: Backend) {
    let discord = FakeDiscord::start().await;
    let db = TestDb::new(backend).await;
    let first = serve(&db, &discord).await;
    discord.set_down(true);
    first
        .0
        .service
        .apply(
            firebreak::incident::command::parse_line(
                "declare sev1 Checkout API returns 502",
                Default::default(),
            )
            .unwrap(),
            &alice(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    discord.set_down(false);
    // Stop the first process as soon as Discord has taken something from it.
    assert!(eventually(10, || async { !discord.successful().is_empty() }).await);
    first.1.cancel();
    first.2.await.unwrap().unwrap();

    let second = serve(&db, &discord).await;
    settle(&second.0).await;
    // The new process edits what the first one made: it knows it from the database alone.
    let update = firebreak::incident::command::parse_line(
        "update INC-1 Rolled back deploy 4512",
        Default::default(),
    )
    .unwrap();
    second.0.service.apply(update, &alice()).await.unwrap();
    settle(&second.0).await;
    let calls = discord.successful();
    assert_eq!(
        count(
            &calls,
            &format!("POST /guilds/{}/channels", fake_discord::GUILD)
        ),
        1,
        "{calls:#?}"
    );
    assert_eq!(discord.pins().len(), 1);
    for announce in &ANNOUNCE[..2] {
        assert_eq!(discord.messages_in(announce).len(), 1, "{announce}");
    }
    let room = room(&discord);
    let in_room = discord.messages_in(&room);
    assert_eq!(in_room.len(), 2, "one card and the update: {in_room:#?}");
    assert!(
        in_room[0].description().contains("Rolled back"),
        "the card was edited"
    );
    for announce in &ANNOUNCE[..2] {
        assert!(
            discord.messages_in(announce)[0].edits >= 1,
            "{announce} edited"
        );
    }
    second.1.cancel();
    second.2.await.unwrap().unwrap();
}

/// A firebreak process serving on `db` (no HTTP needed beyond its worker).
async fn serve(
    db: &TestDb,
    discord: &FakeDiscord,
) -> (
    App,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let app = App::with_store(config(""), db.store().await, integrations(&discord.url)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    (app, shutdown, handle)
}

/// A CLI write from a shell without the Discord credentials (same config, same database)
/// still plans Discord's effects; its own drain leaves them pending, says so, and `serve`
/// (which has the credentials) delivers them once: the SEV1 is announced.
async fn a_shell_without_discord_credentials_queues_for_serve(backend: Backend) {
    let discord = FakeDiscord::start().await;
    let db = TestDb::new(backend).await;
    let shell = App::with_store(config(""), db.store().await, Default::default()).unwrap();
    let declare = firebreak::incident::command::parse_line(
        "declare sev1 Declared from a shell",
        Default::default(),
    )
    .unwrap();
    let outcome = shell.service.apply(declare, &alice()).await.unwrap();
    let report = shell
        .worker
        .drain(&outcome.effects, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:#?}", report.failed);
    assert!(
        report
            .left_for_serve
            .iter()
            .any(|e| e.kind == "discord.notice")
            && report
                .left_for_serve
                .iter()
                .any(|e| e.kind == "discord.sync_channel"),
        "the announcement and the channel wait for serve: {report:#?}"
    );
    let lines = firebreak::cli::render::drain_lines(&report, chrono::Utc::now());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("queued for `firebreak serve`")),
        "{lines:?}"
    );
    assert!(discord.successful().is_empty());

    let (served, stop, handle) = serve(&db, &discord).await;
    settle(&served).await;
    for announce in &ANNOUNCE[..2] {
        let notices = discord.messages_in(announce);
        assert_eq!(notices.len(), 1, "{announce}: {notices:#?}");
        assert!(notices[0].title().contains("Declared from a shell"));
    }
    assert_eq!(
        discord.pins().len(),
        1,
        "the card is posted and pinned once"
    );
    stop.cancel();
    handle.await.unwrap().unwrap();
}

/// Discord was down longer than the whole retry budget: creating the room and posting
/// the notices gave up. The next change, once Discord is back, makes good on both: the room
/// is made with its card before the update is posted in it, and the owed notices are
/// posted. (A channel that refused its notice for good, 403 or 404, is not tried again by
/// itself: see `a_bad_announce_channel_among_three_never_blocks_the_others`.)
async fn what_failed_for_good_is_made_good_by_the_next_change(backend: Backend) {
    let effects = "[effects]\nbase_backoff = \"20ms\"\nmax_backoff = \"50ms\"\npoll_interval = \"20ms\"\n\
                   give_up_after = \"300ms\"\nbreaker_threshold = 100\n";
    let config = Config::parse(&format!("{effects}{}", config_toml())).expect("config parses");
    let t = discord_app(backend, config, None).await;
    t.discord.set_down(true);
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    let failed = t.app.app.store.list_effects(true, 20).await.unwrap();
    assert!(failed.len() >= 3, "room and notices gave up: {failed:#?}");
    assert!(t.discord.successful().is_empty());

    t.discord.set_down(false);
    t.app.ok("update INC-1 Rolled back deploy 4512").await;
    t.settle().await;
    let room = t.room();
    let in_room = t.discord.messages_in(&room);
    assert_eq!(in_room.len(), 2, "the card, then the update: {in_room:#?}");
    assert!(in_room[1].content.contains("Rolled back deploy 4512"));
    for announce in &ANNOUNCE[..2] {
        let notices = t.discord.messages_in(announce);
        assert_eq!(notices.len(), 1, "{announce}: {notices:#?}");
        assert!(notices[0].description().contains("Rolled back deploy 4512"));
    }
}

/// Someone deleted the company-wide notice: the next change posts it again (and then
/// edits the new one), instead of failing on every change.
async fn a_deleted_notice_is_posted_again(backend: Backend) {
    let t = discord_app(backend, config(""), None).await;
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    let first = t.discord.messages_in(ANNOUNCE[0]);
    assert_eq!(first.len(), 1);
    t.discord.delete_message(&first[0].id);
    t.app.ok("status INC-1 identified").await;
    t.settle().await;
    t.app.ok("status INC-1 monitoring").await;
    t.settle().await;
    let now = t.discord.messages_in(ANNOUNCE[0]);
    assert_eq!(now.len(), 1, "posted again once: {now:#?}");
    assert!(
        now[0].description().contains("monitoring"),
        "and edited after"
    );
    assert!(now[0].edits >= 1);
    let failed = t.app.app.store.list_effects(true, 20).await.unwrap();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Discord made the posts and the channel but the answers were lost (a timeout, a crash
/// before recording): the retries carry the same nonce with `enforce_nonce`, so each
/// message exists once, and the channel created under the recorded name is adopted.
async fn a_post_whose_answer_was_lost_is_not_made_twice(backend: Backend) {
    let t = discord_app(backend, config(""), None).await;
    t.discord.lose_answers(6);
    t.app.ok("declare sev1 Checkout API returns 502").await;
    t.settle().await;
    t.discord.lose_answers(1);
    t.app.ok("update INC-1 Rolled back deploy 4512").await;
    t.settle().await;
    for announce in &ANNOUNCE[..2] {
        assert_eq!(t.discord.messages_in(announce).len(), 1, "{announce}");
    }
    let rooms: Vec<_> = t
        .discord
        .channels()
        .into_iter()
        .filter(|c| c.name.starts_with("inc-1-"))
        .collect();
    assert_eq!(
        rooms.len(),
        1,
        "the channel made before the lost answer is adopted: {rooms:#?}"
    );
    let in_room = t.discord.messages_in(&t.room());
    assert_eq!(in_room.len(), 2, "one card, one update: {in_room:#?}");
    assert_eq!(t.discord.pins().len(), 1);
    let lost: Vec<Call> = t
        .discord
        .calls()
        .into_iter()
        .filter(|c| c.status == 503)
        .collect();
    assert!(lost.len() >= 4, "answers were lost: {lost:#?}");
}
