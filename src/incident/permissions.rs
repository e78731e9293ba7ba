//! Who is acting, and whether they may. Identities are `platform:id` strings, so one config
//! list can name Slack users, Discord users and local accounts side by side.

use serde::Deserialize;

use super::identity::Identity;
use super::timeline::Source;

/// The person (or system) behind a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub source: Source,
    /// Platform user id (`U024BE7LH`, a Discord snowflake, or the OS account of the CLI's uid,
    /// see `cli::identity`).
    pub id: String,
    /// How to call them in a sentence (`Acknowledged by alice`): a display name the edge
    /// knows, else the id. What is *stored* as the actor is [`Actor::identity`].
    pub name: String,
    /// Groups the platform says they belong to, written as they appear in `[permissions]`
    /// (`discord-role:ROLE_ID`). They only ever widen what the person may do.
    pub groups: Vec<String>,
}

impl Actor {
    pub fn new(source: Source, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            source,
            id: id.into(),
            name: name.into(),
            groups: Vec::new(),
        }
    }

    /// The same person, with the groups their platform put them in.
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = String>) -> Self {
        self.groups = groups.into_iter().collect();
        self
    }

    /// firebreak itself, for effect outcomes and reminders.
    pub fn system() -> Self {
        Self::new(Source::System, "firebreak", "firebreak")
    }

    /// `slack:U024BE7LH`: what is stored for them (as actor, declarer, role holder, author)
    /// and the form used in `[permissions]`.
    pub fn identity(&self) -> Identity {
        Identity::lossy(self.source.as_str(), &self.id)
    }

    /// How a stored sentence names them (`Acknowledged by …`). A chat user is written as
    /// their identity (`slack:U024BE7LH`), never a name frozen in at the time: each reader
    /// renders it (a mention in Slack, the cached display name in the CLI and post-mortem).
    /// A local account or firebreak itself is its own name.
    pub fn in_text(&self) -> String {
        match self.source {
            Source::Slack | Source::Discord | Source::Api | Source::Email => {
                self.identity().to_string()
            }
            Source::Cli | Source::Github | Source::System => self.id.clone(),
        }
    }
}

/// Actions that can be restricted. Every verb that writes needs one (see
/// [`Command::permission`](super::command::Command::permission)); reads need none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `declare`.
    Declare,
    /// `ack`, `update`, `status` (other than resolved), `severity`, `assign`, `note`.
    Respond,
    /// `freeze`, `unfreeze`, `freeze exempt`.
    Freeze,
    /// `unfreeze --all`: lift every hold, not only the caller's.
    UnfreezeAll,
    /// `resolve`, `status resolved`.
    Resolve,
    /// `postmortem set`, `postmortem publish`, `action add`, `action done`.
    Postmortem,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Self::Declare,
        Self::Respond,
        Self::Freeze,
        Self::UnfreezeAll,
        Self::Resolve,
        Self::Postmortem,
    ];

    /// The name of its list under `[permissions]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declare => "declare",
            Self::Respond => "respond",
            Self::Freeze => "freeze",
            Self::UnfreezeAll => "unfreeze_all",
            Self::Resolve => "resolve",
            Self::Postmortem => "postmortem",
        }
    }

    /// What the action lets someone do, for the sentence a refused caller sees.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Declare => "declare incidents",
            Self::Respond => "respond to incidents (ack, update, status, severity, assign, note)",
            Self::Freeze => "freeze or unfreeze merges",
            Self::UnfreezeAll => "lift every hold on a merge freeze (unfreeze --all)",
            Self::Resolve => "resolve incidents",
            Self::Postmortem => {
                "write or publish post-mortems (postmortem set/publish, action add/done)"
            }
        }
    }
}

/// `[permissions]` in the config.
///
/// A list that is absent lets everyone do that action: a small team should not have to
/// write config before its first incident. Once a list is present, only the identities on
/// it may act. Entries are `slack:U…`, `discord:…`, `cli:alice`, `api:alertmanager` (the
/// API token of that name), or `slack:*` for everyone on a platform. The CLI runs as the local OS user on a machine that already has the
/// database, so it is trusted unless `cli_trusted = false`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Permissions {
    pub declare: Option<Vec<String>>,
    pub respond: Option<Vec<String>>,
    pub freeze: Option<Vec<String>>,
    /// `unfreeze --all`; absent = whoever `freeze` allows.
    pub unfreeze_all: Option<Vec<String>>,
    pub resolve: Option<Vec<String>>,
    pub postmortem: Option<Vec<String>>,
    pub cli_trusted: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            declare: None,
            respond: None,
            freeze: None,
            unfreeze_all: None,
            resolve: None,
            postmortem: None,
            cli_trusted: true,
        }
    }
}

