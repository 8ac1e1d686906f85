//! Journal writer, recovery and reader behaviour through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg(test)]

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bourse_journal::{
    FileJournal, Journal, JournalError, JournalOptions, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};

/// Deterministic xorshift so failures reproduce without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Payloads of 0..max bytes, empty about one time in five.
    fn payload(&mut self, max: u64) -> Vec<u8> {
        if self.below(5) == 0 {
            return Vec::new();
        }
        let len = self.below(max);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn opts(segment_bytes_max: u64) -> JournalOptions {
    JournalOptions { segment_bytes_max, ..JournalOptions::default() }
}

/// Appends `payloads` as seqs `first..`, committing after each record.
fn write(dir: &Path, opts: JournalOptions, first: u64, payloads: &[Vec<u8>]) {
    let (mut journal, _) = FileJournal::open(dir, opts).unwrap();
    for (seq, payload) in (first..).zip(payloads) {
        journal.append(seq, payload).unwrap();
        journal.commit().unwrap();
    }
}

fn read_all(dir: &Path, from_seq: u64) -> Vec<(u64, Vec<u8>)> {
    FileJournal::reader(dir, from_seq).unwrap().collect::<Result<_, _>>().unwrap()
}

fn numbered(first: u64, payloads: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    (first..).zip(payloads.iter().cloned()).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn append_bytes(path: &Path, extra: &[u8]) {
    use std::io::Write;
    OpenOptions::new().append(true).open(path).unwrap().write_all(extra).unwrap();
}

fn assert_corrupt(dir: &Path) {
    match FileJournal::open(dir, opts(u64::MAX)) {
        Err(JournalError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn reader_fails(dir: &Path) -> bool {
    FileJournal::reader(dir, 0).unwrap().any(|r| r.is_err())
}

fn record_len(payload: &[u8]) -> u64 {
    RECORD_HEADER_LEN + payload.len() as u64
}

#[test]
fn round_trip_across_segment_rollovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let segment_max = 300;
    let mut rng = Rng(0x5eed);
    let payloads: Vec<Vec<u8>> = (0..600).map(|_| rng.payload(120)).collect();

    let (mut journal, recovery) = FileJournal::open(dir, opts(segment_max)).unwrap();
    assert_eq!(recovery, Default::default());
    let mut seq = 0;
    for batch in payloads.chunks(17) {
        for payload in batch {
            seq += 1;
            journal.append(seq, payload).unwrap();
        }
        assert_eq!(journal.last_seq(), seq);
        assert_eq!(journal.durable_seq(), seq - batch.len() as u64);
        journal.commit().unwrap();
        assert_eq!(journal.durable_seq(), seq);
    }
    drop(journal);

    let segments = segment_files(dir);
    assert!(segments.len() > 10, "only {} segments", segments.len());
    for path in &segments {
        // Over the limit only when a single record does not fit an empty segment.
        let len = file_len(path);
        assert!(len <= segment_max || len <= SEGMENT_HEADER_LEN + record_len(&[0; 120]));
    }

    let (journal, recovery) = FileJournal::open(dir, opts(segment_max)).unwrap();
    assert_eq!(recovery.last_seq, 600);
    assert_eq!(recovery.records, 600);
    assert_eq!(recovery.segments as usize, segments.len());
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!((journal.last_seq(), journal.durable_seq()), (600, 600));

    let expected = numbered(1, &payloads);
    assert_eq!(read_all(dir, 0), expected);
    assert_eq!(read_all(dir, 1), expected);
    assert_eq!(read_all(dir, 337), expected[336..]);
    assert_eq!(read_all(dir, 600), expected[599..]);
    assert!(read_all(dir, 601).is_empty());

    // next_into reuses the caller's buffer.
    let mut reader = FileJournal::reader(dir, 250).unwrap();
    let mut buf = vec![0xff; 7];
    for (seq, payload) in &expected[249..] {
        assert_eq!(reader.next_into(&mut buf).unwrap(), Some(*seq));
        assert_eq!(&buf, payload);
    }
    assert_eq!(reader.next_into(&mut buf).unwrap(), None);
}

#[test]
fn appending_after_reopen_continues_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rng = Rng(7);
    let payloads: Vec<Vec<u8>> = (0..60).map(|_| rng.payload(50)).collect();
    write(dir, opts(200), 1, &payloads[..30]);
    write(dir, opts(200), 31, &payloads[30..]);
    let (_, recovery) = FileJournal::open(dir, opts(200)).unwrap();
    assert_eq!((recovery.last_seq, recovery.records), (60, 60));
    assert_eq!(read_all(dir, 0), numbered(1, &payloads));
}

#[test]
fn uncommitted_records_are_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut journal, _) = FileJournal::open(dir, opts(u64::MAX)).unwrap();
    journal.append(1, b"one").unwrap();
    journal.commit().unwrap();
    journal.append(2, b"two").unwrap();
    assert_eq!((journal.last_seq(), journal.durable_seq()), (2, 1));
    assert_eq!(read_all(dir, 0), vec![(1, b"one".to_vec())]);
    drop(journal);
    let (journal, recovery) = FileJournal::open(dir, opts(u64::MAX)).unwrap();
    assert_eq!((recovery.last_seq, journal.last_seq()), (1, 1));
}

/// Writes `payloads` into one segment and returns its path.
fn single_segment(dir: &Path, payloads: &[Vec<u8>]) -> PathBuf {
    write(dir, opts(u64::MAX), 1, payloads);
    let segments = segment_files(dir);
    assert_eq!(segments.len(), 1);
    segments[0].clone()
}

#[test]
fn torn_tail_of_every_length_is_cut_and_the_chain_continues() {
    let mut rng = Rng(11);
    let payloads: Vec<Vec<u8>> = (0..5).map(|_| rng.payload(30)).chain([vec![9; 40]]).collect();
    let last = record_len(&payloads[5]);
    for cut in 1..=last {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = single_segment(dir, &payloads);
        let full = file_len(&path);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(full - cut).unwrap();

        let (mut journal, recovery) = FileJournal::open(dir, opts(u64::MAX)).unwrap();
        assert_eq!(recovery.last_seq, 5, "cut {cut}");
        assert_eq!(recovery.records, 5);
        assert_eq!(recovery.truncated_bytes, last - cut);
        assert_eq!(file_len(&path), full - last);

        journal.append(6, b"after the tear").unwrap();
        journal.commit().unwrap();
        drop(journal);
        let (_, recovery) = FileJournal::open(dir, opts(u64::MAX)).unwrap();
        assert_eq!((recovery.last_seq, recovery.truncated_bytes), (6, 0));
        let mut expected = numbered(1, &payloads[..5]);
        expected.push((6, b"after the tear".to_vec()));
        assert_eq!(read_all(dir, 0), expected);
    }
}

#[test]
fn torn_fresh_segment_is_removed_down_to_an_empty_file() {
    // With a tiny limit every record gets its own segment; tear the last one anywhere,
    // header included.
    let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 24]).collect();
    let seg_len = SEGMENT_HEADER_LEN + record_len(&payloads[3]);
    for cut in 1..=seg_len {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, opts(1), 1, &payloads);
        let path = segment_files(dir).pop().unwrap();
        assert_eq!(file_len(&path), seg_len);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(seg_len - cut).unwrap();

        let (mut journal, recovery) = FileJournal::open(dir, opts(1)).unwrap();
        assert_eq!((recovery.last_seq, recovery.segments), (3, 3), "cut {cut}");
        let remaining = seg_len - cut;
        let torn = if remaining >= SEGMENT_HEADER_LEN {
            remaining - SEGMENT_HEADER_LEN
        } else {
            remaining
        };
        assert_eq!(recovery.truncated_bytes, torn);
        assert!(!path.exists());

        journal.append(4, &payloads[3]).unwrap();
        journal.commit().unwrap();
        drop(journal);
        assert_eq!(read_all(dir, 0), numbered(1, &payloads));
    }
}

