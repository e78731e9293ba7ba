//! Who is running the CLI: the operating-system account of the real uid, from the passwd
//! database, never `$USER` or `$LOGNAME`, which anyone can set to anything. A uid with no
//! passwd entry (a container run with an arbitrary `--user`) is `uid-<n>`.
//!
//! With `cli_trusted = false` this is the name `[permissions]` lists as `cli:<account>`. It
//! guards against mistakes on a shared host; it is no boundary against someone who can read
//! the database file or URL, who can write the database directly.

use crate::incident::{Actor, Source};

/// The account name the CLI acts as.
pub fn os_account() -> String {
    #[cfg(unix)]
    {
        use nix::unistd::{User, getuid};
        let uid = getuid();
        match User::from_uid(uid) {
            Ok(Some(user)) if !user.name.is_empty() => user.name,
            _ => format!("uid-{uid}"),
        }
    }
    #[cfg(not(unix))]
    {
        // No uid to look up; the login name Windows sets for the session.
        std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into())
    }
}

/// The CLI's actor: `cli:<account>`, shown on the timeline as the account name.
pub fn actor() -> Actor {
    let name = os_account();
    Actor::new(Source::Cli, name.clone(), name)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_account_follows_the_uid_not_the_environment() {
        let uid = nix::unistd::getuid();
        let expected = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| format!("uid-{uid}"), |u| u.name);
        assert_eq!(os_account(), expected);
        let actor = actor();
        assert_eq!(actor.identity().to_string(), format!("cli:{expected}"));
        assert_eq!(actor.name, expected);
    }
}
