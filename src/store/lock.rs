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
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
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
        drop(first);
        InstanceLock::acquire(&db).expect("released on drop");
    }
}