#[test]
fn zeros_or_garbage_after_the_last_record_are_a_torn_tail() {
    let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; usize::from(i) * 5]).collect();
    let mut rng = Rng(99);
    let mut tails: Vec<Vec<u8>> = [1, 15, 16, 17, 100, 4096].iter().map(|&n| vec![0; n]).collect();
    tails
        .extend([1, 16, 17, 333, 5000].iter().map(|&n| (0..n).map(|_| rng.next() as u8).collect()));
    // A partial record followed by a zero-filled block, as after a crash mid-write.
    let mut partial = 12u32.to_le_bytes().to_vec();
    partial.extend(9u64.to_le_bytes());
    partial.extend([0; 512]);
    tails.push(partial);

    for tail in tails {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = single_segment(dir, &payloads);
        let full = file_len(&path);
        append_bytes(&path, &tail);

        let (mut journal, recovery) = FileJournal::open(dir, opts(u64::MAX)).unwrap();
        assert_eq!(recovery.last_seq, 8);
        assert_eq!(recovery.truncated_bytes, tail.len() as u64);
        assert_eq!(file_len(&path), full);
        journal.append(9, b"nine").unwrap();
        journal.commit().unwrap();
        drop(journal);
        let mut expected = numbered(1, &payloads);
        expected.push((9, b"nine".to_vec()));
        assert_eq!(read_all(dir, 0), expected);
    }
}

