//! An in-process fake of the GitHub REST API for integration tests.
//!
//! [`FakeGitHub::start`] serves, with axum on `127.0.0.1:0` and at the root of
//! [`FakeGitHub::url`] (`GET {url}/repos/{owner}/{repo}`), the endpoints firebreak calls:
//! repositories, organisation repositories, repository and organisation rulesets, pull
//! requests, commit statuses and the GitHub App installation-token exchange. It keeps state,
//! answers in the shapes of GitHub's OpenAPI description, paginates with real `Link` headers,
//! records every request, injects latency and, above all, enforces GitHub's **secondary rate
//! limits** the way the documentation describes them (see [`Limits`]).
//!
//! Semantics worth knowing:
//! - Owner and repository names are matched case-insensitively, as on GitHub.
//! - Every response carries `x-ratelimit-*` headers for a fixed primary window of
//!   `60 × minute` (5000 requests); `x-ratelimit-reset` is the end of the current window.
//! - Content-creating requests (POST, PUT, PATCH, DELETE) go through a sliding-window log; one
//!   that would exceed `per_minute` or `per_hour` is answered 403 with `Retry-After`, counted in
//!   [`FakeGitHub::violations`] and kept out of the log. More than `max_concurrent` requests in
//!   flight (latency included) also get that 403. Requests answered 401 do not enter the log;
//!   every other content-creating request does, whatever its answer (404, 422 too).
//! - `GET /repos/{o}/{r}/rulesets` includes the organisation's rulesets that apply to the
//!   repository unless `includes_parents=false`, as on GitHub (tell them by `source_type`).
//! - Organisation branch rulesets need `conditions.ref_name` and one of
//!   `conditions.repository_name` / `repository_id` / `repository_property` (422 otherwise).
//! - Lists default to GitHub's orders: org repositories and pulls newest first.
//! - [`FakeGitHub::fail`] makes matching requests fail with a chosen status (before any rate
//!   limit is counted), and [`FakeGitHub::go_down`] every request: outages and bad repositories
//!   on demand. [`FakeGitHub::heal`] clears them.
//! - With [`FakeGitHub::enable_app_auth`], the App endpoints need a valid RS256 JWT and every
//!   other endpoint an unexpired installation token; without it, anything is accepted and
//!   tokens are still issued (valid one hour). The single installation has id
//!   [`INSTALLATION_ID`].
//! - Merges (`PUT /repos/{o}/{r}/pulls/{n}/merge`) are refused as GitHub refuses them: 409
//!   when `sha` is not the head, 405 when the pull request is not mergeable, and 405 with
//!   "Repository rule violations found" when an active ruleset with an `update` or
//!   `pull_request` rule covers the base branch and the caller is not one of its bypass
//!   actors. The caller is the GitHub App (`Integration`, the App's id) for an installation
//!   token, or the actor set with [`FakeGitHub::set_token_actor`] for a token; anyone else is
//!   a plain user.
//! - [`FakeGitHub::set_evaluate_available`]`(false)` answers a ruleset with `evaluate`
//!   enforcement with 422, as on plans without GitHub Enterprise.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// The id of the one App installation the fake knows.
pub const INSTALLATION_ID: u64 = 4242;
/// The primary rate limit per window, as for an installation token.
pub const PRIMARY_LIMIT: u64 = 5000;
/// The body `message` of a secondary-rate-limit 403.
pub const SECONDARY_MESSAGE: &str =
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
const SECONDARY_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
const DOCS: &str = "https://docs.github.com/rest";
/// GitHub keeps at most this many statuses per sha and context.
const MAX_STATUSES: usize = 1000;
const RULE_TYPES: &[&str] = &[
    "creation",
    "update",
    "deletion",
    "required_linear_history",
    "merge_queue",
    "required_deployments",
    "required_signatures",
    "pull_request",
    "required_status_checks",
    "non_fast_forward",
    "commit_message_pattern",
    "commit_author_email_pattern",
    "committer_email_pattern",
    "branch_name_pattern",
    "tag_name_pattern",
    "workflows",
    "code_scanning",
    "copilot_code_review",
    "license_compliance_scanning",
    "file_path_restriction",
    "max_file_path_length",
    "file_extension_restriction",
    "max_file_size",
];
const ACTOR_TYPES: &[&str] = &[
    "Integration",
    "OrganizationAdmin",
    "RepositoryRole",
    "Team",
    "DeployKey",
    "User",
];

/// GitHub's secondary rate limits, scaled as a test likes.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Content-creating requests accepted per `minute` (sliding window).
    pub per_minute: u32,
    /// Content-creating requests accepted per hour, which is `60 × minute` (sliding window).
    pub per_hour: u32,
    /// Requests of any method in flight at once.
    pub max_concurrent: u32,
    /// The length of a "minute"; shrink it to make a test fast.
    pub minute: Duration,
}

