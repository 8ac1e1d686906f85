//! Snapshot files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg(test)]

use std::fs;

use bourse_journal::{JournalError, SNAPSHOT_HEADER_LEN, SnapshotStore};

fn flip(path: &std::path::Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[test]
fn write_list_load_retain() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&tmp.path().join("snapshots")).unwrap();
    assert_eq!(store.list().unwrap(), Vec::<u64>::new());
    assert_eq!(store.load_latest_valid().unwrap(), None);

    let path = store.write(30, b"thirty").unwrap();
    assert_eq!(path.file_name().unwrap(), "snap-00000000000000000030.bin");
    store.write(10, b"").unwrap();
    store.write(20, b"twenty").unwrap();
    assert_eq!(store.list().unwrap(), vec![10, 20, 30]);
    assert_eq!(store.load(10).unwrap(), b"");
    assert_eq!(store.load(20).unwrap(), b"twenty");
    assert_eq!(store.load_latest_valid().unwrap(), Some((30, b"thirty".to_vec())));

    store.write(20, b"twenty again").unwrap();
    assert_eq!(store.load(20).unwrap(), b"twenty again");

    store.retain(2).unwrap();
    assert_eq!(store.list().unwrap(), vec![20, 30]);
    assert!(matches!(store.load(10), Err(JournalError::Io { .. })));
    store.retain(5).unwrap();
    assert_eq!(store.list().unwrap(), vec![20, 30]);
    store.retain(0).unwrap();
    assert_eq!(store.list().unwrap(), Vec::<u64>::new());
}

#[test]
fn an_invalid_newest_snapshot_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(tmp.path()).unwrap();
    store.write(10, b"older but good").unwrap();
    let newest = store.write(20, b"newest").unwrap();
    // Payload, header field and header checksum each count.
    for offset in [SNAPSHOT_HEADER_LEN + 2, 12, SNAPSHOT_HEADER_LEN - 1] {
        flip(&newest, offset);
        assert!(matches!(store.load(20), Err(JournalError::BadSnapshot { .. })));
        assert_eq!(store.load_latest_valid().unwrap(), Some((10, b"older but good".to_vec())));
        flip(&newest, offset);
        assert_eq!(store.load(20).unwrap(), b"newest");
    }

    let len = fs::metadata(&newest).unwrap().len();
    fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(len - 1).unwrap();
    assert!(matches!(store.load(20), Err(JournalError::BadSnapshot { .. })));
    assert_eq!(store.load_latest_valid().unwrap().unwrap().0, 10);

    // A valid file under the wrong name is not the snapshot for that seq.
    fs::copy(
        tmp.path().join("snap-00000000000000000010.bin"),
        tmp.path().join("snap-00000000000000000030.bin"),
    )
    .unwrap();
    assert!(matches!(store.load(30), Err(JournalError::BadSnapshot { .. })));

    fs::write(tmp.path().join("snap-00000000000000000010.bin"), b"short").unwrap();
    assert_eq!(store.load_latest_valid().unwrap(), None);
}

#[test]
fn temp_files_are_ignored_and_cleaned_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(tmp.path()).unwrap();
    store.write(5, b"five").unwrap();
    let leftover = tmp.path().join("snap-00000000000000000009.bin.tmp");
    fs::write(&leftover, b"half written").unwrap();
    fs::write(tmp.path().join("unrelated.txt"), b"x").unwrap();
    assert_eq!(store.list().unwrap(), vec![5]);
    assert_eq!(store.load_latest_valid().unwrap(), Some((5, b"five".to_vec())));

    let store = SnapshotStore::open(tmp.path()).unwrap();
    assert!(!leftover.exists());
    assert!(tmp.path().join("unrelated.txt").exists());
    assert_eq!(store.list().unwrap(), vec![5]);
}
