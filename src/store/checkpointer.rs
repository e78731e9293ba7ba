//! SQLite's WAL checkpoints, off the commit path: the writer wakes [`run`] every
//! [`CHECKPOINT_EVERY`] commits instead of letting SQLite copy the WAL back inside whichever
//! commit crosses its threshold (a command's, fsyncs included).

use sqlx::{AnyConnection, Connection, Executor};

use super::Priority;
use super::sqlite::{Sqlite, connection};

/// Commits between two wake-ups of the checkpointer. A declaration writes about 40 pages
/// to the WAL (the incident, its timeline, its effects and their indexes) and the worker's
/// bookkeeping a few, so under a burst this is roughly SQLite's default of 1000 pages.
pub(super) const CHECKPOINT_EVERY: u32 = 48;

/// SQLite's own checkpoint inside a commit, kept as a backstop should the checkpointer fall
/// far behind, and for processes that never commit often enough to wake it (a CLI call):
/// pages, four times SQLite's default (16 MB with 4 KiB pages).
pub(super) const WAL_AUTOCHECKPOINT_BACKSTOP: u32 = 4_000;

/// Copies the WAL back into the database when the writer asks, on a connection of its own
/// (opened at the first request), in two passes. The first runs beside the writer and does
/// most of the copying (and its fsyncs) while commands go on writing. It cannot finish
/// while they append, and SQLite starts the WAL over only after a checkpoint that
/// finished, so the second pass holds the writer queue at background priority (commands
/// still go first) and copies the few pages written meanwhile: the next write then starts
/// the WAL from its beginning. Both passes are `PASSIVE`: a reader in the way makes them do
/// less, never wait. Ends when the store is dropped.
pub(super) async fn run(
    url: String,
    sqlite: std::sync::Weak<Sqlite>,
    mut wake: tokio::sync::mpsc::Receiver<()>,
) {
    let mut conn: Option<AnyConnection> = None;
    while wake.recv().await.is_some() {
        if conn.is_none() {
            match connection(&url, "NORMAL").await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "opening the WAL checkpointer's connection");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        checkpoint(c).await;
        let Some(sqlite) = sqlite.upgrade() else {
            break;
        };
        let caller = std::panic::Location::caller();
        let mut writers = sqlite.writer.acquire(caller, Priority::Background).await;
        writers.settle().await;
        writers.commit_group().await;
        checkpoint(c).await;
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

async fn checkpoint(conn: &mut AnyConnection) {
    if let Err(e) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
        tracing::warn!(error = %e, "checkpointing the SQLite WAL");
    }
}
