//! Reading segment files: listing them, verifying headers and records one at a time, and
//! applying the torn-tail rule. Shared by recovery (`FileJournal::open`) and `JournalReader`;
//! never writes.

use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{IoAt, JournalError, corrupt};
use crate::format::{
    RecordHeader, SEGMENT_HEADER_LEN, SegmentHeader, Tip, find_later_record,
    parse_segment_file_name, record_crc,
};

/// Buffer for sequential reads; large so replay is bounded by checksumming, not syscalls.
pub(crate) const READ_BUFFER_BYTES: usize = 1 << 20;

/// Segment files in `dir` as (first seq, path), ascending. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        if let Some(first_seq) = name.to_str().and_then(parse_segment_file_name) {
            segments.push((first_seq, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(first_seq, _)| *first_seq);
    Ok(segments)
}

/// Reads and verifies the header at the start of `input`; the inner `Err` is why it is invalid.
pub(crate) fn read_header<R: Read>(
    input: &mut R,
    file_len: u64,
    name_seq: u64,
) -> io::Result<Result<SegmentHeader, &'static str>> {
    if file_len < SEGMENT_HEADER_LEN {
        return Ok(Err("incomplete segment header"));
    }
    let mut bytes = [0u8; SEGMENT_HEADER_LEN as usize];
    input.read_exact(&mut bytes)?;
    Ok(SegmentHeader::decode(&bytes).and_then(|h| {
        if h.first_seq == name_seq { Ok(h) } else { Err("header seq does not match file name") }
    }))
}

/// A segment must start exactly where the previous one ended, chain included.
pub(crate) fn check_continuity(
    path: &Path,
    header: &SegmentHeader,
    prev: Tip,
) -> Result<(), JournalError> {
    if header.first_seq != prev.next_seq {
        return Err(corrupt(
            path,
            0,
            format!(
                "segment starts at seq {} but the previous segment ends before seq {} \
                 (missing or extra segment)",
                header.first_seq, prev.next_seq
            ),
        ));
    }
    if header.chain_in != prev.chain {
        return Err(corrupt(path, 0, "segment chain value does not continue the previous segment"));
    }
    Ok(())
}

/// Why the record at some offset is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    Incomplete,
    TooLong { len: u32, max: u32 },
    Checksum,
    Seq { got: u64, expected: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => write!(f, "incomplete record"),
            Self::TooLong { len, max } => {
                write!(f, "record length {len} exceeds the segment's limit of {max}")
            }
            Self::Checksum => write!(f, "record checksum mismatch"),
            Self::Seq { got, expected } => write!(f, "record has seq {got}, expected {expected}"),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Step {
    Record(RecordHeader),
    /// `pos` is exactly the end of the file.
    End,
    Bad(Problem),
}

/// Reads the record at `pos` (where `input` is positioned) into `payload`. Lengths are checked
/// against the limit and the file size before anything is allocated. After `Bad` the position
/// of `input` is unspecified.
pub(crate) fn read_record<R: Read>(
    input: &mut R,
    pos: u64,
    file_len: u64,
    tip: Tip,
    payload_max: u32,
    payload: &mut Vec<u8>,
) -> io::Result<Step> {
    let available = file_len.saturating_sub(pos);
    if available == 0 {
        return Ok(Step::End);
    }
    let mut header = [0u8; 16];
    if available < header.len() as u64 {
        return Ok(Step::Bad(Problem::Incomplete));
    }
    input.read_exact(&mut header)?;
    let Some(h) = RecordHeader::decode(&header) else {
        return Ok(Step::Bad(Problem::Incomplete));
    };
    if h.len > payload_max {
        return Ok(Step::Bad(Problem::TooLong { len: h.len, max: payload_max }));
    }
    let (true, Ok(len)) = (h.total_len() <= available, usize::try_from(h.len)) else {
        return Ok(Step::Bad(Problem::Incomplete));
    };
    payload.clear();
    payload.resize(len, 0);
    input.read_exact(payload)?;
    if record_crc(tip.chain, h.seq, h.len, payload) != h.crc {
        return Ok(Step::Bad(Problem::Checksum));
    }
    if h.seq != tip.next_seq {
        return Ok(Step::Bad(Problem::Seq { got: h.seq, expected: tip.next_seq }));
    }
    Ok(Step::Record(h))
}

/// Torn-tail rule for the invalid bytes `from..file_len` of the last segment: the offset of a
/// later record that still verifies (corruption), or `None` (a torn tail that may be cut).
pub(crate) fn later_valid_record<R: Read + Seek>(
    input: &mut R,
    from: u64,
    file_len: u64,
    next_seq: u64,
    chain: Option<u32>,
    payload_max: u32,
) -> io::Result<Option<u64>> {
    input.seek(SeekFrom::Start(from))?;
    // Only runs after a failure; bounded by the file's real size, not by a stored length.
    let mut tail = Vec::new();
    input.take(file_len.saturating_sub(from)).read_to_end(&mut tail)?;
    Ok(find_later_record(&tail, next_seq, chain, payload_max).map(|at| from + at as u64))
}

/// The `Corrupt` error for an invalid record at `offset` followed by a valid one at `later`.
pub(crate) fn corrupt_before(
    path: &Path,
    offset: u64,
    what: impl fmt::Display,
    later: u64,
) -> JournalError {
    corrupt(path, offset, format!("{what}, yet a valid record follows at offset {later}"))
}
