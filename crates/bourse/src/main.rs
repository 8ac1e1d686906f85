//! The `bourse` command line: one binary for every role and operator task.

mod admin;
mod audit;
mod backup;
mod bench;
mod bench_api;
mod bench_link;
mod feed;
mod operator;
mod replay;
mod serve;
mod status;
mod workload;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// The engine allocates and frees book levels, events and strings at millions per second;
// mimalloc does that faster than glibc's allocator and without returning pages to the kernel
// only to fault them in again.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "bourse", version, about = "A self-hosted cryptocurrency exchange")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the exchange: engine, REST API, WebSocket, projector.
    Serve(serve::ServeRolesArgs),
    /// Run a throwaway exchange with demo markets, users and a liquidity bot.
    Demo(serve::DemoArgs),
    /// Write a configuration file with a freshly generated secret key.
    Init {
        #[arg(long, default_value = "bourse.toml")]
        config: PathBuf,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Apply pending database migrations.
    Migrate(serve::ServeArgs),
    /// Manage assets (the exchange must be stopped).
    #[command(subcommand)]
    Asset(AssetCmd),
    /// Manage markets (the exchange must be stopped).
    #[command(subcommand)]
    Market(MarketCmd),
    /// Measure performance; prints figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Check the ledger's conservation and each wallet's holdings against what users hold;
    /// exit non-zero on a mismatch. Read-only: safe while the exchange runs.
    Audit(serve::ServeArgs),
    /// Rebuild the state from the journal, from scratch and from the newest snapshot.
    Replay {
        /// Compare the state hashes of both replays; exit non-zero if they differ.
        #[arg(long)]
        verify: bool,
        #[arg(long, env = "BOURSE_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Cancel a resting order (the exchange must be stopped).
    #[command(subcommand)]
    Order(OrderCmd),
    /// Lock or unlock a user (safe while the exchange runs).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage the admin app's accounts (safe while the exchange runs).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// How a running exchange is: engine, read models, database, coin nodes, readiness; exit 1
    /// if anything fails, 2 if it does not answer.
    Status(status::StatusArgs),
    /// Take a consistent backup (journal, snapshot, database) of the exchange, running or
    /// stopped, to a directory or an S3 bucket; or check one with `--verify SRC`.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory, checking every checksum and the state
    /// hash after replaying its journal.
    Restore(backup::RestoreArgs),
    /// Tools for tests and debugging.
    #[command(subcommand, hide = true)]
    Debug(DebugCmd),
}

#[derive(Debug, Subcommand)]
enum OrderCmd {
    /// Cancel an order as its owner could: `bourse order cancel 1234 --user 42`.
    Cancel {
        order: u64,
        /// The order's owner.
        #[arg(long)]
        user: u64,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// No login, no API key, no withdrawal; every session ends: `bourse user lock 42`.
    Lock {
        /// The user's id or e-mail.
        user: String,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
    /// Lets a locked user in again.
    Unlock {
        /// The user's id or e-mail.
        user: String,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCmd {
    /// Add an admin: prompts for the password, prints the TOTP secret as a URL and QR code.
    Create(admin::CreateArgs),
}

#[derive(Debug, Subcommand)]
enum AssetCmd {
    /// Add an asset: `bourse asset add BTC --scale 8`.
    Add {
        symbol: String,
        /// Decimal places of the smallest unit (BTC 8, ETH 18, USDT 6).
        #[arg(long)]
        scale: u8,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum MarketCmd {
    /// Add a market: `bourse market add BTC/USDT --tick 0.01 --lot 0.0001`.
    Add {
        #[command(flatten)]
        market: operator::MarketAddArgs,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
    /// Change a market's tick, lot, limits or fees: `bourse market edit BTC/USDT --maker-fee-ppm 500`.
    Edit {
        #[command(flatten)]
        market: operator::MarketEditArgs,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
    /// Stop trading on a market (cancels still work).
    Halt {
        symbol: String,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
    /// Resume trading on a halted market.
    Resume {
        symbol: String,
        #[command(flatten)]
        serve: serve::ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The matching engine: in-memory throughput and latency, durable throughput, replay, memory.
    Engine(bench::EngineBenchArgs),
    /// The whole server over HTTP and WebSocket: signed orders per second, latencies, and
    /// trade delivery to many WebSocket clients.
    Api(bench_api::ApiBenchArgs),
    /// The engine link of a split deployment: round trips and throughput through it, against
    /// the engine's own handle.
    Link(bench_link::LinkBenchArgs),
}

#[derive(Debug, Subcommand)]
enum DebugCmd {
    /// Stream generated commands into an engine, printing `ack <seq>` per acknowledgement.
    Feed(feed::FeedArgs),
}

fn main() -> ExitCode {
    // `BOURSE_LOG` filters (default `info,sqlx=warn`); `BOURSE_LOG_FORMAT=json` writes one JSON
    // object per line (for a log shipper), anything else readable text. To standard error, which
    // journald keeps under systemd.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("BOURSE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
    if std::env::var("BOURSE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().flatten_event(true).init();
    } else {
        logs.init();
    }
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Serve(args) => serve::serve(&args)?,
        Cmd::Demo(args) => serve::demo(&args)?,
        Cmd::Init { config, data_dir } => serve::init(&config, &data_dir)?,
        Cmd::Migrate(args) => operator::migrate(&args)?,
        Cmd::Asset(AssetCmd::Add { symbol, scale, serve }) => {
            operator::asset_add(&serve, &symbol, scale)?
        }
        Cmd::Market(MarketCmd::Add { market, serve }) => operator::market_add(&serve, &market)?,
        Cmd::Market(MarketCmd::Edit { market, serve }) => operator::market_edit(&serve, &market)?,
        Cmd::Market(MarketCmd::Halt { symbol, serve }) => {
            operator::market_status(&serve, &symbol, bourse_core::MarketStatus::Halted)?
        }
        Cmd::Market(MarketCmd::Resume { symbol, serve }) => {
            operator::market_status(&serve, &symbol, bourse_core::MarketStatus::Trading)?
        }
        Cmd::Bench(BenchCmd::Engine(args)) => bench::run(&args)?,
        Cmd::Bench(BenchCmd::Api(args)) => bench_api::run(&args)?,
        Cmd::Bench(BenchCmd::Link(args)) => bench_link::run(&args)?,
        Cmd::Audit(args) => {
            if !audit::run(&args)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Replay { verify, data_dir } => {
            let ok = replay::verify(&data_dir)?;
            if verify && !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Admin(AdminCmd::Create(args)) => admin::create(&args)?,
        Cmd::Order(OrderCmd::Cancel { order, user, serve }) => {
            operator::order_cancel(&serve, order, user)?
        }
        Cmd::User(UserCmd::Lock { user, serve }) => operator::user_lock(&serve, &user, true)?,
        Cmd::User(UserCmd::Unlock { user, serve }) => operator::user_lock(&serve, &user, false)?,
        Cmd::Status(args) => return status::run(&args),
        Cmd::Backup(args) => backup::backup(&args)?,
        Cmd::Restore(args) => backup::restore(&args)?,
        Cmd::Debug(DebugCmd::Feed(args)) => feed::run(&args)?,
    }
    Ok(ExitCode::SUCCESS)
}
