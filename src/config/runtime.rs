//! What comes from the environment rather than the file: the integrations' secrets, the
//! database URL (with its per-user default) and the listen address.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError, env_secret};
use crate::chat::discord::DiscordSecrets;
use crate::chat::slack::SlackSecrets;
use crate::github::GitHubSecrets;

/// The external integrations switched on by secrets in the environment.
#[derive(Debug, Clone, Default)]
pub struct Integrations {
    pub slack: Option<SlackSecrets>,
    pub discord: Option<DiscordSecrets>,
    pub github: Option<GitHubSecrets>,
}

impl Integrations {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            slack: SlackSecrets::from_env().map_err(ConfigError)?,
            discord: DiscordSecrets::from_env().map_err(ConfigError)?,
            github: GitHubSecrets::from_env().map_err(ConfigError)?,
        })
    }
}

/// Where to find the database and where to listen, from the environment.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub database_url: SecretString,
    /// Which setting chose the database, for `config check`.
    pub database_from: DatabaseFrom,
    pub listen: SocketAddr,
    pub integrations: Integrations,
}

/// Which setting chose the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFrom {
    /// `FIREBREAK_DATABASE_URL`.
    Env,
    /// `[database] url` in the config file.
    File,
    /// The per-user default under `$XDG_DATA_HOME` or `~/.local/share`.
    Default,
}

impl Runtime {
    pub fn from_env(config: &Config) -> Result<Self, ConfigError> {
        let (database_url, database_from) =
            match env_secret("FIREBREAK_DATABASE_URL").map_err(ConfigError)? {
                Some(url) => (url, DatabaseFrom::Env),
                None => match &config.database.url {
                    Some(url) if url.expose_secret().trim().is_empty() => {
                        return Err(ConfigError(
                            "database.url is empty; give a URL or leave the key out".into(),
                        ));
                    }
                    Some(url) => (url.clone(), DatabaseFrom::File),
                    None => (default_database_url()?, DatabaseFrom::Default),
                },
            };
        check_database_url(database_url.expose_secret(), database_from)?;
        let listen = match std::env::var("FIREBREAK_LISTEN") {
            Ok(v) => v.parse().map_err(|_| {
                ConfigError(format!(
                    "FIREBREAK_LISTEN=\"{v}\" is not an address like 127.0.0.1:8080"
                ))
            })?,
            Err(_) => config.server.listen,
        };
        Ok(Self {
            database_url,
            database_from,
            listen,
            integrations: Integrations::from_env()?,
        })
    }

    /// The SQLite file the database URL names, made absolute; `None` for Postgres and for
    /// in-memory SQLite. A file path is not a secret, so this may be shown.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        sqlite_path(self.database_url.expose_secret())
    }

    /// Where the data lives, for people: the SQLite file, or "Postgres" without the URL
    /// (which may hold a password).
    pub fn database_description(&self) -> String {
        let from = match self.database_from {
            DatabaseFrom::Env => "FIREBREAK_DATABASE_URL",
            DatabaseFrom::File => "database.url",
            DatabaseFrom::Default => "the per-user default",
        };
        match self.sqlite_path() {
            Some(path) => format!("SQLite at {} (from {from})", path.display()),
            None if self.database_url.expose_secret().starts_with("sqlite:") => {
                format!("in-memory SQLite (from {from})")
            }
            None => format!("Postgres (from {from})"),
        }
    }
}

/// Refuses a URL naming a database firebreak cannot use, naming where it came from and its
/// scheme only (the rest may hold a password).
pub(super) fn check_database_url(url: &str, from: DatabaseFrom) -> Result<(), ConfigError> {
    const SUPPORTED: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];
    let key = match from {
        DatabaseFrom::Env => "FIREBREAK_DATABASE_URL",
        DatabaseFrom::File | DatabaseFrom::Default => "database.url",
    };
    if url.starts_with("sqlite:") && sqlite_path(url).is_none() {
        return Err(ConfigError(format!(
            "{key} names an in-memory SQLite database, which would lose every incident when the command ends; give a file (sqlite:///path/firebreak.db)"
        )));
    }
    if SUPPORTED.iter().any(|s| url.starts_with(s)) {
        return Ok(());
    }
    let scheme = match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() && scheme.len() <= 20 => format!("a {scheme}: URL"),
        _ => "not a URL".to_string(),
    };
    Err(ConfigError(format!(
        "{key} is {scheme}; firebreak stores its data in SQLite (sqlite:///path/firebreak.db) or Postgres (postgres://user@host/db)"
    )))
}

/// The per-user default database: `$XDG_DATA_HOME/firebreak/firebreak.db`, else
/// `$HOME/.local/share/firebreak/firebreak.db`, the same file from any directory.
pub fn default_database_path() -> Result<PathBuf, ConfigError> {
    data_home(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
        .map(|dir| dir.join("firebreak").join("firebreak.db"))
        .ok_or_else(|| {
            ConfigError(
                "no place for the default database: HOME is not set (nor XDG_DATA_HOME); set FIREBREAK_DATABASE_URL or database.url in the config".into(),
            )
        })
}

/// The XDG data directory. Relative values are ignored, as the XDG spec says.
pub(super) fn data_home(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    xdg.and_then(absolute).or_else(|| {
        home.and_then(absolute)
            .map(|h| h.join(".local").join("share"))
    })
}

fn default_database_url() -> Result<SecretString, ConfigError> {
    let path = default_database_path()?;
    let text = path.to_str().ok_or_else(|| {
        ConfigError(format!(
            "the default database path {} is not UTF-8; set FIREBREAK_DATABASE_URL",
            path.display()
        ))
    })?;
    Ok(SecretString::from(sqlite_url_for(text)))
}

/// `sqlite://` and the path, with the characters sqlx would decode or split on escaped.
pub(super) fn sqlite_url_for(path: &str) -> String {
    let mut url = String::from("sqlite://");
    for c in path.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url
}

/// The file a `sqlite:` URL names, absolute (relative paths are from the working directory).
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() {
        return None;
    }
    std::path::absolute(file).ok()
}

/// Whether opening this URL may create the SQLite file (no `mode=`, or `mode=rwc`).
pub fn sqlite_creates(url: &str) -> bool {
    !url.contains("mode=") || url.contains("mode=rwc")
}
