//! SQLite's writer connection on a thread of its own, running a whole batch of statements
//! per hand-off.
//!
//! sqlx's SQLite driver also gives each connection a thread, but it sends every statement
//! there and every statement's result back as a message of its own, each of which can wake
//! the waiting task: a declaration's ten statements cost about as many thread wake-ups, and
//! on a small virtual machine the wake-ups, not SQLite, were most of a declaration's CPU
//! (see the README's Benchmarks, issue 13). Here a batch is one job: the thread prepares
//! (from its statement cache), binds and steps every statement, and answers once.
//!
//! The statements are the same sqlx queries the rest of the store builds (`$N`
//! placeholders, [`AnyArguments`](sqlx::any::AnyArguments)), and the rows come back as
//! [`AnyRow`]s built the way sqlx's own SQLite driver builds them (each value typed by what
//! SQLite stored), so every `FromRow` the store decodes works unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use anyhow::{Context, anyhow};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{OpenFlags, Statement};
use sqlx_core::any::{
    AnyColumn, AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue, AnyValueKind,
};
use sqlx_core::ext::ustr::UStr;

/// One statement of a batch: its SQL (`$N` placeholders, numbered within the statement)
/// and its arguments.
#[derive(Debug, Clone)]
pub(in crate::store) struct SqlStatement {
    pub sql: String,
    pub args: Vec<AnyValueKind>,
}

impl SqlStatement {
    /// A statement without arguments.
    pub fn plain(sql: &str) -> Self {
        Self {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }
}

/// What a batch returned: the rows of every statement that returns rows, in order, and
/// how many rows its last statement changed.
#[derive(Default)]
pub(in crate::store) struct BatchResult {
    pub rows: Vec<AnyRow>,
    pub rows_affected: u64,
}

impl BatchResult {
    pub fn query_result(&self) -> AnyQueryResult {
        AnyQueryResult {
            rows_affected: self.rows_affected,
            last_insert_id: None,
        }
    }
}

type Job = Box<dyn FnOnce(&mut rusqlite::Connection) + Send>;

/// How the file is opened (a `sqlite:` URL's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum OpenMode {
    ReadOnly,
    ReadWrite,
    /// Read and write, creating the file if it does not exist.
    Create,
}

impl OpenMode {
    fn flags(self) -> OpenFlags {
        let access = match self {
            OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
            OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            OpenMode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        };
        access | OpenFlags::SQLITE_OPEN_NO_MUTEX
    }
}

/// A connection on its own thread. Dropping it ends the thread once its queued jobs have
/// run.
pub(in crate::store) struct ConnectionThread {
    jobs: mpsc::Sender<Job>,
    /// Jobs handed to the thread so far: each is a hand-off and an answer.
    handed: AtomicU64,
}

/// Prepared statements kept per connection: a batch's statements, the claims' and the
/// outcomes' (SQLite's default of 16 would prepare the larger batches afresh each time).
const STATEMENT_CACHE: usize = 256;

