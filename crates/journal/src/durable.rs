//! Directory durability helpers: a created or renamed file is only crash-safe once its
//! directory entry is synced too.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::error::{IoAt, JournalError};

pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// `create_dir_all` that also syncs the parent of every directory it creates.
pub(crate) fn create_dir(dir: &Path) -> Result<(), JournalError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir(parent)?;
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).at(dir),
    }
}
