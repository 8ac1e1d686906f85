//! Event fan-out. Each subscriber gets the engine's batches through its own bounded queue; one
//! that falls behind is cut off (its queue closes) rather than slowing the engine. The engine
//! keeps the most recent batches in a bounded ring, so a subscriber that was cut off, or one
//! that restarts, can resume from a sequence number that is still in the ring; older than that,
//! it must rebuild from state (a snapshot or its own store).

use bourse_core::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// The events of consecutive commands, in sequence order.
#[derive(Debug)]
pub struct EventBatch {
    /// `(seq, time_ns, end)`: command `seq` produced `events[previous end..end]`.
    pub commands: Vec<(u64, u64, usize)>,
    pub events: Vec<Event>,
}

impl EventBatch {
    pub fn first_seq(&self) -> u64 {
        self.commands.first().map_or(0, |c| c.0)
    }

    pub fn last_seq(&self) -> u64 {
        self.commands.last().map_or(0, |c| c.0)
    }

    /// Each command's `(seq, time_ns, events)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, &[Event])> {
        let mut start = 0;
        self.commands.iter().map(move |&(seq, time_ns, end)| {
            let events = self.events.get(start..end).unwrap_or(&[]);
            start = end;
            (seq, time_ns, events)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error(
        "events from seq {from} are no longer retained (oldest is {oldest}); resync from state"
    )]
    TooOld { from: u64, oldest: u64 },
    #[error("too many subscribers")]
    TooMany,
    #[error("the engine has stopped")]
    Stopped,
}

/// A live feed of event batches. `recv` returns `None` when the engine stops or when this
/// subscriber fell behind and was cut off; resubscribe from `next_seq()` to continue.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Arc<EventBatch>>,
    next_seq: u64,
}

impl Subscription {
    /// A subscription fed by whoever holds the returned sender (a link relaying a remote
    /// engine's batches): it ends when the sender is dropped.
    pub fn relay(capacity: usize, next_seq: u64) -> (mpsc::Sender<Arc<EventBatch>>, Subscription) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (tx, Subscription { rx, next_seq })
    }

    pub async fn recv(&mut self) -> Option<Arc<EventBatch>> {
        let batch = self.rx.recv().await?;
        self.next_seq = batch.last_seq() + 1;
        Some(batch)
    }

    /// The next batch if one is already queued (to merge a backlog into one unit of work).
    pub fn try_recv(&mut self) -> Option<Arc<EventBatch>> {
        let batch = self.rx.try_recv().ok()?;
        self.next_seq = batch.last_seq() + 1;
        Some(batch)
    }

    pub fn blocking_recv(&mut self) -> Option<Arc<EventBatch>> {
        let batch = self.rx.blocking_recv()?;
        self.next_seq = batch.last_seq() + 1;
        Some(batch)
    }

    /// The first sequence number not yet received.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[derive(Debug)]
struct Inner {
    ring: VecDeque<Arc<EventBatch>>,
    subscribers: Vec<mpsc::Sender<Arc<EventBatch>>>,
    /// The sequence number the next published batch starts with.
    next_seq: u64,
    stopped: bool,
}

/// Shared between the engine thread (publish) and handles (subscribe).
#[derive(Debug)]
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    ring_batches_max: usize,
    queue_batches_max: usize,
    subscribers_max: usize,
    pub(crate) cut_off: std::sync::atomic::AtomicU64,
}

impl Hub {
    pub(crate) fn new(
        next_seq: u64,
        ring_batches_max: usize,
        queue_batches_max: usize,
        subscribers_max: usize,
    ) -> Hub {
        Hub {
            inner: Mutex::new(Inner {
                ring: VecDeque::new(),
                subscribers: Vec::new(),
                next_seq,
                stopped: false,
            }),
            ring_batches_max: ring_batches_max.max(1),
            queue_batches_max: queue_batches_max.max(1),
            subscribers_max,
            cut_off: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock can only come from the engine thread, which then
        // stops; the data inside stays consistent (pushes and retains only).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish(&self, batch: Arc<EventBatch>) {
        let mut inner = self.lock();
        inner.next_seq = batch.last_seq() + 1;
        inner.subscribers.retain(|tx| match tx.try_send(batch.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.cut_off.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("event subscriber fell behind and was cut off");
                false
            }
        });
        if inner.ring.len() >= self.ring_batches_max {
            inner.ring.pop_front();
        }
        inner.ring.push_back(batch);
    }

    pub(crate) fn stop(&self) {
        let mut inner = self.lock();
        inner.stopped = true;
        inner.subscribers.clear();
    }

    /// Subscribes from `from_seq` (use the engine's seq + 1 for "only new events").
    pub(crate) fn subscribe(&self, from_seq: u64) -> Result<Subscription, SubscribeError> {
        let mut inner = self.lock();
        if inner.stopped {
            return Err(SubscribeError::Stopped);
        }
        if inner.subscribers.len() >= self.subscribers_max {
            return Err(SubscribeError::TooMany);
        }
        let backlog: Vec<Arc<EventBatch>> = if from_seq >= inner.next_seq {
            Vec::new()
        } else {
            let oldest = inner.ring.front().map_or(inner.next_seq, |b| b.first_seq());
            if from_seq < oldest {
                return Err(SubscribeError::TooOld { from: from_seq, oldest });
            }
            inner.ring.iter().filter(|b| b.last_seq() >= from_seq).cloned().collect()
        };
        let (tx, rx) = mpsc::channel(self.queue_batches_max + backlog.len());
        for batch in backlog {
            // Capacity was sized for the backlog.
            let _ = tx.try_send(batch);
        }
        inner.subscribers.push(tx);
        Ok(Subscription { rx, next_seq: from_seq })
    }
}
