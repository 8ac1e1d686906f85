//! The journal writer: appending, group commit, segment rolling, and recovery on open. It
//! must never report a record durable before it is fdatasync'ed, and never skip an invalid
//! record unless the torn-tail rule says it is the unfinished end of the last segment.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use crate::durable::{create_dir, sync_dir};
use crate::error::{IoAt, JournalError, corrupt};
use crate::format::{
    RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, Tip, encode_record, record_crc,
    segment_file_name,
};
use crate::reader::JournalReader;
use crate::segment::{
    READ_BUFFER_BYTES, Step, check_continuity, corrupt_before, later_valid_record, list_segments,
    read_header, read_record,
};

/// An append-only log of opaque payloads keyed by consecutive seqs.
pub trait Journal: Send {
    /// Buffers one record in memory. `seq` must be `last_seq() + 1`; the first record of an
    /// empty journal may have any seq >= 1. A rejected record changes nothing.
    fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), JournalError>;
    /// Writes everything buffered and fdatasyncs it. Once this returns `Ok`, every appended
    /// record survives a crash or power loss. After an `Err` the journal is poisoned.
    fn commit(&mut self) -> Result<(), JournalError>;
    /// Last appended seq, durable or not (0 if empty).
    fn last_seq(&self) -> u64;
    /// Last committed seq (0 if none).
    fn durable_seq(&self) -> u64;
}

/// Limits for a [`FileJournal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// A segment is closed once the next record would take it past this size; a segment
    /// always holds at least one record, so one oversized record gets a segment of its own.
    pub segment_bytes_max: u64,
    /// Largest payload `append` accepts; recorded in each new segment's header.
    pub payload_bytes_max: u32,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self { segment_bytes_max: 128 << 20, payload_bytes_max: 1 << 20 }
    }
}

/// What recovery found when opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Last valid seq, 0 if the journal is empty.
    pub last_seq: u64,
    pub records: u64,
    pub segments: u32,
    /// Bytes of torn tail cut off.
    pub truncated_bytes: u64,
}

/// A [`Journal`] stored as segment files in one directory. The caller must hold the
/// [`DataDirLock`](crate::DataDirLock) of the data directory.
#[derive(Debug)]
pub struct FileJournal {
    dir: PathBuf,
    opts: JournalOptions,
    /// Segment being appended to; `None` until the first commit of an empty journal.
    active: Option<ActiveSegment>,
    /// Segments to create at the next commit, in order.
    new_segments: Vec<NewSegment>,
    last_seq: u64,
    durable_seq: u64,
    chain: u32,
    poisoned: bool,
}

#[derive(Debug)]
struct ActiveSegment {
    file: File,
    path: PathBuf,
    /// Bytes written to the file.
    len: u64,
    payload_max: u32,
    /// Encoded records not yet written.
    pending: Vec<u8>,
}

#[derive(Debug)]
struct NewSegment {
    first_seq: u64,
    payload_max: u32,
    /// Header followed by encoded records.
    bytes: Vec<u8>,
}

impl ActiveSegment {
    fn write_pending(&mut self) -> Result<(), JournalError> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending).at(&self.path)?;
            self.len += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), JournalError> {
        self.file.sync_data().at(&self.path)
    }
}

