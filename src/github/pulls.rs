//! The GitHub effects around pull requests, beside the reconciler: "what did we change
//! last?" on declare, exemptions, and freeze statuses on heads that arrive by webhook.

use chrono::{DateTime, Utc};

use super::client::Pull;
use super::effect::PullHead;
use super::freeze::{self, STATUS_CONTEXT, Wanted};
use super::handler::{GitHubEffects, db_error, short};
use super::reconcile::covering_scope;
use super::statuses::{Status, exempted_by};
use super::text;
use crate::effects::Effect;
use crate::effects::handler::EffectError;
use crate::incident::model::{Incident, IncidentId};
use crate::incident::timeline::{EntryKind, NewEntry, Source};
use crate::store::{FreezeScope, WrittenStatus};

/// Merged pull requests listed in the incident room at most.
const LISTED: usize = 15;

/// A pull request merged into `repo` at `merged`.
struct Merged {
    merged: DateTime<Utc>,
    repo: String,
    pull: Pull,
}

impl GitHubEffects {
    /// "What did we change last?": pull requests merged into the frozen repositories in the
    /// hours before the declaration, on the timeline at their merge times. A repository
    /// GitHub refuses to list is named and skipped; one it cannot answer for now retries
    /// the effect.
    pub(super) async fn recent_changes(
        &self,
        effect: &Effect,
        id: &IncidentId,
    ) -> Result<Option<String>, EffectError> {
        let Some(incident) = self.store.incident_by_id(id).await.map_err(db_error)? else {
            return Err(EffectError::permanent("the incident no longer exists"));
        };
        let repos = self.incident_repos(id).await?;
        let since = incident.declared_at
            - chrono::Duration::hours(i64::from(self.config.recent_changes_hours));
        let mut found = Vec::new();
        let mut skipped = Vec::new();
        for repo in repos {
            match self.client.recently_closed_pulls(&repo).await {
                Ok(pulls) => found.extend(merged_between(&repo, pulls, since, &incident)),
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => skipped.push(format!("{repo} ({e})")),
            }
        }
        found.sort_by_key(|m| m.merged);
        for m in &found {
            let entry = recent_change_entry(id, m);
            self.store.append_timeline(&entry).await.map_err(db_error)?;
        }
        let mut text = recent_changes_text(&found, &incident, self.config.recent_changes_hours);
        if !skipped.is_empty() {
            text.push_str(&format!("\nCould not list: {}", skipped.join(", ")));
        }
        self.tell_room(effect, "recent", text).await?;
        Ok(Some(format!("{} recent changes found", found.len())))
    }

    /// The repositories frozen for incident `id`, with `owner/*` expanded.
    async fn incident_repos(&self, id: &IncidentId) -> Result<Vec<String>, EffectError> {
        let scopes: Vec<FreezeScope> = self.store.freeze_scopes().await.map_err(db_error)?;
        let mine: Vec<FreezeScope> = scopes
            .into_iter()
            .filter(|s| s.incident_id.as_ref() == Some(id))
            .collect();
        let expand: Vec<String> = mine
            .iter()
            .filter_map(|s| s.scope.strip_suffix("/*").map(str::to_string))
            .collect();
        let orgs = self.org_repos(&expand).await;
        if let Some((_, e)) = orgs.failed.into_iter().next() {
            return Err(e.into());
        }
        let mut repos: Vec<String> = mine
            .iter()
            .filter(|s| !s.scope.ends_with("/*"))
            .map(|s| s.scope.clone())
            .collect();
        repos.extend(orgs.repos.into_values().flatten());
        Ok(repos)
    }

    /// The `success` freeze status on an exempted head; returns what it did, in a phrase.
    pub(super) async fn exempt(
        &self,
        repo: &str,
        number: u64,
        sha: &str,
        by: &str,
    ) -> Result<String, EffectError> {
        let wanted = Wanted {
            scope: repo.to_string(),
            frozen: true,
            drill: false,
            generation: 0,
            reason: None,
        };
        let text = freeze::status_description(&wanted, None, Some(by));
        let status = self
            .client
            .create_status(repo, sha, "success", &text, STATUS_CONTEXT)
            .await?;
        let generation = self.store.freeze_generation().await.map_err(db_error)?;
        self.store
            .set_pr_status(
                repo,
                sha,
                number,
                &WrittenStatus {
                    state: "success".into(),
                    generation,
                    drill: false,
                    description: None,
                },
            )
            .await
            .map_err(db_error)?;
        Ok(format!(
            "{repo}#{number} exempted: status success on {} (GitHub {status})",
            short(sha)
        ))
    }

