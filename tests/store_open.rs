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
