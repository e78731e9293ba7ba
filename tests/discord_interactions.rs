//! The Discord interactions endpoint (issue 11, inbound half): signed interaction payloads
//! in Discord's real shapes posted to the real `POST /discord/interactions` over HTTP, on
//! SQLite and Postgres; what they did checked in the store. Also `firebreak discord
//! register` against a local fake of Discord's command endpoints.

mod common;

use common::discord::{self as dc, DiscordSender, Member, bob, content};
use common::*;
use firebreak::incident::{EntryKind, IncidentNumber};
use firebreak::store::ChatRef;
use serde_json::{Value, json};

on_both!(
    a_ping_gets_a_pong,
    unsigned_tampered_or_stale_requests_are_refused_and_write_nothing,
    declare_update_status_resolve_through_the_endpoint,
    an_incident_channel_needs_no_number,
    a_stale_button_changes_nothing_and_says_so,
    a_bare_declare_opens_a_form_and_its_submit_declares,
    the_same_interaction_twice_is_applied_once,
    hostile_text_is_stored_clean_and_answered_safely,
    permissions_follow_discord_roles,
    a_dm_command_works_without_a_member,
);

/// No REST call is made by the inbound half; anything that tries finds nothing listening.
const NOWHERE: &str = "http://127.0.0.1:9";

const CHANNEL: &str = "1600000000000000001";

async fn discord_app(backend: Backend, extra: &str) -> (TestApp, DiscordSender) {
    let app = spawn_app_with(backend, test_config(extra), dc::integrations(NOWHERE), None).await;
    let send = DiscordSender::new(&app);
    (app, send)
}

fn s(v: &str) -> Value {
    json!(v)
}

async fn incident_count(app: &TestApp) -> usize {
    app.app.store.list_incidents(true, 100).await.unwrap().len()
}

async fn a_ping_gets_a_pong(backend: Backend) {
    let (_app, send) = discord_app(backend, "").await;
    let resp = send.ok(&json!({"type": 1, "id": dc::snowflake(), "application_id": dc::APPLICATION_ID, "token": "t", "version": 1})).await;
    assert_eq!(resp, json!({"type": 1}));
}

/// What was sent: a label, the body, the timestamp and signature headers.
type Attempt<'a> = (&'a str, Vec<u8>, Option<&'a str>, Option<&'a str>);

async fn unsigned_tampered_or_stale_requests_are_refused_and_write_nothing(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let payload = dc::incident("declare", &[("title", 3, s("DB down"))], CHANNEL, &bob());
    let body = serde_json::to_vec(&payload).unwrap();
    let now = chrono::Utc::now().timestamp();
    let ts = now.to_string();
    let good = dc::sign(dc::signing_key(), &ts, &body);
    // Signed by someone else's key.
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let forged = dc::sign(&other, &ts, &body);
    // The body changed after signing.
    let mut tampered = body.clone();
    let at = tampered.windows(7).position(|w| w == b"DB down").unwrap();
    tampered[at..at + 7].copy_from_slice(b"DB gone");
    // Signed properly, six minutes ago.
    let old = (now - 360).to_string();
    let stale = dc::sign(dc::signing_key(), &old, &body);
    let cases: Vec<Attempt<'_>> = vec![
        ("forged", body.clone(), Some(&ts), Some(&forged)),
        ("tampered", tampered, Some(&ts), Some(&good)),
        ("stale", body.clone(), Some(&old), Some(&stale)),
        ("no signature", body.clone(), Some(&ts), None),
        ("no timestamp", body.clone(), None, Some(&good)),
        ("garbage signature", body.clone(), Some(&ts), Some("zz")),
    ];
    for (what, body, ts, sig) in cases {
        let (status, _) = send.post_raw(body, ts, sig).await;
        assert_eq!(status, 401, "{what}");
    }
    assert_eq!(incident_count(&app).await, 0);
    assert!(app.app.store.audit_log(10).await.unwrap().is_empty());
    // The same request, properly signed, goes through: the refusals were the signature.
    let (status, _) = send.post_raw(body, Some(&ts), Some(&good)).await;
    assert_eq!(status, 200);
    assert_eq!(incident_count(&app).await, 1);
}

