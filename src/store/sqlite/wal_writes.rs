//! A SQLite VFS that hands each commit's write-ahead-log frames to the kernel in one write.
//!
//! SQLite writes a WAL frame as two `pwrite`s, its 24-byte header and then its page, so a
//! declaration's commit (about twenty b-tree pages) is some forty system calls, each
//! costing more than copying its bytes (issue 13: `strace` counted 111 `pwrite64`s per
//! declaration). This VFS is the platform's own (`unix`) with one change: a WAL file's
//! writes that follow each other in the file are gathered in memory and written together
//! when the transaction's commit frame is complete, before SQLite publishes the commit in
//! the shared WAL index, so another connection or process never sees a frame that is not
//! in the file. Anything else that touches the file (a read, a sync, a truncation, its
//! size, a file-control, closing it, or a write elsewhere in it) writes what is gathered
//! first, so SQLite sees the file exactly as if every write had gone straight through.
//! Durability is SQLite's own: with `synchronous = FULL` the gathered frames are written
//! before the `fsync` that makes the commit durable.
//!
//! Only the files SQLite opens as WAL files are wrapped; the database and its other files
//! are the `unix` VFS's own, untouched.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name connections open the database with to get the gathering VFS.
pub(crate) const VFS_NAME: &str = "firebreak-wal";
const VFS_NAME_C: &std::ffi::CStr = c"firebreak-wal";

/// The size of a WAL frame's header; the next write to the file is that frame's page.
const FRAME_HEADER: usize = 24;

/// The most the `unix` VFS writes in one call: it masks a write's length to 17 bits
/// (`nBuf &= 0x1ffff` in `seekAndWriteFd`), so 128 KiB would write nothing and report the
/// disk full. A run that would grow past this is written first.
const LARGEST_WRITE: usize = 0x1ffff;

/// Registers the VFS with SQLite (once per process) and returns its name.
pub(crate) fn vfs() -> anyhow::Result<&'static str> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| unsafe { register() })
        .as_ref()
        .map(|()| VFS_NAME)
        .map_err(|e| anyhow::anyhow!("could not register SQLite's WAL-gathering VFS: {e}"))
}

/// Copies the default VFS, with `xOpen` (and the calls that name files) routed through
/// this module, and registers the copy (not as the default).
unsafe fn register() -> Result<(), String> {
    // SAFETY: SQLite initialises itself in sqlite3_vfs_find; the default VFS it returns
    // lives for the whole process, so its copy's pointer to it stays valid.
    unsafe {
        let real = ffi::sqlite3_vfs_find(std::ptr::null());
        if real.is_null() {
            return Err("SQLite has no default VFS".into());
        }
        let mut vfs: ffi::sqlite3_vfs = std::ptr::read(real);
        vfs.szOsFile =
            c_int::try_from(REAL_AT + (*real).szOsFile as usize).map_err(|e| e.to_string())?;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = VFS_NAME_C.as_ptr();
        vfs.pAppData = real.cast();
        vfs.xOpen = Some(open);
        vfs.xDelete = Some(delete);
        vfs.xAccess = Some(access);
        vfs.xFullPathname = Some(full_pathname);
        match ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(format!("sqlite3_vfs_register returned {rc}")),
        }
    }
}

/// A WAL file as this VFS opens it: SQLite's file header pointing at [`WAL_METHODS`], the
/// bytes gathered so far, and the `unix` VFS's own file after them (at [`REAL_AT`]).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    gathered: *mut Gathered,
}

/// Where the real file starts within the memory SQLite gives a file (aligned for it).
const REAL_AT: usize = std::mem::size_of::<WalFile>().next_multiple_of(16);

/// Writes not yet handed to the file: `bytes` belong at offset `start`.
#[derive(Default)]
struct Gathered {
    /// Whether writes are gathered at all (see [`powersafe`]).
    enabled: bool,
    start: i64,
    bytes: Vec<u8>,
    /// Where the frames being appended end: a write below it rewrites a frame already
    /// written (SQLite fixing checksums or a page within one transaction) and goes
    /// straight through. A write at offset 0 (the header of a restarted log) resets it.
    frontier: i64,
    /// The last write was a commit frame's header: its page completes the transaction.
    commit_page_next: bool,
}

