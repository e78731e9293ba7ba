//! Nothing readable without a credential: every route in `http::ROUTES` (the app's routes,
//! with Slack, Discord and GitHub all configured, the write API among them) and a few paths
//! nothing serves, asked with no token, a bad one, a revoked one, one without the scope and
//! one with it. Also
//! `last_used_at` written at most once a minute, and `/metrics` on `server.metrics_listen`
//! with no token. On both databases.

mod common;

use common::*;
use firebreak::app::Integrations;
use firebreak::auth::{Need, Scope};
use firebreak::http::ROUTES;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

on_both!(
    every_route_needs_what_the_list_says,
    paths_nothing_serves_need_a_token_too,
    last_use_is_written_at_most_once_a_minute,
    metrics_listen_serves_metrics_without_a_token,
    the_framework_s_refusals_are_sentences,
);

/// Slack, Discord and GitHub configured (their APIs at an address nothing answers), so their
/// endpoints are served.
fn every_platform() -> Integrations {
    let nowhere = "http://127.0.0.1:9";
    Integrations {
        slack: common::slack::integrations(nowhere).slack,
        discord: common::discord::integrations(nowhere).discord,
        github: common::github::integrations(nowhere).github,
    }
}

/// The tokens each case sends.
struct Tokens {
    read: String,
    metrics: String,
    declare: String,
    revoked: String,
    /// Only `declare`, and only `update`: each write route needs one of them.
    declare_only: String,
    update_only: String,
    /// `read,metrics`: no write scope.
    reads: String,
}

async fn tokens(t: &TestApp) -> Tokens {
    let store = &t.app.store;
    let revoked = create_token(store, "gone", "read,metrics").await;
    assert!(
        store
            .revoke_token("gone", chrono::Utc::now())
            .await
            .unwrap()
    );
    Tokens {
        read: create_token(store, "reader", "read").await,
        metrics: create_token(store, "scraper", "metrics").await,
        declare: create_token(store, "alerts", "declare,update").await,
        revoked,
        declare_only: create_token(store, "declarer", "declare").await,
        update_only: create_token(store, "updater", "update").await,
        reads: create_token(store, "reads", "read,metrics").await,
    }
}

async fn send(t: &TestApp, method: &str, path: &str, token: Option<&str>) -> Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = no_redirects().request(method, t.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request")
}

/// A client that shows redirects rather than following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Refused for want of a credential: a page asked for by a browser is sent to sign in (303
/// to `/signin?next=…`); anything else is a 401 ([`assert_unauthenticated`]).
async fn assert_refused(resp: Response, method: &str, path: &str, case: &str) {
    // Written out here rather than asked of `auth::challenge`, so the test checks it.
    let page = method == "GET" && !path.starts_with("/api/") && path != "/metrics";
    if page {
        {
            assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{case}");
            let to = resp.headers()["location"].to_str().unwrap().to_string();
            let expected = match path {
                "/" => "/signin".to_string(),
                p => format!("/signin?next={}", p.replace('/', "%2F")),
            };
            assert_eq!(to, expected, "{case}");
        }
    } else {
        assert_unauthenticated(resp, case).await;
    }
}

/// A 401 from the guard: the challenge header and a sentence.
async fn assert_unauthenticated(resp: Response, case: &str) {
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{case}");
    let challenge = resp.headers().get("www-authenticate").cloned();
    assert_eq!(challenge.unwrap(), "Bearer", "{case}");
    let body: Value = resp.json().await.unwrap();
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.ends_with('.') && error.contains("token"),
        "{case}: {body}"
    );
}

