//! Copying a journal up to a chosen record, for backups: the copy is a valid journal that ends
//! exactly at that record, even while the writer keeps appending to the source.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::durable::{create_dir, sync_dir};
use crate::error::{IoAt, JournalError};
use crate::reader::JournalReader;
use crate::segment::list_segments;

/// Copies every segment of the journal in `src` into `dst` (created; it must hold no segment),
/// cutting the segment that holds record `last_seq` right after that record, so the copy ends at
/// `last_seq`. Earlier segments are sealed and copied whole; the cut segment is read through
/// the verifying reader, so a damaged source fails here rather than in a restore. Returns the
/// copied files as (path in `dst`, bytes). Safe while the engine appends: records past
/// `last_seq` are never copied.
pub fn copy_prefix(
    src: &Path,
    dst: &Path,
    last_seq: u64,
) -> Result<Vec<(PathBuf, u64)>, JournalError> {
    create_dir(dst)?;
    if !list_segments(dst)?.is_empty() {
        return Err(JournalError::Io {
            path: dst.to_path_buf(),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "already holds journal segments"),
        });
    }
    if last_seq == 0 {
        return Ok(Vec::new());
    }
    let segments: Vec<(u64, PathBuf)> =
        list_segments(src)?.into_iter().filter(|(first, _)| *first <= last_seq).collect();
    let Some((last_first, _)) = segments.last() else {
        return Err(JournalError::SeqGap { expected: last_seq, got: 0 });
    };
    let cut_at = end_of_record(src, *last_first, last_seq)?;
    let mut copied = Vec::with_capacity(segments.len());
    for (first, path) in &segments {
        let limit = if first == last_first { Some(cut_at) } else { None };
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        let target = dst.join(name);
        let bytes = copy_file(path, &target, limit)?;
        copied.push((target, bytes));
    }
    sync_dir(dst)?;
    Ok(copied)
}

/// The byte offset just after record `last_seq` in the segment starting at `segment_first`.
fn end_of_record(dir: &Path, segment_first: u64, last_seq: u64) -> Result<u64, JournalError> {
    let mut reader = JournalReader::new(dir, segment_first)?;
    let mut buf = Vec::new();
    while let Some(seq) = reader.next_into(&mut buf)? {
        if seq == last_seq {
            if let Some((first, offset)) = reader.position()
                && first == segment_first
            {
                return Ok(offset);
            }
            break;
        }
    }
    Err(JournalError::SeqGap { expected: last_seq, got: reader.position().map_or(0, |p| p.0) })
}

/// Copies `src` to `dst` (at most `limit` bytes) and syncs it; returns the bytes copied.
fn copy_file(src: &Path, dst: &Path, limit: Option<u64>) -> Result<u64, JournalError> {
    let input = File::open(src).at(src)?;
    let mut input: Box<dyn Read> = match limit {
        Some(limit) => Box::new(input.take(limit)),
        None => Box::new(input),
    };
    let mut output = File::create(dst).at(dst)?;
    let bytes = io::copy(&mut input, &mut output).at(dst)?;
    output.flush().at(dst)?;
    output.sync_all().at(dst)?;
    if let Some(limit) = limit
        && bytes != limit
    {
        let _ = fs::remove_file(dst);
        return Err(JournalError::Io {
            path: src.to_path_buf(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "segment shorter than read"),
        });
    }
    Ok(bytes)
}
