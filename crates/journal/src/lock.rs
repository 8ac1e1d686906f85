//! The data-directory lock: one process (and one handle) owns a data directory at a time,
//! so two engines can never append to the same journal.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::durable::create_dir;
use crate::error::{IoAt, JournalError};

/// Exclusive lock on a data directory: `flock` on `<dir>/LOCK`. Dropping releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if missing and locks it. Fails with `Locked` while any other handle,
    /// in this process or another, holds the lock.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, JournalError> {
        create_dir(dir)?;
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { file, path }),
            Err(TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
            Err(TryLockError::Error(e)) => Err(e).at(&path),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // Closing the file would release the lock anyway; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}
