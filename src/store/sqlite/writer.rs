//! SQLite's one writer: the queue that hands the writer connection to one transaction at a
//! time (commands before background work), group commit, and the switch of `synchronous`
//! between a command's `FULL` and background work's `NORMAL`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;

use super::connection_thread::{BatchResult, ConnectionThread, SqlStatement, no_transaction};
use crate::store::Priority;
use crate::store::batch::{self, Batch};
use crate::store::checkpointer::{CHECKPOINT_EVERY, WAL_AUTOCHECKPOINT_BACKSTOP};

/// The SQLite writer queue, and who holds it (for the log when someone waits too long).
///
/// Commands (someone is waiting for the answer) go before background work (the effects
/// worker's claims, outcomes and heartbeats): a background writer steps aside while any
/// command is waiting, so a busy queue costs a command at most one background transaction.
///
/// The queue owns the writer connection itself, outside the pool: a pooled connection
/// is pinged when taken and again when given back, two more hand-offs to its thread for
/// every transaction, and only one writer runs at a time anyway.
pub(in crate::store) struct WriterLock {
    queue: Arc<tokio::sync::Mutex<Writers>>,
    commands_waiting: Arc<AtomicUsize>,
    no_commands_waiting: tokio::sync::Notify,
    holder: std::sync::Mutex<Option<&'static std::panic::Location<'static>>>,
}

/// SQLite's writer connection. What a command commits (the incident, its timeline, the
/// effects it owes) is fsynced before the reply (`synchronous = FULL`). Background
/// bookkeeping (claims, outcomes, heartbeats) commits with `NORMAL`: in WAL mode the next
/// command's fsync makes it durable too, and a power cut before that only means an effect
/// runs again, which effects are built for. Both run on the one connection, which switches
/// `synchronous` in the opening of the transaction that needs the other level: two
/// connections would each throw away their page cache whenever the other had written.
///
/// **Group commit.** A command that finishes while other commands wait for the writer does
/// not commit alone: it leaves its transaction open as a [`Group`], hands the writer on, and
/// waits. The commands behind it join the group, each inside a savepoint (so one that fails
/// rolls back only its own writes), and the last of them, finding nobody waiting, commits
/// for all: one fsync for the lot, and nobody hears "done" before that fsync.
///
/// **Checkpoints off the writer.** The writer does not copy the WAL back into the database
/// inside a commit (SQLite's automatic checkpoint, which makes whichever commit crosses the
/// threshold wait for it, fsyncs included); every [`CHECKPOINT_EVERY`] commits it wakes a
/// [`checkpointer`](crate::store::checkpointer) that does most of it on a connection of its own, beside the writer.
pub(in crate::store) struct Writers {
    pub(in crate::store) conn: ConnectionThread,
    /// The `synchronous` level the connection is known to have (`None`: unknown, so the next
    /// transaction sets it).
    synchronous: Option<Priority>,
    /// Whose transaction (or group member's savepoint) is being written: set before
    /// its opening statement can be sent, cleared once it has ended. Still set when a writer
    /// is taken means its last holder was dropped mid-transaction and its rollback did not
    /// run; the new holder rolls it back first.
    pub(in crate::store) open: Option<Priority>,
    /// Finished command transactions, awaiting their shared commit.
    group: Option<Arc<Group>>,
    /// How many commands wait for the writer (shared with [`WriterLock`]).
    commands_waiting: Arc<AtomicUsize>,
    /// `COMMIT`s of command transactions (each an fsync).
    command_commits: u64,
    /// Commits since the checkpointer was last woken.
    since_checkpoint: u32,
    /// Wakes the [`checkpointer`](crate::store::checkpointer); it stops when this is dropped.
    checkpoint: tokio::sync::mpsc::Sender<()>,
    /// The last `INC-n` this writer handed out, from which a declaration predicts its own
    /// (see `Tx::declaration_number`). Only a guess: another process may have declared
    /// since, and a transaction that took it may have rolled back; the prediction is checked
    /// in the transaction that uses it.
    pub(in crate::store) last_incident_number: Option<i64>,
}

/// Command transactions written and awaiting one shared `COMMIT`; each member waits for its
/// outcome.
pub(in crate::store) struct Group {
    outcome: tokio::sync::watch::Sender<Option<Result<(), Arc<str>>>>,
}

impl Group {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            outcome: tokio::sync::watch::Sender::new(None),
        })
    }

    fn end(&self, outcome: Result<(), Arc<str>>) {
        self.outcome.send_replace(Some(outcome));
    }

    /// Waits for the group's commit (or its failure, which every member reports).
    pub(in crate::store) async fn committed(&self) -> anyhow::Result<()> {
        let mut seen = self.outcome.subscribe();
        let outcome = seen
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("the store closed before a shared commit"))?
            .clone();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(anyhow::anyhow!("{e}")),
            None => unreachable!("waited for an outcome"),
        }
    }
}

/// What ending a transaction came to.
pub(in crate::store) enum Ended {
    /// Committed or rolled back.
    Done,
    /// Written into a group whose commit is still to come.
    InGroup(Arc<Group>),
}

