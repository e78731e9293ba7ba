//! A burst of signed Slack declarations against the built binary (issue 13): `firebreak
//! serve` as its own process, a fake Slack on a port, 80 declarations sent at once and a
//! quarter of them delivered twice at the same moment (Slack's retry: the same body, a fresh
//! signature, `X-Slack-Retry-Num`). Each is answered, each incident opens once, a retry gets
//! its first delivery's answer (now kept after the answer is sent), and the worker still
//! delivers the burst's effects. And a burst cut short by SIGKILL: every declaration that
//! was answered is there after the restart (SQLite shares commits between waiting commands;
//! nobody may be answered before the commit that holds their incident). On SQLite and
//! Postgres.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::fake_slack::FakeSlack;
use common::process::*;
use common::slack::{SIGNING_SECRET, SLACK_CONFIG, incident_named, unique_command};
use common::*;
use firebreak::chat::slack::verify::sign;

on_both!(
    a_burst_of_declarations_and_their_retries_opens_each_incident_once,
    killed_mid_burst_every_answered_declaration_survives_the_restart,
    a_storm_s_first_slack_calls_are_queued_for_their_slots_not_claimed_to_wait,
);

const DECLARATIONS: usize = 80;

async fn a_burst_of_declarations_and_their_retries_opens_each_incident_once(backend: Backend) {
    let slack = FakeSlack::start().await;
    let cli = Cli::new(backend, SLACK_CONFIG).await;
    cli.ok(&["migrate"]).await;
    let (_serve, base) = serve(&cli, &slack).await;
    let http = reqwest::Client::new();

    let bodies: Vec<String> = (0..DECLARATIONS).map(declaration).collect();
    let deliveries = bodies.iter().enumerate().flat_map(|(i, body)| {
        let copies = if i % 4 == 0 { 2 } else { 1 };
        (0..copies).map(move |retry| (i, body.clone(), retry))
    });
    let sends = deliveries.map(|(i, body, retry)| {
        let (http, url) = (http.clone(), format!("{base}/slack/commands"));
        async move {
            let mut request = signed(&http, &url, body);
            if retry > 0 {
                request = request.header("x-slack-retry-num", retry.to_string());
            }
            let answer = request.send().await.unwrap();
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

/// Under a storm Slack's tiers hold most of a declaration's first calls back (a channel takes
/// about one post a second, `conversations.create` twenty a minute). The planner books each
/// effect's slot and queues it for then, so the worker claims it once, when it can call,
/// instead of claiming it at once only to hear "wait" and write it back (two writes per
/// effect, at the worst moment). Counted by `/metrics`: before the slots were booked, this
/// storm deferred more than fifty first attempts.
async fn a_storm_s_first_slack_calls_are_queued_for_their_slots_not_claimed_to_wait(
    backend: Backend,
) {
    const STORM: usize = 30;
    let slack = FakeSlack::start().await;
    let metrics_port = free_port();
    let config = format!("[server]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n{SLACK_CONFIG}");
    let cli = Cli::new(backend, &config).await;
    cli.ok(&["migrate"]).await;
    let (_serve, base) = serve(&cli, &slack).await;
    let http = reqwest::Client::new();
    let sends = (0..STORM).map(|i| send(&http, &base, i));
    for (i, answer) in futures::future::join_all(sends)
        .await
        .into_iter()
        .enumerate()
    {
        let (status, text) = answer.expect("an answer");
        assert_eq!(status, 200, "declaration {i}: {text}");
    }

    // The twenty-first channel waits for its slot, three seconds on; by then the notices
    // in the shared channels go out a second apart.
    let created = |slack: &FakeSlack| {
        let calls = slack.successful_calls();
        calls
            .iter()
            .filter(|c| c.method == "conversations.create")
            .count()
    };
    assert!(
        eventually(30, || async { created(&slack) > 20 }).await,
        "channels created: {}",
        created(&slack)
    );
    let noticed = slack
        .messages()
        .iter()
        .filter(|m| m.channel == "C_INCIDENTS")
        .count();
    assert!(noticed >= 4, "notices posted in #incidents: {noticed}");

    let page = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let deferred = slack_deferrals(&page);
    assert!(
        deferred <= 5.0,
        "{deferred} Slack attempts were claimed only to be deferred:\n{page}"
    );
}

/// `firebreak_effect_outcomes_total{target="slack",outcome="deferred"}` in a scrape.
fn slack_deferrals(page: &str) -> f64 {
    let lines = page.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the text format parses");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "firebreak_effect_outcomes_total")
        .filter(|s| s.labels.get("target") == Some("slack"))
        .filter(|s| s.labels.get("outcome") == Some("deferred"))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("not a counter"),
        })
        .sum()
}

/// `serve` on a fresh port, with Slack at the fake.
async fn serve(cli: &Cli, slack: &FakeSlack) -> (Serving, String) {
    cli.serve_with_slack(&slack.url).await
}

/// A slash command's POST to `url` with `body`, signed now.
fn signed(http: &reqwest::Client, url: &str, body: String) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            sign(SIGNING_SECRET.as_bytes(), ts, body.as_bytes()),
        )
        .body(body)
}