impl Permissions {
    pub fn allows(&self, actor: &Actor, action: Action) -> bool {
        if actor.source == Source::System || (actor.source == Source::Cli && self.cli_trusted) {
            return true;
        }
        let list = match action {
            Action::Declare => &self.declare,
            Action::Respond => &self.respond,
            Action::Freeze => &self.freeze,
            // Absent, it is the `freeze` list: whoever may freeze may lift every hold.
            Action::UnfreezeAll => match &self.unfreeze_all {
                Some(_) => &self.unfreeze_all,
                None => &self.freeze,
            },
            Action::Resolve => &self.resolve,
            Action::Postmortem => &self.postmortem,
        };
        let Some(list) = list else { return true };
        let identity = actor.identity();
        let wildcard = format!("{}:*", actor.source);
        list.iter().any(|e| {
            e == identity.as_str() || *e == wildcard || actor.groups.iter().any(|g| g == e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack(id: &str) -> Actor {
        Actor::new(Source::Slack, id, id)
    }

    #[test]
    fn absent_list_allows_everyone_present_list_restricts() {
        let p = Permissions {
            resolve: Some(vec!["slack:U1".into(), "discord:*".into()]),
            ..Permissions::default()
        };
        assert!(p.allows(&slack("U9"), Action::Declare));
        assert!(p.allows(&slack("U1"), Action::Resolve));
        assert!(!p.allows(&slack("U2"), Action::Resolve));
        assert!(p.allows(&Actor::new(Source::Discord, "42", "x"), Action::Resolve));
    }

    #[test]
    fn a_group_on_the_list_admits_its_members_only() {
        let p = Permissions {
            resolve: Some(vec!["discord-role:77".into()]),
            ..Permissions::default()
        };
        let bob = Actor::new(Source::Discord, "42", "bob");
        assert!(!p.allows(&bob, Action::Resolve));
        assert!(!p.allows(
            &bob.clone().with_groups(["discord-role:78".to_string()]),
            Action::Resolve
        ));
        assert!(p.allows(
            &bob.with_groups(["discord-role:77".to_string()]),
            Action::Resolve
        ));
        assert!(p.allows(&Actor::new(Source::Discord, "42", "bob"), Action::Declare));
    }

    #[test]
    fn unfreeze_all_falls_back_to_the_freeze_list() {
        let mut p = Permissions {
            freeze: Some(vec!["slack:U1".into(), "slack:U2".into()]),
            ..Permissions::default()
        };
        assert!(p.allows(&slack("U1"), Action::UnfreezeAll));
        assert!(!p.allows(&slack("U3"), Action::UnfreezeAll));
        p.unfreeze_all = Some(vec!["slack:U2".into()]);
        assert!(!p.allows(&slack("U1"), Action::UnfreezeAll));
        assert!(p.allows(&slack("U1"), Action::Freeze));
        assert!(p.allows(&slack("U2"), Action::UnfreezeAll));
        assert!(Permissions::default().allows(&slack("U9"), Action::UnfreezeAll));
    }

    #[test]
    fn an_api_token_is_listed_as_api_and_its_name() {
        let p = Permissions {
            declare: Some(vec!["api:alertmanager".into()]),
            resolve: Some(vec!["api:*".into()]),
            ..Permissions::default()
        };
        let am = Actor::new(Source::Api, "alertmanager", "alertmanager");
        let grafana = Actor::new(Source::Api, "grafana", "grafana");
        assert_eq!(am.identity().as_str(), "api:alertmanager");
        assert_eq!(am.in_text(), "api:alertmanager");
        assert!(p.allows(&am, Action::Declare));
        assert!(!p.allows(&grafana, Action::Declare));
        assert!(p.allows(&grafana, Action::Resolve));
        assert!(!p.allows(&slack("U1"), Action::Resolve));
    }

    #[test]
    fn cli_is_trusted_by_default_but_can_be_restricted() {
        let mut p = Permissions {
            declare: Some(vec![]),
            ..Permissions::default()
        };
        let me = Actor::new(Source::Cli, "alice", "alice");
        assert!(p.allows(&me, Action::Declare));
        p.cli_trusted = false;
        assert!(!p.allows(&me, Action::Declare));
        p.declare = Some(vec!["cli:alice".into()]);
        assert!(p.allows(&me, Action::Declare));
    }
}
