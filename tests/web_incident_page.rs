//! The incident page (`GET /incidents/{n}`, issue 12) beyond the timeline: the merge freeze
//! an incident holds, per repository, with its holds and a failing repository's error (one
//! of two repositories refused by a fake GitHub), not another incident's freeze; links to
//! the incident's Slack channel and Discord channel that open the apps, with hostile ids
//! shown as escaped text and never put in a URL, and no link for notices. On both
//! databases.

mod common;

use std::time::Duration;

use common::fake_github::{FakeGitHub, Limits};
use common::github::{github_config, integrations};
use common::*;
use firebreak::incident::IncidentNumber;
use firebreak::store::ChatRef;
use reqwest::StatusCode;
use scraper::{Html, Selector};

on_both!(
    a_frozen_incident_shows_its_repositories_holds_and_errors,
    the_page_links_the_incident_s_chat_channels_escaped,
);

/// A client with a read-only token.
async fn reader(t: &TestApp) -> reqwest::Client {
    bearer_client(&create_token(&t.app.store, "reader", "read").await)
}

/// The page as a reader sees it.
async fn page(t: &TestApp, reader: &reqwest::Client, path: &str) -> String {
    let resp = reader.get(t.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

/// The text of each element `css` selects, whitespace collapsed.
fn texts(html: &str, css: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(css).unwrap();
    doc.select(&sel)
        .map(|e| e.text().collect::<String>())
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn attrs(html: &str, css: &str, attr: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(css).unwrap();
    doc.select(&sel)
        .filter_map(|e| e.value().attr(attr).map(str::to_string))
        .collect()
}

async fn a_frozen_incident_shows_its_repositories_holds_and_errors(backend: Backend) {
    let gh = FakeGitHub::start(Limits {
        minute: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    gh.add_repo("acme/api", "main");
    gh.add_repo("acme/web", "main");
    gh.add_repo("beta/site", "main");
    // GitHub refuses acme/web's rulesets for good: its freeze cannot be applied.
    gh.fail("GET", "/repos/acme/web/rulesets", 403);
    let config = test_config(&format!(
        "[incident]\nreminder_interval = \"1h\"\n{}",
        github_config("\"acme/api\", \"acme/web\"", "100ms", "")
    ));
    let t = spawn_app_with(backend, config, integrations(&gh.url), None).await;
    // SEV1 freezes the configured repositories on INC-1's hold; INC-2 freezes another
    // repository by hand, which INC-1's page must not show.
    t.ok("declare sev1 Checkout <b>down</b>").await;
    t.ok("declare sev2 Search slow").await;
    t.ok("freeze INC-2 beta/site --reason index rebuild").await;
    let store = &t.app.store;
    let settled = eventually(60, || async {
        let targets = store.freeze_targets().await.unwrap();
        let api = targets
            .iter()
            .any(|x| x.target == "acme/api" && x.actual == "active");
        let web = targets
            .iter()
            .any(|x| x.target == "acme/web" && x.last_error.is_some());
        let other = targets
            .iter()
            .any(|x| x.target == "beta/site" && x.actual == "active");
        api && web && other
    })
    .await;
    assert!(settled, "{:?}", store.freeze_targets().await.unwrap());

    let r = reader(&t).await;
    let html = page(&t, &r, "/incidents/INC-1").await;
    let repos = texts(&html, "ul.repos > li.repo");
    assert_eq!(repos.len(), 2, "{repos:?}");
    // The failing repository comes first, with its error as a sentence.
    let (web, api) = (&repos[0], &repos[1]);
    assert!(web.starts_with("acme/web: wanted frozen"), "{web}");
    assert!(
        web.contains("Failing (permanent):") && web.contains("403"),
        "{web}"
    );
    assert!(
        api.starts_with("acme/api: wanted frozen, actual active (blocks merges)"),
        "{api}"
    );
    assert!(
        !api.contains("Failing") && !api.contains("Retrying"),
        "{api}"
    );
    for repo in [web, api] {
        assert!(
            repo.contains("held by INC-1 (SEV1 Checkout <b>down</b>)"),
            "{repo}"
        );
        assert!(repo.contains(" since ") && repo.contains(" UTC"), "{repo}");
        assert!(
            !repo.contains("[SEV1]"),
            "no reason repeating the headline: {repo}"
        );
    }
    assert!(!html.contains("<b>down"), "the title is escaped: {html}");
    assert!(
        !html.contains("beta/site"),
        "another incident's freeze: {html}"
    );
    let links = attrs(&html, "ul.repos a", "href");
    assert!(links.iter().all(|l| l == "/incidents/INC-1"), "{links:?}");
    assert!(attrs(&html, "a", "href").contains(&"/freezes".to_string()));

    // INC-2 shows its own repository and hold, with its reason.
    let html = page(&t, &r, "/incidents/INC-2").await;
    let repos = texts(&html, "ul.repos > li.repo");
    assert_eq!(repos.len(), 1, "{repos:?}");
    assert!(
        repos[0].starts_with("beta/site: wanted frozen"),
        "{repos:?}"
    );
    assert!(repos[0].contains("index rebuild"), "{repos:?}");

    // An incident without a freeze says so.
    t.ok("declare sev3 Typo on the pricing page").await;
    let html = page(&t, &r, "/incidents/INC-3").await;
    assert!(
        html.contains("This incident holds no merge freeze."),
        "{html}"
    );
    assert!(texts(&html, "ul.repos > li").is_empty());
}

async fn the_page_links_the_incident_s_chat_channels_escaped(backend: Backend) {
    let config = test_config(
        "[discord]\nguild_id = \"4242\"\n\
         [web.slack_signin]\nclient_id = \"1.2\"\nteam_id = \"T0TEAM\"\n",
    );
    let t = spawn_app(backend, config).await;
    t.ok("declare sev2 Queue backlog").await;
    t.ok("declare sev2 Other incident").await;
    let store = &t.app.store;
    let one = store
        .incident_by_number(IncidentNumber(1))
        .await
        .unwrap()
        .unwrap();
    let other = store
        .incident_by_number(IncidentNumber(2))
        .await
        .unwrap()
        .unwrap();
    let put =
        |incident: &firebreak::incident::Incident, platform: &str, role: &str, channel: &str| {
            ChatRef {
                incident_id: incident.id.0.clone(),
                platform: platform.into(),
                role: role.into(),
                channel_id: channel.into(),
                message_id: None,
            }
        };
    for r in [
        put(&one, "slack", "channel", "C0ROOM"),
        put(&one, "discord", "channel", "777000"),
        put(&one, "slack", "notice", "C0ANNOUNCE"),
        put(&one, "slack", "card", "C0ROOM"),
        put(&other, "slack", "channel", "C0OTHER"),
    ] {
        store.put_chat_ref(&r).await.unwrap();
    }

    let r = reader(&t).await;
    let html = page(&t, &r, "/incidents/INC-1").await;
    assert_eq!(
        attrs(&html, "ul.chats a", "href"),
        [
            "https://slack.com/app_redirect?channel=C0ROOM&team=T0TEAM",
            "https://discord.com/channels/4242/777000",
        ],
        "{html}"
    );
    assert!(
        html.contains("href=\"https://slack.com/app_redirect?channel=C0ROOM&#38;team=T0TEAM\""),
        "the & is escaped in the attribute: {html}"
    );
    let shown = texts(&html, "ul.chats li").join("\n");
    assert!(
        !shown.contains("C0ANNOUNCE") && !shown.contains("C0OTHER"),
        "{shown}"
    );

    // A hostile channel id (a platform would never send it) is text, escaped, not a link.
    let hostile = "\"><script>alert(1)</script>";
    store
        .put_chat_ref(&put(&one, "discord", "channel", hostile))
        .await
        .unwrap();
    let html = page(&t, &r, "/incidents/INC-1").await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert_eq!(attrs(&html, "ul.chats a", "href").len(), 2, "{html}");
    let shown = texts(&html, "ul.chats li");
    assert!(
        shown.contains(&format!("Discord channel {hostile}")),
        "{shown:?}"
    );

    let html = page(&t, &r, "/incidents/INC-2").await;
    assert_eq!(
        attrs(&html, "ul.chats a", "href"),
        ["https://slack.com/app_redirect?channel=C0OTHER&team=T0TEAM"]
    );
    t.ok("declare sev2 Not yet in chat").await;
    let html = page(&t, &r, "/incidents/INC-3").await;
    assert!(
        html.contains("No incident channel has been opened yet."),
        "{html}"
    );
}
