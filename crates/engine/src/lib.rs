//! The engine role: one thread owns the [`Exchange`](bourse_core::Exchange). Commands arrive on
//! a bounded queue; the thread takes a batch, stamps each command with its sequence number and
//! time, appends the batch to the journal and makes it durable with one fdatasync (group commit),
//! then applies the commands, answers their submitters and publishes the events. Nothing is
//! acknowledged before it is durable, and state is a function of the journal alone.
//!
//! This crate owns the data directory layout (`journal/`, `snapshots/`, `LOCK`), recovery
//! (newest valid snapshot + journal replay) and the event fan-out. It never talks HTTP or SQL.

mod clock;
mod pause;
mod recovery;
mod remote;
mod runner;
mod stats;
mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, SystemClock};
pub use pause::PauseGuard;
pub use recovery::{Recovered, RecoveryError, ReplayFrom, replay, replay_events};
pub use remote::{Remote, StateFuture};
pub use runner::{Engine, EngineConfig, EngineError, EngineHandle, EngineStatus, Outcome};
pub use stats::{BATCH_COMMANDS_BOUNDS, EngineStats, HistogramSnapshot, JOURNAL_COMMIT_BOUNDS_NS};
pub use subscribe::{EventBatch, SubscribeError, Subscription};

use std::path::{Path, PathBuf};

/// Where the journal lives inside a data directory.
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

/// Where snapshots live inside a data directory.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}
