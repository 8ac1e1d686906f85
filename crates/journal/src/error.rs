//! The crate's error type. Every variant names the file (and offset, for corruption) so an
//! operator can act on the message alone.

use std::io;
use std::path::{Path, PathBuf};

/// Errors from the journal, snapshot store and data-directory lock.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("I/O error on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("data directory is locked by another process or handle ({})", path.display())]
    Locked { path: PathBuf },

    /// Invalid data that is not a torn tail; startup must stop.
    #[error("journal corrupt: {} at offset {offset}: {reason}", path.display())]
    Corrupt { path: PathBuf, offset: u64, reason: String },

    #[error("out-of-order journal append: expected seq {expected}, got {got}")]
    SeqGap { expected: u64, got: u64 },

    #[error("journal payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge { len: usize, max: u32 },

    #[error("bad snapshot {}: {reason}", path.display())]
    BadSnapshot { path: PathBuf, reason: String },

    /// A write or sync failed earlier; what reached the disk is unknown until recovery runs.
    #[error("journal unusable after an earlier write or sync failure; reopen it to recover")]
    Poisoned,
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> JournalError {
    JournalError::Corrupt { path: path.to_path_buf(), offset, reason: reason.into() }
}

/// Attaches the path an I/O operation was about.
pub(crate) trait IoAt<T> {
    fn at(self, path: &Path) -> Result<T, JournalError>;
}

impl<T> IoAt<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, JournalError> {
        self.map_err(|source| JournalError::Io { path: path.to_path_buf(), source })
    }
}