async fn declare_update_status_resolve_through_the_endpoint(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let me = bob();
    let resp = send
        .ok(&dc::incident(
            "declare",
            &[
                ("title", 3, s("Checkout returns 502")),
                ("severity", 3, s("sev2")),
            ],
            CHANNEL,
            &me,
        ))
        .await;
    assert!(content(&resp).contains("INC-1"), "{resp}");
    assert!(
        resp["data"].get("flags").is_none(),
        "a declaration is public"
    );
    let n = json!(1);
    let steps = [
        (
            "update",
            vec![
                ("text", 3, s("Rolled back the deploy")),
                ("next", 3, s("30m")),
                ("incident", 4, n.clone()),
            ],
        ),
        (
            "status",
            vec![("status", 3, s("mitigated")), ("incident", 4, n.clone())],
        ),
        (
            "resolve",
            vec![
                ("summary", 3, s("Bad config reverted")),
                ("incident", 4, n.clone()),
            ],
        ),
    ];
    for (sub, options) in steps {
        let resp = send.ok(&dc::incident(sub, &options, CHANNEL, &me)).await;
        assert_eq!(
            resp["data"]["allowed_mentions"],
            json!({"parse": []}),
            "{sub}"
        );
        assert!(resp["data"].get("flags").is_none(), "{sub}: {resp}");
    }
    let (inc, timeline) = incident_timeline(&app.app.store, 1).await;
    assert_eq!(inc.title, "Checkout returns 502");
    assert_eq!(inc.severity.to_string(), "SEV2");
    assert!(!inc.status.is_open());
    assert_eq!(inc.summary.as_deref(), Some("Bad config reverted"));
    let kinds: Vec<EntryKind> = timeline
        .iter()
        .filter(|e| e.kind != EntryKind::EffectSucceeded && e.kind != EntryKind::EffectFailed)
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EntryKind::Declared,
            EntryKind::Update,
            EntryKind::StatusChanged,
            EntryKind::Resolved
        ]
    );
    let actor = format!("discord:{}", me.id);
    assert!(
        timeline
            .iter()
            .filter(|e| e.kind == EntryKind::Update)
            .all(|e| e.actor == actor && e.text.contains("Rolled back the deploy"))
    );
    assert_eq!(inc.declared_by, actor);
    // `list` answers privately, with the incident in an embed.
    let resp = send.ok(&dc::incident("list", &[], CHANNEL, &me)).await;
    assert_eq!(resp["data"]["flags"], 64);
    assert!(
        resp["data"]["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains("INC\\-1")
            || resp["data"]["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .contains("INC-1")
    );
}

async fn an_incident_channel_needs_no_number(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    app.ok("declare sev3 Queue backing up").await;
    app.ok("declare sev3 Unrelated").await;
    let inc = app
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let room = "1700000000000000001";
    app.app
        .store
        .put_chat_ref(&ChatRef {
            incident_id: inc.id.to_string(),
            platform: "discord".into(),
            role: "channel".into(),
            channel_id: room.into(),
            message_id: None,
        })
        .await
        .unwrap();
    let resp = send.ok(&dc::incident("ack", &[], room, &bob())).await;
    assert!(content(&resp).contains("INC-1"), "{resp}");
    let (inc1, _) = incident_timeline(&app.app.store, 1).await;
    let (inc2, _) = incident_timeline(&app.app.store, 2).await;
    assert!(inc1.acknowledged_at.is_some());
    assert_eq!(
        inc1.commander.as_deref(),
        Some(format!("discord:{}", bob().id).as_str())
    );
    assert!(inc2.acknowledged_at.is_none());
    // Elsewhere the number is needed, and the answer says so, privately.
    let resp = send
        .ok(&dc::incident(
            "note",
            &[("text", 3, s("hi"))],
            CHANNEL,
            &bob(),
        ))
        .await;
    assert_eq!(resp["data"]["flags"], 64);
    assert!(content(&resp).contains("Name the incident"), "{resp}");
}

/// The custom id of the button labelled `label` in a response.
fn button_id(resp: &Value, label: &str) -> String {
    resp["data"]["components"][0]["components"]
        .as_array()
        .unwrap_or_else(|| panic!("buttons on {resp}"))
        .iter()
        .find(|b| b["label"] == label)
        .and_then(|b| b["custom_id"].as_str())
        .unwrap_or_else(|| panic!("a {label} button on {resp}"))
        .to_string()
}

async fn a_stale_button_changes_nothing_and_says_so(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let resp = send
        .ok(&dc::incident(
            "declare",
            &[("title", 3, s("Search is slow"))],
            CHANNEL,
            &bob(),
        ))
        .await;
    let ack = button_id(&resp, "Acknowledge");
    let resolve = button_id(&resp, "Resolve");
    // Someone else changes the incident after the buttons were shown.
    send.ok(&dc::incident(
        "severity",
        &[("severity", 3, s("sev1")), ("incident", 4, json!(1))],
        CHANNEL,
        &bob(),
    ))
    .await;
    for id in [&ack, &resolve] {
        let resp = send.ok(&dc::button(id, CHANNEL, &bob())).await;
        assert_eq!(resp["data"]["flags"], 64);
        assert!(content(&resp).contains("changed since"), "{resp}");
    }
    let (inc, _) = incident_timeline(&app.app.store, 1).await;
    assert!(inc.acknowledged_at.is_none() && inc.status.is_open());
    // The buttons on the latest reply carry the new version and work.
    let latest = send
        .ok(&dc::incident(
            "note",
            &[("text", 3, s("looking")), ("incident", 4, json!(1))],
            CHANNEL,
            &bob(),
        ))
        .await;
    let resp = send
        .ok(&dc::button(
            &button_id(&latest, "Acknowledge"),
            CHANNEL,
            &bob(),
        ))
        .await;
    assert!(!content(&resp).contains("changed since"), "{resp}");
    let (inc, _) = incident_timeline(&app.app.store, 1).await;
    assert!(inc.acknowledged_at.is_some());
    // Post update opens a form; its submit posts the update.
    let resp = send
        .ok(&dc::button(
            &button_id(&resp, "Post update"),
            CHANNEL,
            &bob(),
        ))
        .await;
    assert_eq!(resp["type"], 9, "{resp}");
    let form = resp["data"]["custom_id"].as_str().unwrap().to_string();
    send.ok(&dc::modal_submit(
        &form,
        &[("text", "Index rebuilt"), ("next", "")],
        CHANNEL,
        &bob(),
    ))
    .await;
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == EntryKind::Update && e.text.contains("Index rebuilt"))
    );
}

