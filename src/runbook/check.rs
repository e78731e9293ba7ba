//! Stale-runbook detection, the pure part: what each step (and each `[runbooks]` key) relies
//! on, what the config alone says is wrong with it, and the findings once the live probes
//! ([`super::probe`]) have answered. A finding names the runbook, the step, what it names and
//! the problem in a sentence; its key stays the same while the problem lasts.

use std::collections::{BTreeSet, HashMap};

use super::{Action, Destination, Runbook, Runbooks};
use crate::config::{Config, Integrations, check_repo};

/// How `[runbooks]` keys are named where a runbook's name would be.
pub const CONFIG_SECTION: &str = "[runbooks]";

/// Something a runbook (or the `[runbooks]` section) names that is gone or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The runbook's name, or [`CONFIG_SECTION`].
    pub runbook: String,
    /// The step's id, or the `[runbooks]` key.
    pub step: String,
    /// What it names: `repository acme/old`, `webhook pager`, `Slack channel C0123`.
    pub what: String,
    /// The problem, a sentence without its final period.
    pub problem: String,
}

impl Finding {
    /// Stable while the problem lasts, whatever the sentence says this time.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.runbook, self.step, self.what)
    }

    /// Where it is: `runbook regional, step freeze` or `[runbooks] report_channel`.
    pub fn place(&self) -> String {
        match self.runbook.as_str() {
            CONFIG_SECTION => format!("{CONFIG_SECTION} {}", self.step),
            runbook => format!("runbook {runbook}, step {}", self.step),
        }
    }

    /// One line: where, then the problem.
    pub fn line(&self) -> String {
        format!("{}: {}.", self.place(), self.problem)
    }
}

/// What is checked live, once however many steps name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `owner/repo`: `GET /repos/{owner}/{repo}`.
    Repo(String),
    /// `owner` of an `owner/*`: `GET /users/{owner}`.
    Owner(String),
    /// A configured webhook, by name: a GET that posts nothing.
    Webhook(String),
    /// A Slack channel id: `conversations.info`.
    SlackChannel(String),
    /// GitHub itself (a freeze step with GitHub not configured).
    GitHub,
}

impl Target {
    /// How a finding names it.
    pub fn label(&self) -> String {
        match self {
            Self::Repo(r) => format!("repository {r}"),
            Self::Owner(o) => format!("owner {o}"),
            Self::Webhook(w) => format!("webhook {w}"),
            Self::SlackChannel(c) => format!("Slack channel {c}"),
            Self::GitHub => "GitHub".into(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::Repo(_) | Self::Owner(_) | Self::GitHub => Kind::Repository,
            Self::Webhook(_) => Kind::Webhook,
            Self::SlackChannel(_) => Kind::Channel,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Repository,
    Webhook,
    Channel,
}

/// What a live probe made of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It exists and answers.
    Fine,
    /// It is gone or cannot be used: the problem, a sentence naming it.
    Stale(String),
    /// It could not be checked now (GitHub or Slack failing, a rate limit): why.
    Unknown(String),
}

/// What the checks know of the deployment: names and switches, never a secret.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// The configured `[[notify.webhook]]` names.
    pub webhooks: Vec<String>,
    /// Whether GitHub is configured (a token or a GitHub App), so a freeze can run.
    pub github: bool,
    /// `github.repos`: what a freeze step naming no repositories freezes.
    pub default_repos: Vec<String>,
    /// Whether Slack is configured here or in the file, so a Slack post can be planned.
    pub slack: bool,
    pub drill_channel: Option<String>,
    pub report_channel: Option<String>,
    pub drill_webhook: Option<String>,
    pub report_webhook: Option<String>,
}

impl Setup {
    pub fn new(config: &Config, integrations: &Integrations) -> Self {
        let r = &config.runbooks;
        Self {
            webhooks: config.notice_routes().into_iter().map(|r| r.name).collect(),
            github: integrations.github.is_some(),
            default_repos: config.github.repos.clone(),
            slack: integrations.slack.is_some() || config.slack.is_configured(),
            drill_channel: r.drill_channel.clone(),
            report_channel: r.report_channel.clone(),
            drill_webhook: r.drill_webhook.clone(),
            report_webhook: r.report_webhook.clone(),
        }
    }
}

/// One thing a step or a `[runbooks]` key relies on, and what the config alone says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reliance {
    pub runbook: String,
    pub step: String,
    pub target: Target,
    /// Set when the config alone shows the problem; `None`: a live probe decides.
    pub known: Option<String>,
}

