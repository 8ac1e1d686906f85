//! The data-directory lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg(test)]

use bourse_journal::{DataDirLock, JournalError};

#[test]
fn second_acquire_fails_while_held_and_succeeds_after_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("nested");
    let first = DataDirLock::acquire(&dir).unwrap();
    assert!(dir.join("LOCK").exists());
    assert!(matches!(DataDirLock::acquire(&dir), Err(JournalError::Locked { .. })));
    drop(first);
    let again = DataDirLock::acquire(&dir).unwrap();
    assert!(matches!(DataDirLock::acquire(&dir), Err(JournalError::Locked { .. })));
    drop(again);
}

#[test]
fn different_directories_do_not_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let _a = DataDirLock::acquire(&tmp.path().join("a")).unwrap();
    let _b = DataDirLock::acquire(&tmp.path().join("b")).unwrap();
}
