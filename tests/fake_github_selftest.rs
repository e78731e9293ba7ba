//! Proves the fake GitHub REST API in `common/fake_github.rs` behaves like GitHub where
//! firebreak depends on it: shapes, pagination through `Link` headers, rulesets, pulls,
//! statuses, App authentication, and above all the secondary rate limits. Plain `reqwest`
//! plays the client.

#[path = "common/fake_github.rs"]
mod fake_github;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use fake_github::{FakeGitHub, INSTALLATION_ID, Limits, SECONDARY_MESSAGE};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "tests/fixtures/github-app-test-key.pem";
const PUB_KEY: &str = "tests/fixtures/github-app-test-key.pub.pem";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL of a `Link` relation, e.g. `next`.
    fn link(&self, rel: &str) -> Option<String> {
        let wanted = format!("rel=\"{rel}\"");
        self.header("link")?.split(", ").find_map(|part| {
            let (url, rest) = part.split_once(">;")?;
            (rest.trim() == wanted).then(|| url.trim_start_matches('<').to_string())
        })
    }
}

/// The fake and one HTTP client for it (a client per request would be slow, and a client must
/// not outlive the test's runtime).
#[derive(Clone)]
struct Gh {
    fake: FakeGitHub,
    http: Client,
}

impl Gh {
    async fn start(limits: Limits) -> Gh {
        let fake = FakeGitHub::start(limits).await;
        Gh {
            fake,
            http: client(),
        }
    }
}

impl std::ops::Deref for Gh {
    type Target = FakeGitHub;
    fn deref(&self) -> &FakeGitHub {
        &self.fake
    }
}