impl Reliance {
    fn finding(&self, problem: String) -> Finding {
        Finding {
            runbook: self.runbook.clone(),
            step: self.step.clone(),
            what: self.target.label(),
            problem,
        }
    }
}

/// Everything every runbook relies on, in file order, then the `[runbooks]` keys.
pub fn reliances(runbooks: &Runbooks, setup: &Setup) -> Vec<Reliance> {
    let mut out = Vec::new();
    for runbook in runbooks.all() {
        for step in &runbook.steps {
            let at = |target: Target, known: Option<String>| Reliance {
                runbook: runbook.name.clone(),
                step: step.id.clone(),
                target,
                known,
            };
            out.extend(
                step_targets(&step.action, setup)
                    .into_iter()
                    .map(|(t, k)| at(t, k)),
            );
        }
    }
    out.extend(section_reliances(setup));
    dedup(out)
}

/// The same target named twice by one step counts once.
fn dedup(list: Vec<Reliance>) -> Vec<Reliance> {
    let mut seen = BTreeSet::new();
    list.into_iter()
        .filter(|r| seen.insert((r.runbook.clone(), r.step.clone(), r.target.clone())))
        .collect()
}

type Named = (Target, Option<String>);

fn step_targets(action: &Action, setup: &Setup) -> Vec<Named> {
    match action {
        Action::Manual | Action::Announce | Action::Link { .. } => Vec::new(),
        Action::Freeze { repos } => freeze_targets(repos, setup),
        Action::Notify {
            to: Destination::Webhook(name),
            ..
        }
        | Action::Page { webhook: name, .. } => vec![webhook_target(name, setup)],
        Action::Notify {
            to: Destination::SlackChannel(channel),
            ..
        } => vec![channel_target(channel, setup)],
    }
}

fn freeze_targets(repos: &[String], setup: &Setup) -> Vec<Named> {
    if !setup.github {
        return vec![(
            Target::GitHub,
            Some(
                "GitHub is not configured (set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY), so this freeze cannot run"
                    .into(),
            ),
        )];
    }
    let repos = match repos.is_empty() {
        true => &setup.default_repos,
        false => repos,
    };
    if repos.is_empty() {
        return vec![(
            Target::GitHub,
            Some("the step names no repositories and github.repos lists none, so it would freeze nothing".into()),
        )];
    }
    repos.iter().map(|r| repo_target(r)).collect()
}

fn repo_target(name: &str) -> Named {
    let name = name.trim();
    if let Err(why) = check_repo(name, true) {
        return (Target::Repo(name.to_string()), Some(why));
    }
    match name.strip_suffix("/*") {
        Some(owner) => (Target::Owner(owner.to_string()), None),
        None => (Target::Repo(name.to_string()), None),
    }
}

fn webhook_target(name: &str, setup: &Setup) -> Named {
    let target = Target::Webhook(name.to_string());
    if setup.webhooks.iter().any(|w| w == name) {
        return (target, None);
    }
    let configured = match setup.webhooks.is_empty() {
        true => "none is configured".to_string(),
        false => format!("configured: {}", setup.webhooks.join(", ")),
    };
    let problem =
        format!("webhook \"{name}\" is not a configured [[notify.webhook]] ({configured})");
    (target, Some(problem))
}

fn channel_target(channel: &str, setup: &Setup) -> Named {
    let target = Target::SlackChannel(channel.to_string());
    match setup.slack {
        true => (target, None),
        false => (
            target,
            Some(format!(
                "Slack is not configured, so nothing can be posted to Slack channel {channel}"
            )),
        ),
    }
}

