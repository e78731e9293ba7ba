//! Persistence with sqlx. [`Store::connect`] picks SQLite or Postgres from the URL; both run
//! the same portable SQL through `AnyPool` (`$1` placeholders, epoch-millisecond `BIGINT`
//! times, app-generated ids), and each has its own migration folder for its DDL.
//!
//! Writes go through a [`Tx`], which knows its backend so the few backend-specific clauses
//! (`FOR UPDATE`, `SKIP LOCKED`) stay in one place. One module per table adds methods to it.

mod alert_groups;
mod chat_refs;
mod effects;
mod ended_sessions;
mod exemptions;
mod freeze;
mod inbound;
mod incidents;
mod outcomes;
mod people;
mod postmortem;
mod timeline;
mod tokens;
mod workers;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use alert_groups::AlertGroup;
pub use chat_refs::ChatRef;
pub use effects::EffectCounts;
pub use exemptions::{Exemption, NewAttempt, state as exemption_state};
pub use freeze::{FreezeHold, FreezeScope, FreezeTarget, NewHold, TargetFailure, WrittenStatus};
pub use inbound::{Delivery, DeliveryRecord, Seen};
pub use people::Person;
pub use postmortem::{ActionItem, Flag};
pub use timeline::ShownEntry;
pub use tokens::{ApiToken, NewToken};
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
    pool: AnyPool,
    /// SQLite only: connections for background writes, with `synchronous = NORMAL`.
    background: Option<AnyPool>,
    backend: Backend,
    /// SQLite allows one writer at a time. Queueing writers here, in arrival order, keeps
    /// them out of SQLite's busy-wait (which sleeps in growing steps and turns contention
    /// into 100 ms tails). Postgres has row locks and needs none.
    writer: Option<Arc<WriterLock>>,
    /// Writes the worker's outcomes in batches (absent on the writer's own handle).
    outcomes: Option<outcomes::OutcomeWriter>,
}

/// The SQLite writer queue, and who holds it (for the log when someone waits too long).
///
/// Commands (someone is waiting for the answer) go before background work (the effects
/// worker's claims, outcomes and heartbeats): a background writer steps aside while any
/// command is waiting, so a busy queue costs a command at most one background transaction.
#[derive(Default)]
struct WriterLock {
    queue: Arc<tokio::sync::Mutex<()>>,
    commands_waiting: std::sync::atomic::AtomicUsize,
    no_commands_waiting: tokio::sync::Notify,
    holder: std::sync::Mutex<Option<&'static std::panic::Location<'static>>>,
}

/// Whether a write transaction is on someone's critical path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Command,
    Background,
}

