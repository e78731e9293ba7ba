//! SQLite's group commit (see [`super::sqlite::Writers`]): commands waiting behind a command
//! share its commit (and read back what they wrote with it), a failing member undoes only its own writes, a lost transaction is
//! reported to every member, and a group whose members all stop waiting still commits.
//! (Background work commits a waiting group before it writes; the suites' mixed loads and
//! `tests/store_open.rs` cover that path.)

use std::time::Duration;

use super::{Db, Store, Tx};

/// A store on a fresh file with a scratch table `t (name TEXT PRIMARY KEY)`.
async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("group.db").display());
    let store = Store::open(&url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.execute(sqlx::query("CREATE TABLE t (name TEXT PRIMARY KEY)"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (dir, store)
}

async fn insert(tx: &mut Tx, name: &str) -> anyhow::Result<()> {
    tx.execute(sqlx::query("INSERT INTO t (name) VALUES ($1)").bind(name.to_string()))
        .await?;
    Ok(())
}

/// One command transaction inserting `name`, as a task.
fn write(store: &Store, name: &'static str) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let store = store.clone();
    tokio::spawn(async move {
        let mut tx = store.begin().await?;
        insert(&mut tx, name).await?;
        tx.commit().await
    })
}

async fn names(store: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM t ORDER BY name")
        .fetch_all(&mut *store.reader().await.unwrap())
        .await
        .unwrap()
}

/// Commits on the command connection so far.
async fn commits(store: &Store) -> u64 {
    let Db::Sqlite(sqlite) = &store.db else {
        unreachable!("a SQLite store")
    };
    sqlite.writer.command_commits().await
}

/// Waits until `n` commands queue for the writer.
async fn until_waiting(store: &Store, n: usize) {
    let Db::Sqlite(sqlite) = &store.db else {
        unreachable!("a SQLite store")
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while sqlite.writer.waiting() != n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the commands queue for the writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_waiting_behind_a_command_share_its_commit() {
    let (_dir, store) = store().await;
    let before = commits(&store).await;
    let mut first = store.begin().await.unwrap();
    insert(&mut first, "a").await.unwrap();
    let behind: Vec<_> = ["b", "c", "d", "e", "f"]
        .into_iter()
        .map(|n| write(&store, n))
        .collect();
    until_waiting(&store, 5).await;
    first.commit().await.unwrap();
    for task in behind {
        task.await.unwrap().unwrap();
    }
    assert_eq!(names(&store).await, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(
        commits(&store).await - before,
        1,
        "six transactions, one commit"
    );
}

/// A command that reads back what it wrote with its commit, joining the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reading_with_their_commit_get_their_own_rows() {
    let (_dir, store) = store().await;
    let before = commits(&store).await;
    let mut first = store.begin().await.unwrap();
    insert(&mut first, "a").await.unwrap();
    let behind: Vec<_> = ["b", "c", "d"]
        .into_iter()
        .map(|name| {
            let store = store.clone();
            tokio::spawn(async move {
                let tx = store.begin().await?;
                let query = sqlx::query("INSERT INTO t (name) VALUES ($1) RETURNING name")
                    .bind(name.to_string());
                tx.commit_fetching::<(String,)>(query).await
            })
        })
        .collect();
    until_waiting(&store, 3).await;
    first.commit().await.unwrap();
    for (task, name) in behind.into_iter().zip(["b", "c", "d"]) {
        assert_eq!(task.await.unwrap().unwrap(), [(name.to_string(),)]);
    }
    assert_eq!(names(&store).await, ["a", "b", "c", "d"]);
    assert_eq!(
        commits(&store).await - before,
        1,
        "four transactions, one commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_member_undoes_only_its_own_writes() {
    let (_dir, store) = store().await;
    let mut first = store.begin().await.unwrap();
    insert(&mut first, "a").await.unwrap();
    let failing = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await?;
            insert(&mut tx, "b").await?;
            insert(&mut tx, "a").await?; // a duplicate key: this member fails
            tx.commit().await
        })
    };
    until_waiting(&store, 1).await;
    let last = write(&store, "c");
    until_waiting(&store, 2).await;
    first.commit().await.unwrap();
    assert!(failing.await.unwrap().is_err());
    last.await.unwrap().unwrap();
    assert_eq!(names(&store).await, ["a", "c"], "b was rolled back alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_shared_transaction_is_reported_to_every_member() {
    let (_dir, store) = store().await;
    let mut first = store.begin().await.unwrap();
    insert(&mut first, "a").await.unwrap();
    let member = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin().await?;
            insert(&mut tx, "b").await?;
            // What SQLite does on its own after an I/O error or a full disk.
            tx.execute(sqlx::query("ROLLBACK")).await?;
            tx.commit().await
        })
    };
    until_waiting(&store, 1).await;
    let first_told = first.commit().await;
    assert!(member.await.unwrap().is_err());
    assert!(
        first_told.is_err(),
        "the first transaction's writes were lost with the group: it must not hear done"
    );
    assert!(names(&store).await.is_empty());
    write(&store, "after").await.unwrap().unwrap();
    assert_eq!(
        names(&store).await,
        ["after"],
        "the store is writable again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_members_stop_waiting_still_commits() {
    let (_dir, store) = store().await;
    let mut first = store.begin().await.unwrap();
    insert(&mut first, "a").await.unwrap();
    let gone = {
        let store = store.clone();
        tokio::spawn(async move {
            let _tx = store.begin().await;
            std::future::pending::<()>().await;
        })
    };
    until_waiting(&store, 1).await;
    // `first` defers to the waiting command, which then goes away without writing.
    let committing = tokio::spawn(async move { first.commit().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    gone.abort();
    tokio::time::timeout(Duration::from_secs(5), committing)
        .await
        .expect("the group commits without its members")
        .unwrap()
        .unwrap();
    assert_eq!(names(&store).await, ["a"]);
}