impl Writers {
    pub(super) async fn open(
        url: &str,
        commands_waiting: Arc<AtomicUsize>,
        checkpoint: tokio::sync::mpsc::Sender<()>,
    ) -> anyhow::Result<Self> {
        let path =
            crate::config::sqlite_path(url).context("the SQLite writer needs a database file")?;
        let mut setup: Vec<SqlStatement> = super::pragmas("FULL")
            .iter()
            .map(|sql| SqlStatement::plain(sql))
            .collect();
        setup.push(SqlStatement::plain(&format!(
            "PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_BACKSTOP}"
        )));
        let conn = ConnectionThread::open(path, super::open_mode(url), setup).await?;
        Ok(Self {
            conn,
            synchronous: Some(Priority::Command),
            open: None,
            group: None,
            commands_waiting,
            command_commits: 0,
            since_checkpoint: 0,
            checkpoint,
            last_incident_number: None,
        })
    }

    /// Counts a commit, and wakes the checkpointer every [`CHECKPOINT_EVERY`] of them.
    fn committed(&mut self, priority: Priority) {
        self.command_commits += u64::from(priority == Priority::Command);
        self.since_checkpoint += 1;
        if self.since_checkpoint >= CHECKPOINT_EVERY {
            self.since_checkpoint = 0;
            // Full means a wake-up is pending already.
            let _ = self.checkpoint.try_send(());
        }
    }