async fn a_bare_declare_opens_a_form_and_its_submit_declares(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let resp = send
        .ok(&dc::incident("declare", &[], CHANNEL, &bob()))
        .await;
    assert_eq!(resp["type"], 9, "a modal: {resp}");
    assert!(resp["data"]["title"].as_str().unwrap().chars().count() <= 45);
    assert_eq!(incident_count(&app).await, 0);
    let form = resp["data"]["custom_id"].as_str().unwrap();
    let resp = send
        .ok(&dc::modal_submit(
            form,
            &[
                ("title", "Payments failing"),
                ("severity", "SEV1"),
                ("description", "Since 10:02, card auths <@&1> time out"),
            ],
            CHANNEL,
            &bob(),
        ))
        .await;
    assert!(content(&resp).contains("INC-1"), "{resp}");
    let (inc, timeline) = incident_timeline(&app.app.store, 1).await;
    assert_eq!(
        (inc.title.as_str(), inc.severity.to_string()),
        ("Payments failing", "SEV1".to_string())
    );
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == EntryKind::Note && e.text.contains("card auths @role-1 time out"))
    );
    // A form with a bad severity says what to fix, and declares nothing.
    let resp = send
        .ok(&dc::modal_submit(
            form,
            &[("title", "Other"), ("severity", "SEV9")],
            CHANNEL,
            &bob(),
        ))
        .await;
    assert!(content(&resp).contains("not a severity"), "{resp}");
    assert_eq!(incident_count(&app).await, 1);
}

