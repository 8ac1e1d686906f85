//! `copy_prefix`: a copy cut at any record is a valid journal that ends exactly there, across
//! segment boundaries and while the source keeps growing; a damaged source fails the copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_journal::{FileJournal, Journal, JournalError, JournalOptions, copy_prefix};

fn payload(seq: u64) -> Vec<u8> {
    format!("record {seq} ").repeat(1 + (seq % 7) as usize).into_bytes()
}

#[test]
fn a_copy_ends_at_the_chosen_record() {
    let src = tempfile::tempdir().unwrap();
    // Small segments: 40 records span several of them.
    let options = JournalOptions { segment_bytes_max: 400, payload_bytes_max: 1 << 20 };
    let (mut journal, _) = FileJournal::open(src.path(), options).unwrap();
    for seq in 1..=40 {
        journal.append(seq, &payload(seq)).unwrap();
        journal.commit().unwrap();
    }
    let segments = std::fs::read_dir(src.path()).unwrap().count();
    assert!(segments > 3, "{segments} segments");
    for cut in [1, 2, 17, 39, 40] {
        let dst = tempfile::tempdir().unwrap();
        let copied = copy_prefix(src.path(), dst.path(), cut).unwrap();
        assert!(!copied.is_empty() && copied.len() <= segments);
        // Every record up to the cut, in order, and nothing after.
        let read: Vec<(u64, Vec<u8>)> =
            FileJournal::reader(dst.path(), 0).unwrap().map(Result::unwrap).collect();
        assert_eq!(read.len() as u64, cut);
        for (seq, bytes) in &read {
            assert_eq!(bytes, &payload(*seq));
        }
        // Recovery finds a clean end: nothing to truncate, and it appends after the cut.
        let (mut copy, recovery) = FileJournal::open(dst.path(), options).unwrap();
        assert_eq!((recovery.last_seq, recovery.truncated_bytes), (cut, 0));
        copy.append(cut + 1, b"next").unwrap();
        copy.commit().unwrap();
        // A destination that already holds segments is refused.
        assert!(copy_prefix(src.path(), dst.path(), cut).is_err());
    }
    // The source goes on while a copy is taken: the copy still ends at the cut.
    journal.append(41, &payload(41)).unwrap();
    let dst = tempfile::tempdir().unwrap();
    copy_prefix(src.path(), dst.path(), 40).unwrap();
    journal.commit().unwrap();
    let (_, recovery) = FileJournal::open(dst.path(), options).unwrap();
    assert_eq!(recovery.last_seq, 40);
    // Nothing to copy for an empty exchange; a seq the journal never reached is an error.
    let empty = tempfile::tempdir().unwrap();
    assert!(copy_prefix(src.path(), empty.path(), 0).unwrap().is_empty());
    let beyond = tempfile::tempdir().unwrap();
    assert!(matches!(copy_prefix(src.path(), beyond.path(), 99), Err(JournalError::SeqGap { .. })));
}

#[test]
fn a_damaged_source_fails_the_copy() {
    let src = tempfile::tempdir().unwrap();
    let (mut journal, _) = FileJournal::open(src.path(), JournalOptions::default()).unwrap();
    for seq in 1..=10 {
        journal.append(seq, &payload(seq)).unwrap();
    }
    journal.commit().unwrap();
    drop(journal);
    let segment = src.path().join("00000000000000000001.wal");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let error = copy_prefix(src.path(), dst.path(), 10).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
}
