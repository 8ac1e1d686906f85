//! The `bourse` command line: one binary for every role and operator task.

mod bench;
mod feed;
mod replay;
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
    /// Measure performance; prints figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Rebuild the state from the journal, from scratch and from the newest snapshot.
    Replay {
        /// Compare the state hashes of both replays; exit non-zero if they differ.
        #[arg(long)]
        verify: bool,
        #[arg(long, env = "BOURSE_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Tools for tests and debugging.
    #[command(subcommand, hide = true)]
    Debug(DebugCmd),
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The matching engine: in-memory throughput and latency, durable throughput, replay, memory.
    Engine(bench::EngineBenchArgs),
}

#[derive(Debug, Subcommand)]
enum DebugCmd {
    /// Stream generated commands into an engine, printing `ack <seq>` per acknowledgement.
    Feed(feed::FeedArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BOURSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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
        Cmd::Bench(BenchCmd::Engine(args)) => bench::run(&args)?,
        Cmd::Replay { verify, data_dir } => {
            let ok = replay::verify(&data_dir)?;
            if verify && !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Debug(DebugCmd::Feed(args)) => feed::run(&args)?,
    }
    Ok(ExitCode::SUCCESS)
}
