//! A write transaction on either backend: a pooled sqlx transaction on Postgres, the
//! writer queue's one connection on SQLite (with its held statements, see [`super::batch`]).

use anyhow::Context;
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, AnyConnection, Transaction};

use super::sqlite::{End, Ended, WritersGuard};
use super::{Backend, batch};

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
///
/// On SQLite, `BEGIN` and the statements sent with [`Tx::hold`] wait in `held` and go with
/// the next statement that needs an answer, or with `COMMIT` (see [`batch`]). Statements
/// therefore reach the connection through [`Tx::execute`] or [`Tx::fetch`] (and its
/// `_one` and `_optional` forms), which send what is held first, in the same hand-off.
pub struct Tx {
    pub(super) inner: TxConn,
    pub(super) backend: Backend,
    pub(super) held: batch::Batch,
}

/// The connection a [`Tx`] writes on.
pub(super) enum TxConn {
    /// Postgres: a pooled connection in a sqlx transaction (`None` once it has ended).
    Pooled(Option<Transaction<'static, Any>>),
    /// SQLite: the writer queue's connection, held until the transaction
    /// ends (`None` only once it has been handed to the rollback of a dropped `Tx`).
    Writer { writers: Option<WritersGuard> },
}

/// Where a statement goes: Postgres's pooled connection, or SQLite's writer with what the
/// transaction holds.
enum Target<'a> {
    Pooled(&'a mut AnyConnection),
    Writer(&'a mut super::sqlite::Writers),
}

impl TxConn {
    fn target(&mut self) -> Target<'_> {
        match self {
            TxConn::Pooled(tx) => Target::Pooled(tx.as_mut().expect("a live transaction")),
            TxConn::Writer { writers } => Target::Writer(
                writers
                    .as_mut()
                    .expect("a live transaction holds the writer"),
            ),
        }
    }
}

impl Drop for TxConn {
    /// A SQLite transaction dropped unfinished (an error, a cancelled request) is rolled back
    /// by a task that holds the writer until it is done; if no runtime is left to run it,
    /// the next holder rolls back first. (sqlx rolls back a dropped Postgres transaction.)
    fn drop(&mut self) {
        let TxConn::Writer { writers } = self else {
            return;
        };
        let Some(mut writers) = writers.take().filter(|w| w.open.is_some()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = writers.finish(End::Rollback, batch::Batch::default()).await {
                    tracing::warn!(error = %format!("{e:#}"), "rolling back an abandoned write failed");
                }
            });
        }
    }
}

impl Drop for Tx {
    /// A SQLite transaction dropped before it sent anything has nothing to roll back.
    fn drop(&mut self) {
        if let (
            true,
            TxConn::Writer {
                writers: Some(w), ..
            },
        ) = (self.held.opens(), &mut self.inner)
        {
            w.forget_unbegun();
        }
    }
}

impl Tx {
    pub async fn commit(self) -> anyhow::Result<()> {
        self.finish(End::Commit).await.context("committing")?;
        Ok(())
    }

    pub async fn rollback(self) -> anyhow::Result<()> {
        self.finish(End::Rollback).await.context("rolling back")?;
        Ok(())
    }

    /// Runs `query` last and commits: `query`'s rows. On SQLite the query goes with the
    /// `COMMIT` (and whatever is held), in one hand-off rather than two.
    pub async fn commit_fetching<T>(
        mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        let rows = match self.inner.target() {
            Target::Writer(_) => {
                self.held.push(query)?;
                self.finish(End::Commit).await.context("committing")?
            }
            Target::Pooled(conn) => {
                let rows = query.fetch_all(conn).await?;
                self.finish(End::Commit).await.context("committing")?;
                rows
            }
        };
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }

    /// Ends the transaction: on SQLite, the rows its last hand-off returned.
    pub(super) async fn finish(mut self, end: End) -> anyhow::Result<Vec<AnyRow>> {
        let held = std::mem::take(&mut self.held);
        match &mut self.inner {
            TxConn::Writer { writers } => {
                let Some(w) = writers.as_mut() else {
                    return Ok(Vec::new());
                };
                match w.finish(end, held).await? {
                    (Ended::Done, sent) => Ok(sent.rows),
                    (Ended::InGroup(group), sent) => {
                        let guard = writers.take().expect("checked above");
                        super::sqlite::await_group(guard, group).await?;
                        Ok(sent.rows)
                    }
                }
            }
            TxConn::Pooled(tx) => {
                match (tx.take(), end) {
                    (Some(tx), End::Commit) => tx.commit().await?,
                    (Some(tx), End::Rollback) => tx.rollback().await?,
                    (None, _) => {}
                }
                Ok(Vec::new())
            }
        }
    }

    /// Runs `query` whose answer nobody reads: on SQLite it is held back and goes with the
    /// next statement (an error in it surfaces there, failing that call or the commit).
    pub(super) async fn hold(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<()> {
        match self.inner.target() {
            Target::Writer(_) => self.held.push(query),
            Target::Pooled(conn) => {
                query.execute(conn).await?;
                Ok(())
            }
        }
    }

    /// Runs what is held and then `query`, in one hand-off: `query`'s result.
    pub(super) async fn execute(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<AnyQueryResult> {
        match self.inner.target() {
            Target::Pooled(conn) => Ok(query.execute(conn).await?),
            Target::Writer(writer) => {
                let statements = self.held.take_with(query)?;
                Ok(writer.conn.batch(statements).await?.query_result())
            }
        }
    }

    /// Runs what is held and then `query`, in one hand-off: the rows `query` returns (the
    /// held statements return none).
    pub(super) async fn fetch<T>(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        let rows = match self.inner.target() {
            Target::Pooled(conn) => query.fetch_all(conn).await?,
            Target::Writer(writer) => {
                let statements = self.held.take_with(query)?;
                writer.conn.batch(statements).await?.rows
            }
        };
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }

    /// [`Tx::fetch`] for a query returning at most one row.
    pub(super) async fn fetch_optional<T>(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<Option<T>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        Ok(self.fetch(query).await?.into_iter().next())
    }

    /// [`Tx::fetch`] for a query returning exactly one row.
    pub(super) async fn fetch_one<T>(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<T>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        self.fetch_optional(query)
            .await?
            .context("a query that returns one row returned none")
    }

    /// SQLite: the writer connection's own state (`None` on Postgres).
    pub(super) fn writer(&mut self) -> Option<&mut super::sqlite::Writers> {
        match &mut self.inner {
            TxConn::Writer { writers } => writers.as_deref_mut(),
            TxConn::Pooled(_) => None,
        }
    }

    /// `FOR UPDATE` on Postgres; SQLite already holds the database write lock.
    pub(super) fn lock_clause(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}