impl ConnectionThread {
    /// Opens `path` on a new thread, and runs `setup` (pragmas) there first.
    pub async fn open(
        path: PathBuf,
        mode: OpenMode,
        setup: Vec<SqlStatement>,
    ) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = match open(&path, mode, &setup) {
                    Ok(conn) => {
                        let _ = opened_tx.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                for job in queue {
                    // A job that panics (a bug) fails only its own caller, whose answer is
                    // dropped with it; the thread goes on, and whatever transaction the job
                    // left open is rolled back by the writer's next holder.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut conn);
                    }));
                    if ran.is_err() {
                        tracing::error!("a job on the SQLite writer's thread panicked");
                    }
                }
            })
            .context("starting the SQLite writer's thread")?;
        opened
            .await
            .map_err(|_| anyhow!("the SQLite writer's thread ended while opening"))??;
        Ok(Self {
            jobs,
            handed: AtomicU64::new(0),
        })
    }

    /// Runs `job` on the connection's thread. A caller that stops waiting does not stop the
    /// job: it runs to its end, and its answer is dropped.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut rusqlite::Connection) -> R + Send + 'static,
    ) -> anyhow::Result<R> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.handed.fetch_add(1, Ordering::Relaxed);
        self.jobs
            .send(Box::new(move |conn| {
                let _ = answer.send(job(conn));
            }))
            .map_err(|_| anyhow!("the SQLite writer's thread has ended"))?;
        answered
            .await
            .map_err(|_| anyhow!("the SQLite writer's thread ended during a statement"))
    }

    /// Runs `statements` in order, stopping at the first that fails.
    pub async fn batch(&self, statements: Vec<SqlStatement>) -> anyhow::Result<BatchResult> {
        self.run(move |conn| run_batch(conn, &statements)).await?
    }

    /// How many jobs were handed to the thread so far.
    #[cfg(test)]
    pub fn handed(&self) -> u64 {
        self.handed.load(Ordering::Relaxed)
    }

    /// Runs SQL without arguments (one or several statements).
    pub async fn execute(&self, sql: &'static str) -> anyhow::Result<()> {
        self.run(move |conn| conn.execute_batch(sql)).await??;
        Ok(())
    }
}

fn open(
    path: &Path,
    mode: OpenMode,
    setup: &[SqlStatement],
) -> anyhow::Result<rusqlite::Connection> {
    // Through the VFS that writes each commit's WAL frames at once (see `wal_writes`).
    let vfs = super::wal_writes::vfs()?;
    let mut conn = rusqlite::Connection::open_with_flags_and_vfs(path, mode.flags(), vfs).map_err(|e| {
        anyhow!(
            "could not open the SQLite database {}: {e} (does its directory exist, and may this user write there?)",
            path.display()
        )
    })?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    run_batch(&mut conn, setup)
        .with_context(|| format!("setting up the SQLite database {}", path.display()))?;
    Ok(conn)
}

fn run_batch(
    conn: &mut rusqlite::Connection,
    statements: &[SqlStatement],
) -> anyhow::Result<BatchResult> {
    let started = std::time::Instant::now();
    let mut result = BatchResult::default();
    for statement in statements {
        let step_started = std::time::Instant::now();
        run_statement(conn, statement, &mut result)?;
        tracing::trace!(
            statement = %first_words(&statement.sql),
            elapsed_us = step_started.elapsed().as_micros() as u64,
            "ran a statement on the SQLite writer"
        );
    }
    tracing::debug!(
        statements = statements.len(),
        first = %statements.first().map_or("", |s| first_words(&s.sql)),
        rows = result.rows.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "ran a batch on the SQLite writer"
    );
    Ok(result)
}

/// Runs one statement of a batch, adding its rows (and its count of changed rows) to `result`.
fn run_statement(
    conn: &rusqlite::Connection,
    statement: &SqlStatement,
    result: &mut BatchResult,
) -> anyhow::Result<()> {
    let mut prepared = conn
        .prepare_cached(&statement.sql)
        .map_err(|e| statement_error(e, &statement.sql))?;
    bind(&mut prepared, &statement.args)?;
    if prepared.column_count() == 0 {
        result.rows_affected = prepared
            .raw_execute()
            .map_err(|e| statement_error(e, &statement.sql))? as u64;
        return Ok(());
    }
    let columns = Columns::of(&prepared);
    let mut rows = prepared.raw_query();
    while let Some(row) = rows
        .next()
        .map_err(|e| statement_error(e, &statement.sql))?
    {
        result.rows.push(columns.row(row)?);
    }
    drop(rows);
    result.rows_affected = conn.changes();
    Ok(())
}

/// A statement's first words, for the log (never its arguments, which may be secret).
fn first_words(sql: &str) -> &str {
    let end = sql
        .char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .nth(3)
        .map_or(sql.len(), |(i, _)| i);
    &sql[..end]
}

