//! Driving a browser's part of a provider sign-in by hand (no cookie jar, no redirects
//! followed): starting it, letting the fake consent, coming back with or without the state
//! cookie; and an app served with both providers pointed at the fake.

use std::sync::Arc;

use firebreak::app::App;
use firebreak::http::oidc::SignIn;
use firebreak::http::oidc::config::{SignInSecrets, WebConfig};
use reqwest::{Response, StatusCode};
use tokio_util::sync::CancellationToken;

pub use super::common::web::{browser, location};
use super::common::*;
use super::fake::{self, FakeProvider};

/// Every `Set-Cookie` of a response.
pub fn set_cookies(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// `name=value` of the cookie called `name` a response sets (with a value).
pub fn cookie(resp: &Response, name: &str) -> Option<String> {
    set_cookies(resp)
        .into_iter()
        .map(|c| c.split(';').next().unwrap().to_string())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

pub fn web_config(fake: &FakeProvider) -> WebConfig {
    toml::from_str(&format!(
        "[slack_signin]\nclient_id = \"{id}\"\nteam_id = \"{team}\"\nissuer = \"{b}\"\n\
         [oidc]\nissuer = \"{b}\"\nclient_id = \"{id}\"\nname = \"Example SSO\"\n",
        id = fake::CLIENT_ID,
        team = fake::TEAM,
        b = fake.base
    ))
    .unwrap()
}

pub fn secrets(fake: &FakeProvider) -> SignInSecrets {
    SignInSecrets {
        slack_client_secret: Some(fake::CLIENT_SECRET.to_string().into()),
        oidc_client_secret: Some(fake::CLIENT_SECRET.to_string().into()),
        slack_api_url: Some(format!("{}/api", fake.base)),
    }
}

/// An app serving on a random port, with both providers pointed at `fake` (none without).
pub async fn spawn(backend: Backend, fake: Option<&FakeProvider>) -> TestApp {
    spawn_at(backend, fake, None).await
}

/// [`spawn`], with `server.public_url` set to `public_url` (else the app's own address).
pub async fn spawn_at(
    backend: Backend,
    fake: Option<&FakeProvider>,
    public_url: Option<&str>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = public_url.map_or(format!("http://{addr}"), str::to_string);
    let config = test_config(&format!("[server]\npublic_url = \"{base}\"\n"));
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let token = create_token(&store, "tests", "read").await;
    let mut app = App::with_store(config, store, Default::default()).expect("app builds");
    if let Some(fake) = fake {
        let sign_in = SignIn::from_config(&web_config(fake), Some(&base), &secrets(fake));
        app.sign_in = Arc::new(sign_in.expect("sign-in configured"));
    }
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.clone().serve(listener, shutdown.clone()));
    TestApp {
        db,
        app,
        addr,
        shutdown,
        handle,
        token,
    }
}

/// A sign-in on its way back from the provider: the callback URL and the state cookie.
pub struct Returning {
    pub callback: String,
    pub state_cookie: String,
}

/// Starts signing in with `slug` at `base` and lets the fake consent.
pub async fn go_to_provider(base: &str, slug: &str, next: &str) -> Returning {
    let b = browser();
    let start = b
        .get(format!("{base}/signin/{slug}"))
        .query(&[("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER, "{slug} start");
    let state_cookie = cookie(&start, "firebreak_signin").expect("a state cookie");
    let set = set_cookies(&start).join("\n");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/signin", "Max-Age=600"] {
        assert!(set.contains(part), "{set}");
    }
    let authorize = location(&start);
    assert!(
        authorize.contains("scope=openid+profile+email"),
        "{authorize}"
    );
    let consented = b.get(&authorize).send().await.unwrap();
    assert_eq!(
        consented.status(),
        StatusCode::SEE_OTHER,
        "the fake consents"
    );
    let callback = location(&consented);
    assert!(
        callback.starts_with(&format!("{base}/signin/{slug}/callback?")),
        "{callback}"
    );
    Returning {
        callback,
        state_cookie,
    }
}

pub async fn come_back(r: &Returning) -> Response {
    browser()
        .get(&r.callback)
        .header("cookie", &r.state_cookie)
        .send()
        .await
        .unwrap()
}

/// A whole sign-in: the callback's answer.
pub async fn sign_in(t: &TestApp, slug: &str, next: &str) -> Response {
    come_back(&go_to_provider(&t.url(""), slug, next).await).await
}

/// Asserts `resp` is the sign-in page refusing with a sentence containing `words`, and no
/// session.
pub async fn refused(resp: Response, status: StatusCode, words: &str) {
    assert_eq!(resp.status(), status, "{words}");
    assert_eq!(
        cookie(&resp, "firebreak_session"),
        None,
        "no session: {words}"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("Sign in to firebreak"), "{page}");
    assert!(page.contains(words), "wanted “{words}” in {page}");
}

pub async fn page_with(t: &TestApp, path: &str, session: &str) -> Response {
    browser()
        .get(t.url(path))
        .header("cookie", session)
        .send()
        .await
        .unwrap()
}
