//! Rendering checked against Slack's limits and Block Kit types.

use super::*;
use crate::incident::model::{IncidentId, Severity, Status};
use crate::incident::reply::Reply;

pub(crate) fn incident(title: &str) -> Incident {
    Incident {
        id: IncidentId::new(),
        number: IncidentNumber(42),
        title: title.into(),
        severity: Severity::Sev1,
        status: Status::Investigating,
        drill: false,
        started_at: None,
        detected_at: None,
        declared_at: chrono::Utc::now(),
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        commander: Some("<@U024BE7LH>".into()),
        comms: None,
        scribe: None,
        summary: None,
        last_update_at: None,
        next_update_due: None,
        reminded_due: None,
        declared_by: "alice".into(),
        version: 3,
    }
}

#[test]
fn channel_names_are_slugged_and_bounded() {
    assert_eq!(
        channel_name("inc", &incident("Checkout API returns 502!"), 0),
        "inc-42-checkout-api-returns-502"
    );
    assert_eq!(
        channel_name("inc", &incident("Checkout"), 1),
        "inc-42-checkout-2"
    );
    let long = channel_name("inc", &incident(&"x".repeat(200)), 3);
    assert_eq!(long.len(), 80);
    assert!(long.ends_with("-4"));
}

#[test]
fn mentions() {
    assert_eq!(mention("U024BE7LH"), "<@U024BE7LH>");
    assert_eq!(mention("<@U024BE7LH|bob>"), "<@U024BE7LH>");
    assert_eq!(mention("bob"), "bob");
    assert_eq!(mention("slack:U1"), "<@U1>");
    assert_eq!(mention("cli:carol"), "carol");
    assert_eq!(user_id("slack:U0CAROL").as_deref(), Some("U0CAROL"));
    assert_eq!(user_id("cli:carol"), None);
}

#[test]
fn card_and_modals_are_valid_block_kit() {
    let (_, blocks) = card(&incident("DB down"), Some("Failing over"), None).unwrap();
    let json = serde_json::to_string(&blocks).unwrap();
    assert!(
        json.contains("\"value\":\"42:3\""),
        "buttons carry number and version: {json}"
    );
    assert!(
        notice(&incident("DB down"), Some("C1"), None, None)
            .unwrap()
            .1
            .len()
            == 2
    );
    declare_modal("C1").unwrap();
    update_modal(IncidentNumber(42), "C1").unwrap();
}

fn json_of(text: &str, blocks: &[SlackBlock]) -> Value {
    json!({ "text": text, "blocks": serde_json::to_value(blocks).unwrap() })
}

