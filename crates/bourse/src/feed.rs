//! `bourse debug feed`: runs the engine on a data directory and streams workload commands into
//! it from several threads, printing `ack <seq>` for every acknowledged command. The crash test
//! kills it with SIGKILL at random moments and checks that every acknowledged command survived.

use crate::workload::{Workload, setup};
use anyhow::Result;
use bourse_engine::{Engine, EngineConfig, SystemClock};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct FeedArgs {
    #[arg(long)]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 3)]
    pub threads: u64,
    #[arg(long, default_value_t = 50)]
    pub users: u64,
    /// Stop after this many commands per thread (default: until killed).
    #[arg(long)]
    pub count: Option<u64>,
    #[arg(long, default_value_t = 2_000)]
    pub snapshot_every: u64,
}

pub fn run(args: &FeedArgs) -> Result<()> {
    let mut config = EngineConfig::new(&args.data_dir);
    config.snapshot_every = args.snapshot_every;
    let engine = Engine::start(config, SystemClock)?;
    let handle = engine.handle();
    // Repeats are harmless: assets and markets already present are refused, deposits are
    // idempotent by key.
    for command in setup(args.users) {
        handle.execute_blocking(command)?;
    }
    let threads: Vec<_> = (0..args.threads.max(1))
        .map(|t| {
            let handle = handle.clone();
            let (seed, users, count) = (args.seed * 1_000 + t, args.users, args.count);
            std::thread::spawn(move || -> Result<()> {
                let mut workload = Workload::new(seed, users);
                let stdout = std::io::stdout();
                let mut n = 0;
                while count.is_none_or(|c| n < c) {
                    let outcome = handle.execute_blocking(workload.next_command())?;
                    workload.observe(&outcome.events);
                    writeln!(stdout.lock(), "ack {}", outcome.seq)?;
                    n += 1;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| anyhow::anyhow!("feed thread panicked"))??;
    }
    engine.shutdown();
    Ok(())
}