async fn the_same_interaction_twice_is_applied_once(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let declare = dc::incident("declare", &[("title", 3, s("Login loop"))], CHANNEL, &bob());
    let first = send.ok(&declare).await;
    let again = send.ok(&declare).await;
    assert_eq!(first, again);
    assert_eq!(incident_count(&app).await, 1);
    // Concurrent deliveries of one note: one entry.
    let note = dc::incident(
        "note",
        &[("text", 3, s("once")), ("incident", 4, json!(1))],
        CHANNEL,
        &bob(),
    );
    let (a, b) = tokio::join!(send.send(&note), send.send(&note));
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(a.1, b.1);
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.kind == EntryKind::Note)
            .count(),
        1
    );
    // A read-only answer is kept too.
    let list = dc::incident("list", &[], CHANNEL, &bob());
    assert_eq!(send.ok(&list).await, send.ok(&list).await);
    // A new interaction with the same content is a new command.
    send.ok(&dc::incident(
        "declare",
        &[("title", 3, s("Login loop"))],
        CHANNEL,
        &bob(),
    ))
    .await;
    assert_eq!(incident_count(&app).await, 2);
}

/// Every string in a response is within Discord's limits and nothing in it may ping.
fn assert_safe(resp: &Value) {
    let data = &resp["data"];
    assert_eq!(data["allowed_mentions"], json!({"parse": []}), "{resp}");
    assert!(content(resp).chars().count() <= 2000);
    for e in data["embeds"].as_array().into_iter().flatten() {
        let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        assert!(len(&e["title"]) <= 256 && len(&e["description"]) <= 4096);
        assert!(e["fields"].as_array().map_or(0, Vec::len) <= 25);
    }
    assert!(serde_json::to_string(resp).unwrap().chars().count() < 6000 + 4000);
}

async fn hostile_text_is_stored_clean_and_answered_safely(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let title = "@everyone <@&123> pay\u{202e}ments\u{7} \u{1b}[31mdown\u{2066}";
    let resp = send
        .ok(&dc::incident(
            "declare",
            &[("title", 3, s(title))],
            CHANNEL,
            &bob(),
        ))
        .await;
    assert_safe(&resp);
    let (inc, _) = incident_timeline(&app.app.store, 1).await;
    assert_eq!(inc.title, "@everyone @role-123 payments down");
    // The title in the reply cannot ping or format.
    let embed_title = resp["data"]["embeds"][0]["title"].as_str().unwrap();
    assert!(!embed_title.contains("@everyone"), "{embed_title}");
    assert!(
        embed_title
            .replace('\u{200d}', "")
            .contains("@everyone @role-123")
    );
    assert!(!content(&resp).contains("<@&"));
    // A long update full of mass mentions: stored whole and clean, answered within limits.
    let long = format!("{}\u{202e}x", "@here <@&5> **bold** ".repeat(170));
    assert!(long.chars().count() > 3_500 && long.chars().count() < 4_000);
    let resp = send
        .ok(&dc::incident(
            "update",
            &[("text", 3, s(&long)), ("incident", 4, json!(1))],
            CHANNEL,
            &bob(),
        ))
        .await;
    assert_safe(&resp);
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    let update = timeline
        .iter()
        .find(|e| e.kind == EntryKind::Update)
        .expect("the update");
    assert!(!update.text.contains('\u{202e}') && !update.text.contains("<@&"));
    assert!(update.text.starts_with("@here @role-5 **bold**"));
    // 5,000 characters: refused with the limit, nothing stored.
    let resp = send
        .ok(&dc::incident(
            "note",
            &[
                ("text", 3, s(&"x".repeat(5_000))),
                ("incident", 4, json!(1)),
            ],
            CHANNEL,
            &bob(),
        ))
        .await;
    assert_safe(&resp);
    assert!(content(&resp).contains("limit is 4,000"), "{resp}");
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    assert!(!timeline.iter().any(|e| e.kind == EntryKind::Note));
}