/// A writer waiting this long is logged with the holder's location: a stuck writer stops
/// every command, and the location is what you need to find it.
const WRITER_WAIT_WARNING: Duration = Duration::from_secs(2);

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
        let url = match backend {
            Backend::Sqlite => sqlite_url_with_create(url),
            Backend::Postgres => postgres_url_on_loopback(url),
        };
        let (pool, background) = match backend {
            // What a command commits (the incident, its timeline, the effects it owes) is
            // fsynced before the reply (`synchronous = FULL`). Background bookkeeping (claims,
            // outcomes, heartbeats) uses its own connections with `NORMAL`: in WAL mode the
            // next command's fsync makes it durable too, and a power cut before that only
            // means an effect runs again, which effects are built for.
            Backend::Sqlite => (
                sqlite_pool(&url, "FULL", 8).await?,
                Some(sqlite_pool(&url, "NORMAL", 2).await?),
            ),
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .context("could not open the Postgres database")?;
                (pool, None)
            }
        };
        let writer = (backend == Backend::Sqlite).then(|| Arc::new(WriterLock::default()));
        let mut store = Self {
            pool,
            background,
            backend,
            writer,
            outcomes: None,
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
            .run(&self.pool)
            .await
            .context("migrating the database")
    }

    /// Whether every migration is recorded as applied with the checksum it has now. Any
    /// doubt (no table yet, a failed or changed migration) says no, and the migrator decides.
    async fn is_current(&self, migrator: &sqlx::migrate::Migrator) -> bool {
        let applied: Vec<(i64, Vec<u8>)> = match sqlx::query_as(
            "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
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
        let writer = match &self.writer {
            Some(lock) => Some(lock.acquire(caller, priority).await),
            None => None,
        };
        let inner = match (self.backend, priority, &self.background) {
            (Backend::Sqlite, Priority::Background, Some(background)) => {
                background.begin_with("BEGIN IMMEDIATE").await?
            }
            (Backend::Sqlite, _, _) => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            (Backend::Postgres, _, _) => self.pool.begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            _writer: writer,
        })
    }

    /// Takes the reconciler's lock: on Postgres a session advisory lock, so only one replica
    /// reconciles at a time (released with [`ReconcileLock::release`], or when the
    /// connection dies with its process). `None` if another replica holds it. SQLite is a
    /// single process, so it always gets the lock.
    pub async fn reconcile_lock(&self) -> anyhow::Result<Option<ReconcileLock>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(ReconcileLock { conn: None }));
        }
        let mut conn = self.pool.acquire().await?;
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(RECONCILE_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        Ok(locked.then_some(ReconcileLock { conn: Some(conn) }))
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(background) = &self.background {
            background.close().await;
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
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

/// One command waiting for the writer; background writers step aside while any exist.
struct CommandWaiting<'a>(&'a WriterLock);

impl<'a> CommandWaiting<'a> {
    fn new(lock: &'a WriterLock) -> Self {
        lock.commands_waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(lock)
    }
}

impl Drop for CommandWaiting<'_> {
    fn drop(&mut self) {
        if self
            .0
            .commands_waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.no_commands_waiting.notify_waiters();
        }
    }
}

impl WriterLock {
    async fn acquire(
        &self,
        caller: &'static std::panic::Location<'static>,
        priority: Priority,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let guard = match priority {
            Priority::Command => {
                // Counted until it holds the queue, or until the wait is cancelled.
                let waiting = CommandWaiting::new(self);
                let guard = self.wait_logged(caller).await;
                drop(waiting);
                guard
            }
            Priority::Background => loop {
                let idle = self.no_commands_waiting.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.commands_waiting.load(SeqCst) > 0 {
                    idle.await;
                    continue;
                }
                let guard = self.wait_logged(caller).await;
                if self.commands_waiting.load(SeqCst) == 0 {
                    break guard;
                }
                // A command arrived while we queued: let it go first.
            },
        };
        *self.holder.lock().unwrap_or_else(|e| e.into_inner()) = Some(caller);
        guard
    }

    async fn wait_logged(
        &self,
        caller: &'static std::panic::Location<'static>,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let wait = Arc::clone(&self.queue).lock_owned();
        tokio::pin!(wait);
        match tokio::time::timeout(WRITER_WAIT_WARNING, &mut wait).await {
            Ok(guard) => guard,
            Err(_) => {
                let holder = *self.holder.lock().unwrap_or_else(|e| e.into_inner());
                tracing::warn!(waiter = %caller, holder = ?holder.map(|h| h.to_string()), "waiting more than 2 s for the SQLite writer");
                wait.await
            }
        }
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: Transaction<'static, Any>,
    backend: Backend,
    /// Held until the transaction ends (declared last, so it is released after it).
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> anyhow::Result<()> {
        self.inner.commit().await.context("committing")
    }

    pub async fn rollback(self) -> anyhow::Result<()> {
        self.inner.rollback().await.context("rolling back")
    }

    /// `FOR UPDATE` on Postgres; SQLite already holds the database write lock.
    fn lock_clause(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// A SQLite pool in WAL mode with foreign keys on, committing with `synchronous`.
async fn sqlite_pool(url: &str, synchronous: &'static str, size: u32) -> anyhow::Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA synchronous = {synchronous}"
                )))
                .await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .context("could not open the SQLite database")
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

fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
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
            sqlite_url_with_create("sqlite://firebreak.db"),
            "sqlite://firebreak.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
        assert!(backend_of("mysql://x").is_err());
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