thread_local! {
    /// How many writes this thread handed to WAL files (for tests).
    static WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many writes the calling thread has handed to WAL files so far.
#[cfg(test)]
pub(crate) fn writes_on_this_thread() -> u64 {
    WRITES.with(std::cell::Cell::get)
}

fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY (for callers): pAppData was set to the default VFS at registration.
    unsafe { (*vfs).pAppData.cast() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives `file` szOsFile bytes (REAL_AT + the real VFS's size), so the
    // real file fits at offset 0 (not a WAL) or at REAL_AT (a WAL behind our header).
    unsafe {
        let real_vfs = real_vfs(vfs);
        let Some(real_open) = (*real_vfs).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return real_open(real_vfs, name, file, flags, out_flags);
        }
        let real = real_of(file);
        let rc = real_open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        // Without power-safe overwrites SQLite pads a commit to a sector boundary and
        // syncs in the middle of its last frame: its writes then go through as they come.
        let gathered = Gathered {
            enabled: powersafe(real),
            ..Gathered::default()
        };
        file.cast::<WalFile>().write(WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            gathered: Box::into_raw(Box::new(gathered)),
        });
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    let real = real_vfs(vfs);
    // SAFETY: the default VFS's own call, with its own VFS.
    unsafe {
        (*real)
            .xDelete
            .map_or(ffi::SQLITE_ERROR, |f| f(real, name, sync))
    }
}

unsafe extern "C" fn access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let real = real_vfs(vfs);
    // SAFETY: the default VFS's own call, with its own VFS.
    unsafe {
        (*real)
            .xAccess
            .map_or(ffi::SQLITE_ERROR, |f| f(real, name, flags, out))
    }
}

unsafe extern "C" fn full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let real = real_vfs(vfs);
    // SAFETY: the default VFS's own call, with its own VFS.
    unsafe {
        (*real)
            .xFullPathname
            .map_or(ffi::SQLITE_ERROR, |f| f(real, name, n, out))
    }
}

/// The `unix` VFS's file inside a [`WalFile`].
unsafe fn real_of(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY (for callers): `file` has REAL_AT + the real file's size bytes.
    unsafe { file.cast::<u8>().add(REAL_AT).cast() }
}

/// The real file's methods.
unsafe fn methods(real: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY (for callers): an open real file has its VFS's static methods.
    unsafe { &*(*real).pMethods }
}

/// The bytes gathered for `file`, and its real file.
unsafe fn parts(file: *mut ffi::sqlite3_file) -> (&'static mut Gathered, *mut ffi::sqlite3_file) {
    // SAFETY (for callers): `file` is an open WalFile; its Gathered lives until close, and
    // SQLite never calls one file's methods from two threads at once.
    unsafe { (&mut *(*file.cast::<WalFile>()).gathered, real_of(file)) }
}

