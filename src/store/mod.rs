//! Persistence with sqlx. [`Store::connect`] picks SQLite or Postgres from the URL; both run
//! the same portable SQL through `AnyPool` (`$1` placeholders, epoch-millisecond `BIGINT`
//! times, app-generated ids), and each has its own migration folder for its DDL.
//!
//! Writes go through a [`Tx`], which knows its backend so the few backend-specific clauses
//! (`FOR UPDATE`, `SKIP LOCKED`) stay in one place. One module per table adds methods to it.

mod aggregates;
mod alert_groups;
mod batch;
mod chat_refs;
mod checkpointer;
mod effects;
mod ended_sessions;
mod enqueue;
mod exemptions;
mod freeze;
#[cfg(test)]
mod group_commit_tests;
mod inbound;
mod incidents;
mod open_error;
mod outcomes;
mod people;
mod postmortem;
mod runbook_findings;
mod runbook_milestones;
mod runbooks;
mod sqlite;
mod timeline;
mod tokens;
mod tx;
mod workers;
#[cfg(test)]
mod writer_tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};

use sqlite::Sqlite;

pub use aggregates::{FreezeTargetCount, OpenIncidentCount};
pub use alert_groups::AlertGroup;
pub use chat_refs::ChatRef;
pub use effects::EffectCounts;
pub use exemptions::{Exemption, NewAttempt, state as exemption_state};
pub use freeze::{FreezeHold, FreezeScope, FreezeTarget, NewHold, TargetFailure, WrittenStatus};
pub use inbound::{Delivery, DeliveryRecord, Seen};
pub use incidents::{Numbering, is_stale_incident_number};
pub use open_error::{LOCKED_TOO_LONG, locked_for_too_long};
pub use people::Person;
pub use postmortem::{ActionDone, ActionItem, Flag};
pub use runbook_findings::StoredFinding;
pub use runbook_milestones::{RunbookMilestones, StepPost};
pub use runbooks::{AttachedRunbook, DueStep, StepOutcome, StepRecord};
pub use timeline::ShownEntry;
pub use tokens::{ApiToken, NewToken};
pub use tx::Tx;
use tx::TxConn;
pub use workers::WorkerRow;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    backend: Backend,
    /// Writes the worker's outcomes in batches (absent on the writer's own handle).
    outcomes: Option<outcomes::OutcomeWriter>,
    /// Names read lately, for the actor of every chat command (see [`people::Recent`]).
    recent_people: Arc<people::Recent>,
}

/// The connections. Postgres: a pool. SQLite allows one writer at a time: writers queue in
/// [`sqlite::WriterLock`], in arrival order, which keeps them out of SQLite's busy-wait
/// (it sleeps in growing steps and turns contention into 100 ms tails).
#[derive(Clone)]
enum Db {
    Postgres(AnyPool),
    Sqlite(Arc<Sqlite>),
}