impl FileJournal {
    /// Opens (creating if absent) the journal in `dir`, verifies every record, cuts a torn
    /// tail, and positions the journal after the last valid record. Corruption anywhere else
    /// is `Err(Corrupt)`.
    pub fn open(dir: &Path, opts: JournalOptions) -> Result<(FileJournal, Recovery), JournalError> {
        create_dir(dir)?;
        let segments = list_segments(dir)?;
        let mut recovery = Recovery::default();
        let mut tip: Option<Tip> = None;
        let mut kept: Option<(PathBuf, u64, u32)> = None;
        let mut payload = Vec::new();
        for (index, (first_seq, path)) in segments.iter().enumerate() {
            let is_last = index + 1 == segments.len();
            match scan_segment(path, *first_seq, is_last, tip, &mut payload)? {
                Scanned::Kept { header, tip: end, len, records, cut } => {
                    tip = Some(end);
                    recovery.records += records;
                    recovery.segments += 1;
                    recovery.truncated_bytes += cut;
                    kept = Some((path.clone(), len, header.payload_max));
                }
                Scanned::Removed { cut } => {
                    recovery.truncated_bytes += cut;
                    sync_dir(dir)?;
                }
            }
        }
        let active = match kept {
            Some((path, len, payload_max)) => {
                let file = OpenOptions::new().append(true).open(&path).at(&path)?;
                Some(ActiveSegment { file, path, len, payload_max, pending: Vec::new() })
            }
            None => None,
        };
        let tip = tip.filter(|_| recovery.records > 0).unwrap_or(Tip { next_seq: 1, chain: 0 });
        recovery.last_seq = tip.next_seq.wrapping_sub(1);
        let journal = FileJournal {
            dir: dir.to_path_buf(),
            opts,
            active,
            new_segments: Vec::new(),
            last_seq: recovery.last_seq,
            durable_seq: recovery.last_seq,
            chain: tip.chain,
            poisoned: false,
        };
        Ok((journal, recovery))
    }

    /// Reads records with seq >= `from_seq`, verifying as it goes; see [`JournalReader`].
    pub fn reader(dir: &Path, from_seq: u64) -> Result<JournalReader, JournalError> {
        JournalReader::new(dir, from_seq)
    }

    /// Where `append` puts a record of `len` payload bytes, or `None` if it needs a new segment.
    fn tail_buffer(&mut self, len: u32) -> Option<&mut Vec<u8>> {
        let (buffer, on_disk, payload_max) = match self.new_segments.last_mut() {
            Some(new) => (&mut new.bytes, 0, new.payload_max),
            None => {
                let active = self.active.as_mut()?;
                (&mut active.pending, active.len, active.payload_max)
            }
        };
        let size = on_disk + buffer.len() as u64;
        let has_records = size > SEGMENT_HEADER_LEN;
        let grown = size.saturating_add(RECORD_HEADER_LEN + u64::from(len));
        let full = has_records && grown > self.opts.segment_bytes_max;
        (len <= payload_max && !full).then_some(buffer)
    }

