//! Sequential, verifying reads of a journal directory, for replay and for following a live
//! writer. It never writes: a torn tail is reported as the end, not cut.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{IoAt, JournalError, corrupt};
use crate::format::{SEGMENT_HEADER_LEN, Tip};
use crate::segment::{
    Problem, READ_BUFFER_BYTES, Step, check_continuity, corrupt_before, later_valid_record,
    list_segments, read_header, read_record,
};

/// Reads records with seq >= `from_seq` in order, verifying checksums, the chain and seq
/// continuity. It reads only what it finds valid: an incomplete or torn record at the end of
/// the last segment ends the iteration (a later call picks up records written since).
///
/// The first record returned must be `from_seq` itself (unless `from_seq` is 0, meaning "from
/// the start"); if the journal begins later, that is `Err(SeqGap)`, never a silent skip.
#[derive(Debug)]
pub struct JournalReader {
    dir: PathBuf,
    from_seq: u64,
    current: Option<ReadSegment>,
    tip: Tip,
    yielded: bool,
    /// Set after the iterator returned an error, so `for` loops terminate.
    fused: bool,
}

#[derive(Debug)]
struct ReadSegment {
    path: PathBuf,
    first_seq: u64,
    input: BufReader<File>,
    pos: u64,
    /// File length as last observed; re-read when the end is reached.
    len: u64,
    payload_max: u32,
}

/// What to do after reaching the end of what the current segment shows.
enum AtEnd {
    Retry,
    Next { first_seq: u64, path: PathBuf, is_last: bool },
    Stop,
}

impl JournalReader {
    pub(crate) fn new(dir: &Path, from_seq: u64) -> Result<Self, JournalError> {
        list_segments(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            from_seq,
            current: None,
            tip: Tip { next_seq: 0, chain: 0 },
            yielded: false,
            fused: false,
        })
    }

    /// Reads the next record's payload into `buf` (cleared first) and returns its seq;
    /// `Ok(None)` at the end. Reuses `buf` and the read buffer: no allocation per record.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, JournalError> {
        loop {
            let Some(seg) = self.current.as_mut() else {
                if self.enter_first()? {
                    continue;
                }
                return Ok(None);
            };
            let step =
                read_record(&mut seg.input, seg.pos, seg.len, self.tip, seg.payload_max, buf)
                    .at(&seg.path)?;
            let problem = match step {
                Step::Record(h) => {
                    seg.pos += h.total_len();
                    self.tip = Tip::after(&h);
                    if h.seq < self.from_seq {
                        continue;
                    }
                    if !self.yielded && self.from_seq != 0 && h.seq != self.from_seq {
                        return Err(JournalError::SeqGap { expected: self.from_seq, got: h.seq });
                    }
                    self.yielded = true;
                    return Ok(Some(h.seq));
                }
                Step::End => None,
                Step::Bad(problem) => Some(problem),
            };
            match self.at_end(problem)? {
                AtEnd::Retry => {}
                AtEnd::Next { first_seq, path, is_last } => {
                    if !self.enter(first_seq, path, is_last)? {
                        buf.clear();
                        return Ok(None);
                    }
                }
                AtEnd::Stop => {
                    buf.clear();
                    return Ok(None);
                }
            }
        }
    }

    /// Where the reader stands: the first seq of the segment it reads and the byte offset just
    /// after the last record it returned from it. `None` before the first record.
    pub fn position(&self) -> Option<(u64, u64)> {
        self.current.as_ref().map(|seg| (seg.first_seq, seg.pos))
    }

    /// Decides how to continue when the current segment shows no further valid record.
    fn at_end(&mut self, problem: Option<Problem>) -> Result<AtEnd, JournalError> {
        let Some(seg) = self.current.as_mut() else { return Ok(AtEnd::Stop) };
        // List before re-reading the length: once a successor exists the writer has finished
        // this segment, so the length read afterwards is final.
        let segments = list_segments(&self.dir)?;
        let index = segments.iter().position(|(first_seq, _)| *first_seq > seg.first_seq);
        let len = seg.input.get_ref().metadata().at(&seg.path)?.len();
        seg.input.seek(SeekFrom::Start(seg.pos)).at(&seg.path)?;
        let may_complete = matches!(problem, None | Some(Problem::Incomplete));
        if may_complete && len > seg.len {
            seg.len = len;
            return Ok(AtEnd::Retry);
        }
        let next = index.and_then(|i| Some((i, segments.get(i)?)));
        match (problem, next) {
            (None, Some((i, (first_seq, path)))) => Ok(AtEnd::Next {
                first_seq: *first_seq,
                path: path.clone(),
                is_last: i + 1 == segments.len(),
            }),
            (None, None) => Ok(AtEnd::Stop),
            (Some(problem), Some(_)) => Err(corrupt(&seg.path, seg.pos, problem.to_string())),
            (Some(problem), None) => {
                let later = later_valid_record(
                    &mut seg.input,
                    seg.pos,
                    len,
                    self.tip.next_seq,
                    Some(self.tip.chain),
                    seg.payload_max,
                )
                .at(&seg.path)?;
                if let Some(later) = later {
                    return Err(corrupt_before(&seg.path, seg.pos, problem, later));
                }
                seg.input.seek(SeekFrom::Start(seg.pos)).at(&seg.path)?;
                Ok(AtEnd::Stop)
            }
        }
    }

    /// Opens the segment holding `from_seq` (or the first one if the journal starts later).
    fn enter_first(&mut self) -> Result<bool, JournalError> {
        let segments = list_segments(&self.dir)?;
        let index =
            segments.iter().rposition(|(first_seq, _)| *first_seq <= self.from_seq).unwrap_or(0);
        let Some((first_seq, path)) = segments.get(index) else { return Ok(false) };
        self.enter(*first_seq, path.clone(), index + 1 == segments.len())
    }

    /// Switches to the segment at `path`; `false` if it holds nothing valid yet.
    fn enter(
        &mut self,
        first_seq: u64,
        path: PathBuf,
        is_last: bool,
    ) -> Result<bool, JournalError> {
        let file = File::open(&path).at(&path)?;
        let len = file.metadata().at(&path)?.len();
        let mut input = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let prev = self.current.as_ref().map(|_| self.tip);
        let header = match read_header(&mut input, len, first_seq).at(&path)? {
            Ok(header) => header,
            Err(reason) => {
                if !is_last {
                    return Err(corrupt(&path, 0, reason));
                }
                let (next_seq, chain) =
                    prev.map_or((first_seq, None), |t| (t.next_seq, Some(t.chain)));
                return match later_valid_record(&mut input, 0, len, next_seq, chain, u32::MAX)
                    .at(&path)?
                {
                    Some(later) => Err(corrupt_before(&path, 0, reason, later)),
                    // Being created, or torn; recovery on open deals with it.
                    None => Ok(false),
                };
            }
        };
        if let Some(prev) = prev {
            check_continuity(&path, &header, prev)?;
        }
        self.tip = Tip { next_seq: header.first_seq, chain: header.chain_in };
        self.current = Some(ReadSegment {
            path,
            first_seq,
            input,
            pos: SEGMENT_HEADER_LEN,
            len,
            payload_max: header.payload_max,
        });
        Ok(true)
    }
}

impl Iterator for JournalReader {
    type Item = Result<(u64, Vec<u8>), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.fused {
            return None;
        }
        let mut payload = Vec::new();
        match self.next_into(&mut payload) {
            Ok(Some(seq)) => Some(Ok((seq, payload))),
            Ok(None) => None,
            Err(e) => {
                self.fused = true;
                Some(Err(e))
            }
        }
    }
}