/// Whether a write transaction is on someone's critical path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Command,
    Background,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Connects without migrating. SQLite files are created if missing and opened in WAL mode
    /// with foreign keys on.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        install_default_drivers();
        let backend = backend_of(url)?;
        let db = match backend {
            Backend::Sqlite => Db::Sqlite(Sqlite::open(&sqlite::url_with_create(url)).await?),
            Backend::Postgres => {
                let url = postgres_url_on_loopback(url);
                match AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                {
                    Ok(pool) => Db::Postgres(pool),
                    Err(e) => return Err(open_error::postgres(&url, e).await),
                }
            }
        };
        let mut store = Self {
            db,
            backend,
            outcomes: None,
            recent_people: Default::default(),
        };
        store.outcomes = Some(outcomes::OutcomeWriter::start(store.clone()));
        Ok(store)
    }

    /// Writes one outcome of an attempt, batched with others when a writer runs.
    async fn write_outcome(&self, outcome: outcomes::Outcome) -> anyhow::Result<bool> {
        match &self.outcomes {
            Some(writer) => writer.write(outcome).await,
            None => Ok(self.write_outcomes(&[&outcome]).await?[0]),
        }
    }

    /// Connects and applies any pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations. A database already current (every migration recorded
    /// with its checksum) is left alone after one read, without the migrator's lock (on
    /// Postgres an advisory lock every CLI call would otherwise queue on).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        if self.is_current(migrator).await {
            return Ok(());
        }
        migrator
            .run(&mut *self.reader().await?)
            .await
            .context("migrating the database")
    }

    /// Whether every migration is recorded as applied with the checksum it has now. Any
    /// doubt (no table yet, a failed or changed migration) says no, and the migrator decides.
    async fn is_current(&self, migrator: &sqlx::migrate::Migrator) -> bool {
        let Ok(mut conn) = self.reader().await else {
            return false;
        };
        let applied: Vec<(i64, Vec<u8>)> = match sqlx::query_as(
            "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&mut *conn)
        .await
        {
            Ok(rows) => rows,
            Err(_) => return false,
        };
        let wanted: Vec<(i64, &[u8])> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.as_ref()))
            .collect();
        wanted.len() == applied.len()
            && wanted
                .iter()
                .zip(&applied)
                .all(|((v, c), (av, ac))| v == av && *c == ac.as_slice())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes the write
    /// lock up front: a deferred transaction that reads and then writes can fail with
    /// "database is locked" when two writers race, instead of waiting its turn.
    /// (`#[track_caller]` so a writer that waits too long can name who holds the queue.)
    #[track_caller]
    pub fn begin(&self) -> impl std::future::Future<Output = anyhow::Result<Tx>> + Send + '_ {
        let caller = std::panic::Location::caller();
        async move { self.begin_at(caller, Priority::Command).await }
    }

    /// [`begin`](Self::begin) for background work, which yields to waiting commands.
    #[track_caller]
    pub fn begin_background(
        &self,
    ) -> impl std::future::Future<Output = anyhow::Result<Tx>> + Send + '_ {
        let caller = std::panic::Location::caller();
        async move { self.begin_at(caller, Priority::Background).await }
    }

    async fn begin_at(
        &self,
        caller: &'static std::panic::Location<'static>,
        priority: Priority,
    ) -> anyhow::Result<Tx> {
        let (inner, held) = match &self.db {
            Db::Sqlite(sqlite) => {
                let mut writers = sqlite.writer.acquire(caller, priority).await;
                let opening = writers.begin(priority).await;
                let writer = TxConn::Writer {
                    writers: Some(writers),
                };
                (writer, batch::Batch::opening(opening))
            }
            Db::Postgres(pool) => (
                TxConn::Pooled(Some(pool.begin().await?)),
                batch::Batch::default(),
            ),
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            held,
        })
    }

    /// Takes the reconciler's lock: on Postgres a session advisory lock, so only one replica
    /// reconciles at a time (released with [`ReconcileLock::release`], or when the
    /// connection dies with its process). `None` if another replica holds it. SQLite is a
    /// single process, so it always gets the lock.
    pub async fn reconcile_lock(&self) -> anyhow::Result<Option<ReconcileLock>> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(Some(ReconcileLock { conn: None }));
        };
        let mut conn = pool.acquire().await?;
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(RECONCILE_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        Ok(locked.then_some(ReconcileLock { conn: Some(conn) }))
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(sqlite) => sqlite.close().await,
        }
    }

    /// A connection for reads (a pooled one on Postgres, a reader on SQLite), given back
    /// when dropped: `query.fetch_all(&mut *self.reader().await?)`.
    pub(crate) async fn reader(&self) -> anyhow::Result<ReadConn> {
        Ok(match &self.db {
            Db::Postgres(pool) => ReadConn::Pooled(pool.acquire().await?),
            Db::Sqlite(sqlite) => ReadConn::Sqlite(sqlite.reader().await?),
        })
    }
}

/// An arbitrary constant naming the reconciler's advisory lock.
const RECONCILE_LOCK_KEY: i64 = 0x0066_6972_6562_726b;

