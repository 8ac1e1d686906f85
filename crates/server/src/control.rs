//! The control socket, `<data_dir>/control.sock`: how `bourse backup` asks the running
//! exchange (which alone can pause its engine) for a backup. A Unix socket readable only by
//! the exchange's own user (mode 0600), so the file system's permissions are its
//! authentication; nothing listens on the network for it.

use crate::error::ApiError;
use crate::state::Shared;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bourse_backup::Created;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// The socket's path in a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Default: `[backup] dest`.
    #[serde(default)]
    pub dest: Option<String>,
}

/// What `bourse backup` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackupAnswer {
    pub name: String,
    pub location: String,
    pub seq: u64,
    pub state_hash: String,
    pub files: usize,
    pub bytes: u64,
    pub paused_us: u64,
    pub expired: Vec<String>,
}

impl From<Created> for BackupAnswer {
    fn from(created: Created) -> BackupAnswer {
        BackupAnswer {
            files: created.manifest.files.len(),
            bytes: created.manifest.total_bytes(),
            paused_us: u64::try_from(created.paused.as_micros()).unwrap_or(u64::MAX),
            name: created.manifest.name,
            location: created.location,
            seq: created.manifest.seq,
            state_hash: created.manifest.state_hash,
            expired: created.expired,
        }
    }
}

async fn backup(
    State(state): State<Shared>,
    Json(request): Json<BackupRequest>,
) -> Result<Json<BackupAnswer>, ApiError> {
    match crate::backups::run(&state, request.dest.as_deref()).await {
        Ok(created) => Ok(Json(created.into())),
        Err(e @ bourse_backup::BackupError::Usage(_)) => {
            Err(ApiError::bad_request("backup_refused", e.to_string()))
        }
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "backup_failed",
            e.to_string(),
        )),
    }
}

/// Listens on the control socket until `stop`, then removes it.
pub async fn bind(
    state: &Shared,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(&state.config.data_dir);
    // A socket file left by a process that died: the data-directory lock (taken by the
    // engine before this) proves no other exchange uses it.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", path.display()))?;
    let app = Router::new().route("/backup", post(backup)).with_state(state.clone());
    Ok(tokio::spawn(async move {
        let serve =
            axum::serve(listener, app.into_make_service()).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "control socket failed");
        }
        let _ = std::fs::remove_file(&path);
    }))
}