/// An error naming the statement's first words.
fn statement_error(e: rusqlite::Error, sql: &str) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("running `{} …`", first_words(sql)))
}

/// Binds `$N` (and `?N`) to `args[N - 1]`; a bare `?` takes the argument at its position.
fn bind(statement: &mut Statement<'_>, args: &[AnyValueKind]) -> anyhow::Result<()> {
    for index in 1..=statement.parameter_count() {
        let number = match statement.parameter_name(index) {
            Some(name) => name[1..]
                .parse::<usize>()
                .with_context(|| format!("a statement names its parameter {name}"))?,
            None => index,
        };
        let value = number
            .checked_sub(1)
            .and_then(|i| args.get(i))
            .with_context(|| {
                format!(
                    "a statement uses ${number} but has {} arguments",
                    args.len()
                )
            })?;
        statement.raw_bind_parameter(index, sql_value(value)?)?;
    }
    Ok(())
}

/// An argument as SQLite stores it (as sqlx's SQLite driver maps it).
fn sql_value(value: &AnyValueKind) -> anyhow::Result<ToSqlOutput<'_>> {
    Ok(match value {
        AnyValueKind::Null(_) => ToSqlOutput::Owned(Value::Null),
        AnyValueKind::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
        AnyValueKind::SmallInt(i) => ToSqlOutput::Owned(Value::Integer(i64::from(*i))),
        AnyValueKind::Integer(i) => ToSqlOutput::Owned(Value::Integer(i64::from(*i))),
        AnyValueKind::BigInt(i) => ToSqlOutput::Owned(Value::Integer(*i)),
        AnyValueKind::Real(r) => ToSqlOutput::Owned(Value::Real(f64::from(*r))),
        AnyValueKind::Double(d) => ToSqlOutput::Owned(Value::Real(*d)),
        AnyValueKind::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        AnyValueKind::TextSlice(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        AnyValueKind::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        other => return Err(anyhow!("no SQLite mapping for the argument {other:?}")),
    })
}

/// A statement's column names, shared by every row it returns.
struct Columns {
    names: Vec<UStr>,
    index: Arc<hashbrown::HashMap<UStr, usize>>,
}

impl Columns {
    fn of(statement: &Statement<'_>) -> Self {
        let names: Vec<UStr> = statement
            .column_names()
            .into_iter()
            .map(|n| UStr::from(n.to_string()))
            .collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Self {
            names,
            index: Arc::new(index),
        }
    }

    /// A row as an [`AnyRow`], each value typed by what SQLite stored (as sqlx does).
    fn row(&self, row: &rusqlite::Row<'_>) -> anyhow::Result<AnyRow> {
        let mut columns = Vec::with_capacity(self.names.len());
        let mut values = Vec::with_capacity(self.names.len());
        for (ordinal, name) in self.names.iter().enumerate() {
            let kind = match row.get_ref(ordinal)? {
                ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
                ValueRef::Integer(i) => AnyValueKind::BigInt(i),
                ValueRef::Real(r) => AnyValueKind::Double(r),
                ValueRef::Text(t) => AnyValueKind::Text(Arc::new(
                    String::from_utf8(t.to_vec()).context("a text column holds invalid UTF-8")?,
                )),
                ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
            };
            columns.push(AnyColumn {
                ordinal,
                name: name.clone(),
                type_info: AnyTypeInfo {
                    kind: type_of(&kind),
                },
            });
            values.push(AnyValue { kind });
        }
        Ok(AnyRow {
            column_names: Arc::clone(&self.index),
            columns,
            values,
        })
    }
}

