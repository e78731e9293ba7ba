//! Contract test: every Discord REST call firebreak makes, pointed at the validating mock
//! built from Discord's published OpenAPI description (`tests/contracts/mock-api discord
//! PORT`, serving the vendored `tests/contracts/discord.openapi.json`): the declare → update → status → severity → resolve flow through the queue (create
//! channel, create and edit messages, pin), the forum-thread variant, and the calls made
//! outside the queue with serenity's client (bulk-overwrite of the application commands, an
//! interaction callback). Any call the real Discord would reject comes back as a 4xx, which
//! fails the effect for good and this test with it; every answer must parse into
//! serenity's model types. A last test checks that the mock does reject calls Discord
//! would reject.
//!
//! Run by `scripts/contract-tests`, which starts the mock and sets
//! `FIREBREAK_CONTRACT_DISCORD_URL`. Ignored in the plain `cargo test` run, which has no mock.

mod common;

use std::time::Duration;

use common::fake_discord::{ANNOUNCE, FORUM, config_toml, integrations};
use common::*;
use firebreak::chat::discord::api::DiscordApi;
use firebreak::chat::discord::embeds::{self, Embed};
use firebreak::chat::discord::text;
use firebreak::incident::EntryKind;
use serde_json::{Value, json};
use serenity::all::{
    ChannelId, Command, CommandOptionType, CreateCommand, CreateCommandOption,
    CreateInteractionResponse, CreateInteractionResponseMessage, InteractionId,
};

