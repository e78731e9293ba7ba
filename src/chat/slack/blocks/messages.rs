//! The incident's messages: the pinned card in its channel and the company-wide notice.

use slack_morphism::prelude::SlackBlock;

use super::*;
use crate::chat::slack::mrkdwn::{Mrkdwn, limit};
use crate::incident::model::{Incident, Status};

fn title_line(incident: &Incident) -> String {
    let drill = if incident.drill { "[DRILL] " } else { "" };
    let icon = if incident.status == Status::Resolved {
        "✅"
    } else {
        "🚨"
    };
    format!(
        "{icon} {drill}{} · {} · {}",
        incident.number, incident.severity, incident.title
    )
}

fn role_field(label: &'static str, who: Option<&str>) -> Mrkdwn {
    let mut m = Mrkdwn::markup("*");
    m.push_markup(label).push_markup("*\n");
    m.push(who.map_or(Mrkdwn::markup("unassigned"), Mrkdwn::user));
    m
}

fn labelled(label: &'static str, value: Mrkdwn) -> Mrkdwn {
    let mut m = Mrkdwn::markup("*");
    m.push_markup(label).push_markup("*\n").push(value);
    m
}

/// The pinned card in the incident channel: state, roles, and the action buttons.
/// `public_url` (`server.public_url`) is where a shortened text's full version is linked.
pub fn card(
    incident: &Incident,
    latest_update: Option<&str>,
    public_url: Option<&str>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let n = incident.number;
    let mut b = Blocks::message(Some(FullText::new(n, public_url)));
    let next = incident
        .next_update_due
        .map_or(Mrkdwn::markup("none promised"), Mrkdwn::date);
    b.header(&title_line(incident));
    b.fields(vec![
        labelled("Status", Mrkdwn::text(incident.status.as_str())),
        labelled("Severity", Mrkdwn::text(&incident.severity.to_string())),
        role_field("Commander", incident.commander.as_deref()),
        role_field("Comms", incident.comms.as_deref()),
        role_field("Scribe", incident.scribe.as_deref()),
        labelled("Next update due", next),
    ]);
    if let Some(text) = latest_update {
        b.section(labelled("Latest update", Mrkdwn::text(text)));
    }
    if incident.status.is_open() {
        let value = format!("{}:{}", n.0, incident.version);
        let resolve_title = format!("Resolve {n}?");
        b.actions(
            "fb_card_actions",
            vec![
                Button {
                    action_id: ACTION_ACK,
                    text: "Acknowledge",
                    value: value.clone(),
                    style: None,
                    confirm: None,
                },
                Button {
                    action_id: ACTION_UPDATE,
                    text: "Post update",
                    value: value.clone(),
                    style: None,
                    confirm: None,
                },
                Button {
                    action_id: ACTION_RESOLVE,
                    text: "Resolve",
                    value,
                    style: Some("danger"),
                    confirm: Some(Confirm {
                        title: &resolve_title,
                        text: "This closes the incident and lifts what it started.",
                        confirm: "Resolve",
                        deny: "Cancel",
                    }),
                },
            ],
        );
    }
    let mut declared = Mrkdwn::markup("Declared ");
    declared
        .push(Mrkdwn::date(incident.declared_at))
        .push_markup(" by ")
        .push(Mrkdwn::user(&incident.declared_by))
        .push_markup(" · firebreak");
    b.context(vec![declared]);
    b.finish(Mrkdwn::text(&title_line(incident)))
}

/// Room for the notice's title line: any title the core accepts (200 characters), even if
/// every character is escaped to an entity; only longer rows stored before that limit are cut.
const NOTICE_TITLE: usize = 1_200;

/// The company-wide notice: always the current state, edited in place as things change.
/// A long update is shortened so the whole notice fits one section.
pub fn notice(
    incident: &Incident,
    channel_id: Option<&str>,
    latest_update: Option<&str>,
    public_url: Option<&str>,
) -> anyhow::Result<(String, Vec<SlackBlock>)> {
    let mut b = Blocks::message(Some(FullText::new(incident.number, public_url)));
    let commander = incident
        .commander
        .as_deref()
        .map_or(Mrkdwn::markup("unassigned"), Mrkdwn::user);
    let mut title = Mrkdwn::markup("*");
    title
        .push(b.fit(Mrkdwn::text(&title_line(incident)), NOTICE_TITLE))
        .push_markup("*");
    let mut status = Mrkdwn::markup("Status: *");
    status
        .push_text(incident.status.as_str())
        .push_markup("* · Commander: ")
        .push(commander);
    let mut lines = vec![title, status];
    if let Some(channel) = channel_id {
        let mut follow = Mrkdwn::markup("Follow along in ");
        follow.push(Mrkdwn::channel(channel));
        lines.push(follow);
    }
    let drill = incident
        .drill
        .then(|| Mrkdwn::markup("_This is a drill: nothing is broken._"));
    if let Some(text) = latest_update {
        let fixed: usize = lines.iter().map(|l| l.char_count() + 1).sum::<usize>()
            + drill.as_ref().map_or(0, |d| d.char_count() + 1);
        let label = Mrkdwn::markup("Latest update: ");
        let room = limit::SECTION_TEXT.saturating_sub(fixed + label.char_count());
        let text = b.fit(Mrkdwn::text(text), room);
        lines.push(Mrkdwn::concat([label, text]));
    }
    lines.extend(drill);
    b.section(Mrkdwn::join(lines, "\n"));
    let mut declared = Mrkdwn::markup("Declared ");
    declared
        .push(Mrkdwn::date(incident.declared_at))
        .push_markup(" · updates in the thread");
    b.context(vec![declared]);
    b.finish(Mrkdwn::text(&title_line(incident)))
}
