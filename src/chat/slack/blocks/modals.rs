//! The declare and update modals.

use serde_json::{Value, json};
use slack_morphism::prelude::SlackView;

use super::*;
use crate::chat::slack::mrkdwn::limit;
use crate::incident::model::IncidentNumber;

/// The modal for a bare `/incident declare`. `origin` is the channel it was typed in.
pub fn declare_modal(origin: &str) -> anyhow::Result<SlackView> {
    let mut b = Blocks::modal();
    let severities: Vec<Value> = ["sev1", "sev2", "sev3", "sev4"]
        .iter()
        .map(|s| b.option(&s.to_uppercase(), s))
        .collect();
    let initial = severities[2].clone();
    b.input(
        "title",
        "What is broken?",
        false,
        Blocks::text_input("title", false, Some(200)),
    );
    b.input(
        "severity",
        "Severity",
        false,
        json!({ "type": "static_select", "action_id": "severity", "options": severities, "initial_option": initial }),
    );
    b.input(
        "description",
        "What do we know so far?",
        true,
        Blocks::text_input("description", true, Some(limit::TEXT_INPUT)),
    );
    b.finish_modal(Modal {
        callback_id: VIEW_DECLARE,
        private_metadata: origin,
        title: "Declare an incident",
        submit: "Declare",
        close: Some("Cancel"),
    })
}

/// The modal behind the card's "Post update" button.
pub fn update_modal(number: IncidentNumber, origin: &str) -> anyhow::Result<SlackView> {
    let mut b = Blocks::modal();
    b.input(
        "text",
        "What changed?",
        false,
        Blocks::text_input("text", true, Some(limit::TEXT_INPUT)),
    );
    b.input(
        "next",
        "Next update in (e.g. 30m)",
        true,
        Blocks::text_input("next", false, None),
    );
    b.finish_modal(Modal {
        callback_id: VIEW_UPDATE,
        private_metadata: &format!("{}:{origin}", number.0),
        title: &format!("Update {number}"),
        submit: "Post",
        close: None,
    })
}
