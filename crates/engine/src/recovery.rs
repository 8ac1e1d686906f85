//! Rebuilding the exchange from a data directory: the newest valid snapshot, then every journal
//! record after it. Used at startup and by `bourse replay --verify`.

use crate::{journal_dir, snapshot_dir};
use bourse_core::{Event, Exchange, SnapshotError, Stamped};
use bourse_journal::{FileJournal, JournalError, SnapshotStore};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("snapshot at seq {seq}: {source}")]
    Snapshot { seq: u64, source: SnapshotError },
    #[error("journal record {seq} does not decode as a command: {reason}")]
    Decode { seq: u64, reason: String },
    #[error("journal record {got} follows {after}: records are missing")]
    Gap { after: u64, got: u64 },
    #[error(
        "the snapshot is at seq {snapshot} but the journal ends at {journal}: the journal is incomplete"
    )]
    JournalBehindSnapshot { snapshot: u64, journal: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// An empty exchange and the whole journal.
    Scratch,
    /// The newest valid snapshot (or scratch if there is none) and the journal after it.
    LatestSnapshot,
}

#[derive(Debug)]
pub struct Recovered {
    pub exchange: Exchange,
    /// The snapshot the replay started from (0: none).
    pub snapshot_seq: u64,
    /// Journal records applied on top of it.
    pub replayed: u64,
}

/// Rebuilds the exchange from `data_dir` without writing anything (a torn tail is left for the
/// engine's own recovery to truncate; the reader stops before it).
pub fn replay(data_dir: &Path, from: ReplayFrom) -> Result<Recovered, RecoveryError> {
    let (mut exchange, snapshot_seq) = match from {
        ReplayFrom::Scratch => (Exchange::new(), 0),
        ReplayFrom::LatestSnapshot => load_snapshot(data_dir)?,
    };
    let replayed = apply_journal(data_dir, &mut exchange, &mut |_, _, _| {})?;
    Ok(Recovered { exchange, snapshot_seq, replayed })
}

/// Rebuilds the events of every journaled command from `from_seq` on and hands them to
/// `on_events(seq, time_ns, events)` in order; returns the last seq replayed. Starts from the
/// newest valid snapshot if it is before `from_seq`, from scratch otherwise. Read-only: safe
/// while the engine runs (it stops at the durable end it finds). For subscribers, such as the
/// read-model projector, that fell further behind than the engine's in-memory ring.
pub fn replay_events(
    data_dir: &Path,
    from_seq: u64,
    on_events: &mut dyn FnMut(u64, u64, &[Event]),
) -> Result<u64, RecoveryError> {
    let (mut exchange, _) = match load_snapshot(data_dir)? {
        (exchange, seq) if seq < from_seq => (exchange, seq),
        _ => (Exchange::new(), 0),
    };
    apply_journal(data_dir, &mut exchange, &mut |seq, time_ns, events| {
        if seq >= from_seq {
            on_events(seq, time_ns, events);
        }
    })?;
    Ok(exchange.seq())
}

pub(crate) fn load_snapshot(data_dir: &Path) -> Result<(Exchange, u64), RecoveryError> {
    let store = SnapshotStore::open(&snapshot_dir(data_dir))?;
    match store.load_latest_valid()? {
        None => Ok((Exchange::new(), 0)),
        Some((seq, bytes)) => {
            let exchange = Exchange::restore(&bytes)
                .map_err(|source| RecoveryError::Snapshot { seq, source })?;
            if exchange.seq() != seq {
                let reason = format!("file name says {seq}, content says {}", exchange.seq());
                return Err(RecoveryError::Snapshot {
                    seq,
                    source: SnapshotError::Inconsistent(reason),
                });
            }
            Ok((exchange, seq))
        }
    }
}

/// Commands decoded per chunk handed from the reader thread to the applier.
const REPLAY_CHUNK: usize = 4_096;

/// Applies every journal record after the exchange's sequence number; returns how many. One
/// thread reads, verifies and decodes while this one applies: replay is the engine's restart
/// time, and the two halves cost about the same.
pub(crate) fn apply_journal(
    data_dir: &Path,
    exchange: &mut Exchange,
    on_events: &mut dyn FnMut(u64, u64, &[Event]),
) -> Result<u64, RecoveryError> {
    let mut reader = FileJournal::reader(&journal_dir(data_dir), exchange.seq() + 1)?;
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<(u64, Stamped)>, RecoveryError>>(4);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut payload = Vec::with_capacity(256);
            let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
            loop {
                let next = match reader.next_into(&mut payload) {
                    Ok(Some(seq)) => Stamped::decode(&payload)
                        .map(|stamped| Some((seq, stamped)))
                        .map_err(|e| RecoveryError::Decode { seq, reason: e.to_string() }),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.into()),
                };
                match next {
                    Ok(Some(record)) => {
                        chunk.push(record);
                        if chunk.len() < REPLAY_CHUNK {
                            continue;
                        }
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK));
                        if tx.send(Ok(full)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Ok(chunk));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Ok(chunk));
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let mut events = Vec::with_capacity(64);
        let mut applied = 0;
        for chunk in rx {
            for (seq, stamped) in chunk? {
                if seq != exchange.seq() + 1 {
                    return Err(RecoveryError::Gap { after: exchange.seq(), got: seq });
                }
                events.clear();
                exchange.apply(seq, stamped.time_ns, &stamped.command, &mut events);
                on_events(seq, stamped.time_ns, &events);
                applied += 1;
            }
        }
        Ok(applied)
    })
}