/// Every `<…>` in the payload's mrkdwn, except dates and channel links.
fn live(payload: &Value) -> Vec<String> {
    crate::chat::slack::validate::mrkdwn_strings(payload)
        .iter()
        .flat_map(|m| {
            crate::chat::slack::validate::live_tokens(m)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.starts_with("<!date^") && !t.starts_with("<#"))
        .collect()
}

const HOSTILE: &str = "<!channel> <!here> <https://evil.example|click> <@U0EVIL> & @here";

#[test]
fn hostile_titles_and_updates_stay_text_in_card_and_notice() {
    let mut inc = incident(HOSTILE);
    inc.declared_by = "<!everyone>".into();
    inc.comms = Some("slack:U0COMMS".into());
    let (text, blocks) = card(&inc, Some(HOSTILE), None).unwrap();
    let payload = json_of(&text, &blocks);
    assert_eq!(live(&payload), ["<@U024BE7LH>", "<@U0COMMS>"], "{payload}");
    let json = payload.to_string();
    assert!(json.contains("&lt;!channel&gt;"), "{json}");
    let (text, blocks) = notice(&inc, Some("C1"), Some(HOSTILE), None).unwrap();
    let payload = json_of(&text, &blocks);
    assert_eq!(live(&payload), ["<@U024BE7LH>"], "{payload}");
    assert!(
        payload["text"].as_str().unwrap().contains("@\u{2060}here"),
        "{payload}"
    );
}

#[test]
fn a_200_character_title_makes_a_valid_header() {
    let title = "t".repeat(199) + "🚀";
    let (text, blocks) = card(&incident(&title), None, None).unwrap();
    let payload = json_of(&text, &blocks);
    assert!(
        crate::chat::slack::validate::message(&payload).is_empty(),
        "{:?}",
        crate::chat::slack::validate::message(&payload)
    );
    let header = payload["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(mrkdwn::char_count(header), 150);
    assert!(header.ends_with('…'));
    let note = payload["blocks"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    assert!(
        note.contains("(truncated; full text in `firebreak incident show INC-42`)"),
        "{note}"
    );
}

#[test]
fn a_4000_character_update_keeps_every_section_within_3000() {
    let update = "&<".repeat(2_000);
    let inc = incident("DB down");
    for (text, blocks) in [
        card(&inc, Some(&update), Some("https://fb.example/")).unwrap(),
        notice(&inc, Some("C1"), Some(&update), Some("https://fb.example/")).unwrap(),
    ] {
        let payload = json_of(&text, &blocks);
        let problems = crate::chat::slack::validate::message(&payload);
        assert!(problems.is_empty(), "{problems:?}");
        let json = payload.to_string();
        assert!(
            json.contains(
                "(truncated; full text on <https://fb.example/incidents/INC-42/postmortem.html|the INC-42 page>)"
            ),
            "{json}"
        );
        assert!(json.contains("&amp;&lt;…"), "cut between entities: {json}");
    }
}

#[test]
fn the_builder_keeps_to_the_block_count() {
    let mut b = Blocks::message(Some(FullText::new(IncidentNumber(7), None)));
    for i in 0..60 {
        b.section(Mrkdwn::text(&format!("line {i}")));
    }
    let blocks = b.into_json();
    assert_eq!(blocks.len(), 50);
    assert!(blocks[49].to_string().contains("INC-7"));
}

#[test]
fn slash_replies_escape_all_but_the_incidents_own_people() {
    let mut inc = incident(HOSTILE);
    inc.comms = Some("slack:U0COMMS".into());
    let reply = Reply::public(format!(
        "Declared: {HOSTILE}. Commander <@U024BE7LH>, comms slack:U0COMMS, not slack:U0COMMSX or <@U0OTHER>."
    ))
    .with_body(crate::incident::reply::ReplyBody::Incident {
        incident: Box::new(inc),
        timeline: Vec::new(),
    });
    let text = command_response(&reply, None)["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text,
        "Declared: &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click&gt; &lt;@U0EVIL&gt; &amp; @\u{2060}here. \
         Commander <@U024BE7LH>, comms <@U0COMMS>, not slack:U0COMMSX or &lt;@U0OTHER&gt;."
    );
    let help = help_response("No <b>", "declare <title>");
    assert_eq!(help["text"], "No &lt;b&gt;\n```declare &lt;title&gt;```");
    assert_eq!(ephemeral_response("<!here>")["text"], "&lt;!here&gt;");
}

#[test]
fn long_message_texts_are_cut_with_the_note() {
    let full = FullText::new(IncidentNumber(3), None);
    let text = message_text(Mrkdwn::text(&"<".repeat(20_000)), Some(&full));
    assert!(mrkdwn::char_count(&text) <= limit::MESSAGE_TEXT);
    assert!(text.ends_with("…\n(truncated; full text in `firebreak incident show INC-3`)"));
    assert!(!text.contains("&l…"));
}

#[test]
fn topics_stay_within_250() {
    let mut inc = incident("x");
    inc.commander = Some("y".repeat(400));
    assert_eq!(mrkdwn::char_count(&topic(&inc)), limit::TOPIC);
    inc.commander = Some("<!here>".into());
    assert!(topic(&inc).ends_with("commander &lt;!here&gt;"));
}