/// Sends declaration `i`, signed now: its status and text, or `None` if the connection
/// broke (the server was killed).
async fn send(http: &reqwest::Client, base: &str, i: usize) -> Option<(u16, String)> {
    let url = format!("{base}/slack/commands");
    let answer = signed(http, &url, declaration(i)).send().await.ok()?;
    let status = answer.status().as_u16();
    Some((status, answer.text().await.ok()?))
}

async fn killed_mid_burst_every_answered_declaration_survives_the_restart(backend: Backend) {
    const SENT: usize = 160;
    const KILL_AFTER: usize = 40;
    let slack = FakeSlack::start().await;
    let cli = Cli::new(backend, SLACK_CONFIG).await;
    cli.ok(&["migrate"]).await;
    let (mut serving, base) = serve(&cli, &slack).await;
    let http = reqwest::Client::new();

    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sends: Vec<_> = (0..SENT)
        .map(|i| {
            let (http, base, answered) = (http.clone(), base.clone(), answered.clone());
            tokio::spawn(async move {
                let answer = send(&http, &base, i).await;
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                answer
            })
        })
        .collect();
    let enough = eventually(20, || async {
        answered.load(std::sync::atomic::Ordering::SeqCst) >= KILL_AFTER
    })
    .await;
    serving.0.kill().unwrap(); // SIGKILL: no shutdown, no flush
    serving.0.wait().unwrap();
    assert!(enough, "the burst was answered in part before the kill");

    // Declaration i → the incident its answer named.
    let mut promised: HashMap<String, usize> = HashMap::new();
    for (i, task) in sends.into_iter().enumerate() {
        let Some((status, text)) = task.await.unwrap() else {
            continue;
        };
        assert_eq!(status, 200, "declaration {i}: {text}");
        let number = incident_named(&text).unwrap_or_else(|| panic!("no INC-n in {text}"));
        assert_eq!(promised.insert(number.clone(), i), None, "{number} twice");
    }
    assert!(promised.len() >= KILL_AFTER, "{} answered", promised.len());

    let store = cli.db.store().await;
    let saved: HashMap<String, String> = store
        .list_incidents(false, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|inc| (inc.number.to_string(), inc.title))
        .collect();
    for (number, i) in &promised {
        assert_eq!(
            saved.get(number),
            Some(&format!("Burst outage {i}")),
            "{number} was answered to declaration {i} but is not as answered after the kill"
        );
    }
    let last = saved.len();
    store.close().await;

    // The restarted server goes on numbering after what was saved, with no gap.
    let (_serving, base) = serve(&cli, &slack).await;
    let (status, text) = send(&http, &base, SENT).await.expect("an answer");
    assert_eq!(status, 200, "{text}");
    assert_eq!(incident_named(&text), Some(format!("INC-{}", last + 1)));
    let numbers: BTreeSet<i64> = cli
        .db
        .store()
        .await
        .list_incidents(false, 1000)
        .await
        .unwrap()
        .iter()
        .map(|inc| inc.number.0)
        .collect();
    assert_eq!(
        numbers,
        (1..=last as i64 + 1).collect(),
        "incident numbers run without gaps"
    );
}

/// A slash command body as Slack sends it, with its own `trigger_id`.
fn declaration(i: usize) -> String {
    unique_command(
        &format!("declare sev2 Burst outage {i}"),
        &format!("1.2.burst{i}"),
    )
}
