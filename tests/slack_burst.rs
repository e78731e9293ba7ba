//! A burst of signed Slack declarations against the built binary (issue 13): `firebreak
//! serve` as its own process, a fake Slack on a port, 80 declarations sent at once and a
//! quarter of them delivered twice at the same moment (Slack's retry: the same body, a fresh
//! signature, `X-Slack-Retry-Num`). Each is answered, each incident opens once, a retry gets
//! its first delivery's answer (now kept after the answer is sent), and the worker still
//! delivers the burst's effects. On SQLite and Postgres.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;

use common::fake_slack::FakeSlack;
use common::process::*;
use common::slack::SLACK_CONFIG;
use common::*;
use firebreak::chat::slack::verify::sign;

on_both!(a_burst_of_declarations_and_their_retries_opens_each_incident_once);

const SECRET: &str = "burst-secret";
const DECLARATIONS: usize = 80;

async fn a_burst_of_declarations_and_their_retries_opens_each_incident_once(backend: Backend) {
    let slack = FakeSlack::start().await;
    let cli = Cli::new(backend, SLACK_CONFIG).await;
    cli.ok(&["migrate"]).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _serve = Serving(
        cli.command(&["serve"])
            .env("FIREBREAK_LISTEN", format!("127.0.0.1:{port}"))
            .env("SLACK_SIGNING_SECRET", SECRET)
            .env("SLACK_BOT_TOKEN", "xoxb-burst")
            .env("SLACK_API_URL", &slack.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    assert!(answers_health(&http, &base).await, "serve answers");

    let bodies: Vec<String> = (0..DECLARATIONS).map(declaration).collect();
    let deliveries = bodies.iter().enumerate().flat_map(|(i, body)| {
        let copies = if i % 4 == 0 { 2 } else { 1 };
        (0..copies).map(move |retry| (i, body.clone(), retry))
    });
    let sends = deliveries.map(|(i, body, retry)| {
        let (http, url) = (http.clone(), format!("{base}/slack/commands"));
        async move {
            let ts = chrono::Utc::now().timestamp();
            let mut request = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header(
                    "x-slack-signature",
                    sign(SECRET.as_bytes(), ts, body.as_bytes()),
                );
            if retry > 0 {
                request = request.header("x-slack-retry-num", retry.to_string());
            }
            let answer = request.body(body).send().await.unwrap();
            (i, answer.status().as_u16(), answer.text().await.unwrap())
        }
    });
    let answers = futures::future::join_all(sends).await;

    let mut numbers: HashMap<usize, BTreeSet<String>> = HashMap::new();
    for (i, status, text) in &answers {
        assert_eq!(*status, 200, "declaration {i}: {text}");
        let number = incident_named(text).unwrap_or_else(|| panic!("no INC-n in {text}"));
        numbers.entry(*i).or_default().insert(number);
    }
    for (i, named) in &numbers {
        assert_eq!(
            named.len(),
            1,
            "declaration {i} and its retry differ: {named:?}"
        );
    }
    let distinct: BTreeSet<&String> = numbers.values().flatten().collect();
    assert_eq!(distinct.len(), DECLARATIONS, "one incident per declaration");

    // Exactly 80 incidents: the last number exists, the next does not.
    cli.ok(&["incident", "show", &DECLARATIONS.to_string()])
        .await;
    let past = cli
        .run(&["incident", "show", &(DECLARATIONS + 1).to_string()])
        .await;
    assert!(!past.status.success(), "INC-{} exists", DECLARATIONS + 1);

    // The worker keeps going under the burst: every incident's channel and the first
    // notices (Slack allows a channel about one post a second) reach Slack.
    let posted = eventually(20, || async {
        let created = slack
            .successful_calls()
            .iter()
            .filter(|c| c.method == "conversations.create")
            .count();
        created >= 20
    })
    .await;
    assert!(posted, "channels created: {:?}", slack.methods());
}

/// A slash command body as Slack sends it, with its own `trigger_id`.
fn declaration(i: usize) -> String {
    serde_urlencoded::to_string([
        ("team_id", "T0001"),
        ("channel_id", "C_ORIGIN"),
        ("user_id", "U0ALICE"),
        ("user_name", "alice"),
        ("command", "/incident"),
        ("text", &format!("declare sev2 Burst outage {i}")),
        ("trigger_id", &format!("1.2.burst{i}")),
    ])
    .unwrap()
}

/// `INC-7` out of an answer's text.
fn incident_named(text: &str) -> Option<String> {
    let at = text.find("INC-")?;
    let digits: String = text[at + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("INC-{digits}"))
}
