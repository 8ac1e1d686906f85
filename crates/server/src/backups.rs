//! Backups from inside the server: the `[backup]` settings, one backup at a time (asked for by
//! the schedule or by `bourse backup` through the control socket), each attempt recorded in the
//! store for `bourse status`, `/api/v1/health` and `/metrics`. The backup itself is
//! `bourse_backup::create`.

use crate::state::{AppState, Shared};
use bourse_backup::{BackupError, Created, Destination, Live, Retention, S3Settings};
use bourse_core::Secret;
use bourse_store::NewBackupRecord;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::watch;

/// `[backup]`: where scheduled backups go and how many are kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// A directory or `s3://BUCKET/PREFIX`. Without it nothing is scheduled, and
    /// `bourse backup` needs its destination on the command line.
    pub dest: Option<String>,
    /// Seconds between scheduled backups (0: none; at least 60 otherwise).
    pub interval_s: u64,
    /// How long after start the first scheduled backup waits when one is due already (none
    /// recorded, or the last is older than the interval): the exchange settles first.
    pub first_after_s: u64,
    /// Keep the newest backup of each of this many days…
    pub keep_daily: u32,
    /// …and of each of this many ISO weeks.
    pub keep_weekly: u32,
    /// The S3 endpoint (default `AWS_ENDPOINT_URL`, else AWS itself).
    pub s3_endpoint: Option<String>,
    /// Default `AWS_REGION`, else `us-east-1`.
    pub s3_region: Option<String>,
    /// Default `AWS_ACCESS_KEY_ID`.
    pub s3_access_key: Option<String>,
    /// Default `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_key: Option<Secret>,
    /// Path-style URLs (every S3-compatible server takes them); false for virtual-hosted.
    pub s3_path_style: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dest: None,
            interval_s: 86_400,
            first_after_s: 30,
            keep_daily: 7,
            keep_weekly: 4,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key: None,
            s3_secret_key: None,
            s3_path_style: true,
        }
    }
}

impl BackupConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_s != 0 && self.interval_s < 60 {
            return Err("backup.interval_s must be 0 (no schedule) or at least 60".into());
        }
        if let Some(dest) = &self.dest {
            Destination::parse(dest, self.s3().as_ref())
                .map_err(|e| format!("backup.dest: {e}"))?;
        }
        Ok(())
    }

    pub fn retention(&self) -> Retention {
        Retention { daily: self.keep_daily, weekly: self.keep_weekly }
    }

    /// The bucket settings: these keys, each falling back to the AWS environment variables.
    pub fn s3(&self) -> Option<S3Settings> {
        S3Settings::resolve(
            self.s3_endpoint.clone(),
            self.s3_region.clone(),
            self.s3_access_key.clone(),
            self.s3_secret_key.clone(),
            self.s3_path_style,
        )
    }
}

/// Takes one backup of the running exchange to `dest` (or `[backup] dest`) and records the
/// attempt. Refused while another backup runs.
pub async fn run(state: &AppState, dest: Option<&str>) -> Result<Created, BackupError> {
    let Ok(_running) = state.backup_lock.try_lock() else {
        return Err(BackupError::Usage("a backup is already running".into()));
    };
    let config = &state.config.backup;
    let dest = dest.or(config.dest.as_deref()).ok_or_else(|| {
        BackupError::Usage("no destination: give one, or set [backup] dest".into())
    })?;
    let live = Live {
        engine: &state.engine,
        store: state.store.as_ref(),
        data_dir: &state.config.data_dir,
    };
    take(live, config, dest).await
}

/// Takes a backup of `live` to `dest` (with `config`'s S3 settings and retention) and records
/// the attempt in its store. For the server (through [`run`]) and for `bourse backup` on a
/// stopped exchange.
pub async fn take(
    live: Live<'_>,
    config: &BackupConfig,
    dest: &str,
) -> Result<Created, BackupError> {
    let dest = Destination::parse(dest, config.s3().as_ref())?;
    let started_at_ms = crate::now_ms();
    let result = bourse_backup::create(live, &dest, config.retention()).await;
    let mut record = NewBackupRecord {
        started_at_ms,
        finished_at_ms: crate::now_ms(),
        destination: dest.display(),
        name: String::new(),
        seq: 0,
        state_hash: String::new(),
        bytes: 0,
        ok: false,
        error: None,
    };
    match &result {
        Ok(created) => {
            record.name.clone_from(&created.manifest.name);
            record.seq = created.manifest.seq;
            record.state_hash.clone_from(&created.manifest.state_hash);
            record.bytes = created.manifest.total_bytes();
            record.ok = true;
        }
        Err(e) => {
            tracing::error!(error = %e, dest = dest.display(), "backup failed");
            record.error = Some(e.to_string());
        }
    }
    if let Err(e) = live.store.record_backup(&record).await {
        tracing::error!(error = %e, "cannot record the backup");
    }
    result
}

/// How long after a failed scheduled backup the next attempt comes (at most the interval).
const RETRY_AFTER: Duration = Duration::from_secs(900);

/// How long the schedule waits at start: until `interval` after the last good backup, but at
/// least `first_after`.
fn first_wait(
    last_finished_ms: Option<i64>,
    interval: Duration,
    first_after: Duration,
    now_ms: i64,
) -> Duration {
    let Some(last) = last_finished_ms else { return first_after };
    let due_ms = last.saturating_add(i64::try_from(interval.as_millis()).unwrap_or(i64::MAX));
    let in_ms = u64::try_from(due_ms.saturating_sub(now_ms)).unwrap_or(0);
    Duration::from_millis(in_ms).max(first_after)
}

/// Takes a backup every `[backup] interval_s` (counted from the last good one, so a restart
/// does not postpone it) until `stop`; nothing without `[backup] dest`.
pub async fn run_schedule(state: Shared, mut stop: watch::Receiver<bool>) {
    let config = &state.config.backup;
    if config.dest.is_none() || config.interval_s == 0 {
        return;
    }
    let interval = Duration::from_secs(config.interval_s);
    let first_after = Duration::from_secs(config.first_after_s);
    let last = state.store.last_good_backup().await.ok().flatten().map(|b| b.finished_at_ms);
    let mut wait = first_wait(last, interval, first_after, crate::now_ms());
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = match run(&state, None).await {
            Ok(created) => {
                tracing::info!(name = created.manifest.name, "scheduled backup done");
                interval
            }
            Err(_) => RETRY_AFTER.min(interval),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_counts_from_the_last_good_backup() {
        let (day, half) = (Duration::from_secs(86_400), Duration::from_secs(30));
        let now = 1_000_000_000_000;
        assert_eq!(first_wait(None, day, half, now), half);
        // Taken an hour ago: due in 23 hours.
        assert_eq!(first_wait(Some(now - 3_600_000), day, half, now), Duration::from_secs(82_800));
        // Overdue: soon after start, never at once.
        assert_eq!(first_wait(Some(now - 2 * 86_400_000), day, half, now), half);
    }
}
