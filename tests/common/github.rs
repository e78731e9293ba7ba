//! GitHub test helpers: integrations pointed at a fake, and signed webhook deliveries.

use firebreak::app::Integrations;
use firebreak::github::GitHubSecrets;
use firebreak::github::config::GitHubAuth;
use firebreak::github::webhook::sign;

use super::TestApp;

pub const WEBHOOK_SECRET: &str = "test-webhook-secret";

pub fn integrations(api_url: &str) -> Integrations {
    Integrations {
        slack: None,
        discord: None,
        github: Some(GitHubSecrets {
            api_url: api_url.to_string(),
            auth: GitHubAuth::Token("ghp_test".to_string().into()),
            webhook_secrets: vec![
                "rotated-out-secret".to_string().into(),
                WEBHOOK_SECRET.to_string().into(),
            ],
        }),
    }
}

/// `[github]` config for tests: the given scopes, a scaled-down minute for the pacer.
pub fn github_config(repos: &str, minute: &str, extra: &str) -> String {
    format!(
        "[github]\nrepos = [{repos}]\nauto_freeze = [\"SEV1\"]\n{extra}\n[github.pacing]\nminute = \"{minute}\"\n"
    )
}

/// Delivers a webhook with a fresh `X-GitHub-Delivery` id, as GitHub does for each event.
pub async fn deliver(
    app: &TestApp,
    event: &str,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::Response {
    let id = uuid::Uuid::new_v4().to_string();
    deliver_as(app, event, body, signature, &id).await
}

/// Delivers a webhook as delivery `id`; the same id again is a redelivery.
pub async fn deliver_as(
    app: &TestApp,
    event: &str,
    body: &[u8],
    signature: Option<String>,
    id: &str,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(app.url("/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(body.to_vec())
        .send()
        .await
        .expect("webhook request")
}

pub fn signed(body: &[u8]) -> Option<String> {
    Some(sign(WEBHOOK_SECRET, body))
}

/// Applies a chat line as the CLI user `ops`; panics if it fails.
pub async fn run_as_ops(app: &TestApp, line: &str) {
    let cmd = firebreak::incident::command::parse_line(line, Default::default()).unwrap();
    let actor = firebreak::incident::Actor::new(firebreak::incident::Source::Cli, "ops", "ops");
    app.app
        .service
        .apply(cmd, &actor)
        .await
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

/// Waits for the queue to settle and asserts that nothing failed.
pub async fn settle_without_failures(app: &TestApp) {
    assert!(
        super::queue_idle(&app.app.store, 60).await,
        "effects settle"
    );
    let failed = app.app.store.list_effects(true, 20).await.unwrap();
    assert!(
        failed.is_empty(),
        "effects failed: {:?}",
        failed.iter().map(|e| &e.last_error).collect::<Vec<_>>()
    );
}
