//! A small typed GitHub REST client on reqwest: base URL from `GITHUB_API_URL` (github.com
//! or GitHub Enterprise Server), token or GitHub App auth, pagination, primary rate-limit
//! tracking, and pacing of content-creating requests under the secondary limits.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::auth::{AppAuth, InstallationToken, app_jwt};
use super::config::{GitHubAuth, GitHubSecrets, Pacing};
use super::pacer::Pacer;
use crate::effects::backoff::parse_retry_after;
use crate::effects::handler::EffectError;

pub const API_VERSION: &str = "2022-11-28";

#[derive(Debug, Clone, Deserialize)]
pub struct Repo {
    pub full_name: String,
    pub default_branch: String,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RulesetSummary {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub enforcement: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    pub sha: String,
    #[serde(rename = "ref")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub html_url: String,
    pub head: GitRef,
    pub base: GitRef,
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub user: Option<User>,
}

/// Where a ruleset lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RulesetScope {
    Repo(String),
    Org(String),
}

impl RulesetScope {
    fn path(&self) -> String {
        match self {
            Self::Repo(r) => format!("/repos/{r}/rulesets"),
            Self::Org(o) => format!("/orgs/{o}/rulesets"),
        }
    }

    /// How the scope is named in status output and on the timeline.
    pub fn label(&self) -> String {
        match self {
            Self::Repo(r) => r.clone(),
            Self::Org(o) => format!("{o}/* (org ruleset)"),
        }
    }
}

/// A failed GitHub call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GhError {
    #[error("GitHub answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("could not reach GitHub: {0}")]
    Network(String),
    #[error("GitHub sent a response firebreak could not read: {0}")]
    Decode(String),
}

impl GhError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<GhError> for EffectError {
    fn from(e: GhError) -> Self {
        let reason = e.to_string();
        match e {
            GhError::Status {
                status,
                retry_after,
                ..
            } if retry_after.is_some() || status >= 500 || status == 401 => {
                EffectError::Retryable {
                    reason,
                    retry_after,
                }
            }
            GhError::Network(_) => EffectError::retryable(reason),
            _ => EffectError::permanent(reason),
        }
    }
}

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

    pub fn rate(&self) -> RateState {
        *self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn repo(&self, full_name: &str) -> Result<Repo, GhError> {
        self.get(&format!("/repos/{full_name}")).await
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

    pub async fn create_status(
        &self,
        repo: &str,
        sha: &str,
        state: &str,
        description: &str,
        context: &str,
    ) -> Result<u16, GhError> {
        let body = serde_json::json!({ "state": state, "description": truncate(description, 140), "context": context });
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

    /// The commit a branch points at, or `None` if there is no such branch.
    pub async fn branch_sha(&self, repo: &str, branch: &str) -> Result<Option<String>, GhError> {
        match self
            .get::<Value>(&format!("/repos/{repo}/branches/{branch}"))
            .await
        {
            Ok(v) => Ok(v["commit"]["sha"].as_str().map(str::to_string)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_branch(&self, repo: &str, branch: &str, sha: &str) -> Result<u16, GhError> {
        let body = serde_json::json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
        Ok(self
            .send(
                Method::POST,
                &format!("/repos/{repo}/git/refs"),
                Some(&body),
            )
            .await?
            .status()
            .as_u16())
    }

    /// The blob sha of a file on a branch, or `None` if it does not exist there.
    pub async fn file_sha(
        &self,
        repo: &str,
        path: &str,
        branch: &str,
    ) -> Result<Option<String>, GhError> {
        match self
            .get::<Value>(&format!("/repos/{repo}/contents/{path}?ref={branch}"))
            .await
        {
            Ok(v) => Ok(v["sha"].as_str().map(str::to_string)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or replaces a file on a branch (pass the current blob sha to replace).
    pub async fn put_file(
        &self,
        repo: &str,
        path: &str,
        branch: &str,
        message: &str,
        content: &str,
        sha: Option<&str>,
    ) -> Result<u16, GhError> {
        use base64::Engine;
        let mut body = serde_json::json!({
            "message": message,
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "branch": branch,
        });
        if let Some(sha) = sha {
            body["sha"] = Value::String(sha.to_string());
        }
        Ok(self
            .send(
                Method::PUT,
                &format!("/repos/{repo}/contents/{path}"),
                Some(&body),
            )
            .await?
            .status()
            .as_u16())
    }

    /// The open pull request from `owner:branch`, if any.
    pub async fn open_pull_from(
        &self,
        repo: &str,
        owner: &str,
        branch: &str,
    ) -> Result<Option<Pull>, GhError> {
        let pulls: Vec<Pull> = self
            .get(&format!(
                "/repos/{repo}/pulls?state=open&head={owner}:{branch}&per_page=10"
            ))
            .await?;
        Ok(pulls.into_iter().next())
    }

    pub async fn create_pull(
        &self,
        repo: &str,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<Pull, GhError> {
        let req = serde_json::json!({ "title": title, "head": head, "base": base, "body": body });
        decode(
            self.send(Method::POST, &format!("/repos/{repo}/pulls"), Some(&req))
                .await?,
        )
        .await
    }

    pub async fn update_pull(
        &self,
        repo: &str,
        number: u64,
        title: &str,
        body: &str,
    ) -> Result<u16, GhError> {
        let req = serde_json::json!({ "title": title, "body": body });
        Ok(self
            .send(
                Method::PATCH,
                &format!("/repos/{repo}/pulls/{number}"),
                Some(&req),
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

/// Turns a non-2xx answer into an error, with the wait GitHub asked for on rate limits:
/// `Retry-After` if present, else `x-ratelimit-reset` when the primary limit is exhausted.
async fn error_from(resp: reqwest::Response) -> GhError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let message = resp
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let retry_after = if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS
    {
        rate_limit_wait(&headers, Utc::now().timestamp())
    } else {
        None
    };
    GhError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    }
}

fn rate_limit_wait(headers: &HeaderMap, now: i64) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    if let Some(wait) = header(RETRY_AFTER).and_then(|v| parse_retry_after(v, SystemTime::now())) {
        return Some(wait);
    }
    if header(reqwest::header::HeaderName::from_static(
        "x-ratelimit-remaining",
    )) == Some("0")
    {
        let reset: i64 = header(reqwest::header::HeaderName::from_static(
            "x-ratelimit-reset",
        ))?
        .parse()
        .ok()?;
        return Some(Duration::from_secs(
            u64::try_from(reset - now).unwrap_or(0).max(1),
        ));
    }
    None
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

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
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

    #[test]
    fn rate_limit_waits() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1000"));
        assert_eq!(rate_limit_wait(&h, 970), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h, 970), Some(Duration::from_secs(7)));
        assert_eq!(rate_limit_wait(&HeaderMap::new(), 0), None);
    }

    #[test]
    fn errors_map_to_retry_decisions() {
        let limited = GhError::Status {
            status: 403,
            message: "secondary".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(matches!(
            EffectError::from(limited),
            EffectError::Retryable {
                retry_after: Some(_),
                ..
            }
        ));
        let forbidden = GhError::Status {
            status: 403,
            message: "Resource not accessible".into(),
            retry_after: None,
        };
        assert!(matches!(
            EffectError::from(forbidden),
            EffectError::Permanent { .. }
        ));
        let down = GhError::Status {
            status: 502,
            message: "bad gateway".into(),
            retry_after: None,
        };
        assert!(matches!(
            EffectError::from(down),
            EffectError::Retryable { .. }
        ));
    }
}