impl Default for Limits {
    /// GitHub's documented values: 80 a minute, 500 an hour, 100 concurrent.
    fn default() -> Limits {
        Limits {
            per_minute: 80,
            per_hour: 500,
            max_concurrent: 100,
            minute: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// `60 × minute`.
    pub fn hour(&self) -> Duration {
        self.minute * 60
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query, e.g. `/repos/acme/api/rulesets`.
    pub path: String,
    /// The raw query string, `""` when there is none.
    pub query: String,
    /// The JSON body; `Null` when empty, a string when it is not JSON.
    pub body: Value,
    /// Arrival time.
    pub at: Instant,
    /// The status answered; 0 while in flight (or if the client went away).
    pub status: u16,
    /// The `Authorization` header.
    pub auth: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The `X-GitHub-Api-Version` header.
    pub api_version: Option<String>,
}

struct Repo {
    id: u64,
    owner: String,
    name: String,
    default_branch: String,
    created_at: DateTime<Utc>,
}

impl Repo {
    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

struct Pull {
    repo: String,
    id: u64,
    number: u64,
    title: String,
    author: String,
    head_sha: String,
    head_ref: String,
    base_ref: String,
    merged_at: Option<DateTime<Utc>>,
    /// `None` while GitHub is still computing it.
    mergeable: Option<bool>,
    /// Who merged it, as (actor id, actor type), and at which head.
    merged_by: Option<(u64, String, String)>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Clone, PartialEq)]
enum Scope {
    Repo(String),
    Org(String),
}

struct Ruleset {
    scope: Scope,
    id: u64,
    /// The full ruleset object as answered.
    value: Value,
}

struct Status {
    repo: String,
    sha: String,
    value: Value,
}

/// Requests that fail on purpose: `method` (`*` for any) and a path prefix.
struct Fault {
    method: String,
    path_prefix: String,
    status: StatusCode,
    /// A `Retry-After` (seconds) to send with the answer.
    retry_after: Option<u64>,
}

struct AppAuth {
    app_id: String,
    key: DecodingKey,
    ttl: Duration,
}

/// (repo, branch, path) of a file written through the contents API.
type FileKey = (String, String, String);
/// (base64 content, blob sha).
type FileValue = (String, String);

struct Inner {
    base_url: String,
    limits: Limits,
    latency: Duration,
    repos: Vec<Repo>,
    pulls: Vec<Pull>,
    /// Branches created through the git refs API: (repo, branch, sha).
    refs: Vec<(String, String, String)>,
    /// Files written through the contents API: (repo, branch, path) → (base64 content, sha).
    contents: Vec<(FileKey, FileValue)>,
    rulesets: Vec<Ruleset>,
    statuses: Vec<Status>,
    requests: Vec<Request>,
    /// Arrival times of accepted content-creating requests, oldest first.
    window: VecDeque<Instant>,
    in_flight: u32,
    violations: usize,
    app: Option<AppAuth>,
    faults: Vec<Fault>,
    tokens: Vec<(String, Instant)>,
    /// Personal tokens and the bypass actor each one is: (token, actor id, actor type).
    token_actors: Vec<(String, u64, String)>,
    /// The `Authorization` header of the request being routed.
    current_auth: Option<String>,
    evaluate_available: bool,
    /// Check runs: (repo, sha, name, status, conclusion).
    check_runs: Vec<(String, String, String, String, Option<String>)>,
    used: u64,
    reset_at: Instant,
    reset_unix: u64,
    counter: u64,
}

/// An answer before the rate-limit headers are added.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: vec![],
        }
    }
    fn ok(body: Value) -> Reply {
        Reply::json(StatusCode::OK, body)
    }
    fn created(body: Value) -> Reply {
        Reply::json(StatusCode::CREATED, body)
    }
    fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: vec![],
        }
    }
    fn not_found() -> Reply {
        let body = json!({"message": "Not Found", "documentation_url": DOCS, "status": "404"});
        Reply::json(StatusCode::NOT_FOUND, body)
    }
    fn unauthorized(message: &str) -> Reply {
        let body = json!({"message": message, "documentation_url": DOCS, "status": "401"});
        Reply::json(StatusCode::UNAUTHORIZED, body)
    }
    /// 422 `Validation Failed` with these `errors` (strings or objects).
    fn invalid(errors: Vec<Value>) -> Reply {
        let body = json!({"message": "Validation Failed", "errors": errors, "documentation_url": DOCS, "status": "422"});
        Reply::json(StatusCode::UNPROCESSABLE_ENTITY, body)
    }
    fn invalid_msg(message: impl Into<String>) -> Reply {
        Reply::invalid(vec![Value::String(message.into())])
    }
    fn bad_json() -> Reply {
        let body =
            json!({"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"});
        Reply::json(StatusCode::BAD_REQUEST, body)
    }
    fn secondary(retry_after: u64) -> Reply {
        let body = json!({"message": SECONDARY_MESSAGE, "documentation_url": SECONDARY_DOCS});
        let mut reply = Reply::json(StatusCode::FORBIDDEN, body);
        reply.headers.push(("retry-after", retry_after.to_string()));
        reply
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

/// A stable small id for an account name.
fn account_id(login: &str) -> u64 {
    let hash = login
        .to_ascii_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    100_000 + hash % 900_000
}

/// A running fake GitHub; the server lives as long as the tokio runtime.
#[derive(Clone)]
pub struct FakeGitHub {
    /// Base URL, e.g. `http://127.0.0.1:PORT`, to use as the API root (no trailing slash).
    pub url: String,
    inner: Shared,
}

impl FakeGitHub {
    /// Binds `127.0.0.1:0` and serves in a background tokio task.
    pub async fn start(limits: Limits) -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let hour = limits.hour();
        let inner = Arc::new(Mutex::new(Inner {
            base_url: url.clone(),
            limits,
            latency: Duration::ZERO,
            repos: vec![],
            pulls: vec![],
            refs: vec![],
            contents: vec![],
            rulesets: vec![],
            statuses: vec![],
            requests: vec![],
            window: VecDeque::new(),
            in_flight: 0,
            violations: 0,
            app: None,
            faults: vec![],
            tokens: vec![],
            token_actors: vec![],
            current_auth: None,
            evaluate_available: true,
            check_runs: vec![],
            used: 0,
            reset_at: Instant::now() + hour,
            reset_unix: unix_now() + ceil_secs(hour),
            counter: 0,
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve fake github") });
        FakeGitHub { url, inner }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Delay added before every answer, rejected ones included (the request is recorded and
    /// counted as in flight from its arrival).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Adds (or replaces) repository `owner/name`; `owner` is an organisation.
    pub fn add_repo(&self, full_name: &str, default_branch: &str) {
        let (owner, name) = full_name.split_once('/').expect("full_name is owner/name");
        let mut inner = self.lock();
        inner.repos.retain(|r| !same(&r.full_name(), full_name));
        let id = 1_000 + inner.next();
        inner.repos.push(Repo {
            id,
            owner: owner.into(),
            name: name.into(),
            default_branch: default_branch.into(),
            created_at: Utc::now(),
        });
    }

    /// Adds (or replaces) open pull request `number`, from branch `feature-{number}` into
    /// `base_ref`, titled `Pull request #{number}`, by `octocat`.
    pub fn add_pull(&self, repo: &str, number: u64, head_sha: &str, base_ref: &str) {
        let now = Utc::now();
        self.put_pull(Pull {
            repo: repo.into(),
            id: 0,
            number,
            title: format!("Pull request #{number}"),
            author: "octocat".into(),
            head_sha: head_sha.into(),
            head_ref: format!("feature-{number}"),
            base_ref: base_ref.into(),
            merged_at: None,
            mergeable: Some(true),
            merged_by: None,
            created_at: now,
            updated_at: now,
        });
    }

    /// Adds (or replaces) a closed, merged pull request; created an hour before `merged_at`,
    /// last updated at `merged_at`.
    pub fn add_merged_pull(
        &self,
        repo: &str,
        number: u64,
        title: &str,
        author: &str,
        base_ref: &str,
        merged_at: DateTime<Utc>,
    ) {
        self.put_pull(Pull {
            repo: repo.into(),
            id: 0,
            number,
            title: title.into(),
            author: author.into(),
            head_sha: format!("{:040x}", 0xfeed_0000_u64 + number),
            head_ref: format!("feature-{number}"),
            base_ref: base_ref.into(),
            merged_at: Some(merged_at),
            mergeable: None,
            merged_by: None,
            created_at: merged_at - chrono::Duration::hours(1),
            updated_at: merged_at,
        });
    }

    fn put_pull(&self, mut pull: Pull) {
        let mut inner = self.lock();
        inner
            .pulls
            .retain(|p| !(same(&p.repo, &pull.repo) && p.number == pull.number));
        pull.id = 500_000 + inner.next();
        inner.pulls.push(pull);
    }

    /// The repository's own rulesets (full objects), in creation order.
    pub fn rulesets(&self, repo: &str) -> Vec<Value> {
        let inner = self.lock();
        let mine = |r: &&Ruleset| matches!(&r.scope, Scope::Repo(n) if same(n, repo));
        inner
            .rulesets
            .iter()
            .filter(mine)
            .map(|r| r.value.clone())
            .collect()
    }

    /// The organisation's rulesets (full objects), in creation order.
    pub fn org_rulesets(&self, org: &str) -> Vec<Value> {
        let inner = self.lock();
        let mine = |r: &&Ruleset| matches!(&r.scope, Scope::Org(o) if same(o, org));
        inner
            .rulesets
            .iter()
            .filter(mine)
            .map(|r| r.value.clone())
            .collect()
    }

    /// Deletes a repository ruleset as someone in the web UI would; false if there was none.
    pub fn delete_ruleset_by_name(&self, repo: &str, name: &str) -> bool {
        let mut inner = self.lock();
        let before = inner.rulesets.len();
        inner.rulesets.retain(|r| {
            !(matches!(&r.scope, Scope::Repo(n) if same(n, repo)) && r.value["name"] == name)
        });
        inner.rulesets.len() < before
    }

    /// Every status created on `sha` of `repo`, in creation order.
    /// Edits a repository ruleset as someone in the web UI would; false if there was none.
    pub fn edit_ruleset(&self, repo: &str, name: &str, edit: impl FnOnce(&mut Value)) -> bool {
        let mut inner = self.lock();
        let found = inner.rulesets.iter_mut().find(|r| {
            matches!(&r.scope, Scope::Repo(full) if same(full, repo)) && r.value["name"] == name
        });
        match found {
            Some(r) => {
                edit(&mut r.value);
                true
            }
            None => false,
        }
    }

    /// Makes requests with `token` come from this bypass actor (e.g. `RepositoryRole` 5).
    pub fn set_token_actor(&self, token: &str, actor_id: u64, actor_type: &str) {
        self.lock()
            .token_actors
            .push((token.into(), actor_id, actor_type.into()));
    }

    /// `false`: rulesets with `evaluate` enforcement get 422, as without GitHub Enterprise.
    pub fn set_evaluate_available(&self, available: bool) {
        self.lock().evaluate_available = available;
    }

    /// `None` while GitHub is computing mergeability; `Some(false)` for a conflict.
    pub fn set_mergeable(&self, repo: &str, number: u64, mergeable: Option<bool>) {
        let mut inner = self.lock();
        if let Some(p) = inner
            .pulls
            .iter_mut()
            .find(|p| same(&p.repo, repo) && p.number == number)
        {
            p.mergeable = mergeable;
        }
    }

    /// A push to the pull request's branch: its head becomes `sha`.
    pub fn push(&self, repo: &str, number: u64, sha: &str) {
        let mut inner = self.lock();
        if let Some(p) = inner
            .pulls
            .iter_mut()
            .find(|p| same(&p.repo, repo) && p.number == number)
        {
            p.head_sha = sha.into();
            p.updated_at = Utc::now();
        }
    }

    /// A check run on `sha`: `status` `queued`/`in_progress`/`completed`, with a conclusion.
    pub fn add_check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let mut inner = self.lock();
        inner
            .check_runs
            .retain(|c| !(same(&c.0, repo) && c.1 == sha && c.2 == name));
        inner.check_runs.push((
            repo.into(),
            sha.into(),
            name.into(),
            status.into(),
            conclusion.map(str::to_string),
        ));
    }

    /// Who merged the pull request and at which head: (actor id, actor type, sha).
    pub fn merged(&self, repo: &str, number: u64) -> Option<(u64, String, String)> {
        let inner = self.lock();
        let pull = inner
            .pulls
            .iter()
            .find(|p| same(&p.repo, repo) && p.number == number)?;
        pull.merged_by.clone()
    }

    /// A merge attempted with `token` (a person, or firebreak's own), as `PUT …/merge`: the
    /// status GitHub answers.
    pub async fn try_merge(&self, token: &str, repo: &str, number: u64, sha: &str) -> u16 {
        reqwest::Client::new()
            .put(format!("{}/repos/{repo}/pulls/{number}/merge", self.url))
            .bearer_auth(token)
            .json(&json!({"sha": sha}))
            .send()
            .await
            .expect("merge request")
            .status()
            .as_u16()
    }

    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<Value> {
        let inner = self.lock();
        inner
            .statuses
            .iter()
            .filter(|s| same(&s.repo, repo) && s.sha == sha)
            .map(|s| s.value.clone())
            .collect()
    }

    /// The `state` of the latest status for `context` on `sha`.
    pub fn latest_status(&self, repo: &str, sha: &str, context: &str) -> Option<String> {
        let statuses = self.statuses(repo, sha);
        let latest = statuses.iter().rev().find(|s| s["context"] == context)?;
        latest["state"].as_str().map(String::from)
    }

    /// How many requests were answered with a secondary-rate-limit 403.
    /// A file written through the contents API, decoded.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        use base64::Engine;
        let inner = self.lock();
        let key = (repo.to_string(), branch.to_string(), path.to_string());
        let (content, _) = inner
            .contents
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content.replace('\n', ""))
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Open pull requests in `repo` as (number, head branch, title).
    pub fn open_pulls(&self, repo: &str) -> Vec<(u64, String, String)> {
        let inner = self.lock();
        inner
            .pulls
            .iter()
            .filter(|p| same(&p.repo, repo) && p.merged_at.is_none())
            .map(|p| (p.number, p.head_ref.clone(), p.title.clone()))
            .collect()
    }

    pub fn violations(&self) -> usize {
        self.lock().violations
    }

    /// Every request in arrival order, rejected ones included.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Requires GitHub App authentication from now on: the App endpoints need an RS256 JWT
    /// signed by the key whose public half is `public_key_pem`, with `iss` = `app_id`; every
    /// other endpoint needs an installation token issued for it, which lives `token_ttl`.
    pub fn enable_app_auth(&self, app_id: &str, public_key_pem: &str, token_ttl: Duration) {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("RSA public key PEM");
        self.lock().app = Some(AppAuth {
            app_id: app_id.into(),
            key,
            ttl: token_ttl,
        });
    }

    /// Answers `status` to every `method` request (`*` for any) whose path starts with
    /// `path_prefix`, until [`heal`](Self::heal).
    pub fn fail(&self, method: &str, path_prefix: &str, status: u16) {
        self.fail_asking_to_wait(method, path_prefix, status, None);
    }

    /// As [`fail`](Self::fail), with a `Retry-After: secs` header when given (GitHub sends
    /// one with some 503s during an incident, as with 429s).
    pub fn fail_asking_to_wait(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        retry_after: Option<u64>,
    ) {
        self.lock().faults.push(Fault {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            status: StatusCode::from_u16(status).expect("an HTTP status"),
            retry_after,
        });
    }

    /// Answers `status` (say 503) to every request until [`heal`](Self::heal).
    pub fn go_down(&self, status: u16) {
        self.fail("*", "/", status);
    }

    /// Clears every fault set with [`fail`](Self::fail) or [`go_down`](Self::go_down).
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// Every installation token issued, in order.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().tokens.iter().map(|(t, _)| t.clone()).collect()
    }
}

/// Keeps a request counted as in flight until the handler finishes or is dropped.
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).in_flight -= 1;
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let auth = header("authorization");
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    let (index, latency, rate, early, _in_flight) = {
        let mut inner = lock(&shared);
        let at = Instant::now();
        let (rate, primary_exceeded) = inner.primary(at);
        inner.requests.push(Request {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            body: body.clone(),
            at,
            status: 0,
            auth: auth.clone(),
            accept: header("accept"),
            api_version: header("x-github-api-version"),
        });
        inner.in_flight += 1;
        let in_flight = InFlight(shared.clone());
        let early = if primary_exceeded {
            Some(Reply::json(
                StatusCode::FORBIDDEN,
                json!({"message": format!("API rate limit exceeded for installation ID {INSTALLATION_ID}."), "documentation_url": DOCS}),
            ))
        } else {
            inner
                .fault(&method, &path)
                .or_else(|| inner.gate(at, &method, &path, auth.as_deref()))
        };
        let index = inner.requests.len() - 1;
        (index, inner.latency, rate, early, in_flight)
    };
    tokio::time::sleep(latency).await;
    let reply = match early {
        Some(reply) => reply,
        None => {
            let mut inner = lock(&shared);
            inner.current_auth = auth.clone();
            inner.route(&method, &path, &query, &body)
        }
    };
    lock(&shared).requests[index].status = reply.status.as_u16();
    respond(reply, rate)
}