    /// Readies the connection for `priority` for a transaction, after rolling back whatever
    /// an earlier holder left open, and says how the transaction opens: `BEGIN IMMEDIATE`,
    /// or a savepoint for a command joining a group. The opening goes with the
    /// transaction's first statement (see [`crate::store::batch`]). Background work commits a
    /// waiting group first: it writes on the other connection.
    ///
    /// Every step is safe to cancel (a request whose client went away, a worker task
    /// aborted): `open` is set *before* the opening can be sent and cleared only after a
    /// rollback has run (or when nothing was sent), so a holder cancelled anywhere in
    /// between leaves the mark for the next one.
    pub(in crate::store) async fn begin(&mut self, priority: Priority) -> &'static [&'static str] {
        self.settle().await;
        if priority == Priority::Background {
            self.commit_group().await;
        }
        self.open = Some(priority);
        if self.group.is_some() {
            return batch::SAVEPOINT;
        }
        if self.synchronous == Some(priority) {
            return batch::BEGIN;
        }
        // Known again once a transaction that sent this opening has ended well.
        self.synchronous = None;
        match priority {
            Priority::Command => batch::BEGIN_FULL,
            Priority::Background => batch::BEGIN_NORMAL,
        }
    }

    /// Rolls back whatever an earlier holder left open.
    pub(in crate::store) async fn settle(&mut self) {
        if let Some(left_open) = self.open {
            self.roll_back(left_open).await;
        }
    }

    /// Rolls back what an earlier holder left open: its transaction, or only its savepoint
    /// when it was a group member.
    async fn roll_back(&mut self, priority: Priority) {
        if priority == Priority::Command && self.group.is_some() {
            if let Err(e) = self.roll_back_member().await {
                tracing::warn!(error = %format!("{e:#}"), "rolling back what an earlier writer left open");
            }
            return;
        }
        if let Err(e) = self.conn.execute("ROLLBACK").await {
            tracing::debug!(error = %e, "rolling back what an earlier writer left open");
        }
        self.open = None;
    }

    /// Undoes one group member's writes. If its savepoint is gone, so is the group's
    /// transaction (SQLite rolls back the whole transaction on some errors): every member
    /// is told the commit failed.
    async fn roll_back_member(&mut self) -> anyhow::Result<()> {
        let undone = self
            .conn
            .execute("ROLLBACK TO fb_member; RELEASE fb_member")
            .await;
        self.open = None;
        if let Err(e) = undone {
            if let Some(group) = self.group.take() {
                let _ = self.conn.execute("ROLLBACK").await;
                group.end(Err(
                    "the shared transaction was lost; nothing was saved".into()
                ));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Commits the waiting group, if any, and tells its members.
    pub(in crate::store) async fn commit_group(&mut self) {
        let Some(group) = self.group.take() else {
            return;
        };
        let outcome = self.conn.execute("COMMIT").await;
        match outcome {
            Ok(_) => self.committed(Priority::Command),
            Err(_) => {
                let _ = self.conn.execute("ROLLBACK").await;
            }
        }
        group.end(
            outcome
                .map(drop)
                .map_err(|e| format!("committing: {e}").into()),
        );
    }

    /// Ends the open transaction, sending what it still holds. A command finishing while
    /// other commands wait leaves its writes to a group commit instead, and so does every
    /// group member but the last (`InGroup`: wait for [`Group::committed`]). A failed
    /// statement leaves the transaction marked open, so the next holder rolls it back. A
    /// transaction that never sent its opening has nothing to end.
    pub(in crate::store) async fn finish(
        &mut self,
        end: End,
        held: Batch,
    ) -> anyhow::Result<(Ended, BatchResult)> {
        let Some(priority) = self.open else {
            return Ok((Ended::Done, BatchResult::default()));
        };
        let mut rows = BatchResult::default();
        let member = priority == Priority::Command && self.group.is_some();
        if held.opens() && (matches!(end, End::Rollback) || held.is_only_begin()) {
            self.open = None;
        } else {
            match (end, member) {
                (End::Rollback, true) => self.roll_back_member().await?,
                (End::Rollback, false) => match self.conn.execute("ROLLBACK").await {
                    // Its opening failed (another process kept the lock): nothing to undo.
                    Err(e) if !no_transaction(&e) => return Err(e),
                    _ => {}
                },
                (End::Commit, true) => rows = self.send(held, Some("RELEASE fb_member")).await?,
                (End::Commit, false) if priority == Priority::Command && self.others_waiting() => {
                    rows = self.send(held, None).await?;
                    self.group = Some(Group::new());
                }
                (End::Commit, false) => {
                    rows = self.send(held, Some("COMMIT")).await?;
                    self.committed(priority);
                }
            }
            self.open = None;
            // The opening was sent, with its `synchronous` if it had one, and all went well.
            self.synchronous = Some(priority);
        }
        let Some(group) = self.group.clone().filter(|_| priority == Priority::Command) else {
            return Ok((Ended::Done, rows));
        };
        if !self.others_waiting() {
            self.commit_group().await;
        }
        Ok((Ended::InGroup(group), rows))
    }

    /// Sends what is held, then `last`, as one hand-off: what it returned.
    async fn send(
        &mut self,
        mut held: Batch,
        last: Option<&'static str>,
    ) -> anyhow::Result<BatchResult> {
        if let Some(last) = last {
            held.push_plain(last);
        }
        if held.is_empty() {
            return Ok(BatchResult::default());
        }
        self.conn.batch(held.take()).await
    }

    fn others_waiting(&self) -> bool {
        self.commands_waiting.load(Ordering::SeqCst) > 0
    }

    /// Marks a transaction that never sent its opening as ended.
    pub(in crate::store) fn forget_unbegun(&mut self) {
        self.open = None;
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) enum End {
    Commit,
    Rollback,
}

pub(in crate::store) type WritersGuard = tokio::sync::OwnedMutexGuard<Writers>;

/// Hands the writer on and waits for `group`'s commit. The commit is left to a task that
/// queues for the writer behind the commands waiting now (they join the group; the last
/// of them usually commits it first), so the group is committed even if every member
/// stops waiting.
pub(in crate::store) async fn await_group(
    guard: WritersGuard,
    group: Arc<Group>,
) -> anyhow::Result<()> {
    if group.outcome.borrow().is_none() {
        let queue = Arc::clone(tokio::sync::OwnedMutexGuard::mutex(&guard));
        let pending = Arc::clone(&group);
        tokio::spawn(async move {
            let mut writers = queue.lock_owned().await;
            if writers
                .group
                .as_ref()
                .is_some_and(|g| Arc::ptr_eq(g, &pending))
            {
                writers.settle().await;
                writers.commit_group().await;
            }
        });
    }
    drop(guard);
    group.committed().await
}

/// A writer waiting this long is logged with the holder's location: a stuck writer stops
/// every command, and the location is what you need to find it.
const WRITER_WAIT_WARNING: Duration = Duration::from_secs(2);

/// One command waiting for the writer; background writers step aside while any exist.
struct CommandWaiting<'a>(&'a WriterLock);

impl<'a> CommandWaiting<'a> {
    fn new(lock: &'a WriterLock) -> Self {
        lock.commands_waiting.fetch_add(1, Ordering::SeqCst);
        Self(lock)
    }
}

impl Drop for CommandWaiting<'_> {
    fn drop(&mut self) {
        if self.0.commands_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.no_commands_waiting.notify_waiters();
        }
    }
}

impl WriterLock {
    pub(super) fn new(writers: Writers, commands_waiting: Arc<AtomicUsize>) -> Self {
        Self {
            queue: Arc::new(tokio::sync::Mutex::new(writers)),
            commands_waiting,
            no_commands_waiting: Default::default(),
            holder: Default::default(),
        }
    }

    pub(in crate::store) async fn acquire(
        &self,
        caller: &'static std::panic::Location<'static>,
        priority: Priority,
    ) -> WritersGuard {
        use Ordering::SeqCst;
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

    /// How many commands wait for the writer now.
    #[cfg(test)]
    pub(in crate::store) fn waiting(&self) -> usize {
        self.commands_waiting.load(Ordering::SeqCst)
    }

    /// Jobs handed to the writer connection's thread so far.
    #[cfg(test)]
    pub(in crate::store) async fn handed(&self) -> u64 {
        self.queue.lock().await.conn.handed()
    }

    /// `COMMIT`s sent on the command connection so far.
    #[cfg(test)]
    pub(in crate::store) async fn command_commits(&self) -> u64 {
        self.queue.lock().await.command_commits
    }

    async fn wait_logged(&self, caller: &'static std::panic::Location<'static>) -> WritersGuard {
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
