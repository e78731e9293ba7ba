//! A write transaction on either backend: a pooled sqlx transaction on Postgres, the
//! writer queue's one connection on SQLite (with its held statements, see [`super::batch`]).

use anyhow::Context;
use futures::TryStreamExt;
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, AnyConnection, Execute, Transaction};

use super::sqlite::{End, Ended, WritersGuard};
use super::{Backend, batch};

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
///
/// On SQLite, `BEGIN` and the statements sent with [`Tx::hold`] wait in `held` and go with
/// the next statement that needs an answer, or with `COMMIT` (see [`batch`]). Statements
/// therefore reach the connection through [`Tx::conn`], [`Tx::execute`] or [`Tx::fetch`],
/// which send what is held first.
pub struct Tx {
    pub(super) inner: TxConn,
    pub(super) backend: Backend,
    pub(super) held: batch::Batch,
}

/// The connection a [`Tx`] writes on; dereferences to it for the queries.
pub(super) enum TxConn {
    /// Postgres: a pooled connection in a sqlx transaction (`None` once it has ended).
    Pooled(Option<Transaction<'static, Any>>),
    /// SQLite: the writer queue's connection, held until the transaction
    /// ends (`None` only once it has been handed to the rollback of a dropped `Tx`).
    Writer { writers: Option<WritersGuard> },
}

impl std::ops::Deref for TxConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            TxConn::Pooled(tx) => tx.as_ref().expect("a live transaction"),
            TxConn::Writer { writers } => {
                &writers
                    .as_ref()
                    .expect("a live transaction holds the writer")
                    .conn
            }
        }
    }
}

impl std::ops::DerefMut for TxConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            TxConn::Pooled(tx) => tx.as_mut().expect("a live transaction"),
            TxConn::Writer { writers } => {
                &mut writers
                    .as_mut()
                    .expect("a live transaction holds the writer")
                    .conn
            }
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
        let rows = match self.backend {
            Backend::Sqlite => {
                self.held.push(query)?;
                self.finish(End::Commit).await.context("committing")?
            }
            Backend::Postgres => {
                let rows = query.fetch_all(&mut *self.inner).await?;
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
                    (Ended::Done, rows) => Ok(rows),
                    (Ended::InGroup(group), rows) => {
                        let guard = writers.take().expect("checked above");
                        super::sqlite::await_group(guard, group).await?;
                        Ok(rows)
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

    /// The connection, for a statement whose answer is needed now; what is held goes first.
    pub(super) async fn conn(&mut self) -> anyhow::Result<&mut AnyConnection> {
        if !self.held.is_empty() {
            let (sql, args) = self.held.take();
            sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(&mut *self.inner)
    }

    /// Runs `query` whose answer nobody reads: on SQLite it is held back and goes with the
    /// next statement (an error in it surfaces there, failing that call or the commit).
    pub(super) async fn hold(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => self.held.push(query),
            Backend::Postgres => {
                query.execute(&mut *self.inner).await?;
                Ok(())
            }
        }
    }

    /// Runs what is held and then `query`, in one hand-off: `query`'s result.
    pub(super) async fn execute(
        &mut self,
        query: sqlx::query::Query<'_, Any, AnyArguments>,
    ) -> anyhow::Result<AnyQueryResult> {
        if self.held.is_empty() {
            return Ok(query.execute(&mut *self.inner).await?);
        }
        let persistent = Execute::persistent(&query);
        let (sql, args) = self.held.take_with(query)?;
        let mut last = None;
        // sqlx 0.9 marks `fetch_many` deprecated because only SQLite runs several statements
        // in one prepared query; that is exactly what a batch is for, and only on SQLite.
        #[allow(deprecated)]
        let mut results = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .persistent(persistent)
            .fetch_many(&mut *self.inner);
        while let Some(step) = results.try_next().await? {
            if let sqlx::Either::Left(result) = step {
                last = Some(result);
            }
        }
        last.context("a batch ran no statement")
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
        let rows = if self.held.is_empty() {
            query.fetch_all(&mut *self.inner).await?
        } else {
            let persistent = Execute::persistent(&query);
            let (sql, args) = self.held.take_with(query)?;
            sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                .persistent(persistent)
                .fetch_all(&mut *self.inner)
                .await?
        };
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
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
