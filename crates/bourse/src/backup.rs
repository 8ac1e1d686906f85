//! `bourse backup [DEST]`, `bourse backup --verify SRC` and `bourse restore SRC --data-dir DIR`.
//!
//! A running exchange is asked for its backup through its control socket (only it can pause
//! its engine for the consistent point); a stopped one is opened here, under the data
//! directory's lock, and backed up the same way.

use crate::serve::{ServeArgs, load_config};
use anyhow::{Context, Result, bail};
use bourse_backup::{Destination, Live, Located, Restored};
use bourse_engine::{Engine, EngineConfig, SystemClock};
use bourse_server::config::Config;
use bourse_server::control::{BackupAnswer, socket_path};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// A directory or s3://BUCKET/PREFIX (default: `[backup] dest`).
    pub dest: Option<String>,
    /// Instead of backing up: restore the backup SRC (a backup, or a destination's newest)
    /// into a temporary directory, check it as `bourse restore` does, and remove it.
    #[arg(long, value_name = "SRC", conflicts_with = "dest")]
    pub verify: Option<String>,
    /// For `--verify` of a PostgreSQL backup: an empty scratch database to restore it into
    /// (without it the dump's checksum is checked but it is not restored).
    #[arg(long, requires = "verify")]
    pub scratch_database_url: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup (directory or s3://BUCKET/PREFIX/NAME), or a destination: its newest backup.
    pub src: String,
    /// The new data directory (must be empty or absent).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where the database goes: default SQLite in the data directory; a PostgreSQL backup
    /// needs the URL of an empty database.
    #[arg(long)]
    pub database_url: Option<String>,
    /// A configuration file, only for its `[backup]` S3 settings (else AWS_* variables).
    #[arg(long, env = "BOURSE_CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn backup(args: &BackupArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if let Some(src) = &args.verify {
        let s3 = s3_settings(args.serve.config.as_deref());
        return rt.block_on(async {
            let backup = Destination::locate(src, s3.as_ref()).await?;
            println!("checking {} ({})", backup.name, backup.dest.display());
            let restored =
                bourse_backup::verify(&backup, args.scratch_database_url.as_deref()).await?;
            print_restored(&backup, &restored);
            println!("backup verified: a restore gives the state it recorded");
            Ok(())
        });
    }
    let config = load_config(&args.serve)?;
    let dest = args.dest.clone().or_else(|| config.backup.dest.clone());
    let Some(dest) = dest else {
        bail!("no destination: `bourse backup DIR|s3://BUCKET/PREFIX`, or set [backup] dest");
    };
    let socket = socket_path(&config.data_dir);
    let answer = rt.block_on(async {
        match tokio::net::UnixStream::connect(&socket).await {
            Ok(stream) => {
                println!("asking the running exchange ({})", socket.display());
                ask_running(stream, &dest).await
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
                "cannot reach the running exchange at {}: {e} (run this as the exchange's user)",
                socket.display()
            ),
            // No socket, or one a stopped exchange left: nobody runs it.
            Err(_) => offline(&config, &dest).await,
        }
    })?;
    println!("backup {} written to {}", answer.name, answer.location);
    println!(
        "  seq {}, state hash {}, {} files, {} bytes; the engine was held {}.{} ms",
        answer.seq,
        answer.state_hash,
        answer.files,
        answer.bytes,
        answer.paused_us / 1000,
        answer.paused_us % 1000 / 100
    );
    for old in &answer.expired {
        println!("  removed by retention: {old}");
    }
    Ok(())
}

/// Sends the request over the control socket; the exchange takes and records the backup.
async fn ask_running(stream: tokio::net::UnixStream, dest: &str) -> Result<BackupAnswer> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let body = serde_json::to_vec(&serde_json::json!({ "dest": dest }))?;
    let request = hyper::Request::post("/backup")
        .header(hyper::header::HOST, "bourse")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("the exchange refused the backup: {message}");
    }
    serde_json::from_slice(&body).context("the exchange's answer does not parse")
}

/// The exchange is stopped: open its engine (taking the lock) and database here.
async fn offline(config: &Config, dest: &str) -> Result<BackupAnswer> {
    let data_dir = config.data_dir.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Engine::start(EngineConfig::new(&data_dir), SystemClock)
    })
    .await?
    .with_context(|| {
        format!(
            "cannot open the exchange in {} (if it runs, its control socket {} is missing)",
            config.data_dir.display(),
            socket_path(&config.data_dir).display()
        )
    })?;
    let store = bourse_store::connect(config.database_url().expose())
        .await
        .context("cannot open the database")?;
    // As `bourse serve` would at start: a database never served yet has no tables.
    store.migrate().await.context("cannot migrate the database")?;
    let handle = engine.handle();
    let live = Live { engine: &handle, store: store.as_ref(), data_dir: &config.data_dir };
    let result = bourse_server::backups::take(live, &config.backup, dest).await;
    store.close().await;
    tokio::task::spawn_blocking(move || engine.shutdown()).await?;
    Ok(result?.into())
}

pub fn restore(args: &RestoreArgs) -> Result<()> {
    let s3 = s3_settings(args.config.as_deref());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let backup = Destination::locate(&args.src, s3.as_ref()).await?;
        println!(
            "restoring {} ({}) into {}",
            backup.name,
            backup.dest.display(),
            args.data_dir.display()
        );
        let restored =
            bourse_backup::restore(&backup, &args.data_dir, args.database_url.as_deref()).await?;
        print_restored(&backup, &restored);
        println!(
            "restored: start it with `bourse serve` and data_dir = {}",
            args.data_dir.display()
        );
        Ok(())
    })
}

fn print_restored(backup: &Located, restored: &Restored) {
    println!(
        "  {} files checked ({} bytes), every checksum matches",
        backup.manifest.files.len(),
        backup.manifest.total_bytes()
    );
    println!(
        "  journal replayed from scratch: {} commands, seq {}, state hash {} (as recorded)",
        restored.replayed, restored.seq, restored.state_hash
    );
    match &restored.database {
        Some(url) => println!("  database ({}) restored to {url}", backup.manifest.database),
        None => println!(
            "  database ({}): checksum matches; not restored (give --scratch-database-url)",
            backup.manifest.database
        ),
    }
}

/// `[backup]` S3 settings from the configuration file if there is one, else AWS_* variables.
fn s3_settings(config: Option<&std::path::Path>) -> Option<bourse_backup::S3Settings> {
    let from_config = config.and_then(|path| {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load(Some(path), env).ok().and_then(|c| c.backup.s3())
    });
    from_config.or_else(bourse_backup::S3Settings::from_env)
}
