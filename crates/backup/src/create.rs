//! Taking a backup of a running exchange (see the crate docs for why it is consistent).

use crate::dest::Destination;
use crate::error::IoAt;
use crate::error::{BackupError, blocking};
use crate::manifest::{FORMAT, MANIFEST, Manifest, entries, sync_dir, write_synced};
use crate::name::backup_name;
use crate::retention::Retention;
use bourse_engine::{EngineHandle, ReplayFrom, journal_dir, replay, snapshot_dir};
use bourse_journal::{SnapshotStore, copy_prefix};
use bourse_store::{DatabaseFormat, Store};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest the engine is held while the database fixes its snapshot. Far above what it
/// takes (milliseconds); past it the backup gives up rather than stall trading.
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// The running exchange a backup is taken from.
#[derive(Clone, Copy, Debug)]
pub struct Live<'a> {
    pub engine: &'a EngineHandle,
    pub store: &'a dyn Store,
    pub data_dir: &'a Path,
}

/// A finished backup.
#[derive(Clone, Debug)]
pub struct Created {
    pub manifest: Manifest,
    /// Where it is (a directory path or `s3://bucket/prefix/name`).
    pub location: String,
    /// How long the engine was held.
    pub paused: Duration,
    /// Older backups the retention policy removed.
    pub expired: Vec<String>,
}

/// The file name of the database in a backup.
pub(crate) fn database_file(format: DatabaseFormat) -> &'static str {
    match format {
        DatabaseFormat::Sqlite => "database.sqlite",
        DatabaseFormat::PgDump => "database.pgdump",
    }
}

/// Takes a backup of `live` into `dest`, then applies `retention` there.
pub async fn create(
    live: Live<'_>,
    dest: &Destination,
    retention: Retention,
) -> Result<Created, BackupError> {
    let stage = dest.stage(live.data_dir)?;
    let format = match live.store.backend() {
        "postgres" => DatabaseFormat::PgDump,
        _ => DatabaseFormat::Sqlite,
    };
    let db_path = stage.path().join(database_file(format));

    // The consistent point: the engine stands still (every earlier command durable, none
    // applied after) while the database fixes the snapshot it will be copied from.
    let started = Instant::now();
    let (seq, (), guard) = live.engine.pause(|_| (), PAUSE_MAX).await?;
    let taken_at_ms = now_ms();
    let database = live.store.backup_begin(&db_path).await;
    let held = guard.release();
    let paused = started.elapsed();
    let database = database?;
    if !held {
        return Err(BackupError::PauseExpired(PAUSE_MAX));
    }
    tracing::info!(seq, paused_us = paused.as_micros() as u64, "backup point fixed");

    let written = database.finish().await?;
    if written != format {
        return Err(BackupError::Task(format!(
            "the database wrote {} but {} was expected",
            written.as_str(),
            format.as_str()
        )));
    }

    let name = backup_name(taken_at_ms, seq);
    let stage_path = stage.path().to_path_buf();
    let data_dir = live.data_dir.to_path_buf();
    let manifest_name = name.clone();
    let manifest = blocking(move || {
        copy_prefix(&journal_dir(&data_dir), &stage_path.join("journal"), seq)?;
        let (state, copied) = state_at(&data_dir, &stage_path, seq)?;
        if let Some(copied) = copied {
            std::fs::remove_file(&copied).at(&copied)?;
        }
        let state_hash = blake3::hash(&state).to_hex().to_string();
        SnapshotStore::open(&stage_path.join("snapshots"))?.write(seq, &state)?;
        drop(state);
        let manifest = Manifest {
            format: FORMAT,
            name: manifest_name,
            bourse_version: env!("CARGO_PKG_VERSION").to_string(),
            taken_at_ms,
            seq,
            state_hash,
            database: format.as_str().to_string(),
            files: entries(&stage_path)?,
        };
        write_synced(&stage_path.join(MANIFEST), &manifest.to_json())?;
        sync_dir(&stage_path)?;
        Ok(manifest)
    })
    .await?;

    let (target, publish_name) = (dest.clone(), name.clone());
    let location = blocking(move || target.publish(stage, &publish_name)).await?;
    tracing::info!(name, location, seq, bytes = manifest.total_bytes(), "backup written");

    // The backup is written: a failure to prune older ones is logged, not its failure.
    let expired = match apply_retention(dest, retention, &name).await {
        Ok(expired) => expired,
        Err(e) => {
            tracing::warn!(error = %e, "the retention policy could not remove older backups");
            Vec::new()
        }
    };
    if !expired.is_empty() {
        tracing::info!(removed = ?expired, "older backups removed by the retention policy");
    }
    Ok(Created { manifest, location, paused, expired })
}

/// Deletes what `retention` no longer keeps (never `newest`); returns their names.
async fn apply_retention(
    dest: &Destination,
    retention: Retention,
    newest: &str,
) -> Result<Vec<String>, BackupError> {
    let mut expired = retention.expired(&dest.backups().await?);
    expired.retain(|old| old != newest);
    for old in &expired {
        let (target, name) = (dest.clone(), old.clone());
        blocking(move || target.delete(&name)).await?;
    }
    Ok(expired)
}

/// The engine's state at `seq`, encoded: rebuilt from the staged journal (which ends at `seq`),
/// starting from the newest snapshot of the live data directory at or before `seq` when one
/// can be copied (the engine may remove an old one meanwhile: then an older one, or none).
/// Off the engine thread, so the pause stays as short as fixing the database's snapshot.
/// Returns the state and the snapshot file it copied into the stage, if any.
fn state_at(
    data_dir: &Path,
    stage: &Path,
    seq: u64,
) -> Result<(Vec<u8>, Option<PathBuf>), BackupError> {
    let live = snapshot_dir(data_dir);
    let staged = stage.join("snapshots");
    std::fs::create_dir_all(&staged).at(&staged)?;
    let mut candidates: Vec<(u64, PathBuf)> = std::fs::read_dir(&live)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let at = name.strip_prefix("snap-")?.strip_suffix(".bin")?.parse().ok()?;
                    Some((at, e.path()))
                })
                .filter(|(at, _)| *at <= seq)
                .collect()
        })
        .unwrap_or_default();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut copied = None;
    for (_, path) in candidates {
        let target = staged.join(path.file_name().unwrap_or_default());
        if std::fs::copy(&path, &target).is_ok() {
            copied = Some(target);
            break;
        }
    }
    let recovered = replay(stage, ReplayFrom::LatestSnapshot)?;
    if recovered.exchange.seq() != seq {
        return Err(BackupError::Task(format!(
            "the copied journal replays to seq {}, not {seq}",
            recovered.exchange.seq()
        )));
    }
    Ok((recovered.exchange.encode_snapshot(), copied))
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