/// Held while reconciling; see [`Store::reconcile_lock`].
pub struct ReconcileLock {
    conn: Option<sqlx::pool::PoolConnection<Any>>,
}

impl ReconcileLock {
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            if let Err(e) = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(RECONCILE_LOCK_KEY)
                .execute(&mut *conn)
                .await
            {
                tracing::warn!(error = %e, "releasing the reconcile lock failed; it ends with the connection");
                conn.close_on_drop();
            }
        }
    }
}

impl Drop for ReconcileLock {
    /// A lock dropped without `release` (its reconcile was cancelled) closes its connection,
    /// which ends the session and so the advisory lock, rather than returning a locked
    /// connection to the pool.
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }
}

/// A connection for reads; see [`Store::reader`].
pub(crate) enum ReadConn {
    Pooled(PoolConnection<Any>),
    Sqlite(sqlite::Reader),
}

impl std::ops::Deref for ReadConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            ReadConn::Pooled(c) => c,
            ReadConn::Sqlite(c) => c,
        }
    }
}

impl std::ops::DerefMut for ReadConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            ReadConn::Pooled(c) => c,
            ReadConn::Sqlite(c) => c,
        }
    }
}

fn backend_of(url: &str) -> anyhow::Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        anyhow::bail!("FIREBREAK_DATABASE_URL must start with sqlite:// or postgres://")
    }
}

/// A Postgres URL naming a loopback host and no `sslmode` gets `sslmode=disable`: TLS on
/// loopback protects nothing, and sqlx 0.9.0 leaves Nagle's algorithm on, so each TLS
/// handshake stalls about 40 ms twice (sqlx#4335) and a CLI call paid it for every
/// connection it opened. Any other URL is left as written.
fn postgres_url_on_loopback(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    let loopback = matches!(
        parsed.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    if !loopback || parsed.query_pairs().any(|(k, _)| k == "sslmode") {
        return url.to_string();
    }
    let joiner = if parsed.query().is_some() { '&' } else { '?' };
    format!("{url}{joiner}sslmode=disable")
}

/// Times are stored as epoch milliseconds: portable across both backends and exact to the ms.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn opt_from_ms(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(from_ms)
}

/// Decodes a stored enum name, reporting corruption with the column it came from.
pub(crate) fn parse_column<T: FromStr>(value: &str, column: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("bad value in column {column}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            sqlite::url_with_create("sqlite://firebreak.db"),
            "sqlite://firebreak.db?mode=rwc"
        );
        assert_eq!(
            sqlite::url_with_create("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
        assert!(backend_of("mysql://x").is_err());
    }

    #[test]
    fn the_writer_opens_the_file_as_the_url_says() {
        use sqlite::connection_thread::OpenMode;
        assert_eq!(sqlite::open_mode("sqlite://x.db"), OpenMode::ReadWrite);
        assert_eq!(
            sqlite::open_mode("sqlite://x.db?mode=ro"),
            OpenMode::ReadOnly
        );
        assert_eq!(
            sqlite::open_mode("sqlite://x.db?cache=shared&mode=rwc"),
            OpenMode::Create
        );
    }

    #[test]
    fn loopback_postgres_skips_tls_unless_told() {
        let local = "postgres://postgres@127.0.0.1:5432/db";
        assert_eq!(
            postgres_url_on_loopback(local),
            format!("{local}?sslmode=disable")
        );
        let told = "postgres://postgres@localhost/db?sslmode=require";
        assert_eq!(postgres_url_on_loopback(told), told);
        let remote = "postgres://u@db.example.com/db";
        assert_eq!(postgres_url_on_loopback(remote), remote);
        let query = "postgres://u@[::1]/db?application_name=x";
        assert_eq!(
            postgres_url_on_loopback(query),
            format!("{query}&sslmode=disable")
        );
    }

    #[test]
    fn millisecond_round_trip() {
        let t = Utc.timestamp_millis_opt(1_763_780_000_123).unwrap();
        assert_eq!(from_ms(to_ms(t)), t);
    }
}
