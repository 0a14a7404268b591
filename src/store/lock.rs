//! The single-instance guard for SQLite.
//!
//! An embedded database has exactly one daemon. The guard is an OS advisory lock on
//! `<database>.lock` (not a row with an expiry): the kernel releases it the moment the process dies,
//! so a daemon restarted after `kill -9` starts at once instead of waiting out a lease, and a second
//! daemon is refused immediately with the first one's pid.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held for the daemon's lifetime; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock beside the SQLite file `db`, or explains who holds it.
    pub fn acquire(db: &Path) -> Result<InstanceLock, StoreError> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                StoreError::Locked(format!("cannot open lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // The holder wrote its pid; read no more than a pid can be (the file is ours, but
                // anything can write to it and its content goes into the message).
                let mut holder = String::new();
                let _ = (&mut file).take(32).read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() || !holder.bytes().all(|b| b.is_ascii_digit()) {
                    "another process".to_owned()
                } else {
                    format!("pid {holder}")
                };
                return Err(StoreError::Locked(format!(
                    "another omnistock daemon ({who}) is already running on {}. SQLite mode runs one \
                     daemon per database; stop the other one, or use PostgreSQL to run several instances.",
                    db.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::Locked(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(|e| {
                StoreError::Locked(format!("cannot write lock file {}: {e}", path.display()))
            })?;
        Ok(InstanceLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = InstanceLock::acquire(&db).unwrap();
        let err = InstanceLock::acquire(&db).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("already running"), "{err}");
        // Whatever else the file holds stays out of the message.
        let lock_file = dir.path().join("x.db.lock");
        std::fs::write(&lock_file, "9".repeat(1 << 20)).unwrap();
        let err = InstanceLock::acquire(&db).unwrap_err().to_string();
        assert!(err.len() < 400, "{err}");
        std::fs::write(&lock_file, "<script>".repeat(1 << 17)).unwrap();
        let err = InstanceLock::acquire(&db).unwrap_err().to_string();
        assert!(err.contains("(another process)"), "{err}");
        drop(first);
        InstanceLock::acquire(&db).expect("released on drop");
    }
}