async fn permissions_follow_discord_roles(backend: Backend) {
    let config = "[permissions]\nresolve = [\"discord-role:900\"]\n";
    let (app, send) = discord_app(backend, config).await;
    send.ok(&dc::incident(
        "declare",
        &[("title", 3, s("Disk full"))],
        CHANNEL,
        &bob(),
    ))
    .await;
    let resolve =
        |who: &Member| dc::incident("resolve", &[("incident", 4, json!(1))], CHANNEL, who);
    let plain = bob();
    let other_role = Member {
        roles: vec!["901"],
        ..bob()
    };
    for who in [&plain, &other_role] {
        let resp = send.ok(&resolve(who)).await;
        assert_eq!(resp["data"]["flags"], 64);
        assert!(content(&resp).contains("not allowed"), "{resp}");
    }
    let (inc, timeline) = incident_timeline(&app.app.store, 1).await;
    assert!(inc.status.is_open());
    assert!(timeline.iter().any(|e| e.kind == EntryKind::Refused));
    let oncall = Member {
        roles: vec!["901", "900"],
        ..bob()
    };
    let resp = send.ok(&resolve(&oncall)).await;
    assert!(!content(&resp).contains("not allowed"), "{resp}");
    let (inc, _) = incident_timeline(&app.app.store, 1).await;
    assert!(!inc.status.is_open());
}

async fn a_dm_command_works_without_a_member(backend: Backend) {
    let (app, send) = discord_app(backend, "").await;
    let dm = dc::in_dm(
        dc::incident(
            "declare",
            &[("title", 3, s("From a DM"))],
            "1800000000000000001",
            &bob(),
        ),
        &bob(),
    );
    assert!(dm.get("member").is_none() && dm.get("user").is_some());
    let resp = send.ok(&dm).await;
    assert!(content(&resp).contains("INC-1"), "{resp}");
    let (inc, _) = incident_timeline(&app.app.store, 1).await;
    assert_eq!(inc.declared_by, format!("discord:{}", bob().id));
    // The name Discord sent is cached for documents and the CLI.
    let person = app
        .app
        .store
        .person(&firebreak::incident::Identity::new("discord", bob().id).unwrap())
        .await
        .unwrap()
        .expect("cached");
    assert_eq!(person.display_name, "bob");
}

/// A fake of Discord's application-command endpoints: what is registered per scope
/// (global, or one guild), how many bulk overwrites came in, and the auth they carried.
#[derive(Clone, Default)]
struct FakeCommands {
    registered: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<Value>>>>,
    overwrites: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl FakeCommands {
    async fn start() -> (Self, String) {
        use axum::routing::get;
        let fake = Self::default();
        let app = axum::Router::new()
            .route(
                "/api/v10/applications/{app}/commands",
                get(Self::list_global).put(Self::put_global),
            )
            .route(
                "/api/v10/applications/{app}/guilds/{guild}/commands",
                get(Self::list_guild).put(Self::put_guild),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, url)
    }

    fn scope(app: &str, guild: Option<&str>) -> String {
        format!("{app}/{}", guild.unwrap_or("global"))
    }

    fn list(&self, scope: &str) -> axum::Json<Value> {
        let all = self.registered.lock().unwrap();
        axum::Json(Value::Array(all.get(scope).cloned().unwrap_or_default()))
    }

    /// Stores the list as Discord does, with ids and versions of its own.
    fn put(&self, scope: String, auth: &str, body: Value) -> axum::Json<Value> {
        let (app, guild) = scope.split_once('/').unwrap();
        let stored: Vec<Value> = body
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut c = c.clone();
                c["id"] = json!(format!("19000000000000000{i:02}"));
                c["application_id"] = json!(app);
                c["version"] = json!("1900000000000000099");
                c["default_member_permissions"] = Value::Null;
                c["nsfw"] = json!(false);
                if guild != "global" {
                    c["guild_id"] = json!(guild);
                }
                c
            })
            .collect();
        self.overwrites
            .lock()
            .unwrap()
            .push((scope.clone(), auth.to_string()));
        self.registered
            .lock()
            .unwrap()
            .insert(scope, stored.clone());
        axum::Json(Value::Array(stored))
    }

    async fn list_global(
        axum::extract::State(f): axum::extract::State<Self>,
        axum::extract::Path(app): axum::extract::Path<String>,
    ) -> axum::Json<Value> {
        f.list(&Self::scope(&app, None))
    }

    async fn put_global(
        axum::extract::State(f): axum::extract::State<Self>,
        axum::extract::Path(app): axum::extract::Path<String>,
        headers: axum::http::HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        f.put(Self::scope(&app, None), auth, body)
    }

    async fn list_guild(
        axum::extract::State(f): axum::extract::State<Self>,
        axum::extract::Path((app, guild)): axum::extract::Path<(String, String)>,
    ) -> axum::Json<Value> {
        f.list(&Self::scope(&app, Some(&guild)))
    }

    async fn put_guild(
        axum::extract::State(f): axum::extract::State<Self>,
        axum::extract::Path((app, guild)): axum::extract::Path<(String, String)>,
        headers: axum::http::HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        f.put(Self::scope(&app, Some(&guild)), auth, body)
    }
}

