//! The one module with `unsafe`: memory maps and Linux-only file hints.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use bytes::Bytes;

use crate::error::{IoContext, Result};

/// Maps the first `len` bytes of a file read-only and wraps the map in
/// `Bytes`, so that readers get zero-copy slices that keep the map alive after
/// the log itself drops it (an unlinked or unmapped fragment stays readable
/// for whoever still holds a slice).
pub(crate) fn map_file(path: &Path, len: u64) -> Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let file = File::open(path).context(|| format!("open {} for mapping", path.display()))?;
    let actual = file.metadata().context(|| format!("stat {}", path.display()))?.len();
    if actual < len {
        return Err(crate::error::StorageError::corruption(
            path,
            actual,
            format!("file has {actual} bytes, {len} expected"),
        ));
    }
    // SAFETY: Goulette maps only files it never modifies in place while mapped:
    // sealed fragments are immutable (truncation into a fragment writes a new
    // file and unlinks the old one, which keeps existing maps valid), and the
    // WAL is mapped only for a recovery scan, either before any writer exists
    // or under the log's lock (truncation), and the map is dropped before the
    // WAL is cut. Files in the partition directory
    // belong to this process alone; another process shrinking one would be
    // outside the contract (and would raise SIGBUS, as for any mmap reader).
    let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file) }
        .context(|| format!("mmap {}", path.display()))?;
    Ok(Bytes::from_owner(map))
}

/// Asks the kernel to start writing back `len` bytes of `file` from `offset`,
/// without waiting. Under flush policies that do not fdatasync every append
/// this keeps the dirty tail short, so the fdatasync that seals a fragment
/// waits for a few MiB instead of the whole fragment. Best effort: a failure
/// only loses the hint.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sync_file_range only reads its integer arguments; the fd is
        // valid for the duration of the call because `file` is borrowed.
        let rc =
            unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "sync_file_range hint failed");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file.as_raw_fd(), offset, len);
}

/// Writes back `len` bytes of `file` from `offset` and waits until they
/// are on the disk (the data only: an fdatasync still commits the file's
/// metadata). Preparing a WAL writes its zeros back a chunk at a time this
/// way, so that neither one large writeback nor one large journal commit of
/// their blocks holds up the WAL fdatasyncs beside it.
pub(crate) fn write_back_and_wait(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: sync_file_range only reads its integer arguments; the fd is
        // valid for the duration of the call because `file` is borrowed.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file.as_raw_fd(), offset, len);
    Ok(())
}

/// Raises this process's limit on open files as far as it may: every open
/// partition holds file descriptors (its WAL, the lock of its directory,
/// mapped fragments while read), so 10,000 partitions need over 20,000,
/// more than shells and containers often allow by default. The soft limit
/// goes up to the hard one, and the hard one to the kernel's `fs.nr_open`
/// where the process is privileged to. Returns the limit before and after.
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given, which lives on
    // this stack frame for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // `rlim_t` is u64 on Linux, not on every system.
    #[allow(clippy::unnecessary_cast)]
    let before = limit.rlim_cur as u64;
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(limit.rlim_max);
    let set = |cur: libc::rlim_t, max: libc::rlim_t| {
        let wanted = libc::rlimit { rlim_cur: cur, rlim_max: max };
        // SAFETY: setrlimit only reads the struct it is given.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 }
    };
    let after = if ceiling > limit.rlim_max && set(ceiling, ceiling) {
        ceiling
    } else if limit.rlim_max > limit.rlim_cur && set(limit.rlim_max, limit.rlim_max) {
        limit.rlim_max
    } else {
        limit.rlim_cur
    };
    #[allow(clippy::unnecessary_cast)]
    Ok((before, after as u64))
}

/// Bytes available to an unprivileged writer in the file system of `dir`,
/// if the system can tell (`statvfs`).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to
    // writable memory of the right type, which statvfs fills on success.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialized `stat`.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Takes an exclusive advisory lock (`flock`) on `file` without waiting:
/// `Ok(false)` when another open file holds it. The kernel releases it when
/// the file is closed, also when the process dies (even by SIGKILL), so a
/// crash never leaves a stale lock behind.
pub(crate) fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock only reads its integer arguments; the fd is valid for the
    // duration of the call because `file` is borrowed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(error) }
}
