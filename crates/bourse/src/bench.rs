//! `bourse bench engine`: measures the core on a generated stream. Prints figures; it is not a
//! test and asserts nothing about them.

use crate::workload::{Workload, setup};
use anyhow::{Context, Result};
use bourse_core::{Command, Event, Exchange};
use bourse_engine::{Engine, EngineConfig, ReplayFrom, SystemClock};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct EngineBenchArgs {
    /// Commands in the generated stream.
    #[arg(long, default_value_t = 3_000_000)]
    pub commands: usize,
    /// Funded users placing orders.
    #[arg(long, default_value_t = 5_000)]
    pub users: u64,
    /// Resting orders for the memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub resting: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only generate the stream and run the in-memory matching pass (for profilers).
    #[arg(long, hide = true)]
    pub only_matching: bool,
}

#[derive(Debug, Serialize)]
struct Figures {
    commands: usize,
    matching_cmds_per_s: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    durable_cmds_per_s: u64,
    durable_avg_batch: u64,
    replay_cmds_per_s: u64,
    rss_bytes_1m_resting: u64,
    resting_orders: usize,
    /// Encoding the state with the resting orders (what a snapshot costs the engine thread).
    snapshot_encode_us: u64,
    snapshot_bytes: usize,
    trades: u64,
    /// Orders resting at the end of the stream.
    stream_resting_orders: usize,
}

fn rate(count: usize, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos().max(1);
    u64::try_from(count as u128 * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
}

/// The resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn apply_all(exchange: &mut Exchange, commands: &[Command], out: &mut Vec<Event>) {
    for command in commands {
        out.clear();
        exchange.apply(exchange.seq() + 1, exchange.seq() + 1, command, out);
    }
}

pub fn run(args: &EngineBenchArgs) -> Result<()> {
    let say = |s: &str| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    let setup = setup(args.users);
    let mut out = Vec::with_capacity(64);

    // Memory first, while the process holds nothing else.
    say(&format!("placing {} resting orders …", args.resting));
    let (rss, resting, snapshot) = {
        let mut exchange = Exchange::new();
        apply_all(&mut exchange, &setup, &mut out);
        let mut workload = Workload::new(args.seed, args.users);
        for command in workload.resting_orders(args.resting) {
            out.clear();
            exchange.apply(exchange.seq() + 1, 0, &command, &mut out);
        }
        let rss = rss_bytes();
        // The state's canonical encoding: what a snapshot costs the engine thread.
        let started = Instant::now();
        let bytes = exchange.encode_snapshot().len();
        (rss, exchange.open_orders_count(), (started.elapsed(), bytes))
    };

    say(&format!("generating {} commands …", args.commands));
    let mut trades = 0u64;
    let resting_end;
    let stream = {
        let mut exchange = Exchange::new();
        apply_all(&mut exchange, &setup, &mut out);
        let mut workload = Workload::new(args.seed, args.users);
        let mut stream = Vec::with_capacity(args.commands);
        for _ in 0..args.commands {
            let command = workload.next_command();
            out.clear();
            exchange.apply(exchange.seq() + 1, 0, &command, &mut out);
            workload.observe(&out);
            trades += out.iter().filter(|e| matches!(e, Event::Trade { .. })).count() as u64;
            stream.push(command);
        }
        resting_end = exchange.open_orders_count();
        stream
    };

    say("matching in memory …");
    let mut exchange = Exchange::new();
    apply_all(&mut exchange, &setup, &mut out);
    let started = Instant::now();
    for command in &stream {
        out.clear();
        exchange.apply(exchange.seq() + 1, 0, command, &mut out);
    }
    let matching = rate(stream.len(), started.elapsed());
    drop(exchange);
    if args.only_matching {
        println!("matching (1 core)        {matching} commands/s");
        return Ok(());
    }

    say("per-command latency …");
    let mut exchange = Exchange::new();
    apply_all(&mut exchange, &setup, &mut out);
    let mut latencies: Vec<u32> = Vec::with_capacity(stream.len());
    for command in &stream {
        out.clear();
        let t = Instant::now();
        exchange.apply(exchange.seq() + 1, 0, command, &mut out);
        latencies.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
    }
    drop(exchange);
    latencies.sort_unstable();
    let pct = |p: usize| {
        latencies.get(latencies.len().saturating_sub(1) * p / 1000).copied().map_or(0, u64::from)
    };
    let (p50, p99, p999) = (pct(500), pct(990), pct(999));
    drop(latencies);

    say("durable, with the journal …");
    let dir = tempfile::tempdir().context("temp dir")?;
    let mut config = EngineConfig::new(dir.path());
    config.check_invariants = false;
    config.snapshot_every = 0;
    let engine = Engine::start(config, SystemClock)?;
    let handle = engine.handle();
    let total = setup.len() + stream.len();
    let started = Instant::now();
    for command in setup.iter().chain(stream.iter()) {
        handle.submit_blocking(command.clone(), false)?;
    }
    while handle.status().seq < total as u64 {
        std::thread::sleep(Duration::from_micros(200));
    }
    let durable = rate(total, started.elapsed());
    let batches = handle.status().batches.max(1);
    drop(stream);
    // No final snapshot: the replay below must read the whole journal.
    engine.shutdown();

    say("replaying the journal …");
    let started = Instant::now();
    let replayed = bourse_engine::replay(dir.path(), ReplayFrom::Scratch)?;
    let replay = rate(usize::try_from(replayed.replayed).unwrap_or(usize::MAX), started.elapsed());

    let figures = Figures {
        commands: args.commands,
        matching_cmds_per_s: matching,
        p50_ns: p50,
        p99_ns: p99,
        p999_ns: p999,
        durable_cmds_per_s: durable,
        durable_avg_batch: total as u64 / batches,
        replay_cmds_per_s: replay,
        rss_bytes_1m_resting: rss,
        resting_orders: resting,
        snapshot_encode_us: u64::try_from(snapshot.0.as_micros()).unwrap_or(u64::MAX),
        snapshot_bytes: snapshot.1,
        trades,
        stream_resting_orders: resting_end,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        println!("commands                 {}", figures.commands);
        println!(
            "trades                   {} ({} orders resting at the end)",
            figures.trades, resting_end
        );
        println!("matching (1 core)        {} commands/s", figures.matching_cmds_per_s);
        println!("latency p50 / p99 / p99.9 {} / {} / {} ns", p50, p99, p999);
        println!(
            "durable (journal+fsync)  {} commands/s, {} commands per flush",
            durable, figures.durable_avg_batch
        );
        println!("replay                   {} commands/s", replay);
        println!("RSS with {} resting orders: {} MB", resting, rss / 1_000_000);
        println!(
            "snapshot encoding        {} ms, {} MB",
            figures.snapshot_encode_us / 1000,
            figures.snapshot_bytes / 1_000_000
        );
    }
    Ok(())
}