    fn write_out(&mut self) -> Result<(), JournalError> {
        if let Some(active) = self.active.as_mut() {
            active.write_pending()?;
        }
        let created = !self.new_segments.is_empty();
        for new in self.new_segments.drain(..) {
            // A successor must never exist on disk while its predecessor's tail may be lost:
            // recovery would see an incomplete non-last segment and call it corrupt.
            if let Some(active) = &self.active {
                active.sync()?;
            }
            let path = self.dir.join(segment_file_name(new.first_seq));
            let file = OpenOptions::new().create_new(true).append(true).open(&path).at(&path)?;
            let mut active = ActiveSegment {
                file,
                path,
                len: 0,
                payload_max: new.payload_max,
                pending: new.bytes,
            };
            active.write_pending()?;
            self.active = Some(active);
        }
        if let Some(active) = &self.active {
            active.sync()?;
        }
        if created {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

impl Journal for FileJournal {
    fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let in_order =
            if self.last_seq == 0 { seq >= 1 } else { self.last_seq.checked_add(1) == Some(seq) };
        if !in_order {
            return Err(JournalError::SeqGap {
                expected: self.last_seq.saturating_add(1),
                got: seq,
            });
        }
        let max = self.opts.payload_bytes_max;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= max)
            .ok_or(JournalError::PayloadTooLarge { len: payload.len(), max })?;
        let crc = record_crc(self.chain, seq, len, payload);
        match self.tail_buffer(len) {
            Some(buffer) => encode_record(buffer, len, seq, crc, payload),
            None => {
                let header =
                    SegmentHeader { first_seq: seq, chain_in: self.chain, payload_max: max };
                let mut bytes = header.encode();
                encode_record(&mut bytes, len, seq, crc, payload);
                self.new_segments.push(NewSegment { first_seq: seq, payload_max: max, bytes });
            }
        }
        self.last_seq = seq;
        self.chain = crc;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if self.durable_seq == self.last_seq {
            return Ok(());
        }
        // After a failed write or fsync the kernel may have dropped dirty pages, so the file
        // contents are unknown; only recovery on reopen can establish them again.
        self.write_out().inspect_err(|_| self.poisoned = true)?;
        self.durable_seq = self.last_seq;
        Ok(())
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn durable_seq(&self) -> u64 {
        self.durable_seq
    }
}

enum Scanned {
    /// `tip` follows the segment's last valid record, which ends at byte `len`.
    Kept { header: SegmentHeader, tip: Tip, len: u64, records: u64, cut: u64 },
    /// The last segment held no valid record and was deleted.
    Removed { cut: u64 },
}

/// Verifies one segment during recovery, cutting a torn tail if it is the last one.
fn scan_segment(
    path: &Path,
    name_seq: u64,
    is_last: bool,
    prev: Option<Tip>,
    payload: &mut Vec<u8>,
) -> Result<Scanned, JournalError> {
    let file = OpenOptions::new().read(true).write(is_last).open(path).at(path)?;
    let file_len = file.metadata().at(path)?.len();
    let mut input = BufReader::with_capacity(READ_BUFFER_BYTES, &file);
    let header = match read_header(&mut input, file_len, name_seq).at(path)? {
        Ok(header) => header,
        Err(reason) if is_last => {
            let (next_seq, chain) = prev.map_or((name_seq, None), |t| (t.next_seq, Some(t.chain)));
            if let Some(later) =
                later_valid_record(&mut input, 0, file_len, next_seq, chain, u32::MAX).at(path)?
            {
                return Err(corrupt_before(path, 0, reason, later));
            }
            drop(input);
            drop(file);
            fs::remove_file(path).at(path)?;
            tracing::warn!(file = %path.display(), bytes_cut = file_len, %reason,
                "journal: removed last segment with a torn header");
            return Ok(Scanned::Removed { cut: file_len });
        }
        Err(reason) => return Err(corrupt(path, 0, reason)),
    };
    if let Some(prev) = prev {
        check_continuity(path, &header, prev)?;
    }
    let mut tip = Tip { next_seq: header.first_seq, chain: header.chain_in };
    let mut pos = SEGMENT_HEADER_LEN;
    let mut records = 0;
    let problem = loop {
        match read_record(&mut input, pos, file_len, tip, header.payload_max, payload).at(path)? {
            Step::Record(h) => {
                tip = Tip::after(&h);
                pos += h.total_len();
                records += 1;
            }
            Step::End => break None,
            Step::Bad(problem) => break Some(problem),
        }
    };
    let mut cut = 0;
    if let Some(problem) = problem {
        if !is_last {
            return Err(corrupt(path, pos, problem.to_string()));
        }
        let later = later_valid_record(
            &mut input,
            pos,
            file_len,
            tip.next_seq,
            Some(tip.chain),
            header.payload_max,
        )
        .at(path)?;
        if let Some(later) = later {
            return Err(corrupt_before(path, pos, problem, later));
        }
        drop(input);
        file.set_len(pos).and_then(|()| file.sync_all()).at(path)?;
        cut = file_len - pos;
        tracing::warn!(file = %path.display(), offset = pos, bytes_cut = cut, %problem,
            "journal: cut torn tail");
    }
    if is_last && records == 0 {
        drop(file);
        fs::remove_file(path).at(path)?;
        tracing::info!(file = %path.display(), "journal: removed last segment holding no records");
        return Ok(Scanned::Removed { cut });
    }
    Ok(Scanned::Kept { header, tip, len: pos, records, cut })
}
