//! What the engine measures about itself for `/metrics`: lock-free histograms the journal writer
//! thread updates once per group commit (a few relaxed atomic adds, no lock, no allocation),
//! read as a snapshot by anyone through [`EngineHandle::stats`](crate::EngineHandle::stats).
//! Values are integers (nanoseconds, commands); converting to seconds is the renderer's job.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the journal commit (write + fdatasync) histogram, in nanoseconds:
/// 0.1 ms to 1 s, suited to disks.
pub const JOURNAL_COMMIT_BOUNDS_NS: [u64; 12] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// Upper bounds of the commands-per-batch histogram.
pub const BATCH_COMMANDS_BOUNDS: [u64; 13] =
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A fixed-bucket histogram updated with atomics only.
#[derive(Debug)]
pub(crate) struct Histogram<const N: usize> {
    /// Ascending inclusive upper bounds.
    bounds: [u64; N],
    /// Observations per bucket (not cumulative): `buckets[i]` counts values in
    /// `(bounds[i-1], bounds[i]]`.
    buckets: [AtomicU64; N],
    /// Observations above the last bound.
    over: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    pub(crate) const fn new(bounds: [u64; N]) -> Histogram<N> {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            over: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&bound| bound < value);
        self.buckets.get(i).unwrap_or(&self.over).fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The counts so far. The count is the sum of the buckets read, so the buckets and the
    /// count always agree; the sum may be one observation apart from them while the writer
    /// is mid-update.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot<N> {
        let buckets = self.buckets.each_ref().map(|b| b.load(Ordering::Relaxed));
        let over = self.over.load(Ordering::Relaxed);
        let count = buckets.iter().fold(over, |total, n| total.saturating_add(*n));
        HistogramSnapshot {
            bounds: self.bounds,
            buckets,
            count,
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// A histogram read at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot<const N: usize> {
    /// Ascending inclusive upper bounds (Prometheus `le`), in the histogram's unit.
    pub bounds: [u64; N],
    /// Observations per bucket, not cumulative: `buckets[i]` counts values in
    /// `(bounds[i-1], bounds[i]]`. Values above the last bound are only in `count`.
    pub buckets: [u64; N],
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// The sum of the observed values, in the histogram's unit.
    pub sum: u64,
}

impl<const N: usize> HistogramSnapshot<N> {
    /// `(bound, observations ≤ bound)` for each bound, as Prometheus buckets are.
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bounds.iter().zip(&self.buckets).scan(0u64, |total, (&bound, &n)| {
            *total = total.saturating_add(n);
            Some((bound, *total))
        })
    }
}

/// The engine's own measurements since this process started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineStats {
    /// Commands applied and durable since the engine started (not since the journal began:
    /// see `EngineStatus::seq` for that). Equal to `batch_commands.sum`.
    pub commands: u64,
    /// Commands per group commit (one observation per batch).
    pub batch_commands: HistogramSnapshot<13>,
    /// Time of each journal commit (write + fdatasync) in the writer thread, in nanoseconds.
    pub journal_commit_ns: HistogramSnapshot<12>,
}

/// The engine's histograms, shared between the writer thread and the handles.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) batch_commands: Histogram<13>,
    pub(crate) journal_commit_ns: Histogram<12>,
}

impl Stats {
    pub(crate) const fn new() -> Stats {
        Stats {
            batch_commands: Histogram::new(BATCH_COMMANDS_BOUNDS),
            journal_commit_ns: Histogram::new(JOURNAL_COMMIT_BOUNDS_NS),
        }
    }

    pub(crate) fn snapshot(&self) -> EngineStats {
        let batch_commands = self.batch_commands.snapshot();
        EngineStats {
            commands: batch_commands.sum,
            batch_commands,
            journal_commit_ns: self.journal_commit_ns.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new([1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, [2, 1, 2]);
        assert_eq!(s.count, 7);
        assert_eq!(s.sum, 115);
        assert_eq!(s.cumulative().collect::<Vec<_>>(), vec![(1, 2), (2, 3), (4, 5)]);
    }
}