    /// A pull request opened, updated, reopened, made ready or retargeted: the freeze
    /// status on its head while its base is frozen. One that firebreak failed and that now
    /// targets a branch the freeze does not cover gets `success` back.
    pub(super) async fn pr_status(&self, head: &PullHead) -> Result<Option<String>, EffectError> {
        let scopes = self.store.freeze_scopes().await.map_err(db_error)?;
        let Some(scope) = covering_scope(&scopes, &head.repo) else {
            return Ok(None);
        };
        // The name the reconciler writes under: the configured one for a single repository,
        // GitHub's own (as in its org listing and this payload) for `owner/*`.
        let repo = if scope.scope.ends_with("/*") {
            head.repo.clone()
        } else {
            scope.scope.clone()
        };
        if !scope.frozen {
            return Ok(None);
        }
        if !self.branch_frozen(head) {
            return self
                .release_moved(&repo, head, &scope.scope, scope.generation)
                .await;
        }
        let exemptions = self.store.exemptions(&repo).await.map_err(db_error)?;
        let exempt = exempted_by(&exemptions, &scopes, head.pr, &head.sha);
        let incident = match &scope.incident_id {
            Some(id) => self.store.incident_by_id(id).await.map_err(db_error)?,
            None => None,
        };
        let number = incident.map(|i| i.number.to_string());
        let wanted = Wanted {
            scope: scope.scope.clone(),
            frozen: true,
            drill: scope.drill,
            generation: scope.generation,
            reason: scope.reason.clone(),
        };
        let state = freeze::pr_status(true, exempt.is_some(), wanted.drill);
        let key = text::key_to_add(number.as_deref(), wanted.reason.as_deref());
        let text = freeze::status_description(&wanted, key, exempt);
        let status = Status {
            sha: head.sha.clone(),
            pr: head.pr,
            state: state.to_string(),
            text,
            url: self.incident_page(number.as_deref()),
            drill: wanted.drill,
        };
        let wrote = self
            .set_status(&repo, status, &scope.scope, scope.generation)
            .await?;
        Ok(wrote.then(|| {
            format!(
                "{repo}#{}: {state} status set on {} while frozen",
                head.pr,
                short(&head.sha)
            )
        }))
    }

    /// A head firebreak failed whose pull request now targets an unfrozen branch.
    async fn release_moved(
        &self,
        repo: &str,
        head: &PullHead,
        scope: &str,
        generation: i64,
    ) -> Result<Option<String>, EffectError> {
        let current = self
            .store
            .pr_status(repo, &head.sha)
            .await
            .map_err(db_error)?;
        if current.is_none_or(|(state, _, _)| state != "failure") {
            return Ok(None);
        }
        let status = Status {
            sha: head.sha.clone(),
            pr: head.pr,
            state: "success".into(),
            text: format!("The merge freeze does not cover {}", head.base),
            url: None,
            drill: false,
        };
        let wrote = self.set_status(repo, status, scope, generation).await?;
        Ok(wrote.then(|| {
            format!(
                "{repo}#{}: success status set on {}, now based on unfrozen {}",
                head.pr,
                short(&head.sha),
                head.base
            )
        }))
    }

    /// Whether the freeze covers the branch `head` targets: one of the configured branches
    /// or patterns, or the default branch.
    fn branch_frozen(&self, head: &PullHead) -> bool {
        if self.config.branches.is_empty() {
            head.base == head.default_branch
        } else {
            self.config
                .branches
                .iter()
                .any(|b| branch_matches(b, &head.base))
        }
    }
}

fn merged_between(
    repo: &str,
    pulls: Vec<Pull>,
    since: DateTime<Utc>,
    incident: &Incident,
) -> impl Iterator<Item = Merged> {
    let repo = repo.to_string();
    let until = incident.declared_at;
    pulls.into_iter().filter_map(move |pull| {
        let merged = pull.merged_at.filter(|m| *m >= since && *m <= until)?;
        Some(Merged {
            merged,
            repo: repo.clone(),
            pull,
        })
    })
}

fn recent_change_entry(id: &IncidentId, m: &Merged) -> NewEntry {
    let pr = &m.pull;
    let author = pr.user.as_ref().map_or("unknown", |u| u.login.as_str());
    NewEntry {
        incident_id: Some(id.clone()),
        occurred_at: m.merged,
        actor: crate::incident::Identity::lossy("github", author).to_string(),
        source: Source::Github,
        kind: EntryKind::RecentChange,
        text: format!(
            "{}#{} “{}” merged by {author} ({})",
            m.repo, pr.number, pr.title, pr.html_url
        ),
    }
}

