//! Opening a database that is already current reads the migrations table once and takes
//! no lock: a CLI call on Postgres is not queued behind the migrator's advisory lock while
//! `serve` or another CLI call holds it. (SQLite's migrator takes no lock of its own, so
//! there is nothing to wait for there.)

mod common;

use std::time::Duration;

use common::*;
use firebreak::store::Store;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_postgres_database_opens_while_the_migration_lock_is_held() {
    let db = TestDb::new(Backend::Postgres).await;
    drop(db.store().await);
    let _held = hold_migration_lock(&db).await;
    let opened = tokio::time::timeout(Duration::from_secs(5), Store::open(&db.url)).await;
    let store = opened
        .expect("a current database opens without waiting for the lock")
        .expect("opens");
    assert!(store.list_incidents(false, 1).await.unwrap().is_empty());
}

/// The migrator's advisory lock, held by another connection for as long as it lives.
async fn hold_migration_lock(db: &TestDb) -> sqlx::PgConnection {
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let name = db.url.rsplit('/').next().unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(sqlx_lock_id(name))
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// sqlx's migration lock id for a Postgres database: `0x3d32ad9e * crc32(name)`.
fn sqlx_lock_id(database: &str) -> i64 {
    0x3d32_ad9e * i64::from(crc32(database.as_bytes()))
}

/// CRC-32 (ISO-HDLC, as zlib computes it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

on_both!(writers_cancelled_at_any_point_leave_the_store_writable);

/// Writers cancelled at random points (a request whose client went away, an aborted worker
/// task): before `BEGIN` is answered, mid-statement, mid-`COMMIT`. Afterwards the store
/// still takes writes at once, and no half-written transaction is left behind.
async fn writers_cancelled_at_any_point_leave_the_store_writable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    for i in 0..200u64 {
        let s = store.clone();
        let task = tokio::spawn(async move {
            let mut tx = s.begin().await.unwrap();
            tx.append_timeline(&audit_entry(&format!("cancelled {i}")))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
        // From "not started yet" to "done", in steps finer than one statement.
        tokio::time::sleep(Duration::from_micros((i % 20) * 50)).await;
        task.abort();
        let _ = task.await;
    }
    let write = async {
        let mut tx = store.begin().await.unwrap();
        tx.append_timeline(&audit_entry("after the cancellations"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("a write goes through after 200 cancelled ones");
    let audit = store.audit_log(1000).await.unwrap();
    assert!(
        audit.iter().any(|e| e.text == "after the cancellations"),
        "the last write committed"
    );
}

fn audit_entry(text: &str) -> firebreak::incident::timeline::NewEntry {
    firebreak::incident::timeline::NewEntry {
        incident_id: None,
        occurred_at: chrono::Utc::now(),
        actor: "test".into(),
        source: firebreak::incident::timeline::Source::Cli,
        kind: firebreak::incident::timeline::EntryKind::Note,
        text: text.into(),
    }
}