/// `firebreak discord register` as a process, against the fake.
async fn register(cli: &process::Cli, api: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = cli.command(&[&["discord", "register"], args].concat());
    cmd.env("DISCORD_PUBLIC_KEY", dc::public_key_hex())
        .env("DISCORD_BOT_TOKEN", dc::BOT_TOKEN)
        .env("DISCORD_APPLICATION_ID", dc::APPLICATION_ID)
        .env("DISCORD_API_URL", api);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_twice_changes_nothing_the_second_time() {
    let (fake, api) = FakeCommands::start().await;
    let cli = process::Cli::new(Backend::Sqlite, "").await;
    for (args, scope) in [
        (
            vec!["--guild", dc::GUILD_ID],
            format!("{}/{}", dc::APPLICATION_ID, dc::GUILD_ID),
        ),
        (vec![], format!("{}/global", dc::APPLICATION_ID)),
    ] {
        let before = fake.overwrites.lock().unwrap().len();
        let first = register(&cli, &api, &args).await;
        let out = String::from_utf8_lossy(&first.stdout).to_string();
        assert!(first.status.success(), "{}", process::stderr(&first));
        assert!(
            out.contains("Registered") && out.contains("/incident, /freeze, /unfreeze"),
            "{out}"
        );
        let second = register(&cli, &api, &args).await;
        let out = String::from_utf8_lossy(&second.stdout).to_string();
        assert!(second.status.success(), "{}", process::stderr(&second));
        assert!(out.contains("unchanged"), "{out}");
        let overwrites = fake.overwrites.lock().unwrap().clone();
        assert_eq!(
            overwrites.len(),
            before + 1,
            "one bulk overwrite: {overwrites:?}"
        );
        assert_eq!(
            overwrites[before],
            (scope, format!("Bot {}", dc::BOT_TOKEN))
        );
    }
    let registered = fake.registered.lock().unwrap().clone();
    let global = &registered[&format!("{}/global", dc::APPLICATION_ID)];
    let incident = global.iter().find(|c| c["name"] == "incident").unwrap();
    let subs: Vec<&str> = incident["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for verb in [
        "declare",
        "ack",
        "update",
        "status",
        "severity",
        "assign",
        "note",
        "resolve",
        "postmortem",
        "runbook",
        "list",
        "help",
    ] {
        assert!(subs.contains(&verb), "{verb} in {subs:?}");
    }
    // A changed definition on Discord's side is put back.
    fake.registered
        .lock()
        .unwrap()
        .get_mut(&format!("{}/global", dc::APPLICATION_ID))
        .unwrap()[0]["description"] = json!("edited by hand");
    let out = register(&cli, &api, &[]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("Registered"));
    // Without an application id it says what to set.
    let mut cmd = cli.command(&["discord", "register"]);
    cmd.env("DISCORD_PUBLIC_KEY", dc::public_key_hex())
        .env("DISCORD_BOT_TOKEN", dc::BOT_TOKEN)
        .env_remove("DISCORD_APPLICATION_ID")
        .env("DISCORD_API_URL", &api);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        process::stderr(&out).contains("DISCORD_APPLICATION_ID"),
        "{}",
        process::stderr(&out)
    );
}
