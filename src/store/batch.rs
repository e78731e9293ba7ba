//! Statements a SQLite transaction holds back and sends together. A hand-off to the writer's
//! thread costs two thread wake-ups; `BEGIN`, and the inserts whose results nobody reads,
//! wait here and go with the next statement that needs an answer, or with `COMMIT`, as one
//! batch (see [`super::sqlite::connection_thread`]).

use anyhow::anyhow;
use sqlx::{Any, Execute};

use super::sqlite::SqlStatement;

/// The held statements, in order, with their arguments.
#[derive(Default)]
pub(super) struct Batch {
    statements: Vec<SqlStatement>,
    /// It starts with the transaction's opening statement: nothing of the transaction was
    /// sent yet.
    opens: bool,
}

/// How a transaction of its own opens.
pub(super) const BEGIN: &[&str] = &["BEGIN IMMEDIATE"];
/// How a command's transaction opens after background work (see [`super::sqlite::Writers`]).
pub(super) const BEGIN_FULL: &[&str] = &["PRAGMA synchronous = FULL", "BEGIN IMMEDIATE"];
/// How background work's transaction opens after a command's.
pub(super) const BEGIN_NORMAL: &[&str] = &["PRAGMA synchronous = NORMAL", "BEGIN IMMEDIATE"];
/// How a transaction joining a group awaiting its shared commit opens (see
/// [`super::sqlite::Writers`], group commit).
pub(super) const SAVEPOINT: &[&str] = &["SAVEPOINT fb_member"];

impl Batch {
    /// A batch opening with `opening` ([`BEGIN`], [`BEGIN_FULL`], [`BEGIN_NORMAL`] or
    /// [`SAVEPOINT`]).
    pub(super) fn opening(opening: &'static [&'static str]) -> Self {
        Self {
            statements: opening.iter().map(|sql| SqlStatement::plain(sql)).collect(),
            opens: true,
        }
    }

    /// A batch opening with `BEGIN IMMEDIATE`.
    #[cfg(test)]
    pub(super) fn begin() -> Self {
        Self::opening(BEGIN)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Nothing of the transaction has been sent yet, not even its `BEGIN`.
    pub(super) fn opens(&self) -> bool {
        self.opens
    }

    /// Only the opening statement: a transaction that has done nothing.
    pub(super) fn is_only_begin(&self) -> bool {
        self.opens
            && [BEGIN, BEGIN_FULL, BEGIN_NORMAL, SAVEPOINT]
                .iter()
                .any(|opening| {
                    opening.len() == self.statements.len()
                        && opening
                            .iter()
                            .zip(&self.statements)
                            .all(|(a, b)| *a == b.sql)
                })
    }

    /// Holds `query` back, after what is held already.
    pub(super) fn push<'q>(&mut self, mut query: impl Execute<'q, Any>) -> anyhow::Result<()> {
        let args = query
            .take_arguments()
            .map_err(|e| anyhow!("encoding a statement's arguments: {e}"))?
            .unwrap_or_default();
        self.statements.push(SqlStatement {
            sql: query.sql().as_str().to_string(),
            args: args.values.0,
        });
        Ok(())
    }

    /// Holds plain SQL (no arguments) back, after what is held already.
    pub(super) fn push_plain(&mut self, sql: &str) {
        self.statements.push(SqlStatement::plain(sql));
    }

    /// The held statements followed by `last`, emptying the batch.
    pub(super) fn take_with<'q>(
        &mut self,
        last: impl Execute<'q, Any>,
    ) -> anyhow::Result<Vec<SqlStatement>> {
        self.push(last)?;
        Ok(self.take())
    }

    /// The held statements, emptying the batch.
    pub(super) fn take(&mut self) -> Vec<SqlStatement> {
        std::mem::take(self).statements
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_statements_and_their_arguments_in_order() {
        let mut batch = Batch::begin();
        batch
            .push(
                sqlx::query::<Any>("INSERT INTO a VALUES ($1, $2)")
                    .bind(1_i64)
                    .bind("x"),
            )
            .unwrap();
        let statements = batch
            .take_with(sqlx::query::<Any>("UPDATE b SET v = $1").bind(2_i64))
            .unwrap();
        let sql: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "BEGIN IMMEDIATE",
                "INSERT INTO a VALUES ($1, $2)",
                "UPDATE b SET v = $1"
            ]
        );
        let args: Vec<usize> = statements.iter().map(|s| s.args.len()).collect();
        assert_eq!(args, [0, 2, 1]);
        assert!(batch.is_empty());
    }

    #[test]
    fn only_an_opening_is_a_transaction_that_did_nothing() {
        assert!(Batch::opening(BEGIN_FULL).is_only_begin());
        assert!(Batch::opening(SAVEPOINT).is_only_begin());
        let mut batch = Batch::opening(BEGIN);
        batch.push_plain("DELETE FROM t");
        assert!(!batch.is_only_begin());
        assert!(!Batch::default().is_only_begin());
    }
}