fn respond(reply: Reply, (used, reset): (u64, u64)) -> Response {
    let body = match &reply.body {
        Some(v) => Body::from(serde_json::to_vec(v).expect("serialise")),
        None => Body::empty(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let h = response.headers_mut();
    if reply.body.is_some() {
        let json = HeaderValue::from_static("application/json; charset=utf-8");
        h.insert(header::CONTENT_TYPE, json);
    }
    let remaining = PRIMARY_LIMIT.saturating_sub(used);
    let rate = [
        ("x-ratelimit-limit", PRIMARY_LIMIT.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-used", used.to_string()),
        ("x-ratelimit-resource", "core".to_string()),
        ("x-github-media-type", "github.v3; format=json".to_string()),
    ];
    for (name, value) in rate.into_iter().chain(reply.headers) {
        h.insert(name, HeaderValue::from_str(&value).expect("header value"));
    }
    response
}

impl Inner {
    /// Git refs, contents and pull-request creation: what publishing a file as a PR needs.
    fn route_publishing(
        &mut self,
        method: &str,
        segs: &[&str],
        params: &[(String, String)],
        body: &Value,
    ) -> Option<Reply> {
        let (o, r, rest) = match segs {
            ["repos", o, r, rest @ ..] if !rest.is_empty() => (*o, *r, rest),
            _ => return None,
        };
        let full = self.repo(o, r).map(|repo| repo.full_name())?;
        let param_ref = params
            .iter()
            .find(|(k, _)| k == "ref")
            .map(|(_, v)| v.clone());
        match (method, rest) {
            ("GET", ["branches", branch @ ..]) => {
                let branch = branch.join("/");
                let sha = self
                    .refs
                    .iter()
                    .find(|(rp, b, _)| same(rp, &full) && *b == branch)
                    .map(|x| x.2.clone())
                    .or_else(|| {
                        self.repos
                            .iter()
                            .any(|repo| {
                                same(&repo.full_name(), &full) && repo.default_branch == branch
                            })
                            .then(|| format!("{:040x}", base_sha_seed(&branch)))
                    });
                Some(sha.map_or_else(Reply::not_found, |sha| {
                    Reply::ok(
                        json!({ "name": branch, "commit": { "sha": sha }, "protected": false }),
                    )
                }))
            }
            ("POST", ["git", "refs"]) => {
                let name = body["ref"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("refs/heads/")
                    .to_string();
                let sha = body["sha"].as_str().unwrap_or_default().to_string();
                if self
                    .refs
                    .iter()
                    .any(|(rp, b, _)| same(rp, &full) && *b == name)
                {
                    return Some(Reply::invalid_msg("Reference already exists"));
                }
                self.refs.push((full.clone(), name.clone(), sha.clone()));
                Some(Reply::created(
                    json!({ "ref": format!("refs/heads/{name}"), "node_id": "REF_fake", "url": "", "object": { "sha": sha, "type": "commit", "url": "" } }),
                ))
            }
            ("GET", ["contents", path @ ..]) => {
                let key = (full.clone(), param_ref.unwrap_or_default(), path.join("/"));
                let found = self
                    .contents
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone());
                Some(found.map_or_else(Reply::not_found, |(content, sha)| {
                    Reply::ok(json!({ "type": "file", "encoding": "base64", "size": content.len(), "name": key.2, "path": key.2, "content": content, "sha": sha, "url": "", "git_url": null, "html_url": null, "download_url": null, "_links": { "self": "", "git": null, "html": null } }))
                }))
            }
            ("PUT", ["contents", path @ ..]) => {
                let key = (
                    full.clone(),
                    body["branch"].as_str().unwrap_or_default().to_string(),
                    path.join("/"),
                );
                let existing = self.contents.iter().position(|(k, _)| *k == key);
                let given = body["sha"].as_str();
                if let Some(i) = existing {
                    if given != Some(self.contents[i].1.1.as_str()) {
                        return Some(Reply::json(
                            StatusCode::CONFLICT,
                            json!({ "message": "sha does not match", "status": "409" }),
                        ));
                    }
                } else if given.is_some() {
                    return Some(Reply::invalid_msg("sha given for a new file"));
                }
                self.counter += 1;
                let sha = format!("{:040x}", 0xf11e_u64 + self.counter);
                let value = (
                    body["content"].as_str().unwrap_or_default().to_string(),
                    sha.clone(),
                );
                let status = match existing {
                    Some(i) => {
                        self.contents[i].1 = value;
                        StatusCode::OK
                    }
                    None => {
                        self.contents.push((key.clone(), value));
                        StatusCode::CREATED
                    }
                };
                Some(Reply::json(
                    status,
                    json!({ "content": { "name": key.2, "path": key.2, "sha": sha }, "commit": { "sha": sha, "message": body["message"] } }),
                ))
            }
            ("POST", ["pulls"]) => {
                self.counter += 1;
                let number = 1000 + self.counter;
                let head = body["head"].as_str().unwrap_or_default();
                let head = head.split_once(':').map_or(head, |(_, b)| b).to_string();
                let now = Utc::now();
                let pull = Pull {
                    repo: full.clone(),
                    id: number,
                    number,
                    title: body["title"].as_str().unwrap_or_default().to_string(),
                    author: "firebreak[bot]".into(),
                    head_sha: format!("{:040x}", number),
                    head_ref: head,
                    base_ref: body["base"].as_str().unwrap_or_default().to_string(),
                    merged_at: None,
                    mergeable: Some(true),
                    merged_by: None,
                    created_at: now,
                    updated_at: now,
                };
                let reply = Reply::created(self.pull_json(&pull));
                self.pulls.push(pull);
                Some(reply)
            }
            ("PATCH", ["pulls", n]) => {
                let number = n.parse::<u64>().ok();
                let i = self
                    .pulls
                    .iter()
                    .position(|p| same(&p.repo, &full) && Some(p.number) == number)?;
                if let Some(title) = body["title"].as_str() {
                    self.pulls[i].title = title.to_string();
                }
                self.pulls[i].updated_at = Utc::now();
                Some(Reply::ok(self.pull_json(&self.pulls[i])))
            }
            _ => None,
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Counts the request against the primary window; returns (used, reset) and whether the
    /// limit was already reached.
    fn primary(&mut self, at: Instant) -> ((u64, u64), bool) {
        if at >= self.reset_at {
            let hour = self.limits.hour();
            (self.used, self.reset_at) = (0, at + hour);
            self.reset_unix = unix_now() + ceil_secs(hour);
        }
        let exceeded = self.used >= PRIMARY_LIMIT;
        if !exceeded {
            self.used += 1;
        }
        ((self.used, self.reset_unix), exceeded)
    }

    /// Concurrency, authentication and the content-creation window, in that order; `Some` is
    /// the answer when the request is refused.
    fn gate(
        &mut self,
        at: Instant,
        method: &Method,
        path: &str,
        auth: Option<&str>,
    ) -> Option<Reply> {
        if self.in_flight > self.limits.max_concurrent {
            self.violations += 1;
            return Some(Reply::secondary(ceil_secs(self.latency).max(1)));
        }
        if let Err(reply) = self.authenticate(method, path, auth) {
            return Some(reply);
        }
        let writes = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        let admitted = if writes { self.admit(at) } else { Ok(()) };
        if let Err(wait) = admitted {
            self.violations += 1;
            return Some(Reply::secondary(ceil_secs(wait).max(1)));
        }
        None
    }

    /// The sliding windows: admits a content-creating request arriving `at`, or says how long
    /// until the oldest request in the full window leaves it.
    fn admit(&mut self, at: Instant) -> Result<(), Duration> {
        let (minute, hour) = (self.limits.minute, self.limits.hour());
        while self
            .window
            .front()
            .is_some_and(|t| at.duration_since(*t) >= hour)
        {
            self.window.pop_front();
        }
        let wait_for = |window: Duration, count: usize, limit: u32, oldest: Option<&Instant>| {
            (count + 1 > limit as usize)
                .then(|| oldest.map_or(window, |t| window - at.duration_since(*t)))
        };
        let in_minute: Vec<&Instant> = self
            .window
            .iter()
            .filter(|t| at.duration_since(**t) < minute)
            .collect();
        let per_minute = wait_for(
            minute,
            in_minute.len(),
            self.limits.per_minute,
            in_minute.first().copied(),
        );
        let per_hour = wait_for(
            hour,
            self.window.len(),
            self.limits.per_hour,
            self.window.front(),
        );
        match per_minute.max(per_hour) {
            Some(wait) => Err(wait),
            None => {
                self.window.push_back(at);
                Ok(())
            }
        }
    }

    fn authenticate(&self, method: &Method, path: &str, auth: Option<&str>) -> Result<(), Reply> {
        let Some(app) = &self.app else {
            return Ok(());
        };
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let app_endpoint = matches!(
            (method.as_str(), segs.as_slice()),
            ("GET", ["app"])
                | ("GET", ["app", "installations"])
                | ("POST", ["app", "installations", _, "access_tokens"])
                | ("GET", ["repos", _, _, "installation"])
                | ("GET", ["orgs", _, "installation"])
        );
        if app_endpoint {
            return verify_jwt(app, auth).map_err(|m| Reply::unauthorized(&m));
        }
        let token = auth.and_then(|a| {
            let (scheme, token) = a.split_once(' ')?;
            let known = same(scheme, "bearer") || same(scheme, "token");
            known.then(|| token.trim())
        });
        let now = Instant::now();
        let valid = |t: &str| self.tokens.iter().any(|(k, exp)| k == t && *exp > now);
        if token.is_some_and(valid) {
            Ok(())
        } else {
            Err(Reply::unauthorized("Bad credentials"))
        }
    }

    fn repo(&self, owner: &str, name: &str) -> Option<&Repo> {
        let found = |r: &&Repo| same(&r.owner, owner) && same(&r.name, name);
        self.repos.iter().find(found)
    }

    /// The org's canonical spelling, if any repository belongs to it.
    fn org(&self, org: &str) -> Option<String> {
        let repo = self.repos.iter().find(|r| same(&r.owner, org))?;
        Some(repo.owner.clone())
    }

    /// The answer of the first fault matching this request, if any.
    fn fault(&self, method: &Method, path: &str) -> Option<Reply> {
        let fault = self.faults.iter().find(|f| {
            (f.method == "*" || f.method == method.as_str()) && path.starts_with(&f.path_prefix)
        })?;
        let mut reply = match fault.status {
            StatusCode::NOT_FOUND => Reply::not_found(),
            StatusCode::UNPROCESSABLE_ENTITY => Reply::invalid_msg("Simulated validation failure"),
            status => {
                let message = status.canonical_reason().unwrap_or("Error");
                let body = json!({"message": message, "documentation_url": DOCS, "status": status.as_str()});
                Reply::json(status, body)
            }
        };
        if let Some(secs) = fault.retry_after {
            reply.headers.push(("retry-after", secs.to_string()));
        }
        Some(reply)
    }

    fn route(&mut self, method: &Method, path: &str, query: &str, body: &Value) -> Reply {
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ruleset_id = |s: &str| s.parse::<u64>().ok();
        if let Some(reply) = self.route_publishing(method.as_str(), &segs, &params, body) {
            return reply;
        }
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["repos", o, r]) => match self.repo(o, r) {
                Some(repo) => Reply::ok(repo_json(&self.base_url, repo)),
                None => Reply::not_found(),
            },
            ("GET", ["orgs", org, "repos"]) => self.org_repos(org, path, &params),
            ("GET", ["users", login]) => match self.org(login) {
                Some(login) => Reply::ok(json!({"login": login, "id": 1, "type": "Organization"})),
                None => Reply::not_found(),
            },
            ("GET", ["repos", o, r, "rulesets"]) => self.list_repo_rulesets(o, r, path, &params),
            ("POST", ["repos", o, r, "rulesets"]) => match self.repo(o, r) {
                Some(repo) => self.create_ruleset(Scope::Repo(repo.full_name()), body),
                None => Reply::not_found(),
            },
            (m, ["repos", o, r, "rulesets", id]) => match (self.repo(o, r), ruleset_id(id)) {
                (Some(repo), Some(id)) => {
                    let scope = Scope::Repo(repo.full_name());
                    let parents = param(&params, "includes_parents") != Some("false");
                    self.one_ruleset(m, scope, id, body, parents)
                }
                _ => Reply::not_found(),
            },
            ("GET", ["orgs", org, "rulesets"]) => match self.org(org) {
                Some(org) => {
                    let items = self.ruleset_items(|r| r.scope == Scope::Org(org.clone()));
                    self.paginate(path, &params, items)
                }
                None => Reply::not_found(),
            },
            ("POST", ["orgs", org, "rulesets"]) => match self.org(org) {
                Some(org) => self.create_ruleset(Scope::Org(org), body),
                None => Reply::not_found(),
            },
            (m, ["orgs", org, "rulesets", id]) => match (self.org(org), ruleset_id(id)) {
                (Some(org), Some(id)) => self.one_ruleset(m, Scope::Org(org), id, body, false),
                _ => Reply::not_found(),
            },
            ("GET", ["repos", o, r, "pulls"]) => match self.repo(o, r) {
                Some(repo) => {
                    let full = repo.full_name();
                    self.list_pulls(&full, path, &params)
                }
                None => Reply::not_found(),
            },
            ("GET", ["repos", o, r, "pulls", n]) => {
                let Some(repo) = self.repo(o, r) else {
                    return Reply::not_found();
                };
                let full = repo.full_name();
                let number = n.parse::<u64>().ok();
                let pull = self
                    .pulls
                    .iter()
                    .find(|p| same(&p.repo, &full) && Some(p.number) == number);
                pull.map_or_else(Reply::not_found, |p| Reply::ok(self.pull_json(p)))
            }
            ("PUT", ["repos", o, r, "pulls", n, "merge"]) => match self.repo(o, r) {
                Some(repo) => {
                    let full = repo.full_name();
                    let caller = self.caller();
                    self.merge(&full, n.parse().unwrap_or(0), body, caller)
                }
                None => Reply::not_found(),
            },
            ("GET", ["repos", o, r, "commits", reference, "check-runs"]) => {
                let Some(repo) = self.repo(o, r) else {
                    return Reply::not_found();
                };
                let full = repo.full_name();
                let runs: Vec<Value> = self
                    .check_runs
                    .iter()
                    .filter(|c| c.0 == full && c.1 == *reference)
                    .map(|c| json!({"id": 1, "head_sha": c.1, "name": c.2, "status": c.3, "conclusion": c.4}))
                    .collect();
                Reply::ok(json!({"total_count": runs.len(), "check_runs": runs}))
            }
            ("POST", ["repos", o, r, "statuses", sha]) => match self.repo(o, r) {
                Some(repo) => {
                    let full = repo.full_name();
                    self.create_status(&full, sha, body)
                }
                None => Reply::not_found(),
            },
            ("GET", ["repos", o, r, "commits", reference, "statuses"]) => {
                let Some(repo) = self.repo(o, r) else {
                    return Reply::not_found();
                };
                let full = repo.full_name();
                let mut items: Vec<Value> = self
                    .statuses
                    .iter()
                    .filter(|s| s.repo == full && s.sha == *reference)
                    .map(|s| s.value.clone())
                    .collect();
                items.reverse();
                self.paginate(path, &params, items)
            }
            ("GET", ["repos", o, r, "commits", reference, "status"]) => match self.repo(o, r) {
                Some(repo) => Reply::ok(self.combined_status(repo, reference)),
                None => Reply::not_found(),
            },
            ("GET", ["app"]) => {
                let app_id = self.app.as_ref().map_or("1".into(), |a| a.app_id.clone());
                Reply::ok(json!({
                    "id": id_value(&app_id), "slug": "firebreak", "name": "firebreak",
                    "owner": {"login": self.repos.first().map_or("fake-org", |r| &r.owner)},
                    "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                    "permissions": permissions(), "events": [],
                }))
            }
            ("GET", ["app", "installations"]) => {
                let account = self
                    .repos
                    .first()
                    .map_or("fake-org".into(), |r| r.owner.clone());
                let items = vec![self.installation_json(&account)];
                self.paginate(path, &params, items)
            }
            ("GET", ["repos", o, r, "installation"]) => match self.repo(o, r) {
                Some(repo) => {
                    let owner = repo.owner.clone();
                    Reply::ok(self.installation_json(&owner))
                }
                None => Reply::not_found(),
            },
            ("GET", ["orgs", org, "installation"]) => match self.org(org) {
                Some(org) => Reply::ok(self.installation_json(&org)),
                None => Reply::not_found(),
            },
            ("POST", ["app", "installations", id, "access_tokens"]) => {
                if id.parse::<u64>().ok() != Some(INSTALLATION_ID) {
                    return Reply::not_found();
                }
                let ttl = self
                    .app
                    .as_ref()
                    .map_or(Duration::from_secs(3600), |a| a.ttl);
                let token = format!("ghs_{}", self.next());
                self.tokens.push((token.clone(), Instant::now() + ttl));
                let expires = Utc::now() + chrono::Duration::from_std(ttl).expect("ttl");
                Reply::created(json!({
                    "token": token, "expires_at": ts(expires), "permissions": permissions(),
                    "repository_selection": "all",
                }))
            }
            _ => Reply::not_found(),
        }
    }

    /// One page of `items` with GitHub's `Link` header; `per_page` defaults to 30, max 100.
    fn paginate(&self, path: &str, params: &[(String, String)], items: Vec<Value>) -> Reply {
        let number = |key: &str| param(params, key).and_then(|v| v.parse::<usize>().ok());
        let per_page = number("per_page").filter(|n| *n > 0).unwrap_or(30).min(100);
        let page = number("page").filter(|n| *n > 0).unwrap_or(1);
        let last = items.len().div_ceil(per_page).max(1);
        let start = (page - 1).saturating_mul(per_page);
        let items: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
        let link_to = |n: usize, rel: &str| {
            let mut query: Vec<(String, String)> = params.to_vec();
            match query.iter_mut().find(|(k, _)| k == "page") {
                Some(entry) => entry.1 = n.to_string(),
                None => query.push(("page".into(), n.to_string())),
            }
            let query = serde_urlencoded::to_string(&query).expect("query");
            format!("<{}{path}?{query}>; rel=\"{rel}\"", self.base_url)
        };
        let mut links = vec![];
        if page > 1 {
            links.push(link_to((page - 1).min(last), "prev"));
        }
        if page < last {
            links.push(link_to(page + 1, "next"));
            links.push(link_to(last, "last"));
        }
        if page > 1 {
            links.push(link_to(1, "first"));
        }
        let mut reply = Reply::ok(Value::Array(items));
        if !links.is_empty() {
            reply.headers.push(("link", links.join(", ")));
        }
        reply
    }

    fn org_repos(&self, org: &str, path: &str, params: &[(String, String)]) -> Reply {
        if self.org(org).is_none() {
            return Reply::not_found();
        }
        let mut repos: Vec<&Repo> = self.repos.iter().filter(|r| same(&r.owner, org)).collect();
        let sort = param(params, "sort").unwrap_or("created");
        match sort {
            "full_name" => repos.sort_by_key(|r| r.full_name().to_lowercase()),
            _ => repos.sort_by_key(|r| (r.created_at, r.id)),
        }
        let default = if sort == "full_name" { "asc" } else { "desc" };
        if param(params, "direction").unwrap_or(default) == "desc" {
            repos.reverse();
        }
        let items = repos.iter().map(|r| repo_json(&self.base_url, r)).collect();
        self.paginate(path, params, items)
    }

    fn ruleset_items(&self, keep: impl Fn(&Ruleset) -> bool) -> Vec<Value> {
        let summary = |r: &Ruleset| {
            let mut v = json!({});
            for key in [
                "id",
                "name",
                "target",
                "source_type",
                "source",
                "enforcement",
                "node_id",
                "_links",
                "created_at",
                "updated_at",
            ] {
                v[key] = r.value[key].clone();
            }
            v
        };
        let mut found: Vec<&Ruleset> = self.rulesets.iter().filter(|r| keep(r)).collect();
        found.sort_by_key(|r| r.id);
        found.into_iter().map(summary).collect()
    }

    /// Whether an org ruleset applies to `repo` by its repository conditions.
    fn applies(ruleset: &Ruleset, repo: &Repo) -> bool {
        let Scope::Org(org) = &ruleset.scope else {
            return false;
        };
        if !same(org, &repo.owner) {
            return false;
        }
        let conditions = &ruleset.value["conditions"];
        let names = |key: &str| -> Vec<String> {
            let list = conditions["repository_name"][key].as_array();
            let list = list.map(|a| a.iter().filter_map(Value::as_str).map(String::from));
            list.map(Iterator::collect).unwrap_or_default()
        };
        if conditions["repository_name"].is_object() {
            let matches =
                |p: &String| p == "~ALL" || glob(&p.to_lowercase(), &repo.name.to_lowercase());
            names("include").iter().any(matches) && !names("exclude").iter().any(matches)
        } else if let Some(ids) = conditions["repository_id"]["repository_ids"].as_array() {
            ids.iter().any(|id| id.as_u64() == Some(repo.id))
        } else {
            true
        }
    }

    fn list_repo_rulesets(
        &self,
        o: &str,
        r: &str,
        path: &str,
        params: &[(String, String)],
    ) -> Reply {
        let Some(repo) = self.repo(o, r) else {
            return Reply::not_found();
        };
        let full = repo.full_name();
        let parents = param(params, "includes_parents") != Some("false");
        let targets: Option<Vec<&str>> = param(params, "targets").map(|t| t.split(',').collect());
        let items = self.ruleset_items(|rs| {
            let in_scope =
                rs.scope == Scope::Repo(full.clone()) || (parents && Inner::applies(rs, repo));
            let target = rs.value["target"].as_str().unwrap_or("branch");
            in_scope && targets.as_ref().is_none_or(|t| t.contains(&target))
        });
        self.paginate(path, params, items)
    }

    fn create_ruleset(&mut self, scope: Scope, body: &Value) -> Reply {
        if !body.is_object() {
            return Reply::bad_json();
        }
        if let Err(reply) = validate_ruleset(body, true, matches!(scope, Scope::Org(_))) {
            return reply;
        }
        if let Some(reply) = self.evaluate_refused(body) {
            return reply;
        }
        let name = body["name"].as_str().unwrap_or_default();
        if self.name_taken(&scope, name, None) {
            return Reply::invalid_msg("Name must be unique");
        }
        let id = self.next();
        let now = ts(Utc::now());
        let (source_type, source, self_href, html) = match &scope {
            Scope::Repo(full) => (
                "Repository",
                full.clone(),
                format!("{}/repos/{full}/rulesets/{id}", self.base_url),
                format!("https://github.com/{full}/rules/{id}"),
            ),
            Scope::Org(org) => (
                "Organization",
                org.clone(),
                format!("{}/orgs/{org}/rulesets/{id}", self.base_url),
                format!("https://github.com/organizations/{org}/settings/rules/{id}"),
            ),
        };
        let field = |key: &str, default: Value| match &body[key] {
            Value::Null => default,
            v => v.clone(),
        };
        let mut bypass_actors = field("bypass_actors", json!([]));
        for actor in bypass_actors.as_array_mut().into_iter().flatten() {
            if actor["bypass_mode"].is_null() {
                actor["bypass_mode"] = json!("always");
            }
        }
        let value = json!({
            "id": id, "name": name, "target": field("target", json!("branch")),
            "source_type": source_type, "source": source,
            "enforcement": body["enforcement"], "bypass_actors": bypass_actors,
            "current_user_can_bypass": "never", "node_id": format!("RRS_fake{id}"),
            "_links": {"self": {"href": self_href}, "html": {"href": html}},
            "conditions": field("conditions", json!({})), "rules": field("rules", json!([])),
            "created_at": now, "updated_at": now,
        });
        self.rulesets.push(Ruleset {
            scope,
            id,
            value: value.clone(),
        });
        Reply::created(value)
    }

    fn name_taken(&self, scope: &Scope, name: &str, except: Option<u64>) -> bool {
        self.rulesets
            .iter()
            .any(|r| r.scope == *scope && r.value["name"] == name && Some(r.id) != except)
    }

    /// An org ruleset `id` that applies to the repository `scope`.
    fn inherited(&self, scope: &Scope, id: u64) -> Option<Value> {
        let Scope::Repo(full) = scope else {
            return None;
        };
        let (o, r) = full.split_once('/')?;
        let repo = self.repo(o, r)?;
        let found = self
            .rulesets
            .iter()
            .find(|rs| rs.id == id && Inner::applies(rs, repo));
        found.map(|rs| rs.value.clone())
    }

    /// GET, PUT or DELETE one ruleset of `scope`; a repository's GET also finds the org
    /// rulesets that apply to it when `parents`.
    fn one_ruleset(
        &mut self,
        method: &str,
        scope: Scope,
        id: u64,
        body: &Value,
        parents: bool,
    ) -> Reply {
        let own = self
            .rulesets
            .iter()
            .position(|r| r.id == id && r.scope == scope);
        let Some(index) = own else {
            let inherited = (method == "GET" && parents).then(|| self.inherited(&scope, id));
            return inherited.flatten().map_or_else(Reply::not_found, Reply::ok);
        };
        match method {
            "GET" => Reply::ok(self.rulesets[index].value.clone()),
            "DELETE" => {
                self.rulesets.remove(index);
                Reply::no_content()
            }
            "PUT" => {
                if !body.is_object() {
                    return Reply::bad_json();
                }
                if let Err(reply) = validate_ruleset(body, false, matches!(scope, Scope::Org(_))) {
                    return reply;
                }
                if let Some(reply) = self.evaluate_refused(body) {
                    return reply;
                }
                let renamed = body["name"].as_str();
                if renamed.is_some_and(|name| self.name_taken(&scope, name, Some(id))) {
                    return Reply::invalid_msg("Name must be unique");
                }
                let value = &mut self.rulesets[index].value;
                for key in [
                    "name",
                    "target",
                    "enforcement",
                    "bypass_actors",
                    "conditions",
                    "rules",
                ] {
                    if !body[key].is_null() {
                        value[key] = body[key].clone();
                    }
                }
                value["updated_at"] = json!(ts(Utc::now()));
                Reply::ok(value.clone())
            }
            _ => Reply::not_found(),
        }
    }

    fn evaluate_refused(&self, body: &Value) -> Option<Reply> {
        (!self.evaluate_available && body["enforcement"] == "evaluate").then(|| {
            Reply::invalid(vec![json!({
                "resource": "Ruleset", "field": "enforcement", "code": "invalid",
                "message": "evaluate enforcement is only available with GitHub Enterprise",
            })])
        })
    }

    /// The bypass actor the current request's token is, if any.
    fn caller(&self) -> Option<(u64, String)> {
        let token = self
            .current_auth
            .as_deref()?
            .split_once(' ')?
            .1
            .trim()
            .to_string();
        if self.tokens.iter().any(|(t, _)| *t == token) {
            let app_id = self.app.as_ref().map_or("1", |a| a.app_id.as_str());
            return Some((app_id.parse().unwrap_or(1), "Integration".into()));
        }
        self.token_actors
            .iter()
            .find(|(t, _, _)| *t == token)
            .map(|(_, id, kind)| (*id, kind.clone()))
    }

    /// The active rulesets that block updates of `branch` in `repo`, as (name, bypass actors).
    fn blocking_rulesets(&self, repo: &Repo, branch: &str) -> Vec<(String, Value)> {
        let full = repo.full_name();
        let refname = format!("refs/heads/{branch}");
        let matches = |patterns: &Value| {
            patterns
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|p| {
                    p == "~ALL"
                        || (p == "~DEFAULT_BRANCH" && branch == repo.default_branch)
                        || glob(p, &refname)
                })
        };
        self.rulesets
            .iter()
            .filter(|r| match &r.scope {
                Scope::Repo(name) => same(name, &full),
                Scope::Org(_) => Self::applies(r, repo),
            })
            .filter(|r| r.value["enforcement"] == "active" && r.value["target"] == "branch")
            .filter(|r| {
                let names = &r.value["conditions"]["ref_name"];
                matches(&names["include"]) && !matches(&names["exclude"])
            })
            .filter(|r| {
                r.value["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|rule| rule["type"] == "update" || rule["type"] == "pull_request")
            })
            .map(|r| {
                (
                    r.value["name"].as_str().unwrap_or_default().to_string(),
                    r.value["bypass_actors"].clone(),
                )
            })
            .collect()
    }

    fn merge(
        &mut self,
        full: &str,
        number: u64,
        body: &Value,
        caller: Option<(u64, String)>,
    ) -> Reply {
        let Some(index) = self
            .pulls
            .iter()
            .position(|p| same(&p.repo, full) && p.number == number)
        else {
            return Reply::not_found();
        };
        let not_allowed = |message: &str| {
            Reply::json(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"message": message, "documentation_url": DOCS, "status": "405"}),
            )
        };
        let pull = &self.pulls[index];
        if pull.merged_at.is_some() || pull.mergeable != Some(true) {
            return not_allowed("Pull Request is not mergeable");
        }
        if let Some(sha) = body["sha"].as_str() {
            if sha != pull.head_sha {
                let body = json!({"message": "Head branch was modified. Review and try the merge again.", "documentation_url": DOCS, "status": "409"});
                return Reply::json(StatusCode::CONFLICT, body);
            }
        }
        let repo = self
            .repos
            .iter()
            .find(|r| same(&r.full_name(), full))
            .expect("repo");
        let bypasses = |actors: &Value| {
            caller.as_ref().is_some_and(|(id, kind)| {
                actors.as_array().into_iter().flatten().any(|a| {
                    a["actor_id"].as_u64() == Some(*id) && a["actor_type"] == kind.as_str()
                })
            })
        };
        let blocking: Vec<String> = self
            .blocking_rulesets(repo, &pull.base_ref)
            .into_iter()
            .filter(|(_, actors)| !bypasses(actors))
            .map(|(name, _)| name)
            .collect();
        if !blocking.is_empty() {
            return not_allowed(&format!(
                "Repository rule violations found\n\nCannot update this protected ref (rulesets: {}).\n\n",
                blocking.join(", ")
            ));
        }
        let merge_sha = format!("{:040x}", 0xc0ffee_u64 + number);
        let pull = &mut self.pulls[index];
        pull.merged_at = Some(Utc::now());
        pull.updated_at = Utc::now();
        let (id, kind) = caller.unwrap_or((0, "User".into()));
        pull.merged_by = Some((id, kind, pull.head_sha.clone()));
        Reply::ok(
            json!({"sha": merge_sha, "merged": true, "message": "Pull Request successfully merged"}),
        )
    }

    fn list_pulls(&self, full: &str, path: &str, params: &[(String, String)]) -> Reply {
        let state = param(params, "state").unwrap_or("open");
        if !["open", "closed", "all"].contains(&state) {
            let error = json!({"resource": "PullRequest", "field": "state", "code": "invalid"});
            return Reply::invalid(vec![error]);
        }
        let base = param(params, "base");
        let head = param(params, "head").map(|h| h.split_once(':').map_or(h, |(_, r)| r));
        let mut pulls: Vec<&Pull> = self
            .pulls
            .iter()
            .filter(|p| same(&p.repo, full))
            .filter(|p| match state {
                "open" => p.merged_at.is_none(),
                "closed" => p.merged_at.is_some(),
                _ => true,
            })
            .filter(|p| base.is_none_or(|b| p.base_ref == b))
            .filter(|p| head.is_none_or(|h| p.head_ref == h.split_once(':').map_or(h, |(_, b)| b)))
            .collect();
        let sort = param(params, "sort").unwrap_or("created");
        match sort {
            "updated" => pulls.sort_by_key(|p| (p.updated_at, p.id)),
            _ => pulls.sort_by_key(|p| (p.created_at, p.id)),
        }
        let default = if sort == "created" { "desc" } else { "asc" };
        if param(params, "direction").unwrap_or(default) == "desc" {
            pulls.reverse();
        }
        let items = pulls.into_iter().map(|p| self.pull_json(p)).collect();
        self.paginate(path, params, items)
    }

    fn pull_json(&self, p: &Pull) -> Value {
        let (owner, _) = p.repo.split_once('/').unwrap_or_default();
        let repo = self
            .repos
            .iter()
            .find(|r| same(&r.full_name(), &p.repo))
            .map(|r| repo_json(&self.base_url, r));
        let base_sha = format!("{:040x}", base_sha_seed(&p.base_ref));
        let api = format!("{}/repos/{}", self.base_url, p.repo);
        let merged = p.merged_at.map(ts);
        json!({
            "url": format!("{api}/pulls/{}", p.number), "id": p.id,
            "node_id": format!("PR_fake{}", p.id),
            "html_url": format!("https://github.com/{}/pull/{}", p.repo, p.number),
            "number": p.number, "state": if p.merged_at.is_some() { "closed" } else { "open" },
            "locked": false, "title": p.title, "body": null, "draft": false,
            "user": user_json(&p.author), "labels": [], "assignee": null, "assignees": [],
            "milestone": null, "created_at": ts(p.created_at), "updated_at": ts(p.updated_at),
            "closed_at": merged, "merged_at": merged,
            "merge_commit_sha": p.merged_at.map(|_| format!("{:040x}", 0xc0ffee_u64 + p.number)),
            "head": {"label": format!("{owner}:{}", p.head_ref), "ref": p.head_ref, "sha": p.head_sha, "repo": repo, "user": user_json(owner)},
            "base": {"label": format!("{owner}:{}", p.base_ref), "ref": p.base_ref, "sha": base_sha, "repo": repo, "user": user_json(owner)},
            "author_association": "CONTRIBUTOR", "auto_merge": null,
            "merged": p.merged_at.is_some(),
            "mergeable": if p.merged_at.is_some() { None } else { p.mergeable },
            "mergeable_state": match (p.merged_at, p.mergeable) {
                (Some(_), _) => "unknown", (None, None) => "unknown",
                (None, Some(false)) => "dirty", (None, Some(true)) => "clean",
            },
            "statuses_url": format!("{api}/statuses/{}", p.head_sha),
        })
    }

    fn create_status(&mut self, full: &str, sha: &str, body: &Value) -> Reply {
        if !body.is_object() {
            return Reply::bad_json();
        }
        let error = |field: &str, message: &str| {
            Reply::invalid(vec![
                json!({"resource": "Status", "code": "custom", "field": field, "message": message}),
            ])
        };
        let state = body["state"].as_str().unwrap_or_default();
        if !["error", "failure", "pending", "success"].contains(&state) {
            return error("state", "state is not included in the list");
        }
        let optional_string = |key: &str| match &body[key] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(error(key, &format!("{key} is not a string"))),
        };
        let (description, target_url, context) = match (
            optional_string("description"),
            optional_string("target_url"),
            optional_string("context"),
        ) {
            (Ok(d), Ok(t), Ok(c)) => (d, t, c.unwrap_or_else(|| "default".into())),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
        };
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 140)
        {
            return error(
                "description",
                "description is too long (maximum is 140 characters)",
            );
        }
        let same_context =
            |s: &&Status| s.repo == full && s.sha == sha && s.value["context"] == context;
        if self.statuses.iter().filter(same_context).count() >= MAX_STATUSES {
            return error(
                "context",
                "This SHA and context has reached the maximum number of statuses.",
            );
        }
        let id = self.next();
        let now = ts(Utc::now());
        let value = json!({
            "url": format!("{}/repos/{full}/statuses/{sha}", self.base_url),
            "avatar_url": null, "id": id, "node_id": format!("SC_fake{id}"), "state": state,
            "description": description, "target_url": target_url, "context": context,
            "created_at": now, "updated_at": now, "creator": user_json("firebreak[bot]"),
        });
        self.statuses.push(Status {
            repo: full.into(),
            sha: sha.into(),
            value: value.clone(),
        });
        Reply::created(value)
    }

    /// GitHub's combined status: the latest status per context, failure if any failed or
    /// errored, else pending if any is pending or there are none, else success.
    fn combined_status(&self, repo: &Repo, sha: &str) -> Value {
        let full = repo.full_name();
        let mut latest: Vec<&Value> = vec![];
        for s in self
            .statuses
            .iter()
            .rev()
            .filter(|s| s.repo == full && s.sha == sha)
        {
            if !latest.iter().any(|l| l["context"] == s.value["context"]) {
                latest.push(&s.value);
            }
        }
        let any = |states: &[&str]| {
            latest
                .iter()
                .any(|s| states.iter().any(|st| s["state"] == *st))
        };
        let state = if any(&["error", "failure"]) {
            "failure"
        } else if latest.is_empty() || any(&["pending"]) {
            "pending"
        } else {
            "success"
        };
        json!({
            "state": state, "sha": sha, "total_count": latest.len(), "statuses": latest,
            "repository": repo_json(&self.base_url, repo),
            "commit_url": format!("{}/repos/{full}/commits/{sha}", self.base_url),
            "url": format!("{}/repos/{full}/commits/{sha}/status", self.base_url),
        })
    }

    fn installation_json(&self, account: &str) -> Value {
        let app_id = self.app.as_ref().map_or("1".into(), |a| a.app_id.clone());
        json!({
            "id": INSTALLATION_ID, "app_id": id_value(&app_id), "app_slug": "firebreak",
            "client_id": "Iv1.fakefirebreak", "target_id": account_id(account),
            "target_type": "Organization",
            "account": {"login": account, "id": account_id(account), "type": "Organization"},
            "repository_selection": "all",
            "access_tokens_url": format!("{}/app/installations/{INSTALLATION_ID}/access_tokens", self.base_url),
            "repositories_url": format!("{}/installation/repositories", self.base_url),
            "html_url": format!("https://github.com/organizations/{account}/settings/installations/{INSTALLATION_ID}"),
            "permissions": permissions(), "events": ["pull_request", "push"],
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "single_file_name": null, "suspended_at": null, "suspended_by": null,
        })
    }
}

