//! A small typed GitHub REST client on reqwest: base URL from `GITHUB_API_URL` (github.com
//! or GitHub Enterprise Server), token or GitHub App auth, pagination, primary rate-limit
//! tracking, and pacing of content-creating requests under the secondary limits. What a
//! failed call means for the queue is in [`super::error`]; the endpoints for publishing
//! post-mortems are in [`publishing`], and the types it reads in [`types`].

mod publishing;
mod types;

pub use types::{CheckRun, CommitStatus, GitRef, Pull, Repo, RulesetScope, RulesetSummary, User};
use types::{CheckRuns, CombinedStatus};

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, LINK};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::auth::{AppAuth, InstallationToken, app_jwt};
use super::config::{GitHubAuth, GitHubSecrets, Pacing};
pub use super::error::GhError;
use super::error::error_from;
use super::pacer::Pacer;

pub const API_VERSION: &str = "2022-11-28";

/// Primary rate-limit headroom, as GitHub last reported it.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RateState {
    pub remaining: Option<u64>,
    pub reset_at: Option<i64>,
}

enum Auth {
    Token(String),
    App(AppAuth),
}

pub struct GitHubClient {
    /// Cleared once GitHub refuses `evaluate` enforcement (plans without Enterprise).
    evaluate_available: std::sync::atomic::AtomicBool,
    http: reqwest::Client,
    base: String,
    auth: Auth,
    pacer: Pacer,
    concurrency: Arc<Semaphore>,
    rate: std::sync::Mutex<RateState>,
}

