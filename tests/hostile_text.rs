//! The hostile-text corpus (issue 9), driven through every surface a person types into: the
//! slash command, an `@firebreak` mention, the update form, the CLI binary, then read back
//! over HTTP. For every payload firebreak sends (Slack Web API calls, slash replies, webhook
//! notices, the post-mortem page) it checks: no live mention the bot did not build itself,
//! no control characters, every Block Kit field within Slack's limits; and that what is
//! stored is exactly what the person typed, after the one text pipeline.

mod common;

use common::fake_slack::FakeSlack;
use common::receiver::Receiver;
use common::slack::{SlackSender, integrations};
use common::*;
use firebreak::incident::text::{Field, clean};
use firebreak::incident::{EntryKind, IncidentNumber};
use serde_json::{Value, json};

on_both!(
    hostile_text_is_stored_as_typed_and_sent_safely,
    oversized_and_nul_text_is_refused_everywhere_and_stores_nothing
);

/// Text people really paste during an incident.
const CORPUS: &[&str] = &[
    "<!channel> wake up, <!here> too",
    "@channel @here @everyone please look",
    "see <https://evil.example|click here> now",
    "ping <@U999CEO|ceo> and <#C0GENERAL|general>",
    "R&D wiki <b> down & &amp; entity",
    "'; DROP TABLE incidents; -- \" OR 1=1",
    "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "\u{1b}[2J\u{1b}[31mred alert\u{1b}[0m and a \u{7} bell",
    "invoice\u{202e}fdp.exe and \u{2066}isolated\u{2069}",
    "e\u{301}clair 👩🏽‍💻 中文 עברית *bold* _it_ ~s~ `code` ```block```",
    "line one\nline two\r\n\tindented",
];

const USER: &str = "U0ALICE";
const ROOM: &str = "C_ORIGIN";

/// What Slack sends for text a person typed into a slash command or a message: `&`, `<`
/// and `>` as entities (Slack's own mention and link syntax is produced only by its
/// autocomplete, never by typing the characters).
fn slack_escaped(typed: &str) -> String {
    typed
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn stored_form(field: Field, typed: &str) -> String {
    clean(field, typed).expect("corpus text is accepted")
}

struct Harness {
    app: TestApp,
    slack: FakeSlack,
    hooks: Receiver,
    send: SlackSender,
    replies: std::sync::Mutex<Vec<Value>>,
    /// The same config, as a file for the CLI.
    config: tempfile::NamedTempFile,
}

async fn harness(backend: Backend) -> Harness {
    let slack = FakeSlack::start().await;
    let hooks = Receiver::start().await;
    let toml = format!(
        "[slack.announce]\nSEV1 = [\"C_INCIDENTS\", \"C_GENERAL\"]\n{}",
        webhook("all", &hooks.url("/hook"), "SEV4")
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &toml).unwrap();
    let app = spawn_app_with(backend, test_config(&toml), integrations(&slack.url), None).await;
    let send = SlackSender::new(&app);
    Harness {
        app,
        slack,
        hooks,
        send,
        replies: Default::default(),
        config: file,
    }
}

impl Harness {
    async fn slash(&self, typed_line: &str) -> Value {
        let reply = self
            .send
            .command(&slack_escaped(typed_line), ROOM, USER)
            .await;
        self.replies.lock().unwrap().push(reply.clone());
        reply
    }

    async fn mention(&self, id: &str, typed_line: &str) {
        let text = format!("<@U0BOT> {}", slack_escaped(typed_line));
        let resp = self
            .send
            .event(
                id,
                json!({ "type": "app_mention", "user": USER, "channel": ROOM, "text": text, "ts": "1.1" }),
            )
            .await;
        assert_eq!(resp.status(), 200, "mention accepted");
    }

    /// The card's "Post update" form: Slack sends form text exactly as typed.
    async fn form_update(&self, n: usize, typed: &str) {
        let payload = json!({
            "type": "view_submission", "user": { "id": USER, "username": "alice" }, "team": { "id": "T0" },
            "trigger_id": format!("form.{n}"),
            "view": { "id": format!("VFORM{n}"), "callback_id": "fb_update", "private_metadata": format!("1:{ROOM}"),
                      "state": { "values": { "text": { "text": { "type": "plain_text_input", "value": typed } } } } }
        });
        let resp = self.send.interaction(payload).await;
        assert_eq!(resp.status(), 200, "form accepted");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("errors"), "form refused: {body}");
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
            .args(args)
            .env("FIREBREAK_DATABASE_URL", &self.app.db.url)
            .env("FIREBREAK_CONFIG", self.config.path())
            .env("SLACK_SIGNING_SECRET", common::slack::SIGNING_SECRET)
            .env("SLACK_BOT_TOKEN", "xoxb-test-token")
            .env("SLACK_API_URL", &self.slack.url)
            .env("XDG_DATA_HOME", std::env::temp_dir())
            .env_remove("RUST_LOG")
            .output()
            .expect("run firebreak")
    }

    async fn settle(&self) {
        assert!(
            queue_idle(&self.app.app.store, 30).await,
            "effects did not settle"
        );
    }

    async fn stored_texts(&self, kind: EntryKind) -> Vec<String> {
        let (_, timeline) = incident_timeline(&self.app.app.store, 1).await;
        timeline
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.text)
            .collect()
    }
}

async fn hostile_text_is_stored_as_typed_and_sent_safely(backend: Backend) {
    let h = harness(backend).await;
    let title = "R&D wiki <b> down <!channel> & \u{1b}[2Jcleared";
    let reply = h.slash(&format!("declare sev1 {title}")).await;
    assert!(
        reply["text"].as_str().unwrap_or_default().contains("INC-1"),
        "declared: {reply}"
    );
    let incident = h
        .app
        .app
        .store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.title, stored_form(Field::Title, title));

    let mut expected = Vec::new();
    for (i, typed) in CORPUS.iter().enumerate() {
        match i % 4 {
            0 => {
                h.slash(&format!("update INC-1 {typed}")).await;
            }
            1 => {
                h.mention(&format!("EvHostile{i}"), &format!("update INC-1 {typed}"))
                    .await
            }
            2 => h.form_update(i, typed).await,
            _ => {
                let out = h.cli(&["incident", "update", "1", typed]);
                assert!(
                    out.status.success(),
                    "cli update: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_terminal_safe(&String::from_utf8_lossy(&out.stdout));
            }
        }
        expected.push(stored_form(Field::Update, typed));
    }
    h.settle().await;

    let stored = h.stored_texts(EntryKind::Update).await;
    for want in &expected {
        assert!(
            stored.iter().any(|s| s.contains(want.as_str())),
            "the update {want:?} is stored as typed; stored: {stored:#?}"
        );
    }

    // What the terminal shows.
    let shown = h.cli(&["incident", "show", "1"]);
    assert!(shown.status.success());
    assert_terminal_safe(&String::from_utf8_lossy(&shown.stdout));

    // Every payload sent to Slack, every slash reply and every webhook notice.
    let calls = h.slack.calls();
    assert!(calls.len() > 10, "Slack was called: {}", calls.len());
    for call in &calls {
        assert_slack_payload_safe(&call.method, &call.body);
    }
    for reply in h.replies.lock().unwrap().iter() {
        assert_slack_payload_safe("slash reply", reply);
    }
    let notices = h.hooks.accepted();
    assert!(!notices.is_empty(), "webhook notices were sent");
    for notice in &notices {
        assert_slack_text_safe("webhook notice", &notice.text);
    }

    // HTTP: the API returns the stored text; the post-mortem page escapes it.
    let api: Value = h
        .app
        .get("/api/incidents/1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        api.pointer("/title").and_then(Value::as_str),
        Some(incident.title.as_str()),
        "{api}"
    );
    let page = h
        .app
        .get("/incidents/INC-1/postmortem.html")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert"), "HTML is escaped");
    assert!(!page.contains("<b> down"), "HTML is escaped");
    assert_no_controls("post-mortem page", &page);
}

async fn oversized_and_nul_text_is_refused_everywhere_and_stores_nothing(backend: Backend) {
    let h = harness(backend).await;
    h.slash("declare sev1 Checkout API returns 502").await;
    h.settle().await;
    let before = h.stored_texts(EntryKind::Update).await.len();
    let huge = "x".repeat(10_000);

    let reply = h.slash(&format!("update INC-1 {huge}")).await;
    let text = reply["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("10,000 characters") && text.contains("4,000"),
        "a sentence naming the limit: {text}"
    );
    assert_eq!(reply["response_type"], "ephemeral");

    let out = h.cli(&["incident", "update", "1", &huge]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the limit is 4,000"), "{err}");

    // The OS refuses a NUL in argv before firebreak sees it (and `Command::output` fails
    // before running it); the form is the surface that can carry one.
    let payload = json!({
        "type": "view_submission", "user": { "id": USER, "username": "alice" }, "team": { "id": "T0" },
        "trigger_id": "nul.1",
        "view": { "id": "VNUL", "callback_id": "fb_update", "private_metadata": format!("1:{ROOM}"),
                  "state": { "values": { "text": { "text": { "type": "plain_text_input", "value": "before\u{0}after" } } } } }
    });
    let resp = h.send.interaction(payload).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["response_action"], "errors", "{body}");
    assert!(
        body["errors"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("NUL"),
        "{body}"
    );

    let form = json!({
        "type": "view_submission", "user": { "id": USER, "username": "alice" }, "team": { "id": "T0" },
        "trigger_id": "big.1",
        "view": { "id": "VBIG", "callback_id": "fb_update", "private_metadata": format!("1:{ROOM}"),
                  "state": { "values": { "text": { "text": { "type": "plain_text_input", "value": huge } } } } }
    });
    let body: Value = h.send.interaction(form).await.json().await.unwrap();
    assert_eq!(body["response_action"], "errors", "{body}");

    h.settle().await;
    assert_eq!(
        h.stored_texts(EntryKind::Update).await.len(),
        before,
        "nothing refused was stored"
    );
    for notice in h.hooks.accepted() {
        assert!(notice.text.len() < 20_000, "no huge notice went out");
    }
}

/// Terminal output carries no escape sequences or other control characters.
fn assert_terminal_safe(out: &str) {
    assert_no_controls("terminal output", out);
}

fn assert_no_controls(what: &str, s: &str) {
    let bad: Vec<char> = s
        .chars()
        .filter(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what} has control characters {bad:?}: {s:?}"
    );
}

/// Walks a Slack payload: every string is checked for controls and live mentions, every
/// `blocks` array against Block Kit limits, every `text` against the message limit.
fn assert_slack_payload_safe(what: &str, body: &Value) {
    let body = expand_json_strings(body);
    if let Some(blocks) = body.get("blocks") {
        assert_blocks_within_limits(what, blocks);
    }
    if let Some(text) = body.get("text").and_then(Value::as_str) {
        assert!(
            text.chars().count() <= 40_000,
            "{what}: text over 40,000 characters"
        );
    }
    if let Some(topic) = body.get("topic").and_then(Value::as_str) {
        assert!(
            topic.chars().count() <= 250,
            "{what}: topic over 250: {topic}"
        );
    }
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        assert!(
            name.len() <= 80
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
            "{what}: channel name {name:?}"
        );
    }
    walk_strings(&body, &mut |s, plain| {
        if plain {
            // Slack never parses a plain_text object: markup there is shown as typed.
            assert_no_controls(what, s);
        } else {
            assert_slack_text_safe(what, s);
        }
    });
}

/// Form-encoded Web API calls carry `blocks` and `view` as JSON strings.
fn expand_json_strings(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with('[') || s.starts_with('{') => {
            serde_json::from_str(s).unwrap_or_else(|_| v.clone())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expand_json_strings(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(expand_json_strings).collect()),
        other => other.clone(),
    }
}

/// Calls `f` with every string and whether it is the text of a `plain_text` object.
fn walk_strings(v: &Value, f: &mut impl FnMut(&str, bool)) {
    match v {
        Value::String(s) => f(s, false),
        Value::Array(items) => items.iter().for_each(|i| walk_strings(i, f)),
        Value::Object(map) if map.get("type") == Some(&json!("plain_text")) => {
            if let Some(text) = map.get("text").and_then(Value::as_str) {
                f(text, true);
            }
        }
        Value::Object(map) => map.values().for_each(|i| walk_strings(i, f)),
        _ => {}
    }
}

/// No control characters, and every `<…>` is one the bot built: a date, a channel it
/// links, or a mention of the person who acted (`USER`).
fn assert_slack_text_safe(what: &str, s: &str) {
    assert_no_controls(what, s);
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        let tail = &rest[start + 1..];
        let end = tail.find('>').unwrap_or(tail.len());
        let token = &tail[..end];
        let intended = token.starts_with("!date^")
            || token == format!("@{USER}")
            || (token.starts_with('#') && !token.contains("C0GENERAL"))
            || token.starts_with("http://127.0.0.1");
        assert!(
            intended,
            "{what}: a live <{token}> the bot did not intend, in {s:?}"
        );
        rest = &tail[end..];
    }
}

fn assert_blocks_within_limits(what: &str, blocks: &Value) {
    let Some(blocks) = blocks.as_array() else {
        return;
    };
    assert!(blocks.len() <= 50, "{what}: {} blocks", blocks.len());
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for block in blocks {
        match block["type"].as_str() {
            Some("header") => assert!(
                chars(&block["text"]["text"]) <= 150,
                "{what}: header over 150: {block}"
            ),
            Some("section") => {
                assert!(
                    chars(&block["text"]["text"]) <= 3_000,
                    "{what}: section over 3,000"
                );
                let fields = block["fields"].as_array().cloned().unwrap_or_default();
                assert!(fields.len() <= 10, "{what}: more than 10 fields");
                for f in fields {
                    assert!(chars(&f["text"]) <= 2_000, "{what}: field over 2,000");
                }
            }
            Some("context") => {
                for e in block["elements"].as_array().cloned().unwrap_or_default() {
                    assert!(
                        chars(&e["text"]) <= 3_000,
                        "{what}: context element too long"
                    );
                }
            }
            _ => {}
        }
    }
}