/// Hands the gathered bytes to the real file in one write.
unsafe fn flush(gathered: &mut Gathered, real: *mut ffi::sqlite3_file) -> c_int {
    gathered.commit_page_next = false;
    if gathered.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Ok(len) = c_int::try_from(gathered.bytes.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    WRITES.with(|w| w.set(w.get() + 1));
    // SAFETY: the real file's own write, with a buffer of `len` bytes.
    let rc = unsafe {
        methods(real).xWrite.map_or(ffi::SQLITE_IOERR_WRITE, |f| {
            f(real, gathered.bytes.as_ptr().cast(), len, gathered.start)
        })
    };
    gathered.bytes.clear();
    rc
}

/// Whether `data`, written to a WAL file, is the header of a transaction's commit frame:
/// 24 bytes whose second big-endian word (the database size after the commit) is not 0.
fn is_commit_frame_header(data: &[u8]) -> bool {
    data.len() == FRAME_HEADER && data[4..8] != [0; 4]
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes `amount` readable bytes at `buf`.
    unsafe {
        let (gathered, real) = parts(file);
        if offset == 0 {
            gathered.frontier = 0;
        }
        if !gathered.enabled || offset < gathered.frontier {
            let rc = flush(gathered, real);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            return methods(real)
                .xWrite
                .map_or(ffi::SQLITE_IOERR_WRITE, |f| f(real, buf, amount, offset));
        }
        let data = std::slice::from_raw_parts(buf.cast::<u8>(), amount.max(0) as usize);
        gather(gathered, real, data, offset)
    }
}

/// Adds an appended write to the gathered run (writing the run first if the write does
/// not follow it), and writes the run once a commit frame is complete.
unsafe fn gather(
    gathered: &mut Gathered,
    real: *mut ffi::sqlite3_file,
    data: &[u8],
    offset: i64,
) -> c_int {
    let follows = offset == gathered.start + gathered.bytes.len() as i64;
    let fits = gathered.bytes.len() + data.len() <= LARGEST_WRITE;
    let extends_run = follows && fits;
    if !gathered.bytes.is_empty() && !extends_run {
        // SAFETY: `real` is the open real file.
        let rc = unsafe { flush(gathered, real) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if gathered.bytes.is_empty() {
        gathered.start = offset;
    }
    gathered.bytes.extend_from_slice(data);
    gathered.frontier = offset + data.len() as i64;
    let completes_commit = gathered.commit_page_next;
    gathered.commit_page_next = is_commit_frame_header(data);
    if completes_commit {
        // SAFETY: as above.
        return unsafe { flush(gathered, real) };
    }
    ffi::SQLITE_OK
}

/// Whether the device lets SQLite overwrite part of a sector without harming the rest
/// (Linux's default): then it neither pads nor syncs within a commit's frames.
unsafe fn powersafe(real: *mut ffi::sqlite3_file) -> bool {
    // SAFETY (for callers): `real` is an open real file.
    let characteristics = unsafe { methods(real).xDeviceCharacteristics.map_or(0, |f| f(real)) };
    characteristics & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes an open file once; its Gathered is freed here, and the header
    // cleared so nothing can reach it again.
    unsafe {
        let (gathered, real) = parts(file);
        let flushed = flush(gathered, real);
        let closed = methods(real).xClose.map_or(ffi::SQLITE_OK, |f| f(real));
        drop(Box::from_raw((*file.cast::<WalFile>()).gathered));
        (*file).pMethods = std::ptr::null();
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Defines a method that writes what is gathered, then calls the real file's own.
macro_rules! flush_then {
    ($name:ident, $method:ident ( $($arg:ident : $ty:ty),* )) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: `file` is an open WalFile; the real file gets SQLite's arguments.
            unsafe {
                let (gathered, real) = parts(file);
                let rc = flush(gathered, real);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                methods(real).$method.map_or(ffi::SQLITE_IOERR, |f| f(real $(, $arg)*))
            }
        }
    };
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: `file` is an open WalFile.
    unsafe {
        let (gathered, real) = parts(file);
        let rc = flush(gathered, real);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        gathered.frontier = gathered.frontier.min(size);
        methods(real)
            .xTruncate
            .map_or(ffi::SQLITE_IOERR_TRUNCATE, |f| f(real, size))
    }
}

/// Defines a method that only calls the real file's own.
macro_rules! pass {
    ($name:ident, $method:ident ( $($arg:ident : $ty:ty),* ), $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: `file` is an open WalFile; the real file gets SQLite's arguments.
            unsafe {
                let real = real_of(file);
                methods(real).$method.map_or($missing, |f| f(real $(, $arg)*))
            }
        }
    };
}

flush_then!(read, xRead(buf: *mut c_void, amount: c_int, offset: i64));
flush_then!(sync, xSync(flags: c_int));
flush_then!(file_size, xFileSize(size: *mut i64));
flush_then!(file_control, xFileControl(op: c_int, arg: *mut c_void));
pass!(lock, xLock(level: c_int), ffi::SQLITE_OK);
pass!(unlock, xUnlock(level: c_int), ffi::SQLITE_OK);
pass!(check_reserved_lock, xCheckReservedLock(out: *mut c_int), ffi::SQLITE_OK);
pass!(sector_size, xSectorSize(), 4096);
pass!(device_characteristics, xDeviceCharacteristics(), 0);

/// A WAL file's methods: version 1 (SQLite maps and locks shared memory through the
/// database file, never through its WAL).
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
#[path = "wal_writes_tests.rs"]
mod tests;
