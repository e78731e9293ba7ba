//! SQLite's one writer connection (see [`super::sqlite::Writers`]): each transaction commits
//! at its own `synchronous` level, including after a failed one, and the WAL is
//! checkpointed off the writer, so it stays small however many commits there are.

use super::Store;

/// A store on a fresh file with a scratch table `t (v BLOB)`.
async fn store() -> (tempfile::TempDir, Store, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("writer.db");
    let store = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.execute(sqlx::query("CREATE TABLE t (v BLOB)"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (dir, store, file)
}

/// `PRAGMA synchronous` seen inside a command (`true`) or background transaction, which
/// then commits.
async fn synchronous_in(store: &Store, command: bool) -> i64 {
    let mut tx = match command {
        true => store.begin().await.unwrap(),
        false => store.begin_background().await.unwrap(),
    };
    let level: Vec<(i64,)> = tx.fetch(sqlx::query("PRAGMA synchronous")).await.unwrap();
    tx.commit().await.unwrap();
    level[0].0
}

const FULL: i64 = 2;
const NORMAL: i64 = 1;

#[tokio::test]
async fn each_transaction_commits_at_its_own_synchronous_level() {
    let (_dir, store, _) = store().await;
    assert_eq!(synchronous_in(&store, true).await, FULL);
    assert_eq!(synchronous_in(&store, false).await, NORMAL);
    assert_eq!(synchronous_in(&store, false).await, NORMAL);
    assert_eq!(synchronous_in(&store, true).await, FULL);
    assert_eq!(synchronous_in(&store, true).await, FULL);

    // A background transaction that fails after its opening went out, then a command: the
    // command must not inherit NORMAL.
    let mut tx = store.begin_background().await.unwrap();
    tx.execute(sqlx::query("INSERT INTO t (v) VALUES (x'00')"))
        .await
        .unwrap();
    assert!(
        tx.execute(sqlx::query("INSERT INTO nowhere VALUES (1)"))
            .await
            .is_err()
    );
    drop(tx);
    assert_eq!(synchronous_in(&store, true).await, FULL);

    // A background transaction that never sent anything leaves the level as it was.
    drop(store.begin_background().await.unwrap());
    assert_eq!(synchronous_in(&store, true).await, FULL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_beside_the_writer_and_stays_small() {
    let (_dir, store, file) = store().await;
    let row = vec![7_u8; 3000];
    for _ in 0..3000 {
        let mut tx = store.begin_background().await.unwrap();
        tx.execute(sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(row.clone()))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let wal = std::fs::metadata(file.with_extension("db-wal"))
        .unwrap()
        .len();
    // Without the checkpointer, 3000 commits of a 3 kB row leave at least 3000 pages
    // (12 MB) in the WAL; SQLite's own checkpoint inside a commit is a backstop at 4000.
    // The file keeps its longest length, so one stretch in which a loaded machine (the
    // rest of the suite on two cores) starves the checkpointer shows; 8 MB leaves room for
    // that and still fails without a checkpointer.
    assert!(
        wal < 8 << 20,
        "the WAL grew to {wal} bytes: the checkpointer is not keeping up"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut *store.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(rows, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_grown_behind_a_pinned_reader_is_cut_back_once_it_starts_over() {
    let (_dir, store, file) = store().await;
    let wal_len = || {
        std::fs::metadata(file.with_extension("db-wal"))
            .unwrap()
            .len()
    };
    let write = |n: usize| {
        let store = store.clone();
        async move {
            for _ in 0..n {
                let mut tx = store.begin_background().await.unwrap();
                tx.execute(sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(vec![1_u8; 12_000]))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
    };
    // A reader holding an old snapshot: no checkpoint can get past it, so the WAL grows.
    let mut pinned = store.reader().await.unwrap();
    sqlx::Executor::execute(&mut *pinned, "BEGIN")
        .await
        .unwrap();
    let _: Vec<(i64,)> = sqlx::query_as("SELECT count(*) FROM t")
        .fetch_all(&mut *pinned)
        .await
        .unwrap();
    write(3000).await;
    let grown = wal_len();
    assert!(grown > 40 << 20, "the WAL grew to only {grown} bytes");
    sqlx::Executor::execute(&mut *pinned, "COMMIT")
        .await
        .unwrap();
    drop(pinned);

    let mut cut_back = false;
    for _ in 0..100 {
        write(10).await;
        if wal_len() <= 32 << 20 {
            cut_back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        cut_back,
        "the WAL stayed at {} bytes after it started over",
        wal_len()
    );
}

/// `PRAGMA page_size`, read in a transaction on the writer.
async fn page_size(store: &Store) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let size: Vec<(i64,)> = tx.fetch(sqlx::query("PRAGMA page_size")).await.unwrap();
    tx.commit().await.unwrap();
    size[0].0
}

#[tokio::test]
async fn a_new_database_gets_small_pages_and_an_older_one_keeps_its_own() {
    let (dir, store, file) = store().await;
    assert_eq!(page_size(&store).await, i64::from(super::sqlite::PAGE_SIZE));
    store.close().await;
    drop(store);
    // Opened again (a restart), it keeps them.
    let store = Store::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert_eq!(page_size(&store).await, i64::from(super::sqlite::PAGE_SIZE));

    // A database an older firebreak made, with SQLite's default 4 KiB pages and in WAL
    // mode: it keeps its pages, migrates, and takes writes as before.
    use sqlx::{Connection, Executor};
    let older = dir.path().join("older.db");
    let url = format!("sqlite://{}", older.display());
    let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    conn.execute("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (v BLOB)")
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = Store::open(&url).await.unwrap();
    assert_eq!(page_size(&store).await, 4096);
    let mut tx = store.begin().await.unwrap();
    tx.execute(sqlx::query("INSERT INTO t (v) VALUES (x'2a')"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let rows: Vec<(Vec<u8>,)> = tx.fetch(sqlx::query("SELECT v FROM t")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows, vec![(vec![0x2a],)]);
}

/// Jobs handed to the writer's thread so far.
async fn handed(store: &Store) -> u64 {
    let super::Db::Sqlite(sqlite) = &store.db else {
        unreachable!("a SQLite store")
    };
    sqlite.writer.handed().await
}

#[tokio::test]
async fn a_transaction_whose_writes_wait_for_its_commit_is_one_hand_off() {
    let (_dir, store, _) = store().await;
    let before = handed(&store).await;
    let mut tx = store.begin().await.unwrap();
    for v in [1_i64, 2, 3] {
        tx.hold(sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(v))
            .await
            .unwrap();
    }
    let rows: Vec<(i64,)> = tx
        .commit_fetching(sqlx::query("SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(rows, [(3,)]);
    assert_eq!(
        handed(&store).await - before,
        1,
        "BEGIN, three inserts, the read and COMMIT go to the writer's thread together"
    );

    // A read in the middle needs its answer at once: one hand-off for it and what was
    // held, one for the rest and the commit.
    let before = handed(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.hold(sqlx::query("INSERT INTO t (v) VALUES (4)"))
        .await
        .unwrap();
    let (n,): (i64,) = tx
        .fetch_one(sqlx::query("SELECT count(*) FROM t"))
        .await
        .unwrap();
    assert_eq!(n, 4, "the held insert went first");
    tx.hold(sqlx::query("DELETE FROM t WHERE v = 4"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(handed(&store).await - before, 2);
}
