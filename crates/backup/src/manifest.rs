//! `manifest.json`: what a backup holds and how to check it. Written last, so its presence
//! means the backup is complete.

use crate::error::{BackupError, IoAt};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path};

/// The manifest's file name inside a backup.
pub const MANIFEST: &str = "manifest.json";
/// The manifest layout this build writes and reads.
pub const FORMAT: u32 = 1;
/// A manifest larger than this is not one (it lists a few hundred files at most).
pub(crate) const MANIFEST_MAX_BYTES: u64 = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    /// The bourse version that wrote it.
    pub bourse_version: String,
    /// When the engine stood at `seq` (Unix ms).
    pub taken_at_ms: i64,
    /// The last journal record in the backup; the snapshot and the database are of this point.
    pub seq: u64,
    /// BLAKE3 of the engine state's canonical encoding at `seq` (as `bourse replay` prints it).
    pub state_hash: String,
    /// `sqlite` or `pg_dump`.
    pub database: String,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backup, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and checks a manifest: a format this build reads, and only plain relative file
    /// paths (a tampered manifest must not make a restore write outside its directory).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BackupError> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| BackupError::Damaged(format!("{MANIFEST} does not parse: {e}")))?;
        if manifest.format != FORMAT {
            return Err(BackupError::Damaged(format!(
                "{MANIFEST} has format {}; this bourse reads format {FORMAT}",
                manifest.format
            )));
        }
        for file in &manifest.files {
            if !is_plain_relative(&file.path) {
                return Err(BackupError::Damaged(format!(
                    "{MANIFEST} lists a file outside the backup: {:?}",
                    file.path
                )));
            }
        }
        if bourse_store::DatabaseFormat::parse(&manifest.database).is_none() {
            return Err(BackupError::Damaged(format!(
                "{MANIFEST} names an unknown database format {:?}",
                manifest.database
            )));
        }
        Ok(manifest)
    }

    /// The database file's entry.
    pub fn database_file(&self) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path.starts_with("database."))
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
}

/// Size and BLAKE3 of a file, read in large chunks.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize().to_hex().to_string()))
}

/// Lists every file under `root` (recursively) as manifest entries, sorted by path.
pub(crate) fn entries(root: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let relative = relative.join("/");
            if relative == MANIFEST {
                continue;
            }
            let (bytes, blake3) = hash_file(&path)?;
            out.push(FileEntry { path: relative, bytes, blake3 });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Checks `path` against its entry: size first (cheap), then the checksum.
pub(crate) fn check_file(path: &Path, entry: &FileEntry) -> Result<(), BackupError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(_) => return Err(BackupError::Damaged(format!("{} is missing", entry.path))),
    };
    if len != entry.bytes {
        return Err(BackupError::Damaged(format!(
            "{} has {len} bytes, the manifest says {}",
            entry.path, entry.bytes
        )));
    }
    let (_, hash) = hash_file(path)?;
    if hash != entry.blake3 {
        return Err(BackupError::Damaged(format!(
            "{} does not match its checksum (BLAKE3 {hash}, the manifest says {})",
            entry.path, entry.blake3
        )));
    }
    Ok(())
}

/// Writes bytes to `path` and syncs them.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = File::create(path).at(path)?;
    file.write_all(bytes).at(path)?;
    file.sync_all().at(path)
}

/// Syncs a directory's entries.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