fn client() -> Client {
    let mut headers = HeaderMap::new();
    let accept = "application/vnd.github+json".parse().unwrap();
    headers.insert(reqwest::header::ACCEPT, accept);
    headers.insert("x-github-api-version", "2022-11-28".parse().unwrap());
    Client::builder()
        .user_agent("firebreak-selftest")
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Sends `method {url}` (a full URL, or a path on the fake) with an optional JSON body.
async fn send(
    fake: &Gh,
    auth: Option<&str>,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Answer {
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", fake.url)
    };
    let mut request = fake.http.request(method, url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON body")
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(fake: &Gh, url: &str) -> Answer {
    send(fake, Some("Bearer test"), Method::GET, url, None).await
}

async fn post(fake: &Gh, url: &str, body: Value) -> Answer {
    send(fake, Some("Bearer test"), Method::POST, url, Some(body)).await
}

async fn status(fake: &Gh, state: &str) -> Answer {
    let body =
        json!({"state": state, "context": "firebreak/freeze", "description": "Merge freeze"});
    post(fake, "/repos/acme/api/statuses/abc123", body).await
}

fn names(items: &Value) -> Vec<String> {
    let items = items.as_array().expect("array");
    items
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect()
}

fn numbers(items: &Value) -> Vec<u64> {
    let items = items.as_array().expect("array");
    items
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect()
}

fn freeze_ruleset(name: &str) -> Value {
    json!({
        "name": name, "target": "branch", "enforcement": "active",
        "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
        "rules": [{"type": "update"}, {"type": "creation"}],
        "bypass_actors": [{"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}],
    })
}

#[tokio::test]
async fn repository_get_404_and_rate_limit_headers() {
    let fake = Gh::start(Limits::default()).await;
    fake.add_repo("acme/api", "main");

    let repo = get(&fake, "/repos/acme/api").await;
    assert_eq!(repo.status, StatusCode::OK);
    assert_eq!(repo.body["name"], "api");
    assert_eq!(repo.body["full_name"], "acme/api");
    assert_eq!(repo.body["default_branch"], "main");
    assert_eq!(repo.body["owner"]["login"], "acme");
    assert_eq!(repo.body["private"], false);
    assert_eq!(repo.body["html_url"], "https://github.com/acme/api");
    assert!(repo.body["id"].as_u64().is_some());
    assert_eq!(repo.header("x-ratelimit-limit"), Some("5000"));
    assert_eq!(repo.header("x-ratelimit-remaining"), Some("4999"));
    assert_eq!(repo.header("x-ratelimit-used"), Some("1"));
    assert_eq!(repo.header("x-ratelimit-resource"), Some("core"));
    let reset: i64 = repo.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(
        (reset - Utc::now().timestamp() - 3600).abs() <= 2,
        "reset {reset}"
    );

    let same = get(&fake, "/repos/ACME/Api").await;
    assert_eq!(same.status, StatusCode::OK, "names are case-insensitive");
    let missing = get(&fake, "/repos/acme/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["message"], "Not Found");
    assert_eq!(missing.header("x-ratelimit-remaining"), Some("4997"));

    let log = fake.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[2].method.as_str(), log[2].path.as_str(), log[2].status),
        ("GET", "/repos/acme/nope", 404)
    );
    assert_eq!(log[0].auth.as_deref(), Some("Bearer test"));
    assert_eq!(
        log[0].accept.as_deref(),
        Some("application/vnd.github+json")
    );
    assert_eq!(log[0].api_version.as_deref(), Some("2022-11-28"));
    assert_eq!(
        get(&fake, "/orgs/nobody/repos").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn org_repositories_paginate_through_link_headers() {
    let fake = Gh::start(Limits::default()).await;
    for i in 1..=7 {
        fake.add_repo(&format!("acme/repo-{i}"), "main");
    }
    fake.add_repo("other/elsewhere", "main");

    let mut url = "/orgs/acme/repos?per_page=3".to_string();
    let mut pages = vec![];
    loop {
        let page = get(&fake, &url).await;
        assert_eq!(page.status, StatusCode::OK);
        if pages.is_empty() {
            let last = page.link("last").expect("rel=last on page 1");
            assert!(
                last.ends_with("/orgs/acme/repos?per_page=3&page=3"),
                "{last}"
            );
            assert!(last.starts_with(&fake.url));
            assert_eq!(page.link("prev"), None);
        } else {
            assert!(page.link("prev").is_some() && page.link("first").is_some());
        }
        pages.push(names(&page.body));
        match page.link("next") {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let mut all: Vec<String> = pages.concat();
    all.sort();
    let expected: Vec<String> = (1..=7).map(|i| format!("repo-{i}")).collect();
    assert_eq!(all, expected);

    let sorted = get(&fake, "/orgs/acme/repos?sort=full_name&per_page=100").await;
    assert_eq!(names(&sorted.body)[0], "repo-1");
    assert_eq!(
        sorted.header("link"),
        None,
        "a single page has no Link header"
    );
    let default = get(&fake, "/orgs/acme/repos").await;
    assert_eq!(default.body.as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn repository_rulesets_crud_and_unique_names() {
    let fake = Gh::start(Limits::default()).await;
    fake.add_repo("acme/api", "main");
    let base = "/repos/acme/api/rulesets";

    let created = post(&fake, base, freeze_ruleset("firebreak freeze")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let ruleset = created.body;
    let id = ruleset["id"].as_u64().expect("numeric id");
    assert_eq!(ruleset["source_type"], "Repository");
    assert_eq!(ruleset["source"], "acme/api");
    assert_eq!(ruleset["enforcement"], "active");
    assert_eq!(ruleset["target"], "branch");
    assert_eq!(ruleset["rules"][0]["type"], "update");
    assert_eq!(ruleset["bypass_actors"][0]["actor_type"], "RepositoryRole");
    assert_eq!(
        ruleset["conditions"]["ref_name"]["include"][0],
        "~DEFAULT_BRANCH"
    );
    assert!(ruleset["created_at"].is_string() && ruleset["updated_at"].is_string());

    let duplicate = post(&fake, base, freeze_ruleset("firebreak freeze")).await;
    assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(duplicate.body["message"], "Validation Failed");
    assert_eq!(duplicate.body["errors"], json!(["Name must be unique"]));
    let mut bad = freeze_ruleset("bad");
    bad["enforcement"] = json!("enabled");
    assert_eq!(
        post(&fake, base, bad).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let list = get(&fake, base).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.body.as_array().unwrap();
    assert_eq!(items.len(), 1);
    for key in [
        "id",
        "name",
        "target",
        "source_type",
        "source",
        "enforcement",
    ] {
        assert_eq!(items[0][key], ruleset[key], "{key}");
    }

    let one = get(&fake, &format!("{base}/{id}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, ruleset);

    let put = json!({"enforcement": "disabled"});
    let updated = send(&fake, None, Method::PUT, &format!("{base}/{id}"), Some(put)).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["enforcement"], "disabled");
    assert_eq!(
        updated.body["name"], "firebreak freeze",
        "fields are merged"
    );
    assert_eq!(updated.body["rules"], ruleset["rules"]);
    assert_eq!(fake.rulesets("acme/api")[0]["enforcement"], "disabled");

    let deleted = send(&fake, None, Method::DELETE, &format!("{base}/{id}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    assert_eq!(
        get(&fake, &format!("{base}/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(fake.rulesets("acme/api").is_empty());

    let again = post(&fake, base, freeze_ruleset("firebreak freeze")).await;
    assert_eq!(again.status, StatusCode::CREATED, "the name is free again");
    assert_ne!(again.body["id"].as_u64(), Some(id));
    assert!(fake.delete_ruleset_by_name("acme/api", "firebreak freeze"));
    assert!(!fake.delete_ruleset_by_name("acme/api", "firebreak freeze"));
    assert_eq!(get(&fake, base).await.body, json!([]));
    assert_eq!(
        post(&fake, "/repos/acme/nope/rulesets", freeze_ruleset("x"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn org_rulesets_and_their_inheritance() {
    let fake = Gh::start(Limits::default()).await;
    fake.add_repo("acme/api", "main");
    fake.add_repo("acme/web", "main");
    let mut body = freeze_ruleset("org freeze");
    body["conditions"]["repository_name"] = json!({"include": ["~ALL"], "exclude": ["web"]});

    let created = post(&fake, "/orgs/acme/rulesets", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["source_type"], "Organization");
    assert_eq!(created.body["source"], "acme");
    assert_eq!(
        created.body["conditions"]["repository_name"]["include"],
        json!(["~ALL"])
    );
    let id = created.body["id"].as_u64().unwrap();
    assert_eq!(fake.org_rulesets("acme").len(), 1);
    assert!(fake.rulesets("acme/api").is_empty());

    let duplicate = post(&fake, "/orgs/acme/rulesets", body).await;
    assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
    let no_repos = post(&fake, "/orgs/acme/rulesets", freeze_ruleset("x")).await;
    assert_eq!(no_repos.status, StatusCode::UNPROCESSABLE_ENTITY);

    let list = get(&fake, "/orgs/acme/rulesets").await;
    assert_eq!(names(&list.body), ["org freeze"]);
    let one = get(&fake, &format!("/orgs/acme/rulesets/{id}")).await;
    assert_eq!(one.body["name"], "org freeze");

    // Repository lists include the parents that apply unless told otherwise.
    let inherited = get(&fake, "/repos/acme/api/rulesets").await;
    assert_eq!(names(&inherited.body), ["org freeze"]);
    assert_eq!(inherited.body[0]["source_type"], "Organization");
    let own = get(&fake, "/repos/acme/api/rulesets?includes_parents=false").await;
    assert_eq!(own.body, json!([]));
    let excluded = get(&fake, "/repos/acme/web/rulesets").await;
    assert_eq!(excluded.body, json!([]));
    let via_repo = send(
        &fake,
        None,
        Method::DELETE,
        &format!("/repos/acme/api/rulesets/{id}"),
        None,
    )
    .await;
    assert_eq!(via_repo.status, StatusCode::NOT_FOUND);

    let deleted = send(
        &fake,
        None,
        Method::DELETE,
        &format!("/orgs/acme/rulesets/{id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(fake.org_rulesets("acme").is_empty());
}

#[tokio::test]
async fn pulls_filter_sort_and_paginate() {
    let fake = Gh::start(Limits::default()).await;
    fake.add_repo("acme/api", "main");
    for n in 1..=5 {
        fake.add_pull("acme/api", n, &format!("{n:040x}"), "main");
    }
    fake.add_pull("acme/api", 6, "sha6", "release");
    let at = |h| Utc.with_ymd_and_hms(2025, 3, 1, h, 0, 0).unwrap();
    fake.add_merged_pull("acme/api", 10, "Fix the thing", "alice", "main", at(9));
    fake.add_merged_pull("acme/api", 11, "Break the thing", "bob", "main", at(11));
    fake.add_merged_pull("acme/api", 12, "Release", "carol", "release", at(10));

    let open = get(&fake, "/repos/acme/api/pulls").await;
    assert_eq!(open.status, StatusCode::OK);
    assert_eq!(numbers(&open.body).len(), 6, "state defaults to open");
    let pull = &open.body.as_array().unwrap()[0];
    assert_eq!(pull["state"], "open");
    assert_eq!(pull["merged_at"], Value::Null);
    assert!(pull["title"].is_string() && pull["updated_at"].is_string());
    assert!(pull["user"]["login"].is_string());
    assert!(
        pull["html_url"]
            .as_str()
            .unwrap()
            .starts_with("https://github.com/acme/api/pull/")
    );

    let main = get(&fake, "/repos/acme/api/pulls?state=open&base=main").await;
    let mut main_numbers = numbers(&main.body);
    main_numbers.sort();
    assert_eq!(main_numbers, [1, 2, 3, 4, 5]);
    let three = main
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == 3)
        .unwrap();
    assert_eq!(three["head"]["sha"], format!("{:040x}", 3));
    assert_eq!(three["base"]["ref"], "main");

    let closed = get(
        &fake,
        "/repos/acme/api/pulls?state=closed&base=main&sort=updated&direction=desc",
    )
    .await;
    assert_eq!(numbers(&closed.body), [11, 10]);
    let latest = &closed.body[0];
    assert_eq!(latest["state"], "closed");
    assert_eq!(latest["merged_at"], "2025-03-01T11:00:00Z");
    assert_eq!(latest["title"], "Break the thing");
    assert_eq!(latest["user"]["login"], "bob");

    let all = get(&fake, "/repos/acme/api/pulls?state=all&per_page=4").await;
    assert_eq!(numbers(&all.body).len(), 4);
    let mut seen = numbers(&all.body);
    let mut next = all.link("next");
    while let Some(url) = next {
        let page = get(&fake, &url).await;
        seen.extend(numbers(&page.body));
        next = page.link("next");
    }
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4, 5, 6, 10, 11, 12]);

    let bad = get(&fake, "/repos/acme/api/pulls?state=merged").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn statuses_are_created_and_validated() {
    let fake = Gh::start(Limits::default()).await;
    fake.add_repo("acme/api", "main");

    let pending = status(&fake, "pending").await;
    assert_eq!(pending.status, StatusCode::CREATED);
    assert_eq!(pending.body["state"], "pending");
    assert_eq!(pending.body["context"], "firebreak/freeze");
    assert_eq!(pending.body["description"], "Merge freeze");
    assert_eq!(pending.body["target_url"], Value::Null);
    for key in ["id", "created_at", "updated_at", "url"] {
        assert!(!pending.body[key].is_null(), "{key}");
    }
    assert_eq!(status(&fake, "success").await.status, StatusCode::CREATED);

    let invalid = status(&fake, "passed").await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["message"], "Validation Failed");
    let long = json!({"state": "failure", "context": "c", "description": "x".repeat(141)});
    let too_long = post(&fake, "/repos/acme/api/statuses/abc123", long).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);

    let states: Vec<Value> = fake
        .statuses("acme/api", "abc123")
        .iter()
        .map(|s| s["state"].clone())
        .collect();
    assert_eq!(states, [json!("pending"), json!("success")]);
    let latest = fake.latest_status("acme/api", "abc123", "firebreak/freeze");
    assert_eq!(latest.as_deref(), Some("success"));
    assert_eq!(fake.latest_status("acme/api", "abc123", "other"), None);

    let combined = get(&fake, "/repos/acme/api/commits/abc123/status").await;
    assert_eq!(combined.body["state"], "success");
    assert_eq!(combined.body["total_count"], 1);
}

#[tokio::test]
async fn secondary_limits_per_minute_and_per_hour() {
    let minute = Duration::from_secs(1);
    let limits = Limits {
        per_minute: 5,
        per_hour: 8,
        max_concurrent: 3,
        minute,
    };
    let fake = Gh::start(limits).await;
    fake.add_repo("acme/api", "main");

    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(status(&fake, "pending").await.status, StatusCode::CREATED);
    }
    let reads = get(&fake, "/repos/acme/api").await;
    assert_eq!(
        reads.status,
        StatusCode::OK,
        "reads are not content-creating"
    );
    let sixth = status(&fake, "pending").await;
    assert!(started.elapsed() < minute, "the test machine is too slow");
    assert_eq!(sixth.status, StatusCode::FORBIDDEN);
    assert_eq!(sixth.body["message"], SECONDARY_MESSAGE);
    let documentation = sixth.body["documentation_url"].as_str().unwrap();
    assert!(documentation.contains("secondary-rate-limits"));
    let retry_after: u64 = sixth.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_ne!(sixth.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(fake.violations(), 1);
    assert_eq!(fake.statuses("acme/api", "abc123").len(), 5);

    tokio::time::sleep(minute + Duration::from_millis(50)).await;
    for _ in 0..3 {
        let accepted = status(&fake, "success").await;
        assert_eq!(
            accepted.status,
            StatusCode::CREATED,
            "the minute has passed"
        );
    }
    let ninth = status(&fake, "success").await;
    assert_eq!(ninth.status, StatusCode::FORBIDDEN, "8 an hour");
    let retry_after: u64 = ninth.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 2, "the hour is 60 s long: {retry_after}");
    assert_eq!(fake.violations(), 2);

    let log = fake.requests();
    let answered: Vec<u16> = log
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(answered, [201, 201, 201, 201, 201, 403, 201, 201, 201, 403]);
}

#[tokio::test]
async fn concurrent_requests_beyond_the_limit_are_refused() {
    let limits = Limits {
        max_concurrent: 3,
        ..Limits::default()
    };
    let fake = Gh::start(limits).await;
    fake.add_repo("acme/api", "main");
    fake.set_latency(Duration::from_millis(200));

    let started = Instant::now();
    let answers = futures::future::join_all((0..4).map(|_| get(&fake, "/repos/acme/api"))).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    let mut codes: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, [200, 200, 200, 403]);
    let refused = answers
        .iter()
        .find(|a| a.status == StatusCode::FORBIDDEN)
        .unwrap();
    assert_eq!(refused.body["message"], SECONDARY_MESSAGE);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(fake.violations(), 1);

    assert_eq!(get(&fake, "/repos/acme/api").await.status, StatusCode::OK);
    assert_eq!(fake.violations(), 1);
}

fn jwt(iss: Value, iat_offset: i64, exp_offset: i64) -> String {
    let now = Utc::now().timestamp();
    let claims = json!({"iss": iss, "iat": now + iat_offset, "exp": now + exp_offset});
    let pem = std::fs::read(KEY).expect("test key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("RSA key");
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

#[tokio::test]
async fn app_auth_exchanges_a_jwt_for_an_expiring_token() {
    let fake = Gh::start(Limits::default()).await;
    fake.add_repo("acme/api", "main");
    let public = std::fs::read_to_string(PUB_KEY).expect("public key");
    fake.enable_app_auth("12345", &public, Duration::from_secs(1));

    let bearer = format!("Bearer {}", jwt(json!("12345"), -60, 540));
    let jwt_call = |method: Method, path: &'static str| {
        let bearer = bearer.clone();
        let fake = fake.clone();
        async move { send(&fake, Some(&bearer), method, path, None).await }
    };
    let installation = jwt_call(Method::GET, "/repos/acme/api/installation").await;
    assert_eq!(installation.status, StatusCode::OK);
    assert_eq!(installation.body["id"], INSTALLATION_ID);
    let org = jwt_call(Method::GET, "/orgs/acme/installation").await;
    assert_eq!(org.body["id"], INSTALLATION_ID);
    let all = jwt_call(Method::GET, "/app/installations").await;
    assert_eq!(all.body[0]["id"], INSTALLATION_ID);

    let exchange = format!("/app/installations/{INSTALLATION_ID}/access_tokens");
    let issued = send(&fake, Some(&bearer), Method::POST, &exchange, None).await;
    assert_eq!(issued.status, StatusCode::CREATED);
    let token = issued.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghs_"));
    let expires = issued.body["expires_at"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("RFC 3339");
    assert!((expires.timestamp() - Utc::now().timestamp()).abs() <= 2);
    assert_eq!(fake.issued_tokens(), [token.as_str()]);

    let with_token = format!("token {token}");
    let repo = send(
        &fake,
        Some(&with_token),
        Method::GET,
        "/repos/acme/api",
        None,
    )
    .await;
    assert_eq!(repo.status, StatusCode::OK);
    let bearer_token = format!("Bearer {token}");
    let repo = send(
        &fake,
        Some(&bearer_token),
        Method::GET,
        "/repos/acme/api",
        None,
    )
    .await;
    assert_eq!(repo.status, StatusCode::OK);

    // Wrong credentials.
    let refusals = [
        (None, "/repos/acme/api"),
        (Some("token ghs_999".to_string()), "/repos/acme/api"),
        (Some(bearer.clone()), "/repos/acme/api"),
        (Some(with_token.clone()), "/repos/acme/api/installation"),
        (
            Some(format!("Bearer {}", jwt(json!("999"), -60, 540))),
            "/app/installations",
        ),
        (
            Some(format!("Bearer {}", jwt(json!(12345), -600, -60))),
            "/app/installations",
        ),
        (
            Some(format!("Bearer {}x", &bearer[7..])),
            "/app/installations",
        ),
    ];
    for (auth, path) in refusals {
        let answer = send(&fake, auth.as_deref(), Method::GET, path, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth:?} {path}");
        if !path.starts_with("/app") && !path.ends_with("installation") {
            assert_eq!(answer.body["message"], "Bad credentials");
        }
    }
    let numeric_iss = format!("Bearer {}", jwt(json!(12345), -60, 540));
    let answer = send(
        &fake,
        Some(&numeric_iss),
        Method::GET,
        "/app/installations",
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "iss may be a number");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = send(
        &fake,
        Some(&with_token),
        Method::GET,
        "/repos/acme/api",
        None,
    )
    .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body["message"], "Bad credentials");
    let log = fake.requests();
    let last = log.last().unwrap();
    assert_eq!(
        (last.status, last.auth.as_deref()),
        (401, Some(with_token.as_str()))
    );
}

#[tokio::test]
async fn faults_fail_matching_requests_until_healed() {
    let gh = Gh::start(Limits::default()).await;
    gh.add_repo("acme/api", "main");
    gh.add_repo("acme/bad", "main");
    gh.fail("POST", "/repos/acme/bad/rulesets", 422);
    let refused = post(&gh, "/repos/acme/bad/rulesets", freeze_ruleset("x")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["message"], "Validation Failed");
    assert_eq!(
        get(&gh, "/repos/acme/bad/rulesets").await.status,
        StatusCode::OK,
        "only the method asked for fails"
    );
    let other = post(&gh, "/repos/acme/api/rulesets", freeze_ruleset("x")).await;
    assert_eq!(other.status, StatusCode::CREATED, "other repositories work");

    gh.go_down(503);
    let down = get(&gh, "/repos/acme/api").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.header("x-ratelimit-remaining").is_some());
    assert_eq!(
        gh.rulesets("acme/bad").len(),
        0,
        "a failed request changes nothing"
    );
    gh.heal();
    assert_eq!(get(&gh, "/repos/acme/api").await.status, StatusCode::OK);
    let created = post(&gh, "/repos/acme/bad/rulesets", freeze_ruleset("x")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let answered: Vec<u16> = gh.requests().iter().map(|r| r.status).collect();
    assert_eq!(answered, [422, 200, 201, 503, 200, 201]);
}