impl GitHubClient {
    pub fn new(
        secrets: &GitHubSecrets,
        pacing: &Pacing,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let auth = match &secrets.auth {
            GitHubAuth::Token(t) => Auth::Token(t.expose_secret().to_string()),
            GitHubAuth::App {
                app_id,
                private_key,
                installation_id,
            } => Auth::App(AppAuth::new(app_id, private_key, *installation_id)?),
        };
        Ok(Self {
            evaluate_available: std::sync::atomic::AtomicBool::new(true),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .user_agent(concat!("firebreak/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: secrets.api_url.trim_end_matches('/').to_string(),
            auth,
            pacer: Pacer::new(pacing),
            concurrency: Arc::new(Semaphore::new(pacing.max_concurrent.max(1) as usize)),
            rate: std::sync::Mutex::new(RateState::default()),
        })
    }

    /// The GitHub App's id when authenticating as an App: the `Integration` bypass actor
    /// firebreak merges exemptions as.
    pub fn app_id(&self) -> Option<u64> {
        match &self.auth {
            Auth::App(app) => app.app_id.parse().ok(),
            Auth::Token(_) => None,
        }
    }

    /// False once GitHub answered a ruleset with `evaluate` enforcement with 422.
    pub fn evaluate_available(&self) -> bool {
        self.evaluate_available
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn evaluate_unavailable(&self) {
        self.evaluate_available
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn rate(&self) -> RateState {
        *self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn repo(&self, full_name: &str) -> Result<Repo, GhError> {
        self.get(&format!("/repos/{full_name}")).await
    }

    /// An organisation or user by login (`GET /users/{login}` answers for both).
    pub async fn owner(&self, login: &str) -> Result<User, GhError> {
        self.get(&format!("/users/{login}")).await
    }

    pub async fn org_repos(&self, org: &str) -> Result<Vec<Repo>, GhError> {
        self.get_all(&format!("/orgs/{org}/repos?per_page=100"))
            .await
    }

    pub async fn rulesets(&self, scope: &RulesetScope) -> Result<Vec<RulesetSummary>, GhError> {
        let query = if matches!(scope, RulesetScope::Repo(_)) {
            "?per_page=100&includes_parents=false"
        } else {
            "?per_page=100"
        };
        self.get_all(&format!("{}{query}", scope.path())).await
    }

    pub async fn ruleset(&self, scope: &RulesetScope, id: u64) -> Result<Value, GhError> {
        self.get(&format!("{}/{id}", scope.path())).await
    }

    pub async fn create_ruleset(
        &self,
        scope: &RulesetScope,
        body: &Value,
    ) -> Result<(u16, u64), GhError> {
        let resp = self.send(Method::POST, &scope.path(), Some(body)).await?;
        let status = resp.status().as_u16();
        let v: Value = decode(resp).await?;
        Ok((status, v["id"].as_u64().unwrap_or_default()))
    }

    pub async fn update_ruleset(
        &self,
        scope: &RulesetScope,
        id: u64,
        body: &Value,
    ) -> Result<u16, GhError> {
        Ok(self
            .send(Method::PUT, &format!("{}/{id}", scope.path()), Some(body))
            .await?
            .status()
            .as_u16())
    }

    pub async fn delete_ruleset(&self, scope: &RulesetScope, id: u64) -> Result<u16, GhError> {
        Ok(self
            .send(Method::DELETE, &format!("{}/{id}", scope.path()), None)
            .await?
            .status()
            .as_u16())
    }

    pub async fn open_pulls(&self, repo: &str, base: &str) -> Result<Vec<Pull>, GhError> {
        self.get_all(&format!(
            "/repos/{repo}/pulls?state=open&base={base}&per_page=100"
        ))
        .await
    }

    /// Every open pull request in `repo`, whatever its base (for glob branch patterns, which
    /// the `base` filter does not understand).
    pub async fn open_pulls_any_base(&self, repo: &str) -> Result<Vec<Pull>, GhError> {
        self.get_all(&format!("/repos/{repo}/pulls?state=open&per_page=100"))
            .await
    }

    pub async fn pull(&self, repo: &str, number: u64) -> Result<Pull, GhError> {
        self.get(&format!("/repos/{repo}/pulls/{number}")).await
    }

    /// The most recently updated closed pull requests (one page; merged ones carry `merged_at`).
    pub async fn recently_closed_pulls(&self, repo: &str) -> Result<Vec<Pull>, GhError> {
        self.get(&format!(
            "/repos/{repo}/pulls?state=closed&sort=updated&direction=desc&per_page=100"
        ))
        .await
    }

    /// Merges pull request `number` only if its head is still `sha` (409 otherwise).
    /// Returns the merge commit's sha.
    pub async fn merge_pull(&self, repo: &str, number: u64, sha: &str) -> Result<String, GhError> {
        let body = serde_json::json!({ "sha": sha });
        let resp = self
            .send(
                Method::PUT,
                &format!("/repos/{repo}/pulls/{number}/merge"),
                Some(&body),
            )
            .await?;
        let v: Value = decode(resp).await?;
        Ok(v["sha"].as_str().unwrap_or_default().to_string())
    }

    /// The check runs on `sha` (first 100).
    pub async fn check_runs(&self, repo: &str, sha: &str) -> Result<Vec<CheckRun>, GhError> {
        let runs: CheckRuns = self
            .get(&format!(
                "/repos/{repo}/commits/{sha}/check-runs?per_page=100"
            ))
            .await?;
        Ok(runs.check_runs)
    }

    /// The latest commit status of each context on `sha`.
    pub async fn commit_statuses(
        &self,
        repo: &str,
        sha: &str,
    ) -> Result<Vec<CommitStatus>, GhError> {
        let combined: CombinedStatus = self
            .get(&format!("/repos/{repo}/commits/{sha}/status"))
            .await?;
        Ok(combined.statuses)
    }

    pub async fn create_status(
        &self,
        repo: &str,
        sha: &str,
        state: &str,
        description: &str,
        context: &str,
    ) -> Result<u16, GhError> {
        self.create_status_linked(repo, sha, state, description, context, None)
            .await
    }

    /// A commit status whose "Details" link goes to `target_url`, when there is one.
    pub async fn create_status_linked(
        &self,
        repo: &str,
        sha: &str,
        state: &str,
        description: &str,
        context: &str,
        target_url: Option<&str>,
    ) -> Result<u16, GhError> {
        let mut body = serde_json::json!({ "state": state, "description": super::text::status_description(description), "context": context });
        if let Some(url) = target_url {
            body["target_url"] = url.into();
        }
        Ok(self
            .send(
                Method::POST,
                &format!("/repos/{repo}/statuses/{sha}"),
                Some(&body),
            )
            .await?
            .status()
            .as_u16())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GhError> {
        decode(self.send(Method::GET, path, None).await?).await
    }

    /// Follows `Link: rel="next"` until the last page.
    async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, GhError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(url) = next.take() {
            let resp = self.send(Method::GET, &url, None).await?;
            next = next_link(resp.headers()).and_then(|link| self.same_origin(link));
            let page: Vec<T> = decode(resp).await?;
            out.extend(page);
        }
        Ok(out)
    }

    /// A pagination link, if it points into `GITHUB_API_URL`. The token is never sent to
    /// another host, whatever a response's `Link` header says.
    fn same_origin(&self, link: String) -> Option<String> {
        if link.starts_with(&self.base) {
            return Some(link);
        }
        tracing::warn!(base = %self.base, "ignoring a pagination link outside GITHUB_API_URL");
        None
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, GhError> {
        let _permit = self
            .concurrency
            .acquire()
            .await
            .map_err(|e| GhError::Network(e.to_string()))?;
        let ticket = if method != Method::GET {
            Some(self.pacer.acquire().await)
        } else {
            None
        };
        let authorization = self.authorization().await?;
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .request(method, &url)
            .header(AUTHORIZATION, authorization);
        if let Some(body) = body {
            req = req.json(body);
        }
        let sent = req.send().await;
        if let Some(ticket) = ticket {
            ticket.done().await;
        }
        let resp = sent.map_err(|e| GhError::Network(e.without_url().to_string()))?;
        self.track_rate(resp.headers());
        if resp.status().is_success() {
            return Ok(resp);
        }
        let err = error_from(resp).await;
        if err.status() == Some(401) {
            if let Auth::App(app) = &self.auth {
                app.invalidate().await;
            }
        }
        Err(err)
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(ACCEPT, "application/vnd.github+json, application/json")
            .header("X-GitHub-Api-Version", API_VERSION)
    }

    async fn authorization(&self) -> Result<String, GhError> {
        match &self.auth {
            Auth::Token(t) => Ok(format!("Bearer {t}")),
            Auth::App(app) => Ok(format!("Bearer {}", self.installation_token(app).await?)),
        }
    }

    /// The cached installation token, or a new one traded for a fresh App JWT.
    async fn installation_token(&self, app: &AppAuth) -> Result<String, GhError> {
        let now = Utc::now();
        if let Some(token) = app.fresh_token(now).await {
            return Ok(token);
        }
        let jwt =
            app_jwt(&app.app_id, &app.key, now).map_err(|e| GhError::Decode(e.to_string()))?;
        let bearer = format!("Bearer {jwt}");
        let id = match *app.installation_id.lock().await {
            Some(id) => id,
            None => self.discover_installation(&bearer).await?,
        };
        *app.installation_id.lock().await = Some(id);
        let url = format!("{}/app/installations/{id}/access_tokens", self.base);
        let resp = self
            .request(Method::POST, &url)
            .header(AUTHORIZATION, &bearer)
            .send()
            .await
            .map_err(|e| GhError::Network(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let token: InstallationToken = decode(resp).await?;
        app.store(token.clone()).await;
        Ok(token.token)
    }

    async fn discover_installation(&self, bearer: &str) -> Result<u64, GhError> {
        let url = format!("{}/app/installations", self.base);
        let resp = self
            .request(Method::GET, &url)
            .header(AUTHORIZATION, bearer)
            .send()
            .await
            .map_err(|e| GhError::Network(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let list: Vec<Value> = decode(resp).await?;
        list.first().and_then(|i| i["id"].as_u64()).ok_or_else(|| {
            GhError::Decode(
                "the GitHub App has no installations; set GITHUB_APP_INSTALLATION_ID".into(),
            )
        })
    }

    fn track_rate(&self, headers: &HeaderMap) {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = num("x-ratelimit-remaining") {
            rate.remaining = u64::try_from(r).ok();
            if let Some(left) = rate.remaining {
                crate::telemetry::github_rate_remaining(left);
            }
        }
        if let Some(r) = num("x-ratelimit-reset") {
            rate.reset_at = Some(r);
        }
    }
}

async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, GhError> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| GhError::Network(e.without_url().to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| GhError::Decode(e.to_string()))
}

fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.insert(LINK, HeaderValue::from_static("<https://api.github.com/orgs/a/repos?page=2>; rel=\"next\", <https://api.github.com/orgs/a/repos?page=5>; rel=\"last\""));
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/orgs/a/repos?page=2")
        );
        h.insert(
            LINK,
            HeaderValue::from_static("<https://x/?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_link(&h), None);
    }
}