async fn every_route_needs_what_the_list_says(backend: Backend) {
    let t = spawn_app_with(backend, test_config(""), every_platform(), None).await;
    t.ok("declare sev2 Cache stampede").await;
    let tokens = tokens(&t).await;
    let bad = format!("fbk_{}", "x".repeat(40));
    for route in ROUTES {
        let (method, path) = (route.method, route.example);
        let case = |what: &str| format!("{method} {path} {what}");
        let Some(need) = route.needs else {
            public_route_answers(&t, method, path).await;
            continue;
        };
        let none = send(&t, method, path, None).await;
        assert_refused(none, method, path, &case("without a token")).await;
        let bad = send(&t, method, path, Some(&bad)).await;
        assert_refused(bad, method, path, &case("with an unknown token")).await;
        let revoked = send(&t, method, path, Some(&tokens.revoked)).await;
        assert_refused(revoked, method, path, &case("with a revoked token")).await;
        let (lacking_token, lacking_name, lacking_scopes) = match need {
            Need::Scope(Scope::Declare) => (&tokens.update_only, "updater", "update"),
            Need::Scope(Scope::Update) => (&tokens.declare_only, "declarer", "declare"),
            _ => (&tokens.declare, "alerts", "declare,update"),
        };
        let lacking = send(&t, method, path, Some(lacking_token)).await;
        assert_eq!(
            lacking.status(),
            StatusCode::FORBIDDEN,
            "{}",
            case("lacking")
        );
        let body: Value = lacking.json().await.unwrap();
        assert_eq!(
            body["error"].as_str().unwrap(),
            format!(
                "The token \"{lacking_name}\" has the scopes {lacking_scopes}, but {method} {path} needs {}.",
                need.describe()
            ),
            "{}",
            case("lacking")
        );
        let reads = send(&t, method, path, Some(&tokens.reads)).await;
        if method == "POST" {
            assert_eq!(
                reads.status(),
                StatusCode::FORBIDDEN,
                "{}",
                case("read only")
            );
        }
        let right = match need {
            Need::Scope(Scope::Read) => vec![&tokens.read],
            Need::Metrics => vec![&tokens.metrics, &tokens.read],
            Need::Scope(Scope::Declare) => vec![&tokens.declare_only, &tokens.declare],
            Need::Scope(Scope::Update) => vec![&tokens.update_only, &tokens.declare],
            // Only a signed-in session with its CSRF token: tests/web_pages.rs.
            Need::Session => vec![],
            other => panic!("no route needs {other:?} yet"),
        };
        for token in right {
            let ok = send(&t, method, path, Some(token)).await;
            if method == "POST" {
                // Past the guard, the handler reads the (empty) body: a 400 with a sentence;
                // resolve's body is optional, so the first token resolves and the next is
                // told it already is.
                let body_optional = path.ends_with("/resolve");
                let status = ok.status();
                let body: Value = ok.json().await.unwrap();
                if body_optional {
                    assert!(
                        matches!(status, StatusCode::OK | StatusCode::CONFLICT),
                        "{}: {status} {body}",
                        case("with the scope")
                    );
                    continue;
                }
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "{}",
                    case("with the scope")
                );
                assert!(
                    body["error"]
                        .as_str()
                        .unwrap()
                        .contains("The body is not what POST"),
                    "{}: {body}",
                    case("with the scope")
                );
            } else {
                assert_eq!(ok.status(), StatusCode::OK, "{}", case("with the scope"));
            }
        }
        if need == Need::Metrics {
            let read_only = send(&t, method, "/api/incidents", Some(&tokens.metrics)).await;
            assert_eq!(
                read_only.status(),
                StatusCode::FORBIDDEN,
                "metrics is not read"
            );
        }
    }
}

