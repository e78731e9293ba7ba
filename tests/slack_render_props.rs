//! Property test: random incidents (titles with unicode, emoji, combining marks and Slack
//! markup; updates up to 4,000 characters; random role holders; drill or not; every status
//! and severity) rendered into every Slack message firebreak builds (the card, the notice,
//! the modals, the slash-command replies, the posts and thread replies the planner queues,
//! the topic) and into the webhook notice. Each is checked against Slack's published Block
//! Kit limits by `firebreak::chat::slack::validate`, and for live markup: the only `<…>` in
//! any mrkdwn are mentions of the incident's own people (built from their stored IDs), the
//! incident channel, the bot's dates, and the bot's own link to the full text.

use firebreak::chat::slack::blocks::{self, FullText};
use firebreak::chat::slack::config::SlackConfig;
use firebreak::chat::slack::mrkdwn::{char_count, limit, user_id};
use firebreak::chat::slack::planner::{self, SlackPlanner};
use firebreak::chat::slack::validate;
use firebreak::effects::planner::EffectPlanner;
use firebreak::incident::rules::IncidentEvent;
use firebreak::incident::{
    Actor, Incident, IncidentId, IncidentNumber, Reply, ReplyBody, Severity, Source, Status,
};
use firebreak::notify::{WEBHOOK_TEXT, render_notice};
use proptest::prelude::*;
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://firebreak.example.com";

/// Pieces that stress escaping, counting and truncation.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<!channel>".to_string()),
        Just("<!here>".to_string()),
        Just("<!everyone>".to_string()),
        Just("<https://evil.example|click>".to_string()),
        Just("<@U0EVIL>".to_string()),
        Just("<#C0EVIL>".to_string()),
        Just("<!date^1^{time}|x>".to_string()),
        Just("@here".to_string()),
        Just("&amp;".to_string()),
        Just("&".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("*bold* _it_ `code` ~s~".to_string()),
        Just("👨\u{200d}👩\u{200d}👧\u{200d}👦".to_string()),
        Just("👍🏽".to_string()),
        Just("🇫🇷".to_string()),
        Just("e\u{301}\u{302}".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        "[a-zA-Z0-9 ]{1,40}",
        any::<char>().prop_map(String::from),
    ]
}

fn text(max_chars: usize, max_pieces: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..max_pieces)
        .prop_map(move |parts| parts.concat().chars().take(max_chars).collect())
}

/// A long update: a run of one repeated piece plus random text, up to 4,000 characters.
fn update() -> impl Strategy<Value = String> {
    (piece(), 0usize..4_000, text(4_000, 60)).prop_map(|(p, n, t)| {
        let mut s = p.repeat(n / p.chars().count().max(1) + 1);
        s.push_str(&t);
        s.chars().take(4_000).collect()
    })
}

fn holder() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("slack:U0ALICE1".to_string()),
        Just("U0BOB123".to_string()),
        Just("<@U0CAROL1|carol>".to_string()),
        Just("alice".to_string()),
        Just("cli:root".to_string()),
        Just("<!channel>".to_string()),
        Just("slack:<!here>".to_string()),
        text(60, 6),
    ])
}

prop_compose! {
    fn incident()(
        title in text(200, 30),
        number in 1i64..100_000,
        severity in prop::sample::select(vec![Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4]),
        status in prop::sample::select(Status::ALL.to_vec()),
        drill in any::<bool>(),
        commander in holder(),
        comms in holder(),
        scribe in holder(),
        declared_by in holder(),
        summary in prop::option::of(text(4_000, 40)),
        due in any::<bool>(),
        version in 1i64..1_000_000,
    ) -> Incident {
        let now = chrono::Utc::now();
        Incident {
            id: IncidentId::new(),
            number: IncidentNumber(number),
            title,
            severity,
            status,
            drill,
            started_at: None,
            detected_at: None,
            declared_at: now,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: (status == Status::Resolved).then_some(now),
            commander,
            comms,
            scribe,
            summary,
            last_update_at: None,
            next_update_due: due.then_some(now),
            reminded_due: None,
            declared_by: declared_by.unwrap_or_else(|| "alice".into()),
            version,
        }
    }
}

/// The Slack user IDs the bot may mention for this incident (and `actor`).
fn intended(i: &Incident, actor: Option<&Actor>) -> Vec<String> {
    [&i.commander, &i.comms, &i.scribe]
        .into_iter()
        .flatten()
        .chain([&i.declared_by])
        .chain(actor.map(|a| &a.id))
        .filter_map(|who| user_id(who))
        .collect()
}

/// Asserts every `<…>` in the payload's mrkdwn is one the bot built.
fn assert_only_intended_markup(
    what: &str,
    payload: &Value,
    i: &Incident,
    ids: &[String],
    channel: Option<&str>,
) {
    let page = FullText::new(i.number, Some(PUBLIC_URL)).url().unwrap();
    for m in validate::mrkdwn_strings(payload) {
        for token in validate::live_tokens(&m) {
            let ok = match token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                Some(t) if t.starts_with('@') => ids.iter().any(|id| t == format!("@{id}")),
                Some(t) if t.starts_with('#') => channel.is_some_and(|c| t == format!("#{c}")),
                Some(t) if t.starts_with("!date^") => is_bot_date(t),
                Some(t) if t.starts_with("http") => t == format!("{page}|the {} page", i.number),
                _ => false,
            };
            assert!(
                ok,
                "{what}: live markup the bot did not build: {token:?} in {m:?}"
            );
        }
    }
}

