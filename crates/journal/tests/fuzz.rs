//! Property tests: arbitrary bytes on disk never make the crate panic, and garbage after
//! valid records never costs a valid record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg(test)]

use std::fs;
use std::path::Path;

use bourse_journal::{
    FileJournal, Journal, JournalError, JournalOptions, SEGMENT_HEADER_LEN, SnapshotStore,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const FIRST_SEGMENT: &str = "00000000000000000001.wal";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Valid segment bytes for seqs 1..=n.
fn valid_segment(payloads: &[Vec<u8>]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let (mut journal, _) = FileJournal::open(tmp.path(), JournalOptions::default()).unwrap();
    for (seq, payload) in (1..).zip(payloads) {
        journal.append(seq, payload).unwrap();
    }
    journal.commit().unwrap();
    fs::read(tmp.path().join(FIRST_SEGMENT)).unwrap()
}

/// Reads and opens `dir`, which must not panic; returns what open said.
fn exercise(dir: &Path) -> Result<bourse_journal::Recovery, JournalError> {
    for from in [0, 1, 3] {
        let read: Vec<_> = FileJournal::reader(dir, from).unwrap().take(10_000).collect();
        drop(read);
    }
    let opened = FileJournal::open(dir, JournalOptions::default()).map(|(_, r)| r);
    // Whatever open left behind must read back without error.
    if opened.is_ok() {
        let read: Result<Vec<_>, _> = FileJournal::reader(dir, 0).unwrap().collect();
        assert!(read.is_ok(), "{read:?}");
    }
    opened
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_segment_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FIRST_SEGMENT), &bytes).unwrap();
        let _ = exercise(tmp.path());
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut segment = valid_segment(&[Vec::new()]);
        segment.truncate(SEGMENT_HEADER_LEN as usize);
        segment.extend(&bytes);
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FIRST_SEGMENT), &segment).unwrap();
        let _ = exercise(tmp.path());
    }

    #[test]
    fn garbage_after_valid_records_is_cut_without_losing_any(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
        garbage in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut segment = valid_segment(&payloads);
        segment.extend(&garbage);
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FIRST_SEGMENT), &segment).unwrap();
        let recovery = exercise(tmp.path()).unwrap();
        prop_assert_eq!(recovery.last_seq, payloads.len() as u64);
        prop_assert_eq!(recovery.truncated_bytes, garbage.len() as u64);
        let read: Vec<Vec<u8>> =
            FileJournal::reader(tmp.path(), 1).unwrap().map(|r| r.unwrap().1).collect();
        prop_assert_eq!(read, payloads);
    }

    #[test]
    fn arbitrary_snapshot_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path()).unwrap();
        fs::write(tmp.path().join("snap-00000000000000000007.bin"), &bytes).unwrap();
        let _ = store.load(7);
        let _ = store.load_latest_valid().unwrap();
    }

    #[test]
    fn any_changed_snapshot_byte_is_detected(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        index in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path()).unwrap();
        let path = store.write(7, &payload).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let at = index.index(bytes.len());
        bytes[at] ^= xor;
        fs::write(&path, &bytes).unwrap();
        let bad = matches!(store.load(7), Err(JournalError::BadSnapshot { .. }));
        prop_assert!(bad, "changed byte {} went unnoticed", at);
        prop_assert_eq!(store.load_latest_valid().unwrap(), None);
    }
}