fn type_of(kind: &AnyValueKind) -> AnyTypeInfoKind {
    match kind {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

/// Whether `e` is SQLite's answer to a `ROLLBACK` with no transaction open.
pub(in crate::store) fn no_transaction(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.to_string().contains("no transaction is active"))
}

/// Whether `e` is SQLite's "database is locked" (`SQLITE_BUSY` and its extended codes).
pub(crate) fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error)
            .is_some_and(|e| e.code == rusqlite::ErrorCode::DatabaseBusy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection thread on a new file in a directory of its own.
    async fn fresh() -> (tempfile::TempDir, ConnectionThread) {
        let dir = tempfile::tempdir().unwrap();
        let conn = ConnectionThread::open(dir.path().join("t.db"), OpenMode::Create, Vec::new())
            .await
            .unwrap();
        (dir, conn)
    }

    fn stmt(sql: &str, args: Vec<AnyValueKind>) -> SqlStatement {
        SqlStatement {
            sql: sql.into(),
            args,
        }
    }

    #[tokio::test]
    async fn a_batch_binds_by_number_and_returns_rows_typed_as_stored() {
        let (_dir, conn) = fresh().await;
        let text = |s: &str| AnyValueKind::Text(Arc::new(s.into()));
        let result = conn
            .batch(vec![
                stmt("CREATE TABLE t (a INTEGER, b TEXT, c REAL, d BLOB)", vec![]),
                stmt(
                    "INSERT INTO t (b, a, c, d) VALUES ($2, $1, $3, $4)",
                    vec![
                        AnyValueKind::BigInt(7),
                        text("x"),
                        AnyValueKind::Double(1.5),
                        AnyValueKind::Null(AnyTypeInfoKind::Blob),
                    ],
                ),
                stmt(
                    "SELECT a, b, c, d FROM t WHERE a = $1",
                    vec![AnyValueKind::Integer(7)],
                ),
            ])
            .await
            .unwrap();
        assert_eq!(result.rows.len(), 1);
        let (a, b, c, d): (i64, String, f64, Option<Vec<u8>>) =
            sqlx::FromRow::from_row(&result.rows[0]).unwrap();
        assert_eq!((a, b.as_str(), c, d), (7, "x", 1.5, None));
    }

    #[tokio::test]
    async fn a_job_that_panics_fails_its_caller_and_the_thread_goes_on() {
        let (_dir, conn) = fresh().await;
        let failed = conn.run(|_| -> u8 { panic!("a bug") }).await;
        assert!(failed.is_err());
        let unnumbered = conn
            .batch(vec![stmt("SELECT $0", vec![AnyValueKind::BigInt(1)])])
            .await;
        assert!(unnumbered.is_err(), "$0 names no argument");
        let after = conn.batch(vec![stmt("SELECT 1", vec![])]).await.unwrap();
        assert_eq!(after.rows.len(), 1, "the thread still answers");
    }

    #[tokio::test]
    async fn a_failing_statement_stops_the_batch_and_names_itself_not_its_arguments() {
        let (_dir, conn) = fresh().await;
        let secret = AnyValueKind::Text(Arc::new("s3cret".into()));
        let e = conn
            .batch(vec![
                stmt("CREATE TABLE t (a TEXT PRIMARY KEY)", vec![]),
                stmt("INSERT INTO t (a) VALUES ($1)", vec![secret.clone()]),
                stmt("INSERT INTO t (a) VALUES ($1)", vec![secret]),
                stmt("CREATE TABLE never (a)", vec![]),
            ])
            .await
            .err()
            .expect("the second insert fails");
        let said = format!("{e:#}");
        assert!(said.contains("UNIQUE constraint failed: t.a"), "{said}");
        assert!(said.contains("INSERT INTO t"), "{said}");
        assert!(!said.contains("s3cret"), "{said}");
        let tables = conn
            .batch(vec![stmt(
                "SELECT count(*) FROM sqlite_master WHERE name = 'never'",
                vec![],
            )])
            .await
            .unwrap();
        let (n,): (i64,) = sqlx::FromRow::from_row(&tables.rows[0]).unwrap();
        assert_eq!(n, 0, "nothing after the failure ran");
    }
}
