//! Unit tests for [`super`] (`planner.rs`).

use super::*;
use crate::chat::records::notice_owed;
use crate::chat::slack::blocks::tests::incident;

fn planner(sev1: &[&str]) -> SlackPlanner {
    let mut config = SlackConfig::default();
    config.announce.sev1 = sev1.iter().map(|c| c.to_string()).collect();
    SlackPlanner {
        config,
        public_url: None,
        pacing: None,
    }
}

fn decoded(e: &NewEffect) -> SlackEffect {
    serde_json::from_value(e.payload.clone()).unwrap()
}

#[test]
fn a_declaration_posts_in_each_announcement_channel_once_and_counts_them() {
    let inc = incident("Checkout down");
    let alice = Actor::new(Source::Slack, "U0ALICE", "alice");
    let p = planner(&["C_A", "C_B", "C_A"]);
    let plan = p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap();
    assert_eq!(plan.len(), 3, "two notices and the channel, no fan-out");
    let fan_out_key = format!("slack.sync_notices:{}:v3:declared", inc.id);
    for (notice, channel) in plan[..2].iter().zip(["C_A", "C_B"]) {
        assert_eq!(
            decoded(notice),
            SlackEffect::Notice {
                incident_id: inc.id.clone(),
                channel: channel.into(),
                announce: true,
                fresh: true
            }
        );
        assert_eq!(
            notice.idempotency_key,
            format!("{fan_out_key}:{channel}"),
            "the key a fan-out gives it"
        );
        assert_eq!(
            notice.ordering_key,
            Some(format!("slack:{}:notice:{channel}", inc.id))
        );
        assert_eq!(
            notice.records,
            vec![notice_owed::<SlackEffects>(&inc.id, channel)],
            "owed in the declaring transaction, so a later change edits or posts it"
        );
    }
    assert_eq!(
        plan[0].audience,
        Some(Audience::Channels {
            platform: PLATFORM,
            count: 2
        })
    );
    assert_eq!(plan[1].audience, None, "counted once");
    assert_eq!(
        decoded(&plan[2]),
        SlackEffect::SyncChannel {
            incident_id: inc.id.clone(),
            invite: vec!["U0ALICE".into()],
            fresh: true
        }
    );
    let again = p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap();
    assert_eq!(
        plan, again,
        "keys come from content: planning twice is one effect"
    );
    let quiet = planner(&[]).plan(&inc, &IncidentEvent::Declared, &alice);
    assert_eq!(
        quiet.unwrap().len(),
        1,
        "no announcement channel: the room only"
    );
}

#[test]
fn a_severity_change_fans_out_to_edit_notices_elsewhere_and_posts_new_ones() {
    let inc = incident("Checkout down");
    let event = IncidentEvent::SeverityChanged {
        from: crate::incident::model::Severity::Sev2,
    };
    let plan = planner(&["C_A"])
        .plan(&inc, &event, &Actor::system())
        .unwrap();
    let fan_out = plan.iter().find(|e| e.kind == SYNC_NOTICES).unwrap();
    assert_eq!(
        fan_out.audience,
        Some(Audience::Channels {
            platform: PLATFORM,
            count: 1
        })
    );
    let notice = plan.iter().find(|e| e.kind == NOTICE).unwrap();
    assert_eq!(
        notice.idempotency_key,
        format!("{}:C_A", fan_out.idempotency_key)
    );
    assert_eq!(notice.records.len(), 1);
}

#[test]
fn an_update_replies_under_every_notice_posted_without_new_ones() {
    let inc = incident("Checkout down");
    let event = IncidentEvent::Update {
        text: "Rolled back".into(),
    };
    let plan = planner(&["C_A"])
        .plan(&inc, &event, &Actor::system())
        .unwrap();
    let fan_out = plan.iter().find(|e| e.kind == SYNC_NOTICES).unwrap();
    assert_eq!(
        fan_out.audience,
        Some(Audience::Posted { platform: PLATFORM })
    );
    assert!(matches!(
        decoded(fan_out),
        SlackEffect::SyncNotices { ref channels, reply: Some(ref r), .. }
            if channels.is_empty() && r == "📣 Rolled back"
    ));
}

#[test]
fn intents_become_channel_effects_keyed_by_the_callers_key() {
    let id = IncidentId("i1".into());
    let p = planner(&[]);
    let progress = Intent::Progress {
        key: "freeze".into(),
        text: "3/8 repositories".into(),
    };
    let plan = p.plan_intent(&id, &progress, "freeze:g7:3");
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].kind, PROGRESS);
    assert_eq!(plan[0].idempotency_key, "slack.progress:i1:freeze:g7:3");
    assert_eq!(plan[0].ordering_key.as_deref(), Some("slack:i1:channel"));
    assert_eq!(plan, p.plan_intent(&id, &progress, "freeze:g7:3"));
    let post = p.plan_intent(&id, &Intent::RoomPost { text: "hi".into() }, "k");
    assert_eq!(
        decoded(&post[0]),
        SlackEffect::ChannelPost {
            incident_id: id,
            text: "hi".into()
        }
    );
}

