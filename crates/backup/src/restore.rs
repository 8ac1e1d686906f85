//! Restoring a backup into an empty data directory, and the restore drill (`--verify`).

use crate::create::database_file;
use crate::dest::Located;
use crate::error::{BackupError, IoAt, blocking};
use crate::manifest::check_file;
use bourse_engine::{ReplayFrom, journal_dir, replay, snapshot_dir};
use bourse_store::DatabaseFormat;
use std::path::{Path, PathBuf};

/// What a restore checked and did.
#[derive(Clone, Debug)]
pub struct Restored {
    pub name: String,
    pub seq: u64,
    pub state_hash: String,
    /// Journal records replayed from scratch to check the state hash.
    pub replayed: u64,
    /// Where the database went (`None`: not restored, see [`verify`]).
    pub database: Option<String>,
}

/// Checks every file of `backup` against its manifest, copies the journal and the snapshot
/// into `data_dir` (which must be empty or absent), replays the whole journal from scratch and
/// from the snapshot, refuses unless both give the manifest's seq and state hash and every
/// asset balances, and then restores the database to `database_url` (default: SQLite at
/// `data_dir/bourse.db`; a PostgreSQL backup needs an empty database's URL). On any failure
/// nothing is left in `data_dir`.
pub async fn restore(
    backup: &Located,
    data_dir: &Path,
    database_url: Option<&str>,
) -> Result<Restored, BackupError> {
    let created_dir = prepare_empty(data_dir)?;
    let result = restore_into(backup, data_dir, database_url, true).await;
    if result.is_err() {
        clean(data_dir, created_dir);
    }
    result
}

/// The restore drill: restores `backup` into a temporary directory (with a SQLite database
/// there; a PostgreSQL dump is restored only if `scratch_database_url` names an empty
/// database) and checks it as [`restore`] does, then removes it.
pub async fn verify(
    backup: &Located,
    scratch_database_url: Option<&str>,
) -> Result<Restored, BackupError> {
    let scratch = tempfile::Builder::new()
        .prefix("bourse-verify-")
        .tempdir()
        .map_err(|source| BackupError::Io { path: std::env::temp_dir(), source })?;
    let data_dir = scratch.path().join("data");
    let format = database_format(backup)?;
    let restore_db = format == DatabaseFormat::Sqlite || scratch_database_url.is_some();
    restore_into(backup, &data_dir, scratch_database_url, restore_db).await
}

async fn restore_into(
    backup: &Located,
    data_dir: &Path,
    database_url: Option<&str>,
    restore_db: bool,
) -> Result<Restored, BackupError> {
    let manifest = backup.manifest.clone();
    let format = database_format(backup)?;
    std::fs::create_dir_all(data_dir).at(data_dir)?;
    let scratch = tempfile::Builder::new().prefix(".restore-").tempdir_in(data_dir).at(data_dir)?;

    // 1. Every file present, of the right size and checksum (downloaded first from a bucket).
    let (located, scratch_path) = (backup.clone(), scratch.path().to_path_buf());
    let files = blocking(move || {
        let root = located.fetch(&scratch_path)?;
        for entry in &located.manifest.files {
            check_file(&root.join(&entry.path), entry)?;
        }
        Ok(root)
    })
    .await?;
    if manifest.database_file().is_none() {
        return Err(BackupError::Damaged("the manifest lists no database file".to_string()));
    }

    // 2. The engine's files, then two replays that must both reach the manifest's state.
    let (target, source, entries) = (data_dir.to_path_buf(), files.clone(), manifest.files.clone());
    let (seq, state_hash) = (manifest.seq, manifest.state_hash.clone());
    let replayed = blocking(move || {
        for entry in &entries {
            let is_engine =
                entry.path.starts_with("journal/") || entry.path.starts_with("snapshots/");
            if is_engine {
                let to = target.join(&entry.path);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).at(parent)?;
                }
                std::fs::copy(source.join(&entry.path), &to).at(&to)?;
            }
        }
        std::fs::create_dir_all(journal_dir(&target)).at(&target)?;
        std::fs::create_dir_all(snapshot_dir(&target)).at(&target)?;
        let scratch = replay(&target, ReplayFrom::Scratch)?;
        let hash = scratch.exchange.state_hash().to_string();
        if scratch.exchange.seq() != seq || hash != state_hash {
            return Err(BackupError::Damaged(format!(
                "replaying its journal gives seq {} with state hash {hash}; the manifest says \
                 seq {seq} with {state_hash}",
                scratch.exchange.seq()
            )));
        }
        if !scratch.exchange.audit().iter().all(|t| t.balanced()) {
            return Err(BackupError::Damaged("an asset does not balance after replay".into()));
        }
        let from_snapshot = replay(&target, ReplayFrom::LatestSnapshot)?;
        if from_snapshot.exchange.state_hash().to_string() != state_hash {
            return Err(BackupError::Damaged(
                "its snapshot does not give the manifest's state hash".to_string(),
            ));
        }
        Ok(scratch.replayed)
    })
    .await?;

    // 3. The database, last: it refers to the engine's state, never the other way round.
    let database = if restore_db {
        let url = match database_url {
            Some(url) => url.to_string(),
            None => format!("sqlite://{}", data_dir.join("bourse.db").display()),
        };
        bourse_store::restore_database(format, &files.join(database_file(format)), &url).await?;
        Some(redact(&url))
    } else {
        None
    };
    drop(scratch);
    Ok(Restored {
        name: manifest.name.clone(),
        seq: manifest.seq,
        state_hash: manifest.state_hash.clone(),
        replayed,
        database,
    })
}

fn database_format(backup: &Located) -> Result<DatabaseFormat, BackupError> {
    DatabaseFormat::parse(&backup.manifest.database).ok_or_else(|| {
        BackupError::Damaged(format!("unknown database format {:?}", backup.manifest.database))
    })
}

/// Refuses a data directory that holds anything; returns whether it had to be created.
fn prepare_empty(data_dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Usage(format!(
                    "{} is not empty: restore into a new or empty data directory",
                    data_dir.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).at(data_dir)?;
            Ok(true)
        }
        Err(source) => Err(BackupError::Io { path: data_dir.to_path_buf(), source }),
    }
}

/// Removes what a failed restore left (best effort: the error being reported matters more).
fn clean(data_dir: &Path, created_dir: bool) {
    if created_dir {
        let _ = std::fs::remove_dir_all(data_dir);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        for entry in entries.flatten() {
            let path: PathBuf = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = url.get(scheme + 3..at).unwrap_or_default();
            let user = userinfo.split(':').next().unwrap_or_default();
            format!(
                "{}{user}:***{}",
                url.get(..scheme + 3).unwrap_or_default(),
                url.get(at..).unwrap_or_default()
            )
        }
        _ => url.to_string(),
    }
}
