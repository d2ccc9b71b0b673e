//! One orc process at a time starts or stops a given database: an exclusive `flock` on a
//! file in its orchestrator directory, released when the process ends however it ends.

use std::{
    fs::File,
    io::{Read, Seek, Write},
    os::fd::AsRawFd,
    path::Path,
};

use orc_core::{Error, Result};

/// The lock file's name inside an orchestrator directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// How long a lock that is held is tried again before the holder is reported.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_millis(300);

/// Open (or create, readable by its owner only) a file to `flock`.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .mode(0o600)
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

/// Release a `flock` explicitly: closing alone leaves it held while a child forked by
/// another thread still has a copy of the descriptor.
pub(crate) fn unlock(file: &File) {
    // SAFETY: flock on a descriptor the caller owns.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// A held database lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DbLock {
    file: File,
}

impl Drop for DbLock {
    fn drop(&mut self) {
        unlock(&self.file);
    }
}

impl DbLock {
    /// Take the lock of database `db_identifier` whose directory is `dir`, or say who holds
    /// it.
    pub(crate) fn acquire(dir: &Path, db_identifier: &str) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        // A lock another thread of this process has just let go of may still be held for
        // a moment by a child forked before that thread closed it (until the child's
        // exec); a short retry tells that from a real holder.
        let deadline = std::time::Instant::now() + RETRY_FOR;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Busy {
                    db_identifier: db_identifier.into(),
                    pid: text.trim().parse().unwrap_or(0),
                });
            }
            return Err(Error::io(format!("locking {}", path.display()), e));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        Ok(Self { file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let first = DbLock::acquire(d.path(), "db").unwrap();
        let e = DbLock::acquire(d.path(), "db").unwrap_err();
        match &e {
            Error::Busy { pid, .. } => assert_eq!(*pid, std::process::id()),
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("being started or stopped"), "{e}");
        drop(first);
        DbLock::acquire(d.path(), "db").unwrap();
    }
}