/// When each effect of `plan` is due, in seconds after `t0` (rounded), by kind; `None`: at once.
fn due_after(plan: &[NewEffect], t0: chrono::DateTime<chrono::Utc>) -> Vec<(String, Option<i64>)> {
    plan.iter()
        .map(|e| {
            let secs = e
                .not_before
                .map(|at| ((at - t0).num_milliseconds() + 500) / 1000);
            (e.kind.clone(), secs)
        })
        .collect()
}

#[test]
fn under_a_storm_a_declarations_first_calls_are_queued_for_their_own_booked_slots() {
    let alice = Actor::new(Source::Slack, "U0ALICE", "alice");
    let mut p = planner(&["C_A"]);
    p.pacing = Some(SlackPacing::default());
    let t0 = chrono::Utc::now();
    let plans: Vec<Vec<NewEffect>> = (0..23)
        .map(|_| {
            let inc = incident("Checkout down");
            p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap()
        })
        .collect();
    // Three posts a second in a channel, in a burst: the first three notices go at once,
    // the rest a second apart. Tier 2 (`conversations.create`) allows twenty a minute at
    // once, then one every three seconds.
    let at = |i: usize| due_after(&plans[i], t0);
    assert_eq!(at(0), [(NOTICE.into(), None), (SYNC_CHANNEL.into(), None)]);
    assert_eq!(at(2), [(NOTICE.into(), None), (SYNC_CHANNEL.into(), None)]);
    assert_eq!(
        at(3),
        [(NOTICE.into(), Some(1)), (SYNC_CHANNEL.into(), None)]
    );
    assert_eq!(
        at(19),
        [(NOTICE.into(), Some(17)), (SYNC_CHANNEL.into(), None)]
    );
    assert_eq!(
        at(20),
        [(NOTICE.into(), Some(18)), (SYNC_CHANNEL.into(), Some(3))]
    );
    assert_eq!(
        at(22),
        [(NOTICE.into(), Some(20)), (SYNC_CHANNEL.into(), Some(9))]
    );
    // Planning a declaration again (a retry) keeps the slots it booked.
    let inc = incident("Checkout down");
    let first = p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap();
    let again = p.plan(&inc, &IncidentEvent::Declared, &alice).unwrap();
    let slots = |plan: &[NewEffect]| plan.iter().map(|e| e.not_before).collect::<Vec<_>>();
    let (first, again) = (slots(&first), slots(&again));
    for (a, b) in first.iter().zip(&again) {
        let gap = (b.unwrap() - a.unwrap()).num_milliseconds();
        assert!(
            gap.abs() < 100,
            "the same slot, not the next one: {first:?} {again:?}"
        );
    }
    // Later changes are not booked: they edit what exists, and ask when they run.
    let inc = incident("Checkout down");
    let ack = p.plan(&inc, &IncidentEvent::Acknowledged, &alice).unwrap();
    assert!(ack.iter().all(|e| e.not_before.is_none()), "{ack:?}");
}

#[test]
fn a_declaration_that_is_not_committed_gives_its_slots_to_the_next() {
    let alice = Actor::new(Source::Slack, "U0ALICE", "alice");
    let mut p = planner(&["C_A"]);
    p.pacing = Some(SlackPacing::default());
    let t0 = chrono::Utc::now();
    let plan = |p: &SlackPlanner| {
        p.plan(&incident("Checkout down"), &IncidentEvent::Declared, &alice)
            .unwrap()
    };
    for _ in 0..3 {
        plan(&p); // the channel's burst of three posts
    }
    let waits = plan(&p);
    assert_eq!(due_after(&waits, t0)[0], (NOTICE.into(), Some(1)));
    let duplicate = plan(&p);
    assert_eq!(due_after(&duplicate, t0)[0], (NOTICE.into(), Some(2)));
    p.discard(&duplicate);
    assert_eq!(
        due_after(&plan(&p), t0)[0],
        (NOTICE.into(), Some(2)),
        "the duplicate's slot, not the one after it"
    );
    assert_eq!(due_after(&plan(&p), t0)[0], (NOTICE.into(), Some(3)));
}

#[test]
fn without_a_slack_client_in_the_process_nothing_is_booked() {
    let alice = Actor::new(Source::Slack, "U0ALICE", "alice");
    let p = planner(&["C_A"]);
    for _ in 0..30 {
        let plan = p
            .plan(&incident("x"), &IncidentEvent::Declared, &alice)
            .unwrap();
        assert!(plan.iter().all(|e| e.not_before.is_none()), "{plan:?}");
    }
}