/// The message for the incident room, newest first.
fn recent_changes_text(found: &[Merged], incident: &Incident, hours: u32) -> String {
    if found.is_empty() {
        return format!(
            "🔎 No pull requests were merged into the frozen repositories in the {hours}h before {}.",
            incident.number
        );
    }
    let lines: Vec<String> = found
        .iter()
        .rev()
        .take(LISTED)
        .map(|m| {
            format!(
                "• {} {}#{} {} ({})",
                m.merged.format("%H:%M"),
                m.repo,
                m.pull.number,
                m.pull.title,
                m.pull.html_url
            )
        })
        .collect();
    format!(
        "🔎 Merged in the {hours}h before {} (newest first):\n{}",
        incident.number,
        lines.join("\n")
    )
}

/// Whether a configured branch pattern is a glob rather than one branch's name.
pub(super) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Whether `branch` matches the configured `pattern` the way GitHub matches a ruleset's
/// `ref_name` include: Ruby's `File.fnmatch` with `FNM_PATHNAME` (and no `FNM_EXTGLOB`).
/// `*` is any run of characters within one `/`-separated segment, `?` one of them, `[…]`
/// one of a class (`[!…]` or `[^…]` negated), `**/` zero or more whole segments, and a
/// `**` that is not followed by `/` is just `*`. So `release/*` matches `release/2.3` but
/// not `release/2.3/x`; `release/**/*` matches both.
pub fn branch_matches(pattern: &str, branch: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let branch: Vec<&str> = branch.split('/').collect();
    segments_match(&pattern, &branch)
}

fn segments_match(pattern: &[&str], branch: &[&str]) -> bool {
    match pattern.split_first() {
        None => branch.is_empty(),
        Some((&"**", rest)) if !rest.is_empty() => {
            (0..=branch.len()).any(|skip| segments_match(rest, &branch[skip..]))
        }
        Some((segment, rest)) => branch.split_first().is_some_and(|(name, names)| {
            let p: Vec<char> = segment.chars().collect();
            let n: Vec<char> = name.chars().collect();
            segment_matches(&p, &n) && segments_match(rest, names)
        }),
    }
}

fn segment_matches(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', _)) => {
            let rest: &[char] = &p[p.iter().take_while(|c| **c == '*').count()..];
            (0..=s.len()).any(|i| segment_matches(rest, &s[i..]))
        }
        Some(('?', rest)) => !s.is_empty() && segment_matches(rest, &s[1..]),
        Some(('[', rest)) => match class(rest) {
            Some((matches, after)) => {
                s.first().is_some_and(|c| matches(*c)) && segment_matches(after, &s[1..])
            }
            None => s.first() == Some(&'[') && segment_matches(rest, &s[1..]),
        },
        Some((c, rest)) => s.first() == Some(c) && segment_matches(rest, &s[1..]),
    }
}

/// A `[…]` class after its `[`: what it matches, and the pattern after its `]`. `None`
/// when it never closes, and the `[` is then itself.
fn class(p: &[char]) -> Option<(impl Fn(char) -> bool, &[char])> {
    let (negated, body) = match p.first() {
        Some('!' | '^') => (true, &p[1..]),
        _ => (false, p),
    };
    // A `]` first in the class is one of its characters.
    let close = body.iter().skip(1).position(|c| *c == ']')? + 1;
    let members = &body[..close];
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == '-' {
            ranges.push((members[i], members[i + 2]));
            i += 3;
        } else {
            ranges.push((members[i], members[i]));
            i += 1;
        }
    }
    let matches = move |c: char| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != negated;
    Some((matches, &body[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_patterns_match_like_rulesets() {
        for (pattern, branch, expected) in [
            ("main", "main", true),
            ("main", "Main", false),
            ("main", "main2", false),
            ("release/*", "release/2.3", true),
            ("release/*", "release/", true),
            ("release/*", "release/2.3/x", false),
            ("release/*", "release", false),
            ("release/*", "hotfix/2.3", false),
            ("release/**/*", "release/2.3", true),
            ("release/**/*", "release/2.3/x", true),
            ("release/**/*", "release/2.3/x/y", true),
            ("release/**", "release/2.3", true),
            ("release/**", "release/2.3/x", false),
            ("**/*", "a/b/c", true),
            ("qa**/**/*", "qa-1/x/y", true),
            ("release-?", "release-1", true),
            ("release-?", "release-10", false),
            ("v[0-9].x", "v2.x", true),
            ("v[0-9].x", "va.x", false),
            ("v[!0-9].x", "va.x", true),
            ("v[!0-9].x", "v2.x", false),
            ("v[.x", "v[.x", true),
            ("*", "main", true),
            ("*", "feature/x", false),
            ("feat-*-x", "feat-a-b-x", true),
        ] {
            assert_eq!(
                branch_matches(pattern, branch),
                expected,
                "{pattern} against {branch}"
            );
        }
        assert!(is_glob("release/*") && is_glob("v[0-9]") && !is_glob("release/2.3"));
    }
}