fn contract_url() -> String {
    std::env::var("FIREBREAK_CONTRACT_DISCORD_URL")
        .expect("FIREBREAK_CONTRACT_DISCORD_URL (scripts/contract-tests sets it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the Discord contract mock; run scripts/contract-tests"]
async fn discord_calls_match_the_published_contract() {
    let url = contract_url();
    let config = test_config(&format!("max_attempts = 2\n{}", config_toml()));
    let app = spawn_app_with(Backend::Sqlite, config, integrations(&url), None).await;
    // The longest title and update the core accepts, with text that must never ping: every
    // card, notice and edit must still be within Discord's limits.
    let title: String = format!(
        "Checkout API returns 502 @everyone <@&1> 🚀 {}",
        "x".repeat(200)
    )
    .chars()
    .take(200)
    .collect();
    let long_update: String = "Rolled back deploy <@&4512> & 👍🏽 @here "
        .repeat(200)
        .chars()
        .take(3_990)
        .collect();
    app.ok(&format!("declare sev1 {title}")).await;
    settle(&app).await;
    for line in [
        "ack INC-1".to_string(),
        "update INC-1 Rolled back deploy --next 30m".into(),
        format!("update INC-1 {} --next 30m", long_update.trim_end()),
        "status INC-1 mitigated".into(),
        "severity INC-1 sev2".into(),
        format!("resolve INC-1 {}", long_update.trim_end()),
    ] {
        app.ok(&line).await;
        settle(&app).await;
    }
    assert_accepted(&app, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the Discord contract mock; run scripts/contract-tests"]
async fn forum_threads_match_the_published_contract() {
    let url = contract_url();
    let forum = format!(
        "max_attempts = 2\n[discord]\nforum_channel_id = \"{FORUM}\"\n[discord.announce]\nSEV2 = [\"{}\"]\n",
        ANNOUNCE[0]
    );
    let app = spawn_app_with(
        Backend::Sqlite,
        test_config(&forum),
        integrations(&url),
        None,
    )
    .await;
    app.ok("declare sev2 Search is slow").await;
    settle(&app).await;
    app.ok("update INC-1 Reindexing").await;
    settle(&app).await;
    assert_accepted(&app, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the Discord contract mock; run scripts/contract-tests"]
async fn calls_outside_the_queue_match_the_published_contract() {
    let url = contract_url();
    let secrets = integrations(&url).discord.unwrap();
    let api = DiscordApi::new(&secrets, Duration::from_secs(10)).unwrap();
    let http = api.http();
    let severity = CreateCommandOption::new(CommandOptionType::String, "severity", "How bad")
        .required(true)
        .add_string_choice("SEV1", "sev1")
        .add_string_choice("SEV2", "sev2");
    let declare = CreateCommandOption::new(CommandOptionType::SubCommand, "declare", "Declare")
        .add_sub_option(severity)
        .add_sub_option(
            CreateCommandOption::new(CommandOptionType::String, "title", "What is broken")
                .required(true),
        );
    let commands = vec![
        CreateCommand::new("incident")
            .description("Run an incident")
            .add_option(declare),
        CreateCommand::new("freeze").description("Freeze deploys"),
    ];
    Command::set_global_commands(http, commands.clone())
        .await
        .expect("bulk-overwrite of global commands accepted");
    http.create_global_commands(&commands)
        .await
        .expect("bulk-overwrite accepted through Http too");
    let reply = CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text::content("INC-1 declared @everyone"))
            .allowed_mentions(embeds::allowed_mentions(&[]))
            .ephemeral(true),
    );
    http.create_interaction_response(
        InteractionId::new(1_234_567_890_123_456_789),
        "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpzZWNyZXQ",
        &reply,
        Vec::new(),
    )
    .await
    .expect("interaction callback accepted");
    // A reminder tagging the comms role (allowed_mentions with a role) and an embed at the
    // limits, straight through the queue's client.
    let channel = ChannelId::new(ANNOUNCE[0].parse().unwrap());
    let tagged = embeds::text_message(
        text::role_content("555555555555555555", "overdue"),
        &["555555555555555555".into()],
    );
    api.send_message(channel, &tagged)
        .await
        .expect("a role-tagging message accepted");
    let big = Embed {
        title: "t".repeat(300),
        description: "d".repeat(5_000),
        colour: 1,
        fields: vec![("n".repeat(300), "v".repeat(2_000), false); 3],
        footer: "f".repeat(100),
    }
    .fitted();
    api.send_message(channel, &embeds::embed_message(&big, Vec::new()))
        .await
        .expect("an embed at the limits accepted");
}

/// The mock is no pushover: calls shaped like firebreak's, each broken in one place real
/// Discord checks (a body field's type, an enum inside a referenced component, a path
/// parameter, a missing required field), come back 422 naming what is wrong. This is what
/// makes the tests above mean something, and it shows the vendored, trimmed description kept
/// what validation needs.
#[tokio::test]
#[ignore = "needs the Discord contract mock; run scripts/contract-tests"]
async fn the_mock_rejects_what_discord_would_reject() {
    let url = contract_url();
    let channel = format!("/api/v10/channels/{}", ANNOUNCE[0]);
    let app = "/api/v10/applications/777777777777777777";
    let cases = [
        (
            "POST",
            format!("{channel}/messages"),
            json!({ "content": 5 }),
            "content",
        ),
        (
            "POST",
            format!("{channel}/messages"),
            json!({ "content": "x", "allowed_mentions": { "parse": ["nobody"] } }),
            "allowed_mentions.parse",
        ),
        (
            "PATCH",
            format!("{channel}/messages/1200000000000000002"),
            json!({ "flags": "ephemeral" }),
            "flags",
        ),
        (
            "PUT",
            format!("{channel}/pins/not-a-snowflake"),
            Value::Null,
            "message_id",
        ),
        (
            "PUT",
            format!("{app}/commands"),
            json!([{ "description": "no name" }]),
            "'name'",
        ),
        (
            "POST",
            "/api/v10/interactions/1234567890123456789/aW50ZXJhY3Rpb24/callback".into(),
            json!({ "type": 99 }),
            "type",
        ),
    ];
    let http = reqwest::Client::new();
    for (method, path, body, named) in cases {
        let mut req = http
            .request(method.parse().unwrap(), format!("{url}{path}"))
            .header("Authorization", "Bot contract-token");
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the mock answers");
        let (status, violations) = mock_verdict(&resp);
        assert_eq!(
            status, 422,
            "{method} {path} with {body} was not rejected: {violations}"
        );
        assert!(
            violations.contains(named),
            "{method} {path}: the rejection names {named}: {violations}"
        );
    }
}

/// Nothing failed, the flow made at least `min` effects, and the timeline has no failures.
async fn assert_accepted(app: &TestApp, min: usize) {
    let failed = app.app.store.list_effects(true, 50).await.unwrap();
    assert!(
        failed.is_empty(),
        "Discord rejected calls: {:#?}",
        failed
            .iter()
            .map(|e| (&e.kind, &e.last_error))
            .collect::<Vec<_>>()
    );
    let all = app.app.store.list_effects(false, 100).await.unwrap();
    assert!(
        all.len() >= min,
        "the flow exercised the Discord effects: {}",
        all.len()
    );
    let (_, timeline) = incident_timeline(&app.app.store, 1).await;
    assert!(!timeline.iter().any(|e| e.kind == EntryKind::EffectFailed));
}

async fn settle(app: &TestApp) {
    let idle = queue_idle(&app.app.store, 30).await;
    assert!(idle, "effects did not settle");
}