#[test]
fn reader_stops_cleanly_at_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10]).collect();
    let path = single_segment(dir, &payloads);
    append_bytes(&path, &[0; 100]);
    assert_eq!(read_all(dir, 0), numbered(1, &payloads));
    let full = file_len(&path);
    OpenOptions::new().write(true).open(&path).unwrap().set_len(full - 100 - 5).unwrap();
    assert_eq!(read_all(dir, 0), numbered(1, &payloads[..2]));
}

#[test]
fn flipping_any_byte_of_an_early_record_is_corruption() {
    let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 20]).collect();
    let start = SEGMENT_HEADER_LEN + record_len(&payloads[0]);
    for offset in start..start + record_len(&payloads[1]) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = single_segment(dir, &payloads);
        let full = file_len(&path);
        flip_byte(&path, offset);
        assert!(reader_fails(dir), "reader accepted flip at {offset}");
        assert_corrupt(dir);
        assert_eq!(file_len(&path), full, "corrupt journal must not be truncated");
    }
}

#[test]
fn flipping_a_byte_of_the_segment_header_is_corruption() {
    let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 8]).collect();
    for offset in 0..SEGMENT_HEADER_LEN {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = single_segment(dir, &payloads);
        flip_byte(&path, offset);
        assert_corrupt(dir);
        assert!(reader_fails(dir));
        assert!(path.exists());
    }
}

#[test]
fn damage_in_a_non_last_segment_is_corruption() {
    let payloads: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 30]).collect();
    let setup = |dir: &Path| {
        write(dir, opts(200), 1, &payloads);
        let segments = segment_files(dir);
        assert!(segments.len() >= 3);
        segments
    };

    // The last record of the first segment: nothing after it in that file vouches for it,
    // yet it is not a tail.
    let tmp = tempfile::tempdir().unwrap();
    let first = setup(tmp.path())[0].clone();
    flip_byte(&first, file_len(&first) - 1);
    assert_corrupt(tmp.path());
    assert!(reader_fails(tmp.path()));

    let tmp = tempfile::tempdir().unwrap();
    let first = setup(tmp.path())[0].clone();
    OpenOptions::new().write(true).open(&first).unwrap().set_len(file_len(&first) - 1).unwrap();
    assert_corrupt(tmp.path());
    assert!(reader_fails(tmp.path()));

    let tmp = tempfile::tempdir().unwrap();
    let second = setup(tmp.path())[1].clone();
    flip_byte(&second, 3);
    assert_corrupt(tmp.path());
    assert!(reader_fails(tmp.path()));
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 30]).collect();
    write(dir, opts(200), 1, &payloads);
    let segments = segment_files(dir);
    assert!(segments.len() >= 3);
    fs::remove_file(&segments[1]).unwrap();
    assert_corrupt(dir);
    assert!(reader_fails(dir));
}

#[test]
fn a_segment_swapped_in_from_another_journal_is_corruption() {
    // Same seqs, different history: only the chain tells them apart.
    let payloads: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 30]).collect();
    let mut other = payloads.clone();
    other[0] = b"different first record".to_vec();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(a.path(), opts(200), 1, &payloads);
    write(b.path(), opts(200), 1, &other);
    let (sa, sb) = (segment_files(a.path()), segment_files(b.path()));
    assert_eq!(sa.len(), sb.len());
    fs::copy(&sb[1], &sa[1]).unwrap();
    assert_corrupt(a.path());
    assert!(reader_fails(a.path()));
}

