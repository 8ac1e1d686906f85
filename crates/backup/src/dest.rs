//! Where backups go and come from: a local directory (another disk, a mounted remote
//! filesystem) or an S3-compatible bucket. Either holds one directory (key prefix) per backup.

use crate::error::{BackupError, IoAt, blocking};
use crate::manifest::{MANIFEST, MANIFEST_MAX_BYTES, Manifest, sync_dir};
use crate::name::parse_backup_name;
use crate::s3::{S3, S3Settings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

/// A place holding backups.
#[derive(Clone, Debug)]
pub enum Destination {
    Dir(PathBuf),
    S3(Arc<S3>),
}

/// One backup found at a destination.
#[derive(Clone, Debug)]
pub struct Located {
    pub dest: Destination,
    pub name: String,
    pub manifest: Manifest,
}

impl Destination {
    /// `s3://BUCKET[/PREFIX]` (needs `s3` settings) or a directory path.
    pub fn parse(text: &str, s3: Option<&S3Settings>) -> Result<Destination, BackupError> {
        if text.starts_with("s3://") {
            let settings = s3.ok_or_else(|| {
                BackupError::Usage(
                    "an s3:// destination needs credentials: [backup] s3_access_key and \
                     s3_secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .to_string(),
                )
            })?;
            return Ok(Destination::S3(Arc::new(S3::open(text, settings)?)));
        }
        if text.contains("://") {
            return Err(BackupError::Usage(format!(
                "unsupported backup destination {text:?}: use a directory or s3://BUCKET/PREFIX"
            )));
        }
        if text.is_empty() {
            return Err(BackupError::Usage("empty backup destination".to_string()));
        }
        Ok(Destination::Dir(PathBuf::from(text)))
    }

    pub fn display(&self) -> String {
        match self {
            Destination::Dir(dir) => dir.display().to_string(),
            Destination::S3(s3) => s3.display().to_string(),
        }
    }

    /// Complete backups (those with a manifest), oldest first, as (name, Unix ms taken).
    pub async fn backups(&self) -> Result<Vec<(String, i64)>, BackupError> {
        let this = self.clone();
        blocking(move || this.backups_blocking()).await
    }

    fn backups_blocking(&self) -> Result<Vec<(String, i64)>, BackupError> {
        let mut names: Vec<(String, i64)> = match self {
            Destination::Dir(root) => {
                if !root.is_dir() {
                    return Ok(Vec::new());
                }
                let mut names = Vec::new();
                for entry in std::fs::read_dir(root).at(root)? {
                    let entry = entry.at(root)?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some((at, _)) = parse_backup_name(&name)
                        && entry.path().join(MANIFEST).is_file()
                    {
                        names.push((name, at));
                    }
                }
                names
            }
            Destination::S3(s3) => s3
                .list("")?
                .into_iter()
                .filter_map(|(key, _)| {
                    let name = key.strip_suffix(&format!("/{MANIFEST}"))?;
                    let (at, _) = parse_backup_name(name)?;
                    Some((name.to_string(), at))
                })
                .collect(),
        };
        names.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(names)
    }

    /// Reads a backup's manifest; `None` if there is none (not a backup, or incomplete).
    fn manifest_blocking(&self, name: &str) -> Result<Option<Manifest>, BackupError> {
        let bytes = match self {
            Destination::Dir(root) => {
                let path = root.join(name).join(MANIFEST);
                match std::fs::metadata(&path) {
                    Ok(m) if m.len() > MANIFEST_MAX_BYTES => {
                        return Err(BackupError::Damaged(format!("{MANIFEST} is too large")));
                    }
                    Ok(_) => std::fs::read(&path).at(&path)?,
                    Err(_) => return Ok(None),
                }
            }
            Destination::S3(s3) => {
                match s3.get_small(&format!("{name}/{MANIFEST}"), MANIFEST_MAX_BYTES)? {
                    Some(bytes) => bytes,
                    None => return Ok(None),
                }
            }
        };
        let manifest = Manifest::parse(&bytes)?;
        if manifest.name != name {
            return Err(BackupError::Damaged(format!(
                "{MANIFEST} names backup {:?} but lies in {name:?}",
                manifest.name
            )));
        }
        Ok(Some(manifest))
    }

    /// Finds what `source` names: a backup itself (a directory or prefix with a manifest), or
    /// a destination, whose newest backup is taken.
    pub async fn locate(source: &str, s3: Option<&S3Settings>) -> Result<Located, BackupError> {
        let trimmed = source.trim_end_matches('/');
        let (parent, last) = match trimmed.rsplit_once('/') {
            Some((parent, last)) if parse_backup_name(last).is_some() => (parent, Some(last)),
            _ => (trimmed, None),
        };
        let parent = if parent.is_empty() { "/" } else { parent };
        let (dest, name) = match last {
            Some(name) => (Destination::parse(parent, s3)?, name.to_string()),
            None => {
                let dest = Destination::parse(trimmed, s3)?;
                let newest = dest.backups().await?.pop().map(|(name, _)| name);
                let name = newest.ok_or_else(|| {
                    BackupError::Usage(format!("no complete backup in {}", dest.display()))
                })?;
                (dest, name)
            }
        };
        let (this, key) = (dest.clone(), name.clone());
        let manifest = blocking(move || this.manifest_blocking(&key)).await?.ok_or_else(|| {
            BackupError::Damaged(format!(
                "{}/{name} has no {MANIFEST}: it is not a backup, or an unfinished one",
                dest.display()
            ))
        })?;
        Ok(Located { dest, name, manifest })
    }

    /// A fresh, private directory to assemble a new backup in: inside the destination for a
    /// directory (so publishing is a rename), inside the data directory for a bucket.
    pub(crate) fn stage(&self, data_dir: &Path) -> Result<TempDir, BackupError> {
        let (parent, prefix) = match self {
            Destination::Dir(root) => (root.as_path(), ".partial-"),
            Destination::S3(_) => (data_dir, ".backup-upload-"),
        };
        std::fs::create_dir_all(parent).at(parent)?;
        remove_stale(parent, prefix);
        tempfile::Builder::new().prefix(prefix).tempdir_in(parent).at(parent)
    }

    /// Makes a staged backup visible under `name`; the manifest goes last.
    pub(crate) fn publish(&self, stage: TempDir, name: &str) -> Result<String, BackupError> {
        match self {
            Destination::Dir(root) => {
                let target = root.join(name);
                if target.exists() {
                    return Err(BackupError::Usage(format!("{} already exists", target.display())));
                }
                let staged = stage.keep();
                std::fs::rename(&staged, &target).at(&target)?;
                sync_dir(root)?;
                Ok(target.display().to_string())
            }
            Destination::S3(s3) => {
                let files = crate::manifest::entries(stage.path())?;
                for file in &files {
                    s3.put_file(&format!("{name}/{}", file.path), &stage.path().join(&file.path))?;
                }
                s3.put_file(&format!("{name}/{MANIFEST}"), &stage.path().join(MANIFEST))?;
                Ok(format!("{}/{name}", s3.display()))
            }
        }
    }

    /// Removes a backup: its manifest first, so a half-deleted one is never taken as complete.
    pub(crate) fn delete(&self, name: &str) -> Result<(), BackupError> {
        if parse_backup_name(name).is_none() {
            return Err(BackupError::Usage(format!("{name:?} is not a backup name")));
        }
        match self {
            Destination::Dir(root) => {
                let dir = root.join(name);
                std::fs::remove_file(dir.join(MANIFEST)).at(&dir)?;
                std::fs::remove_dir_all(&dir).at(&dir)
            }
            Destination::S3(s3) => {
                s3.delete(&format!("{name}/{MANIFEST}"))?;
                for (key, _) in s3.list(&format!("{name}/"))? {
                    s3.delete(&key)?;
                }
                Ok(())
            }
        }
    }
}

impl Located {
    /// A local directory holding the backup's files: the backup itself for a directory, or
    /// `scratch` after downloading every file the manifest lists from a bucket.
    pub(crate) fn fetch(&self, scratch: &Path) -> Result<PathBuf, BackupError> {
        match &self.dest {
            Destination::Dir(root) => Ok(root.join(&self.name)),
            Destination::S3(s3) => {
                for file in &self.manifest.files {
                    let target = scratch.join(&file.path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).at(parent)?;
                    }
                    s3.get_file(&format!("{}/{}", self.name, file.path), &target)?;
                }
                Ok(scratch.to_path_buf())
            }
        }
    }
}

/// A staging directory untouched this long was left by a backup that died.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Removes staging directories (`prefix*`) in `parent` that a crashed backup left behind (best
/// effort: a leftover costs space, not correctness, and is never taken for a backup).
fn remove_stale(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old && name.to_string_lossy().starts_with(prefix) && entry.path().is_dir() {
            tracing::info!(path = %entry.path().display(), "removing an unfinished backup");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
