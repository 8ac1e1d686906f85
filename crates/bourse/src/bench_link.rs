//! `bourse bench link`: what the engine link costs a split deployment. One engine in a
//! temporary directory is driven through its own handle and through a link on loopback, with
//! the same generated order stream: one command at a time (round trip to a durable outcome)
//! and pipelined (throughput). Prints figures; asserts nothing about them.

use crate::workload::{Workload, setup};
use anyhow::{Context, Result};
use bourse_core::{Command, Exchange};
use bourse_engine::{Engine, EngineConfig, EngineHandle, SystemClock};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct LinkBenchArgs {
    /// Commands submitted pipelined, through each path.
    #[arg(long, default_value_t = 200_000)]
    pub commands: usize,
    /// Commands submitted one at a time, through each path.
    #[arg(long, default_value_t = 2_000)]
    pub sequential: usize,
    /// Commands in flight at once when pipelined.
    #[arg(long, default_value_t = 4_096)]
    pub window: usize,
    #[arg(long, default_value_t = 1_000)]
    pub users: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
struct Figures {
    sequential: usize,
    local_round_trip_p50_us: u64,
    local_round_trip_p99_us: u64,
    link_round_trip_p50_us: u64,
    link_round_trip_p99_us: u64,
    pipelined: usize,
    local_cmds_per_s: u64,
    link_cmds_per_s: u64,
}

/// The generated stream after the setup commands.
fn stream(args: &LinkBenchArgs, count: usize) -> Vec<Command> {
    let mut exchange = Exchange::new();
    let mut out = Vec::new();
    for command in setup(args.users) {
        out.clear();
        exchange.apply(exchange.seq() + 1, 0, &command, &mut out);
    }
    let mut workload = Workload::new(args.seed, args.users);
    (0..count)
        .map(|_| {
            let command = workload.next_command();
            out.clear();
            exchange.apply(exchange.seq() + 1, 0, &command, &mut out);
            workload.observe(&out);
            command
        })
        .collect()
}

/// p50 and p99 of `samples`, in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> (u64, u64) {
    samples.sort_unstable();
    let at = |p: usize| {
        samples
            .get(samples.len().saturating_sub(1) * p / 100)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    };
    (at(50), at(99))
}

async fn one_at_a_time(handle: &EngineHandle, commands: &[Command]) -> Result<(u64, u64)> {
    let mut samples = Vec::with_capacity(commands.len());
    for command in commands {
        let started = Instant::now();
        handle.execute(command.clone()).await?;
        samples.push(started.elapsed());
    }
    Ok(percentiles(samples))
}

/// Submits `commands` keeping `window` in flight; commands per second to the last outcome.
async fn pipelined(handle: &EngineHandle, commands: &[Command], window: usize) -> Result<u64> {
    let slots = Arc::new(tokio::sync::Semaphore::new(window.max(1)));
    let started = Instant::now();
    let mut waits = tokio::task::JoinSet::new();
    for command in commands {
        let slot = slots.clone().acquire_owned().await?;
        let reply = loop {
            match handle.try_submit(command.clone()) {
                Ok(reply) => break reply,
                Err(bourse_engine::EngineError::Busy) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        };
        let handle = handle.clone();
        waits.spawn(async move {
            let outcome = handle.outcome(reply).await;
            drop(slot);
            outcome
        });
    }
    while let Some(done) = waits.join_next().await {
        done??;
    }
    let nanos = started.elapsed().as_nanos().max(1);
    Ok(u64::try_from(commands.len() as u128 * 1_000_000_000 / nanos).unwrap_or(u64::MAX))
}

pub fn run(args: &LinkBenchArgs) -> Result<()> {
    let say = |s: &str| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    say("generating the stream …");
    let total = 2 * (args.sequential + args.commands);
    let stream = stream(args, total);
    let (seq_local, rest) = stream.split_at(args.sequential);
    let (seq_link, rest) = rest.split_at(args.sequential.min(rest.len()));
    let (pipe_local, pipe_link) = rest.split_at(rest.len() / 2);

    let dir = tempfile::tempdir().context("temp dir")?;
    let mut config = EngineConfig::new(dir.path());
    config.check_invariants = false;
    config.snapshot_every = 0;
    let engine = Engine::start(config, SystemClock)?;
    let local = engine.handle();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let figures = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let key = bourse_link::LinkKey::derive(b"bourse bench link");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(bourse_link::serve(
            listener,
            local.clone(),
            dir.path().to_path_buf(),
            key.clone(),
            stopped,
        ));
        let (remote, guard) = bourse_link::connect(&addr, key, Duration::from_secs(5)).await?;
        for command in setup(args.users) {
            local.execute(command).await?;
        }
        say(&format!("{} commands one at a time, each path …", args.sequential));
        let (lp50, lp99) = one_at_a_time(&local, seq_local).await?;
        let (rp50, rp99) = one_at_a_time(&remote, seq_link).await?;
        say(&format!("{} commands pipelined, each path …", pipe_local.len()));
        let local_rate = pipelined(&local, pipe_local, args.window).await?;
        let link_rate = pipelined(&remote, pipe_link, args.window).await?;
        guard.close();
        let _ = stop.send(true);
        let _ = server.await;
        Ok::<_, anyhow::Error>(Figures {
            sequential: args.sequential,
            local_round_trip_p50_us: lp50,
            local_round_trip_p99_us: lp99,
            link_round_trip_p50_us: rp50,
            link_round_trip_p99_us: rp99,
            pipelined: pipe_local.len(),
            local_cmds_per_s: local_rate,
            link_cmds_per_s: link_rate,
        })
    })?;
    drop(runtime);
    engine.shutdown();
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        println!(
            "one at a time ({})      local p50 {} µs, p99 {} µs; link p50 {} µs, p99 {} µs",
            figures.sequential,
            figures.local_round_trip_p50_us,
            figures.local_round_trip_p99_us,
            figures.link_round_trip_p50_us,
            figures.link_round_trip_p99_us
        );
        println!(
            "pipelined ({}, window {})  local {} commands/s; link {} commands/s",
            figures.pipelined, args.window, figures.local_cmds_per_s, figures.link_cmds_per_s
        );
    }
    Ok(())
}
