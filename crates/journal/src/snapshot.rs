//! Snapshot files: one per seq, written atomically and verified on load. Snapshots are an
//! optimisation over replaying the journal, so a bad one is skipped, never trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::durable::{create_dir, sync_dir};
use crate::error::{IoAt, JournalError};
use crate::format::parse_seq;

/// Magic bytes opening every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"BRSSNAP\0";
/// Version of the snapshot file layout.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Bytes in a snapshot header.
pub const SNAPSHOT_HEADER_LEN: u64 = 36;

const TMP_SUFFIX: &str = ".tmp";

/// The snapshot files of one directory. Only one store may write to a directory at a time.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens `dir`, creating it, and removes temp files left by an interrupted `write`.
    pub fn open(dir: &Path) -> Result<SnapshotStore, JournalError> {
        create_dir(dir)?;
        for entry in fs::read_dir(dir).at(dir)? {
            let path = entry.at(dir)?.path();
            let is_tmp = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(TMP_SUFFIX))
                .and_then(parse_snapshot_name)
                .is_some();
            if is_tmp {
                fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(SnapshotStore { dir: dir.to_path_buf() })
    }

    /// Writes `snap-<seq:020>.bin` atomically (temp file, fsync, rename, fsync directory) and
    /// returns its path. An existing snapshot for `seq` is replaced.
    pub fn write(&self, seq: u64, payload: &[u8]) -> Result<PathBuf, JournalError> {
        let path = self.path_of(seq);
        let mut tmp = path.clone().into_os_string();
        tmp.push(TMP_SUFFIX);
        let tmp = PathBuf::from(tmp);
        let written = write_file(&tmp, seq, payload)
            .and_then(|()| fs::rename(&tmp, &path).at(&path))
            .and_then(|()| sync_dir(&self.dir));
        if written.is_err() {
            // Best effort: the error being returned matters more than a leftover temp file.
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| path)
    }

    /// Seqs of the snapshots present, ascending. Temp files are ignored.
    pub fn list(&self) -> Result<Vec<u64>, JournalError> {
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&self.dir).at(&self.dir)? {
            let name = entry.at(&self.dir)?.file_name();
            seqs.extend(name.to_str().and_then(parse_snapshot_name));
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Reads the snapshot for `seq`, verifying its header and checksum.
    pub fn load(&self, seq: u64) -> Result<Vec<u8>, JournalError> {
        let path = self.path_of(seq);
        let bad =
            |reason: &str| JournalError::BadSnapshot { path: path.clone(), reason: reason.into() };
        let mut file = File::open(&path).at(&path)?;
        let file_len = file.metadata().at(&path)?.len();
        let Some(payload_len) = file_len.checked_sub(SNAPSHOT_HEADER_LEN) else {
            return Err(bad("file shorter than the header"));
        };
        let mut header = [0u8; SNAPSHOT_HEADER_LEN as usize];
        file.read_exact(&mut header).at(&path)?;
        let header = SnapshotHeader::decode(&header).map_err(bad)?;
        if header.seq != seq {
            return Err(bad("header seq does not match file name"));
        }
        if header.payload_len != payload_len {
            return Err(bad("payload length does not match file size"));
        }
        // Sized by the file, not by the stored length.
        let mut payload = Vec::new();
        file.take(payload_len).read_to_end(&mut payload).at(&path)?;
        if payload.len() as u64 != payload_len {
            return Err(bad("file shrank while reading"));
        }
        if crc32c::crc32c(&payload) != header.payload_crc {
            return Err(bad("payload checksum mismatch"));
        }
        Ok(payload)
    }

    /// The newest snapshot that verifies. Invalid ones are logged and skipped: the journal
    /// is authoritative, so recovery merely replays more.
    pub fn load_latest_valid(&self) -> Result<Option<(u64, Vec<u8>)>, JournalError> {
        for seq in self.list()?.into_iter().rev() {
            match self.load(seq) {
                Ok(payload) => return Ok(Some((seq, payload))),
                Err(error @ JournalError::BadSnapshot { .. }) => {
                    tracing::warn!(%error, "snapshot: skipping invalid snapshot");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// Deletes all but the newest `keep` snapshots.
    pub fn retain(&self, keep: usize) -> Result<(), JournalError> {
        let seqs = self.list()?;
        let excess = seqs.len().saturating_sub(keep);
        for seq in seqs.iter().take(excess) {
            let path = self.path_of(*seq);
            fs::remove_file(&path).at(&path)?;
        }
        if excess > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("snap-{seq:020}.bin"))
    }
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    parse_seq(name.strip_prefix("snap-")?.strip_suffix(".bin")?)
}

fn write_file(path: &Path, seq: u64, payload: &[u8]) -> Result<(), JournalError> {
    let header = SnapshotHeader {
        seq,
        payload_len: payload.len() as u64,
        payload_crc: crc32c::crc32c(payload),
    };
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).open(path).at(path)?;
    file.write_all(&header.encode())
        .and_then(|()| file.write_all(payload))
        .and_then(|()| file.sync_all())
        .at(path)
}

struct SnapshotHeader {
    seq: u64,
    payload_len: u64,
    payload_crc: u32,
}

impl SnapshotHeader {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN as usize);
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8; SNAPSHOT_HEADER_LEN as usize]) -> Result<Self, &'static str> {
        let (covered, crc) = bytes.split_last_chunk::<4>().ok_or("incomplete header")?;
        let (magic, rest) = covered.split_first_chunk::<8>().ok_or("incomplete header")?;
        let (version, rest) = rest.split_first_chunk::<4>().ok_or("incomplete header")?;
        let (seq, rest) = rest.split_first_chunk::<8>().ok_or("incomplete header")?;
        let (payload_len, rest) = rest.split_first_chunk::<8>().ok_or("incomplete header")?;
        let (payload_crc, _) = rest.split_first_chunk::<4>().ok_or("incomplete header")?;
        if *magic != SNAPSHOT_MAGIC {
            return Err("bad snapshot magic");
        }
        if crc32c::crc32c(covered) != u32::from_le_bytes(*crc) {
            return Err("header checksum mismatch");
        }
        if u32::from_le_bytes(*version) != SNAPSHOT_VERSION {
            return Err("unsupported snapshot format version");
        }
        Ok(Self {
            seq: u64::from_le_bytes(*seq),
            payload_len: u64::from_le_bytes(*payload_len),
            payload_crc: u32::from_le_bytes(*payload_crc),
        })
    }
}