#[test]
fn rejected_appends_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let small = JournalOptions { payload_bytes_max: 64, ..JournalOptions::default() };
    let (mut journal, _) = FileJournal::open(dir, small).unwrap();
    assert!(matches!(journal.append(0, b"x"), Err(JournalError::SeqGap { expected: 1, got: 0 })));
    journal.append(1, b"one").unwrap();
    journal.append(2, b"two").unwrap();
    journal.commit().unwrap();
    let path = segment_files(dir).pop().unwrap();
    let len = file_len(&path);

    assert!(matches!(journal.append(4, b"x"), Err(JournalError::SeqGap { expected: 3, got: 4 })));
    assert!(matches!(journal.append(2, b"x"), Err(JournalError::SeqGap { expected: 3, got: 2 })));
    assert!(matches!(
        journal.append(3, &[0; 65]),
        Err(JournalError::PayloadTooLarge { len: 65, max: 64 })
    ));
    assert_eq!((journal.last_seq(), journal.durable_seq()), (2, 2));
    journal.commit().unwrap();
    assert_eq!(file_len(&path), len);

    journal.append(3, &[3; 64]).unwrap();
    journal.commit().unwrap();
    drop(journal);
    let (_, recovery) = FileJournal::open(dir, small).unwrap();
    assert_eq!((recovery.last_seq, recovery.records), (3, 3));
}

#[test]
fn an_empty_journal_may_start_at_any_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3]).collect();
    write(dir, opts(100), 101, &payloads);
    let (_, recovery) = FileJournal::open(dir, opts(100)).unwrap();
    assert_eq!((recovery.last_seq, recovery.records), (110, 10));
    let expected = numbered(101, &payloads);
    assert_eq!(read_all(dir, 0), expected);
    assert_eq!(read_all(dir, 101), expected);
    assert_eq!(read_all(dir, 105), expected[4..]);
    // Asking for history the journal does not have is an error, not a silent skip.
    let first = FileJournal::reader(dir, 1).unwrap().next().unwrap();
    assert!(matches!(first, Err(JournalError::SeqGap { expected: 1, got: 101 })));
}

#[test]
fn reader_follows_a_live_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut journal, _) = FileJournal::open(dir, opts(120)).unwrap();
    let mut reader = FileJournal::reader(dir, 1).unwrap();
    let mut buf = Vec::new();
    assert_eq!(reader.next_into(&mut buf).unwrap(), None);
    let mut seq = 0;
    for round in 0..5u8 {
        for _ in 0..4 {
            seq += 1;
            journal.append(seq, &[round; 25]).unwrap();
        }
        // Appended but uncommitted records are invisible.
        assert_eq!(reader.next_into(&mut buf).unwrap(), None);
        journal.commit().unwrap();
        for expected in seq - 3..=seq {
            assert_eq!(reader.next_into(&mut buf).unwrap(), Some(expected));
            assert_eq!(buf, [round; 25]);
        }
        assert_eq!(reader.next_into(&mut buf).unwrap(), None);
    }
    assert!(segment_files(dir).len() > 3);
}

#[test]
fn an_empty_last_segment_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 5]).collect();
    write(dir, opts(u64::MAX), 1, &payloads);
    let empty = dir.join("00000000000000000004.wal");
    fs::write(&empty, b"").unwrap();
    assert_eq!(read_all(dir, 0), numbered(1, &payloads));
    let (mut journal, recovery) = FileJournal::open(dir, opts(u64::MAX)).unwrap();
    assert_eq!((recovery.last_seq, recovery.segments, recovery.truncated_bytes), (3, 1, 0));
    journal.append(4, b"four").unwrap();
    journal.commit().unwrap();
    drop(journal);
    assert_eq!(read_all(dir, 4), vec![(4, b"four".to_vec())]);
}

#[test]
fn a_failed_commit_poisons_the_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut journal, _) = FileJournal::open(dir, opts(1)).unwrap();
    journal.append(1, b"one").unwrap();
    journal.commit().unwrap();
    // Occupy the name of the next segment so creating it fails.
    fs::create_dir(dir.join("00000000000000000002.wal")).unwrap();
    journal.append(2, b"two").unwrap();
    assert!(matches!(journal.commit(), Err(JournalError::Io { .. })));
    assert_eq!(journal.durable_seq(), 1);
    assert!(matches!(journal.append(3, b"three"), Err(JournalError::Poisoned)));
    assert!(matches!(journal.commit(), Err(JournalError::Poisoned)));
}
