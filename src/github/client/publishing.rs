//! The endpoints publishing a post-mortem needs: branches, file contents and pull requests.

use reqwest::Method;
use serde_json::Value;

use super::{GhError, GitHubClient, Pull, decode};

impl GitHubClient {
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
}
