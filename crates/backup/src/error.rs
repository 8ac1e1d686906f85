//! What can go wrong, each with a message an operator can act on.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The request itself cannot be done (a bad destination, a data directory in use).
    #[error("{0}")]
    Usage(String),
    #[error("I/O error on {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A file is missing, has the wrong size or checksum, or the replayed state differs.
    #[error("the backup is damaged and was not restored: {0}")]
    Damaged(String),
    #[error("the engine: {0}")]
    Engine(#[from] bourse_engine::EngineError),
    #[error(transparent)]
    Journal(#[from] bourse_journal::JournalError),
    #[error("replaying the backup's journal: {0}")]
    Recovery(#[from] bourse_engine::RecoveryError),
    #[error("the database: {0}")]
    Store(#[from] bourse_store::StoreError),
    #[error("the S3 bucket: {0}")]
    S3(String),
    #[error("the database took longer than {0:?} to fix its snapshot; no backup was written")]
    PauseExpired(Duration),
    #[error("a background task failed: {0}")]
    Task(String),
}

pub(crate) trait IoAt<T> {
    fn at(self, path: &Path) -> Result<T, BackupError>;
}

impl<T> IoAt<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, BackupError> {
        self.map_err(|source| BackupError::Io { path: path.to_path_buf(), source })
    }
}

/// Runs blocking work (file copies, hashing, uploads) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BackupError::Task(e.to_string()))?
}
