//! SQLite's connections, kept outside sqlx's pool: a writer queue owning the writer
//! connection ([`writer`], on a thread of its own that runs whole batches:
//! [`connection_thread`]), a checkpointer, and a few reader connections. sqlx's pool pings
//! a connection when it is taken and again when it is given back, and with SQLite every
//! ping is a hand-off to the connection's thread and back; for a local file neither ping
//! can find anything wrong.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use anyhow::Context;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::checkpointer;

pub(super) mod connection_thread;
mod wal_writes;
mod writer;

pub(super) use connection_thread::SqlStatement;
pub(super) use writer::{End, Ended, WriterLock, Writers, WritersGuard, await_group};

/// How many reader connections SQLite gets (WAL readers run beside the writer).
const READERS: usize = 8;

/// Writers and readers of one SQLite database.
pub(super) struct Sqlite {
    pub(super) writer: WriterLock,
    readers: Arc<Readers>,
}

impl Sqlite {
    /// Opens the connections, and starts the [`checkpointer`].
    pub(super) async fn open(url: &str) -> anyhow::Result<Arc<Self>> {
        let readers = Arc::new(Readers {
            idle: std::sync::Mutex::new(vec![connection(url, "FULL").await?]),
            permits: Arc::new(Semaphore::new(READERS)),
            url: url.to_string(),
        });
        let commands_waiting = Arc::new(AtomicUsize::new(0));
        let (checkpoint, wake) = tokio::sync::mpsc::channel(1);
        let writers = Writers::open(url, Arc::clone(&commands_waiting), checkpoint).await?;
        let sqlite = Arc::new(Self {
            writer: WriterLock::new(writers, commands_waiting),
            readers,
        });
        tokio::spawn(checkpointer::run(
            url.to_string(),
            Arc::downgrade(&sqlite),
            wake,
        ));
        Ok(sqlite)
    }

    /// A reader connection, opened if none is idle; given back when dropped.
    pub(super) async fn reader(&self) -> anyhow::Result<Reader> {
        let permit = Arc::clone(&self.readers.permits)
            .acquire_owned()
            .await
            .context("the store is closed")?;
        let idle = self.readers.take_idle();
        let conn = match idle {
            Some(conn) => conn,
            None => connection(&self.readers.url, "FULL").await?,
        };
        Ok(Reader {
            conn: Some(conn),
            readers: Arc::clone(&self.readers),
            _permit: permit,
        })
    }

    /// Closes the idle readers and refuses new ones. (The writers close with the last
    /// handle on the store.)
    pub(super) async fn close(&self) {
        self.readers.permits.close();
        let idle =
            std::mem::take(&mut *self.readers.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

struct Readers {
    idle: std::sync::Mutex<Vec<AnyConnection>>,
    permits: Arc<Semaphore>,
    url: String,
}

impl Readers {
    fn take_idle(&self) -> Option<AnyConnection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
}

/// A reader connection on loan; dereferences to the connection.
pub(crate) struct Reader {
    conn: Option<AnyConnection>,
    readers: Arc<Readers>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Reader {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn
            .as_ref()
            .expect("a reader on loan has its connection")
    }
}

impl std::ops::DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("a reader on loan has its connection")
    }
}

impl Drop for Reader {
    /// Gives the connection back. A query cancelled half-way needs no clean-up: the
    /// connection's thread finishes or drops it before running the next one.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !self.readers.permits.is_closed() {
                self.readers
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
    }
}

/// Bytes the WAL file is cut back to when it starts over (see [`pragmas`]).
const WAL_SIZE_LIMIT: u64 = 32 << 20;

/// A SQLite connection of its own (a writer), committing with `synchronous`.
pub(super) async fn connection(
    url: &str,
    synchronous: &'static str,
) -> anyhow::Result<AnyConnection> {
    let mut conn = AnyConnectOptions::from_str(url)?
        .log_statements(log::LevelFilter::Debug)
        .connect()
        .await
        .map_err(|e| {
            let file = crate::config::sqlite_path(url)
                .map_or_else(|| url.to_string(), |p| p.display().to_string());
            anyhow::anyhow!(
                "could not open the SQLite database {file}: {} (does its directory exist, and may this user write there?)",
                super::open_error::cause(&e)
            )
        })?;
    for pragma in pragmas(synchronous) {
        conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
    }
    Ok(conn)
}

/// The page size a new database is made with: 1 KiB, not SQLite's default 4 KiB.
///
/// A commit writes every page it changed to the WAL, whole, and `fsync`s it: a declaration
/// changes about 30 pages (the incident, its timeline entry, its effects and delivery record,
/// and every index of each), one or two rows in each. With 4 KiB pages that was 116 KB to
/// write and flush per declaration, where the rows themselves are under 2 KB; with 1 KiB
/// pages it is 40 KB, and a commit on a slow virtual disk takes a third less time. Rows are
/// small (an effect's payload is about 110 bytes) so few spill to overflow pages.
///
/// Set before anything else on a connection, it applies only to a database not yet written:
/// one made by an older firebreak keeps its 4 KiB pages (SQLite cannot change the page size
/// of a database in WAL mode; `VACUUM` after leaving WAL mode can, offline).
pub(super) const PAGE_SIZE: u32 = 1024;

/// The page size for a new database ([`PAGE_SIZE`]), WAL mode, foreign keys on, commits
/// with `synchronous`, and a wait for other processes' writers (the CLI) instead of failing
/// at once. The WAL file is cut back to [`WAL_SIZE_LIMIT`] whenever it starts over: SQLite
/// otherwise keeps it at the largest size it ever reached (a reader pinning an old snapshot
/// during a burst can grow it to hundreds of megabytes), across restarts. Statement and
/// savepoint journals (every member of a group commit has a savepoint) and sorts stay in
/// memory: spilled to temporary files, they cost the writer `pwrite`s no crash could ever
/// need.
fn pragmas(synchronous: &str) -> [String; 7] {
    [
        format!("PRAGMA page_size = {PAGE_SIZE}"),
        "PRAGMA journal_mode = WAL".into(),
        "PRAGMA foreign_keys = ON".into(),
        "PRAGMA temp_store = MEMORY".into(),
        format!("PRAGMA synchronous = {synchronous}"),
        "PRAGMA busy_timeout = 10000".into(),
        format!("PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}"),
    ]
}

/// How a `sqlite:` URL's `mode` asks the file to be opened: `ro`, `rw`, or `rwc` (which
/// creates it); `rw` when the URL does not say, as sqlx does.
pub(super) fn open_mode(url: &str) -> connection_thread::OpenMode {
    use connection_thread::OpenMode;
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mode = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("mode="))
        .unwrap_or("rw");
    match mode {
        "ro" => OpenMode::ReadOnly,
        "rwc" => OpenMode::Create,
        _ => OpenMode::ReadWrite,
    }
}

pub(super) fn url_with_create(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}
