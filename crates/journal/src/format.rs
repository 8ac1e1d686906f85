//! Byte layout of journal segments: headers, records, the chained checksum, file names, and
//! the scan that separates a torn tail from corruption. Pure functions over bytes; no I/O.

use std::collections::HashMap;

/// Magic bytes opening every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"BRSJRNL\0";
/// Version of the segment and record layout.
pub const SEGMENT_VERSION: u32 = 1;
/// Bytes in a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Bytes in a record header (length, seq, checksum).
pub const RECORD_HEADER_LEN: u64 = 16;

const RECORD_HEADER_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub first_seq: u64,
    /// Checksum of the record before this segment's first one (0 at the start of the journal).
    pub chain_in: u32,
    /// Largest payload a record in this segment may have.
    pub payload_max: u32,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(&SEGMENT_MAGIC);
        out.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.payload_max.to_le_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&self.chain_in.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        const INCOMPLETE: &str = "incomplete segment header";
        let (covered, rest) = bytes.split_first_chunk::<28>().ok_or(INCOMPLETE)?;
        let mut f = Fields(covered);
        let fields = (|| Some((f.array::<8>()?, f.u32()?, f.u32()?, f.u64()?, f.u32()?)))();
        let (magic, version, payload_max, first_seq, chain_in) = fields.ok_or(INCOMPLETE)?;
        let crc = Fields(rest).u32().ok_or(INCOMPLETE)?;
        if magic != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        if crc32c::crc32c(covered) != crc {
            return Err("segment header checksum mismatch");
        }
        if version != SEGMENT_VERSION {
            return Err("unsupported segment format version");
        }
        if first_seq == 0 {
            return Err("segment header has first seq 0");
        }
        Ok(Self { first_seq, chain_in, payload_max })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub len: u32,
    pub seq: u64,
    pub crc: u32,
}

impl RecordHeader {
    /// `None` only if `bytes` is shorter than a header.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let mut f = Fields(bytes);
        Some(Self { len: f.u32()?, seq: f.u64()?, crc: f.u32()? })
    }

    /// Bytes the record occupies on disk.
    pub(crate) fn total_len(&self) -> u64 {
        RECORD_HEADER_LEN + u64::from(self.len)
    }
}

pub(crate) fn encode_record(out: &mut Vec<u8>, len: u32, seq: u64, crc: u32, payload: &[u8]) {
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// crc32c(prev || seq || len || payload): chaining through `prev` makes a missing,
/// reordered or spliced record fail verification.
pub(crate) fn record_crc(prev: u32, seq: u64, len: u32, payload: &[u8]) -> u32 {
    // One call over the fixed fields, one over the payload: each call has a fixed cost.
    let mut fixed = [0u8; 16];
    fixed[..4].copy_from_slice(&prev.to_le_bytes());
    fixed[4..12].copy_from_slice(&seq.to_le_bytes());
    fixed[12..].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&fixed), payload)
}

/// Where the verified part of the journal ends: the seq and chain value the next record needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tip {
    pub next_seq: u64,
    pub chain: u32,
}

impl Tip {
    pub(crate) fn after(record: &RecordHeader) -> Self {
        // Wrapping is harmless: no record can follow u64::MAX (appends are checked), so a
        // following record can never verify.
        Self { next_seq: record.seq.wrapping_add(1), chain: record.crc }
    }
}

pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_seq(name.strip_suffix(".wal")?)
}

/// Exactly 20 decimal digits, as written by `{:020}`.
pub(crate) fn parse_seq(digits: &str) -> Option<u64> {
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The torn-tail test. `tail` holds the bytes from the first invalid record to the end of
/// the last segment. Returns the offset in `tail` of a record that verifies with a seq of at
/// least `tip.next_seq`: one whose checksum chains from the last good record (`chain`, when
/// known), or from the stored checksum of an earlier candidate header with the preceding
/// seq. Such a record means intact data lies beyond the damage: corruption, not a torn write.
pub(crate) fn find_later_record(
    tail: &[u8],
    next_seq: u64,
    chain: Option<u32>,
    payload_max: u32,
) -> Option<usize> {
    // Every record takes at least a header, which bounds how far seqs can plausibly run.
    let seq_window = (tail.len() / RECORD_HEADER_BYTES) as u64;
    let mut seen: HashMap<u64, Vec<u32>> = HashMap::new();
    for offset in 0..tail.len() {
        let Some((header, rest)) = tail.get(offset..).and_then(|t| t.split_first_chunk::<16>())
        else {
            break;
        };
        let Some(h) = RecordHeader::decode(header) else { break };
        if h.seq.checked_sub(next_seq).is_none_or(|ahead| ahead > seq_window) {
            continue;
        }
        let payload = usize::try_from(h.len).ok().and_then(|len| rest.get(..len));
        if let Some(payload) = payload.filter(|_| h.len <= payload_max) {
            let verifies = |prev: u32| record_crc(prev, h.seq, h.len, payload) == h.crc;
            let chains_from_seen = h
                .seq
                .checked_sub(1)
                .and_then(|prev_seq| seen.get(&prev_seq))
                .is_some_and(|crcs| crcs.iter().any(|&c| verifies(c)));
            if chain.is_some_and(verifies) || chains_from_seen {
                return Some(offset);
            }
        }
        // Kept even when this record is damaged: its stored checksum may be what an intact
        // successor chains from.
        seen.entry(h.seq).or_default().push(h.crc);
    }
    None
}

/// Little-endian fields read front to back.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}
