//! The WAL-gathering VFS: one write per commit, and the files exactly as SQLite left them
//! to every other reader, to a checkpoint and to a crash.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{VFS_NAME, vfs, writes_on_this_thread};

/// A connection through the gathering VFS, in WAL mode with 1 KiB pages and
/// `synchronous`, and a table with three indexes (a row dirties four b-trees).
fn writer(path: &Path, synchronous: &str) -> Connection {
    vfs().expect("registered");
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    let conn = Connection::open_with_flags_and_vfs(path, flags, VFS_NAME).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
         PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT);
         CREATE INDEX IF NOT EXISTS t_a ON t (a); CREATE INDEX IF NOT EXISTS t_b ON t (b);
         CREATE INDEX IF NOT EXISTS t_c ON t (c);"
    ))
    .unwrap();
    conn
}

fn insert(conn: &Connection, i: i64) {
    conn.execute(
        "INSERT INTO t (id, a, b, c) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![i, format!("a{i}"), format!("b{i}"), "x".repeat(200)],
    )
    .unwrap();
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn wal_len(path: &Path) -> u64 {
    std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len())
}

#[test]
fn a_commit_s_frames_reach_the_file_in_one_write() {
    for synchronous in ["NORMAL", "FULL"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = writer(&path, synchronous);
        insert(&conn, 0);
        let (writes, wal) = (writes_on_this_thread(), wal_len(&path));
        insert(&conn, 1);
        let frames = (wal_len(&path) - wal) / (24 + 1024);
        assert!(frames >= 4, "{synchronous}: the row dirtied {frames} pages");
        assert_eq!(
            writes_on_this_thread() - writes,
            1,
            "{synchronous}: {frames} frames in one write"
        );
    }
}

#[test]
fn a_commit_bigger_than_one_write_is_written_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = writer(&path, "NORMAL");
    let reader = Connection::open(&path).unwrap();
    let (writes, wal) = (writes_on_this_thread(), wal_len(&path));
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..600 {
        insert(&conn, i);
    }
    conn.execute_batch("COMMIT").unwrap();
    let bytes = wal_len(&path) - wal;
    assert!(
        bytes > 2 * 0x1ffff,
        "the commit wrote {bytes} bytes of frames"
    );
    let pieces = writes_on_this_thread() - writes;
    assert!(
        (3..=8).contains(&pieces),
        "{bytes} bytes in {pieces} writes"
    );
    assert_eq!(count(&reader), 600);
    assert_eq!(count_in_copy(&path, dir.path()), 600);
}

#[test]
fn every_commit_is_in_the_file_before_anyone_can_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = writer(&path, "NORMAL");
    let reader = Connection::open(&path).unwrap();
    let mut rows = 0;
    for round in 0..3 {
        for _ in 0..50 {
            insert(&conn, rows);
            rows += 1;
            assert_eq!(count(&reader), rows, "another connection sees the commit");
        }
        // A transaction bigger than the page cache: SQLite writes frames before the commit
        // and rewrites some of them (and their checksums) when it commits.
        conn.execute_batch("PRAGMA cache_size = 20; BEGIN").unwrap();
        for _ in 0..400 {
            insert(&conn, rows);
            rows += 1;
        }
        conn.execute("UPDATE t SET c = 'y' || c WHERE id % 7 = ?1", [round])
            .unwrap();
        conn.execute_batch("COMMIT; PRAGMA cache_size = -2000")
            .unwrap();
        assert_eq!(count(&reader), rows);
        // A crash now (the files as they are, the process gone) loses no commit.
        assert_eq!(count_in_copy(&path, dir.path()), rows, "round {round}");
        // A checkpoint from elsewhere, then the writer restarts the log from its start.
        reader
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let check: String = reader
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Copies the database and its WAL as they are on disk and counts the rows in the copy,
/// opened afresh (SQLite recovers the WAL, checking every frame's checksum).
fn count_in_copy(path: &Path, dir: &Path) -> i64 {
    let copy = dir.join("copy.db");
    for suffix in ["", "-wal"] {
        let from = format!("{}{suffix}", path.display());
        let to = format!("{}{suffix}", copy.display());
        let _ = std::fs::remove_file(&to);
        std::fs::copy(from, to).unwrap();
    }
    let _ = std::fs::remove_file(format!("{}-shm", copy.display()));
    count(&Connection::open(&copy).unwrap())
}
