//! The messages on a link, and their conversions to the engine's types.

use crate::key::Nonce;
use bourse_core::{Command, Event};
use bourse_engine::{
    BATCH_COMMANDS_BOUNDS, EngineError, EngineStats, EngineStatus, EventBatch, HistogramSnapshot,
    JOURNAL_COMMIT_BOUNDS_NS, Outcome,
};
use serde::{Deserialize, Serialize};

/// Bumped on any change to these messages: both ends must run the same version.
pub(crate) const VERSION: u32 = 1;

/// Client → server, first frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub version: u32,
    pub nonce: Nonce,
}

/// Server → client, answering [`Hello`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Challenge {
    pub version: u32,
    pub nonce: Nonce,
    pub proof: [u8; 32],
}

/// Client → server, the last unsealed frame: the client's proof and what the connection is for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Proof {
    pub proof: [u8; 32],
    pub open: Open,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Open {
    /// Commands in, outcomes and statuses out.
    Calls,
    /// Event batches from this seq on.
    Subscribe { from_seq: u64 },
    /// The engine's state, once.
    State,
}

/// Client → server on a calls connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Call {
    pub id: u64,
    pub command: Command,
}

/// Server → client on a calls connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Outcome { id: u64, seq: u64, time_ns: u64, events: Vec<Event> },
    Failed { id: u64, error: Refusal },
    Status(Status),
}

/// Why the engine did not take a command.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Refusal {
    Busy,
    Stopped,
}

impl From<&EngineError> for Refusal {
    fn from(e: &EngineError) -> Refusal {
        match e {
            EngineError::Busy => Refusal::Busy,
            _ => Refusal::Stopped,
        }
    }
}

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> EngineError {
        match r {
            Refusal::Busy => EngineError::Busy,
            Refusal::Stopped => EngineError::Stopped,
        }
    }
}

/// Server → client on a subscription.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Feed {
    /// `(seq, time_ns, end)` per command as in [`EventBatch`].
    Batch { commands: Vec<(u64, u64, u64)>, events: Vec<Event> },
    /// The engine refused the subscription (too many subscribers, stopped).
    Refused(String),
}

impl Feed {
    pub(crate) fn batch(batch: &EventBatch) -> Feed {
        Feed::Batch {
            commands: batch.commands.iter().map(|&(s, t, end)| (s, t, end as u64)).collect(),
            events: batch.events.clone(),
        }
    }
}

/// A batch as received, checked: ends ascending and within the events.
pub(crate) fn event_batch(
    commands: Vec<(u64, u64, u64)>,
    events: Vec<Event>,
) -> Result<EventBatch, String> {
    let mut last_end = 0usize;
    let mut last_seq = 0u64;
    let mut out = Vec::with_capacity(commands.len());
    for (seq, time_ns, end) in commands {
        let end = usize::try_from(end).map_err(|_| "an event index out of range".to_string())?;
        if end < last_end || end > events.len() || seq <= last_seq {
            return Err(format!("a batch out of order at seq {seq}"));
        }
        out.push((seq, time_ns, end));
        last_end = end;
        last_seq = seq;
    }
    Ok(EventBatch { commands: out, events })
}

/// Server → client on a state read.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum StatePart {
    Begin { seq: u64, bytes: u64 },
    Chunk(Vec<u8>),
    End,
    Refused(String),
}

/// The engine's status and measurements, as pushed to calls connections.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Status {
    pub seq: u64,
    pub batches: u64,
    pub snapshot_seq: u64,
    pub subscribers_cut_off: u64,
    pub running: bool,
    pub commands: u64,
    pub batch_buckets: Vec<u64>,
    pub batch_count: u64,
    pub batch_sum: u64,
    pub commit_buckets: Vec<u64>,
    pub commit_count: u64,
    pub commit_sum: u64,
}

impl Status {
    pub(crate) fn of(status: EngineStatus, stats: &EngineStats) -> Status {
        Status {
            seq: status.seq,
            batches: status.batches,
            snapshot_seq: status.snapshot_seq,
            subscribers_cut_off: status.subscribers_cut_off,
            running: status.running,
            commands: stats.commands,
            batch_buckets: stats.batch_commands.buckets.to_vec(),
            batch_count: stats.batch_commands.count,
            batch_sum: stats.batch_commands.sum,
            commit_buckets: stats.journal_commit_ns.buckets.to_vec(),
            commit_count: stats.journal_commit_ns.count,
            commit_sum: stats.journal_commit_ns.sum,
        }
    }

    pub(crate) fn engine_status(&self) -> EngineStatus {
        EngineStatus {
            seq: self.seq,
            batches: self.batches,
            snapshot_seq: self.snapshot_seq,
            subscribers_cut_off: self.subscribers_cut_off,
            running: self.running,
        }
    }

    pub(crate) fn engine_stats(&self) -> EngineStats {
        EngineStats {
            commands: self.commands,
            batch_commands: histogram(
                BATCH_COMMANDS_BOUNDS,
                &self.batch_buckets,
                self.batch_count,
                self.batch_sum,
            ),
            journal_commit_ns: histogram(
                JOURNAL_COMMIT_BOUNDS_NS,
                &self.commit_buckets,
                self.commit_count,
                self.commit_sum,
            ),
        }
    }
}

/// A histogram from its parts; a number of buckets other than the bounds' reads as empty.
fn histogram<const N: usize>(
    bounds: [u64; N],
    buckets: &[u64],
    count: u64,
    sum: u64,
) -> HistogramSnapshot<N> {
    match <[u64; N]>::try_from(buckets) {
        Ok(buckets) => HistogramSnapshot { bounds, buckets, count, sum },
        Err(_) => HistogramSnapshot { bounds, buckets: [0; N], count: 0, sum: 0 },
    }
}

pub(crate) fn outcome(seq: u64, time_ns: u64, events: Vec<Event>) -> Outcome {
    Outcome { seq, time_ns, events }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_out_of_order_or_beyond_its_events_is_refused() {
        assert!(event_batch(vec![(1, 0, 0), (2, 0, 0)], vec![]).is_ok());
        assert!(event_batch(vec![(2, 0, 0), (1, 0, 0)], vec![]).is_err());
        assert!(event_batch(vec![(1, 0, 1)], vec![]).is_err());
        assert!(event_batch(vec![(1, 0, u64::MAX)], vec![]).is_err());
    }
}
