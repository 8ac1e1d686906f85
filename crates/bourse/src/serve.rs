//! `bourse serve`, `bourse demo` and `bourse init`: loading the configuration, running the
//! server until SIGINT/SIGTERM, and the throwaway demo exchange.

use anyhow::{Context, Result};
use bourse_server::Server;
use bourse_server::config::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (see `bourse init`).
    #[arg(long, env = "BOURSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Overrides `listen` (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Args)]
pub struct ServeRolesArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Overrides `roles`: `all` (the default), `engine`, or `gateway,wallet,worker,admin` (a
    /// split deployment: the engine's process listens on `[link] listen`, the others connect
    /// to it with `[link] connect`).
    #[arg(long)]
    pub roles: Option<String>,
}

/// The configuration from file + environment + command-line overrides.
pub fn load_config(args: &ServeArgs) -> Result<Config> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(dir) = &args.data_dir {
        env.push(("BOURSE_DATA_DIR".into(), dir.display().to_string()));
    }
    if let Some(listen) = args.listen {
        env.push(("BOURSE_LISTEN".into(), listen.to_string()));
    }
    if args.config.is_none() && std::env::var_os("BOURSE_SECRET_KEY").is_none() {
        anyhow::bail!(
            "no configuration: pass --config FILE (create one with `bourse init`) or set BOURSE_SECRET_KEY"
        );
    }
    Ok(Config::load(args.config.as_deref(), env)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

pub fn serve(args: &ServeRolesArgs) -> Result<()> {
    let mut config = load_config(&args.serve)?;
    if let Some(roles) = &args.roles {
        config.roles = bourse_server::roles::Roles::parse(roles).map_err(anyhow::Error::msg)?;
        config.link.validate(config.roles).map_err(anyhow::Error::msg)?;
    }
    runtime()?.block_on(async move {
        let server = Server::start(config).await?;
        // One line: a supervisor that reads the first line for the address may close the
        // pipe after it.
        let roles = server.state.config.roles;
        if roles.is_all() {
            println!(
                "bourse is running at {}  (the admin app at {}; Ctrl-C to stop)",
                server.url(),
                server.admin_url()
            );
        } else if roles.engine_only() {
            println!(
                "bourse engine is running, its link at {}  (health and metrics at {}; Ctrl-C to stop)",
                server.state.config.link.listen.map(|a| a.to_string()).unwrap_or_default(),
                server.admin_url()
            );
        } else if roles.gateway {
            println!(
                "bourse is running at {}  (the admin listener at {}; roles {}; Ctrl-C to stop)",
                server.url(),
                server.admin_url(),
                roles.names()
            );
        } else {
            let what = if roles.admin { "the admin app" } else { "health and metrics" };
            println!(
                "bourse roles {} are running  ({what} at {}; Ctrl-C to stop)",
                roles.names(),
                server.admin_url()
            );
        }
        signal().await;
        tracing::info!("stopping: finishing in-flight requests");
        server.stop().await;
        Ok(())
    })
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the admin app listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Keep the demo's data here instead of a temporary directory that is deleted at exit.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn demo(args: &DemoArgs) -> Result<()> {
    let temp = tempfile::Builder::new().prefix("bourse-demo-").tempdir()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let secret = bourse_server::crypto::random_token()?;
    let env = vec![
        ("BOURSE_SECRET_KEY".to_string(), secret),
        ("BOURSE_DATA_DIR".to_string(), data_dir.display().to_string()),
        ("BOURSE_LISTEN".to_string(), args.listen.to_string()),
        ("BOURSE_ADMIN__LISTEN".to_string(), args.admin_listen.to_string()),
        ("BOURSE_ENGINE__SNAPSHOT_EVERY".to_string(), "100000".to_string()),
    ];
    let config = Config::load(None, env)?;
    runtime()?.block_on(async move {
        let server = Server::start(config).await?;
        let info = bourse_server::demo::setup(&server.state).await?;
        let bot = tokio::spawn(bourse_server::demo::run_bot(
            server.state.clone(),
            info.bot,
            server.state.shutdown.clone(),
        ));
        println!("bourse demo is running at {}", server.url());
        println!("  data dir:   {} (deleted at exit)", data_dir.display());
        println!("  login:      {} / {}", info.email, info.password);
        println!("  API key:    {}", info.api_key);
        println!("  API secret: {}", info.api_secret);
        println!("  try:        curl {}/api/v1/tickers", server.url());
        let password: String = bourse_server::crypto::random_token()?.chars().take(20).collect();
        let state = &server.state;
        let admin = bourse_server::admin::create_admin(
            state.store.as_ref(),
            &state.keys,
            "admin@bourse.demo",
            &password,
            bourse_store::AdminRole::Superadmin,
            "bourse demo",
        )
        .await
        .map_err(anyhow::Error::msg)?;
        println!("  admin app:  {}", server.admin_url());
        println!("  admin:      {} / {password}", admin.email);
        println!("  admin TOTP: {}", admin.otpauth_uri);
        println!("Ctrl-C to stop.");
        signal().await;
        server.stop().await;
        let _ = bot.await;
        Ok::<(), anyhow::Error>(())
    })?;
    drop(temp);
    Ok(())
}

/// Writes a fresh configuration file with a new secret key; refuses to overwrite.
pub fn init(path: &Path, data_dir: &Path) -> Result<()> {
    anyhow::ensure!(!path.exists(), "{} exists; not overwriting it", path.display());
    let text = Config::template(data_dir).context("cannot generate a secret")?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    println!("wrote {} (keep it private: it holds the secret key)", path.display());
    println!("start the exchange with: bourse serve --config {}", path.display());
    Ok(())
}
