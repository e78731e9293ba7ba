//! What the GitHub REST API returns, as firebreak reads it (only the fields it uses), and
//! where a ruleset lives: a repository or an organization.

use chrono::{DateTime, Utc};
use serde::Deserialize;

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
    /// `open` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub merged: Option<bool>,
    /// `None` while GitHub is still computing it.
    #[serde(default)]
    pub mergeable: Option<bool>,
    /// `clean`, `unstable`, `blocked`, `behind`, `dirty`, `draft`, `unknown`, …
    #[serde(default)]
    pub mergeable_state: Option<String>,
    #[serde(default)]
    pub draft: Option<bool>,
}

/// A check run on a commit, as the checks API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub name: String,
    /// `queued`, `in_progress` or `completed` (and a few others while waiting).
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct CheckRuns {
    pub(super) check_runs: Vec<CheckRun>,
}

/// One context of a commit's combined status.
#[derive(Debug, Clone, Deserialize)]
pub struct CommitStatus {
    pub context: String,
    pub state: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct CombinedStatus {
    #[serde(default)]
    pub(super) statuses: Vec<CommitStatus>,
}

/// Where a ruleset lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RulesetScope {
    Repo(String),
    Org(String),
}

impl RulesetScope {
    pub(super) fn path(&self) -> String {
        match self {
            Self::Repo(r) => format!("/repos/{r}/rulesets"),
            Self::Org(o) => format!("/orgs/{o}/rulesets"),
        }
    }

    /// The same repository or org, in any case (GitHub's names are case-insensitive).
    pub fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Repo(a), Self::Repo(b)) | (Self::Org(a), Self::Org(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => false,
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