/// `[runbooks]`: where drills and reports go must exist too.
fn section_reliances(setup: &Setup) -> Vec<Reliance> {
    let channels = [
        ("drill_channel", &setup.drill_channel),
        ("report_channel", &setup.report_channel),
    ];
    let webhooks = [
        ("drill_webhook", &setup.drill_webhook),
        ("report_webhook", &setup.report_webhook),
    ];
    let named = channels
        .iter()
        .filter_map(|(key, c)| Some((*key, channel_target(c.as_ref()?, setup))))
        .chain(
            webhooks
                .iter()
                .filter_map(|(key, w)| Some((*key, webhook_target(w.as_ref()?, setup)))),
        );
    named
        .map(|(key, (target, known))| Reliance {
            runbook: CONFIG_SECTION.into(),
            step: key.into(),
            target,
            known,
        })
        .collect()
}

/// The targets a live probe must decide, each once.
pub fn to_probe(reliances: &[Reliance]) -> Vec<Target> {
    let set: BTreeSet<Target> = reliances
        .iter()
        .filter(|r| r.known.is_none())
        .map(|r| r.target.clone())
        .collect();
    set.into_iter().collect()
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What is stale, in file order.
    pub findings: Vec<Finding>,
    /// What could not be checked now; the problem says why. Neither stale nor fine.
    pub unchecked: Vec<Finding>,
    /// Whether the live probes ran (`false` with `--offline`).
    pub live: bool,
}

impl Report {
    /// Whether nothing is stale and everything was checked.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.unchecked.is_empty()
    }
}

/// Joins what the config says with the probes' verdicts (`None`: the probes did not run).
pub fn report(reliances: &[Reliance], verdicts: Option<&HashMap<Target, Verdict>>) -> Report {
    let mut out = Report {
        live: verdicts.is_some(),
        ..Report::default()
    };
    for r in reliances {
        if let Some(problem) = &r.known {
            out.findings.push(r.finding(problem.clone()));
            continue;
        }
        match verdicts.and_then(|v| v.get(&r.target)) {
            Some(Verdict::Stale(problem)) => out.findings.push(r.finding(problem.clone())),
            Some(Verdict::Unknown(why)) => out.unchecked.push(r.finding(why.clone())),
            Some(Verdict::Fine) => {}
            None if verdicts.is_some() => out
                .unchecked
                .push(r.finding(format!("{} was not checked", r.target.label()))),
            None => {}
        }
    }
    out
}

/// A runbook in one line, for a check that found nothing wrong with it:
/// `regional (Regional outage): 5 steps; names 2 repositories, 1 webhook and 1 Slack channel`.
pub fn summary(runbook: &Runbook, reliances: &[Reliance]) -> String {
    let mut counts: HashMap<&'static str, BTreeSet<&Target>> = HashMap::new();
    for r in reliances.iter().filter(|r| r.runbook == runbook.name) {
        let noun = match r.target.kind() {
            Kind::Repository => "repository",
            Kind::Webhook => "webhook",
            Kind::Channel => "Slack channel",
        };
        counts.entry(noun).or_default().insert(&r.target);
    }
    let parts: Vec<String> = ["repository", "webhook", "Slack channel"]
        .iter()
        .filter_map(|noun| counts.get(noun).map(|set| counted(set.len(), noun)))
        .collect();
    let steps = counted(runbook.steps.len(), "step");
    match parts.is_empty() {
        true => format!(
            "{} ({}): {steps}; names nothing outside firebreak",
            runbook.name, runbook.title
        ),
        false => format!(
            "{} ({}): {steps}; names {}",
            runbook.name,
            runbook.title,
            and_list(&parts)
        ),
    }
}

fn counted(n: usize, noun: &str) -> String {
    match (n, noun) {
        (1, _) => format!("1 {noun}"),
        (_, "repository") => format!("{n} repositories"),
        _ => format!("{n} {noun}s"),
    }
}

fn and_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
