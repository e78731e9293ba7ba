//! Contract test for the inbound half of the Discord adapter, against the validating mock
//! built from Discord's published OpenAPI description (`tests/contracts/mock-api discord
//! PORT`, serving the vendored `tests/contracts/discord.openapi.json`), through serenity's
//! HTTP client:
//!
//! - `discord register`'s bulk overwrite of the application commands, global and per
//!   server, must be accepted (the mock rejects a command list Discord would reject);
//! - every kind of interaction response the endpoint produces (a public reply with the
//!   incident embed and buttons, an ephemeral error, help, a list, both modals) is posted to
//!   the interaction callback endpoint and must be accepted as Discord's schema defines it.
//!
//! Run by `scripts/contract-tests`, which starts the mock and sets
//! `FIREBREAK_CONTRACT_DISCORD_URL`. Ignored in the plain `cargo test` run, which has no mock.

mod common;

use common::discord::{self as dc, DiscordSender, bob};
use common::*;
use firebreak::chat::discord::register;
use serde_json::{Value, json};
use serenity::model::id::{GuildId, InteractionId};

fn mock_url() -> String {
    std::env::var("FIREBREAK_CONTRACT_DISCORD_URL")
        .expect("FIREBREAK_CONTRACT_DISCORD_URL (scripts/contract-tests sets it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Discord contract mock; run scripts/contract-tests"]
async fn registering_commands_matches_the_published_contract() {
    let http = register::http(&dc::secrets(&mock_url())).expect("a client");
    let guild = GuildId::new(dc::GUILD_ID.parse().unwrap());
    for scope in [Some(guild), None] {
        // The mock's generated list never equals ours, so this always overwrites: the
        // overwrite is what is checked.
        let done = register::register(&http, scope).await;
        assert!(done.is_ok(), "{scope:?}: {done:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Discord contract mock; run scripts/contract-tests"]
async fn interaction_responses_match_the_published_contract() {
    let url = mock_url();
    let app = spawn_app_with(
        Backend::Sqlite,
        test_config(""),
        dc::integrations("http://127.0.0.1:9"),
        None,
    )
    .await;
    let send = DiscordSender::new(&app);
    let channel = "1600000000000000001";
    let long = "@everyone <@&1> **x** ".repeat(150);
    let declared = send
        .ok(&dc::incident(
            "declare",
            &[("title", 3, json!("Checkout returns 502 @here"))],
            channel,
            &bob(),
        ))
        .await;
    let update_id = declared["data"]["components"][0]["components"][1]["custom_id"]
        .as_str()
        .expect("a Post update button")
        .to_string();
    let mut responses: Vec<(&str, Value)> = vec![("declared", declared)];
    for (what, payload) in [
        (
            "long update",
            dc::incident(
                "update",
                &[("text", 3, json!(long)), ("incident", 4, json!(1))],
                channel,
                &bob(),
            ),
        ),
        ("list", dc::incident("list", &[], channel, &bob())),
        ("help", dc::incident("help", &[], channel, &bob())),
        (
            "error",
            dc::incident("note", &[("text", 3, json!("x"))], channel, &bob()),
        ),
        (
            "declare form",
            dc::incident("declare", &[], channel, &bob()),
        ),
        ("update form", dc::button(&update_id, channel, &bob())),
    ] {
        responses.push((what, send.ok(&payload).await));
    }
    let http = register::http(&dc::secrets(&url)).expect("a client");
    for (i, (what, response)) in responses.iter().enumerate() {
        let id = InteractionId::new(1_300_000_000_000_000_000 + i as u64);
        let posted = http
            .create_interaction_response(id, "aW50ZXJhY3Rpb24tdG9rZW4", response, Vec::new())
            .await;
        assert!(posted.is_ok(), "{what}: {posted:?}\n{response}");
    }
}
