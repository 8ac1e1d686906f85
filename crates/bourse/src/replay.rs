//! `bourse replay --verify`: rebuilds the state twice — from an empty exchange through the whole
//! journal, and from the newest snapshot through the rest — and compares the state hashes.

use anyhow::Result;
use bourse_engine::{ReplayFrom, replay};
use std::path::Path;
use std::time::Instant;

/// Prints both hashes; returns whether they agree and conservation holds.
pub fn verify(data_dir: &Path) -> Result<bool> {
    anyhow::ensure!(data_dir.is_dir(), "data directory {} does not exist", data_dir.display());
    let started = Instant::now();
    let scratch = replay(data_dir, ReplayFrom::Scratch)?;
    let scratch_hash = scratch.exchange.state_hash();
    println!(
        "from scratch:  seq {:>12}  {} commands replayed in {:.2?}  hash {scratch_hash}",
        scratch.exchange.seq(),
        scratch.replayed,
        started.elapsed()
    );
    let started = Instant::now();
    let snap = replay(data_dir, ReplayFrom::LatestSnapshot)?;
    let snap_hash = snap.exchange.state_hash();
    println!(
        "from snapshot: seq {:>12}  snapshot {} + {} commands in {:.2?}  hash {snap_hash}",
        snap.exchange.seq(),
        snap.snapshot_seq,
        snap.replayed,
        started.elapsed()
    );
    let balanced = scratch.exchange.audit().iter().all(|t| t.balanced());
    println!("conservation:  {}", if balanced { "every asset balances" } else { "BROKEN" });
    let same = scratch_hash == snap_hash && scratch.exchange.seq() == snap.exchange.seq();
    println!("{}", if same { "hashes agree" } else { "HASHES DIFFER" });
    Ok(same && balanced)
}