/// A public route with no token is not refused by the guard; the platforms' endpoints,
/// signed as the platform signs, are answered.
async fn public_route_answers(t: &TestApp, method: &str, path: &str) {
    let unsigned = send(t, method, path, None).await;
    assert!(
        unsigned.headers().get("www-authenticate").is_none(),
        "{path} is public: {}",
        unsigned.status()
    );
    let resp = match path {
        "/healthz" | "/readyz" if method == "GET" => unsigned,
        "/signin" if method == "GET" => unsigned,
        "/signin" => {
            let resp = no_redirects()
                .post(t.url(path))
                .form(&[("token", "fbk_unknown")])
                .send()
                .await
                .unwrap();
            assert!(resp.headers().get("set-cookie").is_none(), "no session");
            let page = resp.text().await.unwrap();
            assert!(page.contains("That token is not valid"), "{page}");
            return;
        }
        "/signin/slack" | "/signin/slack/callback" | "/signin/oidc" | "/signin/oidc/callback" => {
            // No provider is configured here: the sign-in page says so, with no credential.
            let resp = no_redirects().get(t.url(path)).send().await.unwrap();
            assert_eq!(resp.status(), 404, "{path}");
            let page = resp.text().await.unwrap();
            assert!(page.contains("not set up on this server"), "{page}");
            return;
        }
        "/slack/commands" => {
            let body = common::slack::SlackSender::command_body("/incident", "help", "C1", "U1");
            let form = "application/x-www-form-urlencoded";
            slack(t).post(path, form, body).await
        }
        "/slack/events" => {
            let body = json!({ "type": "url_verification", "challenge": "abc" });
            let body = serde_json::to_vec(&body).unwrap();
            slack(t).post(path, "application/json", body).await
        }
        "/slack/interactions" => {
            let payload = json!({ "type": "view_closed", "user": { "id": "U1" } });
            slack(t).interaction(payload).await
        }
        "/discord/interactions" => {
            let (status, body) = common::discord::DiscordSender::new(t)
                .send(&json!({ "type": 1, "id": "1", "application_id": "1", "token": "t" }))
                .await;
            assert_eq!(status, 200, "{path}: {body}");
            return;
        }
        "/github/webhook" => {
            let body = br#"{"zen":"Keep it logically awesome."}"#;
            let signed = common::github::signed(body);
            common::github::deliver(t, "ping", body, signed).await
        }
        other => panic!("{other} is public but this test does not know how to call it"),
    };
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

fn slack(t: &TestApp) -> common::slack::SlackSender {
    common::slack::SlackSender::new(t)
}

async fn paths_nothing_serves_need_a_token_too(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let tokens = tokens(&t).await;
    for path in [
        "/admin",
        "/api/whatever",
        "/api/incidents/",
        "/healthz/",
        "/slack",
        "/incidents/INC-1",
    ] {
        let none = send(&t, "GET", path, None).await;
        assert_refused(none, "GET", path, &format!("GET {path}")).await;
        let read = send(&t, "GET", path, Some(&tokens.read)).await;
        assert_eq!(read.status(), StatusCode::NOT_FOUND, "GET {path} with read");
    }
    // A write nothing serves: no token may, whatever its scopes.
    for path in [
        "/api/freeze",
        "/api/incidents/1",
        "/api/incidents/1/notes",
        "/api/incidents/1/x/updates",
        "/api/incidents//status",
    ] {
        let none = send(&t, "POST", path, None).await;
        assert_unauthenticated(none, &format!("POST {path}")).await;
        for token in [&tokens.read, &tokens.declare, &t.token] {
            let resp = send(&t, "POST", path, Some(token)).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "POST {path}");
        }
    }
    // Not the Bearer scheme, or no token after it.
    for header in ["Basic cmVhZDp4", "Bearer", &tokens.read] {
        let resp = reqwest::Client::new()
            .get(t.url("/api/incidents"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_unauthenticated(resp, header).await;
    }
}

async fn last_use_is_written_at_most_once_a_minute(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    let store = &t.app.store;
    let token = create_token(store, "reader", "read").await;
    let reader = || async {
        let all = store.active_tokens().await.unwrap();
        all.into_iter().find(|t| t.name == "reader").unwrap()
    };
    assert_eq!(reader().await.last_used_at, None);
    let first = send(&t, "GET", "/api/incidents", Some(&token)).await;
    assert_eq!(first.status(), 200);
    let used = reader().await.last_used_at.expect("the use is recorded");
    assert!((chrono::Utc::now() - used).num_seconds() < 10);
    let again = send(&t, "GET", "/api/incidents", Some(&token)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(reader().await.last_used_at, Some(used), "not written again");

    // The store writes only when the recorded use is older than the cut-off.
    let id = reader().await.id;
    let later = used + chrono::TimeDelta::seconds(30);
    store
        .token_used(id, later, later - chrono::TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(reader().await.last_used_at, Some(used));
    let later = used + chrono::TimeDelta::seconds(61);
    store
        .token_used(id, later, later - chrono::TimeDelta::minutes(1))
        .await
        .unwrap();
    let written = reader().await.last_used_at.unwrap();
    assert_eq!(written.timestamp_millis(), later.timestamp_millis());
}

async fn metrics_listen_serves_metrics_without_a_token(backend: Backend) {
    let port = common::process::free_port();
    let config = test_config(&format!(
        "[server]\nmetrics_listen = \"127.0.0.1:{port}\"\n"
    ));
    let t = spawn_app(backend, config).await;
    t.ok("declare sev2 Cache stampede").await;
    let metrics = format!("http://127.0.0.1:{port}");
    let mut up = None;
    for _ in 0..200 {
        if let Ok(resp) = reqwest::get(format!("{metrics}/metrics")).await {
            up = Some(resp);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let resp = up.expect("the metrics listener answers");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("firebreak_open_incidents{severity=\"SEV2\",drill=\"false\"} 1"),
        "{text}"
    );
    // Only /metrics there; on the main port /metrics still needs a token.
    let other = reqwest::get(format!("{metrics}/api/incidents"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let main = send(&t, "GET", "/metrics", None).await;
    assert_unauthenticated(main, "/metrics on the main port").await;
}

async fn the_framework_s_refusals_are_sentences(backend: Backend) {
    let t = spawn_app(backend, test_config("")).await;
    t.ok("declare sev2 Queue backlog").await;
    let token = create_token(&t.app.store, "ops", "read,declare").await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(t.url(path)).bearer_auth(&token).send();
    let nothing = get("/no/such/page").await.unwrap();
    assert_eq!(nothing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        nothing.text().await.unwrap(),
        "There is nothing at /no/such/page."
    );
    let query = get("/incidents/1/events?after=abc").await.unwrap();
    assert_eq!(query.status(), StatusCode::BAD_REQUEST);
    let text = query.text().await.unwrap();
    assert!(
        text.starts_with("The query string could not be read"),
        "{text}"
    );
    // On its own connection: the server answers before reading the whole body and closes,
    // and a pooled connection reused after that fails the next request with a broken pipe.
    let big = reqwest::Client::new()
        .post(t.url("/api/incidents"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["error"], "The request body is larger than 1 MiB.");
    // Our own sentences pass through as they were.
    let unknown = get("/api/incidents/INC-9").await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("INC-9"), "{body}");
}
