//! Statements a SQLite transaction holds back and sends together. Every statement sqlx runs
//! on SQLite is a hand-off to the connection's own thread and back (two context switches);
//! `BEGIN`, and the inserts whose results nobody reads, wait here and go with the next
//! statement that needs an answer, or with `COMMIT`, as one multi-statement query. sqlx's
//! SQLite driver binds `$N` across every statement of a query to the one argument list, so
//! each held statement's placeholders are renumbered past the ones before it.

use anyhow::anyhow;
use sqlx::any::AnyArguments;
use sqlx::{Any, Execute};

/// The held statements, in order, with their arguments.
#[derive(Default)]
pub(super) struct Batch {
    sql: String,
    args: AnyArguments,
    /// It starts with the transaction's opening statement: nothing of the transaction was
    /// sent yet.
    opens: bool,
}

/// How a transaction of its own opens.
pub(super) const BEGIN: &str = "BEGIN IMMEDIATE;\n";
/// How a command's transaction opens after background work (see [`super::sqlite::Writers`]).
pub(super) const BEGIN_FULL: &str = "PRAGMA synchronous = FULL;\nBEGIN IMMEDIATE;\n";
/// How background work's transaction opens after a command's.
pub(super) const BEGIN_NORMAL: &str = "PRAGMA synchronous = NORMAL;\nBEGIN IMMEDIATE;\n";
/// How a transaction joining a group awaiting its shared commit opens (see
/// [`super::sqlite::Writers`], group commit).
pub(super) const SAVEPOINT: &str = "SAVEPOINT fb_member;\n";

impl Batch {
    /// A batch opening with `opening` ([`BEGIN`], [`BEGIN_FULL`], [`BEGIN_NORMAL`] or
    /// [`SAVEPOINT`]).
    pub(super) fn opening(opening: &'static str) -> Self {
        Self {
            sql: opening.into(),
            args: AnyArguments::default(),
            opens: true,
        }
    }

    /// A batch opening with `BEGIN IMMEDIATE`.
    #[cfg(test)]
    pub(super) fn begin() -> Self {
        Self::opening(BEGIN)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    /// Nothing of the transaction has been sent yet, not even its `BEGIN`.
    pub(super) fn opens(&self) -> bool {
        self.opens
    }

    /// Only the opening statement: a transaction that has done nothing.
    pub(super) fn is_only_begin(&self) -> bool {
        self.opens && [BEGIN, BEGIN_FULL, BEGIN_NORMAL, SAVEPOINT].contains(&self.sql.as_str())
    }

    /// Holds `query` back, after what is held already.
    pub(super) fn push<'q>(&mut self, mut query: impl Execute<'q, Any>) -> anyhow::Result<()> {
        let args = query
            .take_arguments()
            .map_err(|e| anyhow!("encoding a statement's arguments: {e}"))?
            .unwrap_or_default();
        let offset = self.args.values.0.len();
        self.sql.push_str(&renumber(query.sql().as_str(), offset));
        self.sql.push_str(";\n");
        self.args.values.0.extend(args.values.0);
        Ok(())
    }

    /// The held statements followed by `last`, as one query's text and arguments, emptying
    /// the batch.
    pub(super) fn take_with<'q>(
        &mut self,
        last: impl Execute<'q, Any>,
    ) -> anyhow::Result<(String, AnyArguments)> {
        self.push(last)?;
        Ok(self.take())
    }

    /// The held statements as one query's text and arguments, emptying the batch.
    pub(super) fn take(&mut self) -> (String, AnyArguments) {
        let Batch { sql, args, .. } = std::mem::take(self);
        (sql, args)
    }
}

/// `sql` with every `$N` placeholder outside quotes moved up by `offset`.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                match digits.parse::<usize>() {
                    Ok(n) => out.push_str(&(n + offset).to_string()),
                    Err(_) => out.push_str(&digits),
                }
            }
            (None, _) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_move_past_earlier_statements_quotes_untouched() {
        assert_eq!(
            renumber("INSERT INTO t (a, b) VALUES ($1, $12)", 3),
            "INSERT INTO t (a, b) VALUES ($4, $15)"
        );
        assert_eq!(
            renumber("SELECT '$1', \"$2\", $2 WHERE x = $1", 10),
            "SELECT '$1', \"$2\", $12 WHERE x = $11"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumber("SELECT $ x", 5), "SELECT $ x");
    }

    #[test]
    fn a_batch_joins_statements_and_their_arguments_in_order() {
        let mut batch = Batch::begin();
        batch
            .push(
                sqlx::query::<Any>("INSERT INTO a VALUES ($1, $2)")
                    .bind(1_i64)
                    .bind("x"),
            )
            .unwrap();
        let (sql, args) = batch
            .take_with(sqlx::query::<Any>("UPDATE b SET v = $1").bind(2_i64))
            .unwrap();
        assert_eq!(
            sql,
            "BEGIN IMMEDIATE;\nINSERT INTO a VALUES ($1, $2);\nUPDATE b SET v = $3;\n"
        );
        assert_eq!(args.values.0.len(), 3);
        assert!(batch.is_empty());
    }
}
