//! Signing in to the web pages with Slack (OpenID Connect) and with a generic OpenID Connect
//! provider, against a fake provider that signs ID tokens with a test RSA key: the happy
//! path names the person on the page; a wrong `aud` or `iss`, an expired token, a bad
//! signature, a key the provider does not publish, another Slack workspace, a replayed
//! `state` or ID token, and a missing or mismatched state cookie are each refused with a
//! sentence and no session. Last, the built binary signed in to through the Slack flow. On
//! both databases.

mod common;
#[path = "web_oidc/fake.rs"]
mod fake;
#[path = "web_oidc/flow.rs"]
mod flow;

use std::process::Stdio;

use common::*;
use fake::{FakeProvider, Twist};
use flow::*;
use reqwest::StatusCode;

on_both!(
    slack_sign_in_names_the_person_on_the_pages,
    generic_sign_in_acts_as_the_verified_email,
    each_bad_id_token_is_refused,
    a_replayed_sign_in_is_refused,
    the_state_cookie_must_be_this_sign_in,
    provider_errors_read_as_sentences,
    only_configured_providers_are_offered,
    cookies_are_secure_under_https,
    a_person_signed_in_by_email_is_on_the_timeline,
    the_served_binary_signs_in_with_slack,
);

async fn slack_sign_in_names_the_person_on_the_pages(backend: Backend) {
    let fake = FakeProvider::start().await;
    let t = spawn(backend, Some(&fake)).await;
    t.ok("declare sev2 Cache stampede").await;
    let page = browser().get(t.url("/signin")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign in with Slack"), "{page}");
    assert!(page.contains("Sign in with Example SSO"), "{page}");
    let done = sign_in(&t, "slack", "/incidents/1").await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/incidents/1");
    let all = set_cookies(&done).join("\n");
    assert!(all.contains("firebreak_signin=; Path=/signin"), "{all}");
    let session = cookie(&done, "firebreak_session").expect("a session");
    let page = page_with(&t, "/incidents/1", &session).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Signed in as Ada Lovelace"), "{page}");
    assert!(page.contains("Cache stampede"), "{page}");
    let ada = firebreak::incident::Identity::slack(fake::USER).unwrap();
    let person = t.app.store.person(&ada).await.unwrap();
    let person = person.expect("the people cache knows the name");
    assert_eq!(person.display_name, "Ada Lovelace");
    // A person's session reads the API too, but writes only its own forms.
    let api = page_with(&t, "/api/incidents", &session).await;
    assert_eq!(api.status(), StatusCode::OK);
    let write = browser()
        .post(t.url("/api/incidents"))
        .header("cookie", &session)
        .json(&serde_json::json!({"title": "x", "severity": "SEV3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);
}

async fn generic_sign_in_acts_as_the_verified_email(backend: Backend) {
    let fake = FakeProvider::start().await;
    let t = spawn(backend, Some(&fake)).await;
    let done = sign_in(&t, "oidc", "/").await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let session = cookie(&done, "firebreak_session").expect("a session");
    let page = page_with(&t, "/", &session).await.text().await.unwrap();
    assert!(page.contains("Signed in as Ada Lovelace"), "{page}");
    let email = firebreak::incident::Identity::parse("email:ada@example.com").unwrap();
    let person = t.app.store.person(&email).await.unwrap();
    assert!(person.is_some(), "the email identity is the one remembered");
}

async fn each_bad_id_token_is_refused(backend: Backend) {
    let fake = FakeProvider::start().await;
    let t = spawn(backend, Some(&fake)).await;
    let cases = [
        (
            Twist::WrongAudience,
            "slack",
            "made for another application",
        ),
        (
            Twist::WrongIssuer,
            "slack",
            "not issued by the configured Slack issuer",
        ),
        (
            Twist::Expired,
            "oidc",
            "The ID token from Example SSO has expired",
        ),
        (
            Twist::ForgedSignature,
            "slack",
            "signature does not match Slack",
        ),
        (
            Twist::UnknownKey,
            "oidc",
            "a key Example SSO does not publish",
        ),
        (
            Twist::OtherWorkspace,
            "slack",
            "belongs to another workspace",
        ),
    ];
    for (twist, slug, words) in cases {
        fake.twist(twist);
        refused(sign_in(&t, slug, "/").await, StatusCode::FORBIDDEN, words).await;
    }
    fake.twist(Twist::Good);
    assert_eq!(
        sign_in(&t, "slack", "/").await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn a_replayed_sign_in_is_refused(backend: Backend) {
    let fake = FakeProvider::start().await;
    let t = spawn(backend, Some(&fake)).await;
    let returning = go_to_provider(&t.url(""), "slack", "/").await;
    assert_eq!(come_back(&returning).await.status(), StatusCode::SEE_OTHER);
    let calls = fake.token_calls();
    // The same callback with the same cookie (a copied URL, a double submit): refused
    // before the provider is asked again.
    refused(
        come_back(&returning).await,
        StatusCode::FORBIDDEN,
        "already been used",
    )
    .await;
    assert_eq!(
        fake.token_calls(),
        calls,
        "a replay never reaches the provider"
    );
    // A double submit racing: exactly one of the two signs in.
    let racing = go_to_provider(&t.url(""), "slack", "/").await;
    let (a, b) = tokio::join!(come_back(&racing), come_back(&racing));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::FORBIDDEN]);
    // An old ID token answered to a new sign-in: its nonce is the old one.
    fake.twist(Twist::Replayed);
    refused(
        sign_in(&t, "slack", "/").await,
        StatusCode::FORBIDDEN,
        "its nonce differs",
    )
    .await;
}

async fn the_state_cookie_must_be_this_sign_in(backend: Backend) {
    let fake = FakeProvider::start().await;
    let t = spawn(backend, Some(&fake)).await;
    let mine = go_to_provider(&t.url(""), "slack", "/").await;
    let without = browser().get(&mine.callback).send().await.unwrap();
    refused(
        without,
        StatusCode::FORBIDDEN,
        "not started in this browser",
    )
    .await;
    // Another sign-in's cookie with this one's callback (a login CSRF attempt).
    let theirs = go_to_provider(&t.url(""), "slack", "/").await;
    let swapped = Returning {
        callback: mine.callback.clone(),
        state_cookie: theirs.state_cookie.clone(),
    };
    refused(
        come_back(&swapped).await,
        StatusCode::FORBIDDEN,
        "does not match",
    )
    .await;
    // A Slack sign-in's cookie brought to the other provider's callback.
    let other_provider = Returning {
        callback: mine.callback.replace("/signin/slack/", "/signin/oidc/"),
        state_cookie: mine.state_cookie.clone(),
    };
    refused(
        come_back(&other_provider).await,
        StatusCode::FORBIDDEN,
        "does not match",
    )
    .await;
    let tampered = Returning {
        callback: mine.callback.clone(),
        state_cookie: format!("{}x", mine.state_cookie),
    };
    refused(
        come_back(&tampered).await,
        StatusCode::FORBIDDEN,
        "does not match",
    )
    .await;
    let no_code = browser()
        .get(t.url("/signin/slack/callback"))
        .send()
        .await
        .unwrap();
    refused(no_code, StatusCode::BAD_REQUEST, "without a sign-in code").await;
    // The cookie itself still works for its own callback.
    assert_eq!(come_back(&mine).await.status(), StatusCode::SEE_OTHER);
}

async fn provider_errors_read_as_sentences(backend: Backend) {
    let fake = FakeProvider::start().await;
    let t = spawn(backend, Some(&fake)).await;
    let denied = browser()
        .get(t.url("/signin/slack/callback?error=access_denied&state=x"))
        .send()
        .await
        .unwrap();
    refused(
        denied,
        StatusCode::FORBIDDEN,
        "You did not allow firebreak to sign you in with Slack",
    )
    .await;
    let odd = browser()
        .get(t.url("/signin/oidc/callback?error=%3Cb%3Eboom%3C%2Fb%3E"))
        .send()
        .await
        .unwrap();
    let odd_page = odd.text().await.unwrap();
    assert!(
        !odd_page.contains("boom"),
        "the provider's words are not echoed: {odd_page}"
    );
    let returning = go_to_provider(&t.url(""), "slack", "/").await;
    fake.twist(Twist::Down);
    let down = come_back(&returning).await;
    refused(
        down,
        StatusCode::BAD_GATEWAY,
        "Could not reach Slack to sign you in",
    )
    .await;
    // Discovery is read when first needed: with the provider down, starting fails politely.
    let start = browser().get(t.url("/signin/oidc")).send().await.unwrap();
    assert_eq!(cookie(&start, "firebreak_signin"), None);
    refused(
        start,
        StatusCode::BAD_GATEWAY,
        "Could not reach Example SSO",
    )
    .await;
    fake.twist(Twist::Good);
    assert_eq!(
        sign_in(&t, "oidc", "/").await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn only_configured_providers_are_offered(backend: Backend) {
    let t = spawn(backend, None).await;
    let page = browser().get(t.url("/signin")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(!page.contains("Sign in with Slack"), "{page}");
    assert!(!page.contains("/signin/oidc"), "{page}");
    let start = browser().get(t.url("/signin/slack")).send().await.unwrap();
    refused(start, StatusCode::NOT_FOUND, "not set up on this server").await;
}

async fn cookies_are_secure_under_https(backend: Backend) {
    let fake = FakeProvider::start().await;
    let public = "https://fb.example.com";
    let t = spawn_at(backend, Some(&fake), Some(public)).await;
    let start = browser().get(t.url("/signin/slack")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let state_cookie = cookie(&start, "firebreak_signin").unwrap();
    assert!(set_cookies(&start).join("\n").contains("; Secure"));
    let authorize = location(&start);
    let redirect = "redirect_uri=https%3A%2F%2Ffb.example.com%2Fsignin%2Fslack%2Fcallback";
    assert!(authorize.contains(redirect), "{authorize}");
    let consented = browser().get(&authorize).send().await.unwrap();
    // The proxy in front would carry this to the app: do so by hand.
    let returning = Returning {
        callback: location(&consented).replace(public, &t.url("")),
        state_cookie,
    };
    let done = come_back(&returning).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let set = set_cookies(&done);
    let session = set
        .iter()
        .find(|c| c.starts_with("firebreak_session="))
        .unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}

/// `email` is a timeline source on both databases (migration 0013): what a form run by a
/// person signed in with a generic provider writes is stored and read back as theirs.
async fn a_person_signed_in_by_email_is_on_the_timeline(backend: Backend) {
    use firebreak::incident::{Actor, Source};
    let s = service(backend, test_config("")).await;
    let grace = Actor::new(Source::Email, "grace@example.com", "Grace");
    let line = "declare sev3 Login page slow";
    s.run_as(&grace, line).await.expect("declares");
    let number = firebreak::incident::model::IncidentNumber(1);
    let detail = s.app.read.incident(number).await.unwrap().expect("INC-1");
    let first = &detail.timeline[0];
    assert_eq!(first.source, Source::Email);
    assert_eq!(first.actor, "email:grace@example.com");
}

async fn the_served_binary_signs_in_with_slack(backend: Backend) {
    use common::process::*;
    let fake = FakeProvider::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\nshutdown_grace = \"500ms\"\n\
         [web.slack_signin]\nclient_id = \"{id}\"\nteam_id = \"{team}\"\nissuer = \"{b}\"\n",
        id = fake::CLIENT_ID,
        team = fake::TEAM,
        b = fake.base
    );
    let cli = Cli::new(backend, &config).await;
    cli.ok(&["incident", "declare", "sev2", "Queue backlog"])
        .await;
    let without_secret = cli.run(&["serve"]).await;
    assert!(!without_secret.status.success());
    assert!(
        stderr(&without_secret).contains("SLACK_CLIENT_SECRET is not set"),
        "{}",
        stderr(&without_secret)
    );
    let mut serve = Serving(
        cli.command(&["serve"])
            .env("SLACK_CLIENT_SECRET", fake::CLIENT_SECRET)
            .env("SLACK_API_URL", format!("{}/api", fake.base))
            .env("FIREBREAK_SESSION_KEY", "k".repeat(40))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(answers_health(&browser(), &base).await, "serve answers");
    let first = browser()
        .get(format!("{base}/incidents/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&first), "/signin?next=%2Fincidents%2F1");
    let form = browser()
        .get(format!("{base}{}", location(&first)))
        .send()
        .await;
    let form = form.unwrap().text().await.unwrap();
    assert!(
        form.contains("href=\"/signin/slack?next=%2Fincidents%2F1\""),
        "{form}"
    );
    let done = come_back(&go_to_provider(&base, "slack", "/incidents/1").await).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/incidents/1");
    let session = cookie(&done, "firebreak_session").expect("a session");
    let page = browser()
        .get(format!("{base}/incidents/1"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Signed in as Ada Lovelace"), "{page}");
    assert!(page.contains("Queue backlog"), "{page}");
    let out = serve.stop();
    assert!(out.status.success(), "serve exits on SIGTERM");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains(fake::CLIENT_SECRET),
        "the secret is never logged: {log}"
    );
    assert!(log.contains("signed in to the web pages"), "{log}");
}