/// A fake but stable sha for a branch tip.
fn base_sha_seed(branch: &str) -> u64 {
    account_id(branch)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A numeric app id as a JSON number, anything else as a string.
fn id_value(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn permissions() -> Value {
    json!({"metadata": "read", "administration": "write", "statuses": "write", "pull_requests": "read", "contents": "read"})
}

fn user_json(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({
        "login": login, "id": account_id(login), "node_id": format!("U_fake{}", account_id(login)),
        "type": kind, "site_admin": false, "html_url": format!("https://github.com/{login}"),
    })
}

fn repo_json(base_url: &str, r: &Repo) -> Value {
    let full = r.full_name();
    let created = ts(r.created_at);
    json!({
        "id": r.id, "node_id": format!("R_fake{}", r.id), "name": r.name, "full_name": full,
        "private": false, "visibility": "public", "fork": false, "archived": false,
        "disabled": false, "description": null,
        "owner": {
            "login": r.owner, "id": account_id(&r.owner), "type": "Organization",
            "html_url": format!("https://github.com/{}", r.owner),
            "url": format!("{base_url}/users/{}", r.owner),
        },
        "html_url": format!("https://github.com/{full}"), "url": format!("{base_url}/repos/{full}"),
        "default_branch": r.default_branch,
        "created_at": created, "updated_at": created, "pushed_at": created,
    })
}

/// `*` matches any run of characters, `?` one character (GitHub's fnmatch, simplified).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            (pi, ti) = (pi + 1, ti + 1);
        } else if pi < p.len() && p[pi] == '*' {
            (star, mark, pi) = (Some(pi), ti, pi + 1);
        } else if let Some(s) = star {
            (pi, mark) = (s + 1, mark + 1);
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Checks a ruleset body; `create` requires name and enforcement.
fn validate_ruleset(body: &Value, create: bool, org: bool) -> Result<(), Reply> {
    let bad = |m: String| Err(Reply::invalid_msg(m));
    let one_of = |key: &str, allowed: &[&str], required: bool| match &body[key] {
        Value::Null if !required => Ok(()),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(()),
        v => bad(format!(
            "Invalid property /{key}: {v} is not a possible value."
        )),
    };
    match &body["name"] {
        Value::Null if !create => {}
        Value::String(s) if !s.trim().is_empty() => {}
        _ => return bad("Invalid property /name: must be a non-empty string.".into()),
    }
    one_of("enforcement", &["disabled", "active", "evaluate"], create)?;
    one_of("target", &["branch", "tag", "push"], false)?;
    if let Some(rules) = body.get("rules").filter(|v| !v.is_null()) {
        let Some(rules) = rules.as_array() else {
            return bad("Invalid property /rules: must be an array.".into());
        };
        for (i, rule) in rules.iter().enumerate() {
            let kind = rule["type"].as_str().unwrap_or_default();
            if !RULE_TYPES.contains(&kind) {
                return bad(format!(
                    "Invalid property /rules/{i}/type: {} is not a possible value.",
                    rule["type"]
                ));
            }
        }
    }
    if let Some(actors) = body.get("bypass_actors").filter(|v| !v.is_null()) {
        let Some(actors) = actors.as_array() else {
            return bad("Invalid property /bypass_actors: must be an array.".into());
        };
        for (i, actor) in actors.iter().enumerate() {
            let kind = actor["actor_type"].as_str().unwrap_or_default();
            let mode = &actor["bypass_mode"];
            let mode_ok = mode.is_null()
                || ["always", "pull_request", "exempt"]
                    .iter()
                    .any(|m| mode == m);
            if !ACTOR_TYPES.contains(&kind) || !mode_ok {
                return bad(format!(
                    "Invalid property /bypass_actors/{i}: {actor} is not a valid bypass actor."
                ));
            }
        }
    }
    let conditions = &body["conditions"];
    for key in ["include", "exclude"] {
        let list = &conditions["ref_name"][key];
        let strings = list
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !list.is_null() && !strings {
            return bad(format!(
                "Invalid property /conditions/ref_name/{key}: must be an array of strings."
            ));
        }
    }
    let target = body["target"].as_str().unwrap_or("branch");
    if org && create && target != "push" {
        let repos = ["repository_name", "repository_id", "repository_property"]
            .iter()
            .any(|k| conditions[*k].is_object());
        if !repos || !conditions["ref_name"].is_object() {
            return bad("Invalid property /conditions: an organization ruleset needs ref_name and one of repository_name, repository_id or repository_property.".into());
        }
    }
    Ok(())
}

/// Verifies an App JWT: RS256 with the App's key, `iss` the App id (string or number), `exp`
/// in the future but at most ten minutes (plus a minute of drift) ahead, `iat` not in the
/// future (a minute of drift allowed).
fn verify_jwt(app: &AppAuth, auth: Option<&str>) -> Result<(), String> {
    let undecodable = "A JSON web token could not be decoded".to_string();
    let jwt = auth
        .and_then(|a| a.split_once(' '))
        .filter(|(scheme, _)| same(scheme, "bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| undecodable.clone())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &app.key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".to_string()
            }
            _ => format!("{undecodable}: {e}"),
        })?
        .claims;
    let iss = match &claims["iss"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if iss != app.app_id {
        return Err("'Issuer' claim ('iss') must be the App's id".into());
    }
    let now = unix_now() as i64;
    let exp = claims["exp"].as_i64().unwrap_or_default();
    if exp > now + 660 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    match claims["iat"].as_i64() {
        Some(iat) if iat <= now + 60 => Ok(()),
        Some(_) => Err("'Issued at' claim ('iat') must be an Integer representing a time in the past".into()),
        None => Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".into()),
    }
}
