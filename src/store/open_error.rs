//! Why a database could not be opened, or stayed locked, said once and naming the place:
//! the SQLite file, or the Postgres host, port and database (never the user's password).

use std::time::Duration;

use sqlx::{AnyConnection, Connection};

/// The cause alone: the database's own message, or the I/O error, without sqlx's wrapping
/// (which repeats SQLite's message: "unable to open database file: (code: 14) unable to
/// open database file").
pub(super) fn cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The error for a Postgres pool that would not open. The pool retries until its timeout
/// and then says only that it timed out; one direct connection finds the reason (refused,
/// unknown host, bad password, no such database).
pub(super) async fn postgres(url: &str, pool_error: sqlx::Error) -> anyhow::Error {
    let place = postgres_place(url);
    let reason =
        match tokio::time::timeout(Duration::from_secs(5), AnyConnection::connect(url)).await {
            Ok(Err(e)) => cause(&e),
            Ok(Ok(_)) => cause(&pool_error),
            Err(_) => "no answer within 5 s".to_string(),
        };
    anyhow::anyhow!("could not connect to the Postgres database {place}: {reason}")
}

/// `host:port/database` of a Postgres URL, without user or password.
fn postgres_place(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "at {}:{}{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432),
            u.path()
        ),
        Err(_) => "(its URL does not parse)".to_string(),
    }
}

/// What a CLI call says when another process kept the SQLite database locked for longer than
/// the wait (`busy_timeout`).
pub const LOCKED_TOO_LONG: &str = "the SQLite database stayed locked by another process for \
    10 s (a long write elsewhere, or a program holding a transaction open); nothing was \
    changed, try again";

/// Whether `e` is SQLite's "database is locked" (`SQLITE_BUSY` and its extended codes),
/// which it returns once the wait for another process's write lock has run out.
pub fn locked_for_too_long(e: &anyhow::Error) -> bool {
    super::sqlite::connection_thread::is_busy(e)
        || e.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .and_then(sqlx::Error::as_database_error)
                .and_then(|db| db.code())
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| code & 0xff == 5)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_names_host_port_and_database_never_the_password() {
        let place =
            postgres_place("postgres://app:s3cret@db.internal:6543/firebreak?sslmode=require");
        assert_eq!(place, "at db.internal:6543/firebreak");
        assert_eq!(postgres_place("postgres://h/x"), "at h:5432/x");
    }

    #[tokio::test]
    async fn a_refused_connection_says_so_and_where() {
        sqlx::any::install_default_drivers();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://u:pw@127.0.0.1:{port}/db?sslmode=disable");
        let e = postgres(&url, sqlx::Error::PoolTimedOut).await.to_string();
        assert!(
            e.starts_with(&format!(
                "could not connect to the Postgres database at 127.0.0.1:{port}/db: "
            )),
            "{e}"
        );
        assert!(e.to_lowercase().contains("refused"), "{e}");
        assert!(!e.contains("pw"), "{e}");
    }

    #[tokio::test]
    async fn a_lock_held_past_the_wait_is_recognised() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
        let mut holder = AnyConnection::connect(&url).await.unwrap();
        sqlx::Executor::execute(&mut holder, "BEGIN IMMEDIATE")
            .await
            .unwrap();
        let mut other = AnyConnection::connect(&url).await.unwrap();
        sqlx::Executor::execute(&mut other, "PRAGMA busy_timeout = 10")
            .await
            .unwrap();
        let busy = sqlx::Executor::execute(&mut other, "BEGIN IMMEDIATE")
            .await
            .unwrap_err();
        let e = anyhow::Error::from(busy).context("declaring");
        assert!(locked_for_too_long(&e), "{e:#}");
        assert!(!locked_for_too_long(&anyhow::anyhow!("database is locked")));
    }
}