/// `!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC`
fn is_bot_date(t: &str) -> bool {
    let Some(rest) = t.strip_prefix("!date^") else {
        return false;
    };
    let Some((secs, rest)) = rest.split_once('^') else {
        return false;
    };
    let Some(fallback) = rest.strip_prefix("{date_short_pretty} {time}|") else {
        return false;
    };
    secs.bytes().all(|b| b.is_ascii_digit())
        && fallback.len() == "2023-11-14 22:13 UTC".len()
        && fallback.ends_with(" UTC")
        && fallback
            .bytes()
            .all(|b| b.is_ascii_digit() || b" -:UTC".contains(&b))
}

fn assert_valid(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{what} breaks Slack's limits: {problems:#?}"
    );
}

fn blocks_payload(text: String, blocks: Vec<slack_morphism::prelude::SlackBlock>) -> Value {
    json!({ "text": text, "blocks": serde_json::to_value(blocks).unwrap() })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_slack_message_fits_and_carries_no_mention_from_user_text(
        inc in incident(),
        latest in prop::option::of(update()),
        channel in prop::option::of(Just("C0INCIDENT".to_string())),
        public in any::<bool>(),
        slack_actor in any::<bool>(),
    ) {
        let url = public.then_some(PUBLIC_URL);
        let ids = intended(&inc, None);
        let ch = channel.as_deref();

        let (text, card) = blocks::card(&inc, latest.as_deref(), url).unwrap();
        let payload = blocks_payload(text, card);
        assert_valid("card", validate::message(&payload));
        assert_only_intended_markup("card", &payload, &inc, &ids, None);

        let (text, notice) = blocks::notice(&inc, ch, latest.as_deref(), url).unwrap();
        let payload = blocks_payload(text, notice);
        assert_valid("notice", validate::message(&payload));
        assert_only_intended_markup("notice", &payload, &inc, &ids, ch);

        let topic = blocks::topic(&inc);
        prop_assert!(char_count(&topic) <= limit::TOPIC);
        assert_only_intended_markup("topic", &json!({ "text": topic }), &inc, &ids, None);

        for view in [
            blocks::declare_modal("C0ORIGIN").unwrap(),
            blocks::update_modal(inc.number, "C0ORIGIN").unwrap(),
        ] {
            assert_valid("modal", validate::modal(&serde_json::to_value(view).unwrap()));
        }

        // Slash-command replies, in the channel and ephemeral, as the core words them.
        for reply in [
            Reply::public(format!("Declared {}: {}. Next update {}", inc.severity, inc.title, latest.as_deref().unwrap_or(""))),
            Reply::private(format!("Unknown: {}", inc.title)),
        ] {
            let reply = reply.with_body(ReplyBody::Incident { incident: Box::new(inc.clone()), timeline: Vec::new() });
            let payload = blocks::command_response(&reply, None);
            assert_valid("slash reply", validate::message(&payload));
            assert_only_intended_markup("slash reply", &payload, &inc, &ids, None);
        }
        let payload = blocks::help_response(&inc.title, latest.as_deref().unwrap_or("help"));
        assert_valid("help", validate::message(&payload));
        assert_only_intended_markup("help", &payload, &inc, &[], None);
        let payload = blocks::ephemeral_response(&inc.title);
        assert_only_intended_markup("ephemeral", &payload, &inc, &[], None);

        // What the planner queues: posts, thread replies, nudges, ephemeral answers.
        let actor = if slack_actor {
            Actor::new(Source::Slack, "U0ACTOR1", "<@U0ACTOR1>")
        } else {
            Actor::new(Source::Cli, "<!channel>", "<!here> @here")
        };
        let ids = intended(&inc, Some(&actor));
        let mut config = SlackConfig::default();
        config.announce.sev1 = vec!["C0ANNOUNCE".into()];
        let p = SlackPlanner { config, public_url: url.map(str::to_string), pacing: None };
        let mut events = vec![IncidentEvent::Declared, IncidentEvent::Resolved, IncidentEvent::Overdue];
        events.extend(latest.clone().map(|text| IncidentEvent::Update { text }));
        for event in &events {
            for effect in p.plan(&inc, event, &actor).unwrap() {
                for key in ["text", "reply"] {
                    if let Some(text) = effect.payload.get(key).and_then(Value::as_str) {
                        let payload = json!({ "text": text });
                        assert_valid("planned text", validate::message(&payload));
                        assert_only_intended_markup("planned text", &payload, &inc, &ids, None);
                    }
                }
            }
        }
        let answer = planner::ephemeral("C1", "U1", firebreak::chat::slack::mrkdwn::Mrkdwn::text(&inc.title), "k".into());
        let text = answer.payload["text"].as_str().unwrap();
        assert_only_intended_markup("ephemeral effect", &json!({ "text": text }), &inc, &[], None);

        // Webhook notices: the same escaping, within the receivers' 4,000 characters.
        let ids = intended(&inc, None);
        let commander: Vec<String> = inc.commander.iter().filter_map(|c| user_id(c)).collect();
        let declared: Vec<String> = user_id(&inc.declared_by).into_iter().collect();
        for event in &events {
            if let Some(text) = render_notice(&inc, event, url).unwrap() {
                prop_assert!(char_count(&text) <= WEBHOOK_TEXT, "{} characters", char_count(&text));
                let allowed: Vec<String> = commander.iter().chain(&declared).cloned().collect();
                assert_only_intended_markup("webhook", &json!({ "text": text }), &inc, &allowed, None);
                prop_assert!(allowed.iter().all(|a| ids.contains(a)));
            }
        }
    }
}
