//! The engine thread and the handles that talk to it.

use crate::clock::Clock;
use crate::recovery::{RecoveryError, apply_journal, load_snapshot};
use crate::remote::Remote;
use crate::stats::{EngineStats, Stats};
use crate::subscribe::{EventBatch, Hub, SubscribeError, Subscription};
use crate::{journal_dir, snapshot_dir};
use bourse_core::{Command, Event, Exchange, Stamped};
use bourse_journal::{DataDirLock, FileJournal, Journal, JournalOptions, SnapshotStore};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Commands waiting for the engine; submitters block (or get `Busy`) beyond this.
    pub queue_capacity: usize,
    /// The most commands in one group commit.
    pub batch_max: usize,
    /// Write a snapshot after this many commands (0: never, except at shutdown).
    pub snapshot_every: u64,
    pub snapshots_keep: usize,
    /// Batches retained for subscribers that resume from a sequence number.
    pub ring_batches: usize,
    /// Batches a subscriber may have queued before it is cut off.
    pub subscriber_queue_batches: usize,
    pub subscribers_max: usize,
    /// Run the full invariant check after every command (tests and debug builds): O(state)
    /// per command, so never in production.
    pub check_invariants: bool,
    pub journal: JournalOptions,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            queue_capacity: 65_536,
            batch_max: 8_192,
            snapshot_every: 1_000_000,
            snapshots_keep: 3,
            ring_batches: 4_096,
            subscriber_queue_batches: 1_024,
            subscribers_max: 64,
            check_invariants: cfg!(debug_assertions),
            journal: JournalOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the engine: {0}")]
    Recovery(#[from] RecoveryError),
    #[error("cannot start the engine: {0}")]
    Journal(#[from] bourse_journal::JournalError),
    #[error("the engine queue is full")]
    Busy,
    #[error("the engine has stopped")]
    Stopped,
    #[error("cannot start the engine thread: {0}")]
    Thread(std::io::Error),
    #[error("only the engine's own process can do this")]
    NotLocal,
}

/// What one command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub seq: u64,
    pub time_ns: u64,
    pub events: Vec<Event>,
}

/// Counters read without stopping the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStatus {
    /// Last applied (and durable) command.
    pub seq: u64,
    pub batches: u64,
    pub snapshot_seq: u64,
    pub subscribers_cut_off: u64,
    pub running: bool,
}

type Reply = oneshot::Sender<Outcome>;

/// A read of the engine's state, run on the engine thread between batches.
type ReadFn = Box<dyn FnOnce(&Exchange) + Send>;

pub(crate) enum Request {
    Command(Command, Option<Reply>),
    Snapshot(oneshot::Sender<Result<u64, String>>),
    Read(ReadFn),
    Stop,
}

#[derive(Debug)]
struct Shared {
    seq: AtomicU64,
    batches: AtomicU64,
    snapshot_seq: AtomicU64,
    running: AtomicBool,
    /// Turns true once the engine thread has stopped and every reply it will send is sent.
    stopped: tokio::sync::watch::Sender<bool>,
    hub: Hub,
    /// Batch sizes and journal commit times, updated by the writer thread.
    stats: Stats,
}

/// A cheap, cloneable way to submit commands and subscribe to events: to the engine thread of
/// this process, or to an engine in another process over a link ([`Remote`]).
#[derive(Clone, Debug)]
pub struct EngineHandle {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Local { tx: Sender<Request>, shared: Arc<Shared> },
    Remote(Arc<dyn Remote>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Command(c, _) => write!(f, "Command({c:?})"),
            Request::Snapshot(_) => f.write_str("Snapshot"),
            Request::Read(_) => f.write_str("Read"),
            Request::Stop => f.write_str("Stop"),
        }
    }
}

impl EngineHandle {
    /// A handle whose commands, reads and subscriptions go to `remote`.
    pub fn remote(remote: Arc<dyn Remote>) -> EngineHandle {
        EngineHandle { backend: Backend::Remote(remote) }
    }

    /// Whether the engine runs in this process (only then can it be paused or snapshotted).
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local { .. })
    }

    /// The engine has stopped for good: a follower whose subscription ended should stop too
    /// rather than resubscribe. A remote engine is never finished while its link is open (a
    /// lost connection is followed by a new one).
    pub fn finished(&self) -> bool {
        match &self.backend {
            Backend::Local { shared, .. } => !shared.running.load(Ordering::Acquire),
            Backend::Remote(remote) => remote.closed(),
        }
    }

    fn local(&self) -> Result<(&Sender<Request>, &Arc<Shared>), EngineError> {
        match &self.backend {
            Backend::Local { tx, shared } => Ok((tx, shared)),
            Backend::Remote(_) => Err(EngineError::NotLocal),
        }
    }

    pub(crate) fn try_send_local(&self, request: Request) -> Result<(), EngineError> {
        let (tx, _) = self.local()?;
        tx.try_send(request).map_err(|e| match e {
            TrySendError::Full(_) => EngineError::Busy,
            TrySendError::Disconnected(_) => EngineError::Stopped,
        })
    }

    /// Submits without waiting for room: `Busy` when the queue is full.
    pub fn try_submit(&self, command: Command) -> Result<oneshot::Receiver<Outcome>, EngineError> {
        let (reply, rx) = oneshot::channel();
        match &self.backend {
            Backend::Local { .. } => self.try_send_local(Request::Command(command, Some(reply)))?,
            Backend::Remote(remote) => remote.submit(command, Some(reply))?,
        }
        Ok(rx)
    }

    /// Submits, blocking while the queue is full (a remote engine's link answers `Busy`
    /// instead). `want_reply: false` is for bulk loads that follow the events instead.
    pub fn submit_blocking(
        &self,
        command: Command,
        want_reply: bool,
    ) -> Result<Option<oneshot::Receiver<Outcome>>, EngineError> {
        let (reply, rx) = if want_reply {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        match &self.backend {
            Backend::Local { tx, .. } => {
                tx.send(Request::Command(command, reply)).map_err(|_| EngineError::Stopped)?
            }
            Backend::Remote(remote) => remote.submit(command, reply)?,
        }
        Ok(rx)
    }

    /// Submits and waits for the durable outcome (from async code).
    pub async fn execute(&self, command: Command) -> Result<Outcome, EngineError> {
        let reply = self.try_submit(command)?;
        self.outcome(reply).await
    }

    /// Waits for the outcome of a command [`try_submit`](Self::try_submit) queued: `Stopped`
    /// if the engine stops without applying it.
    pub async fn outcome(
        &self,
        mut reply: oneshot::Receiver<Outcome>,
    ) -> Result<Outcome, EngineError> {
        let shared = match &self.backend {
            Backend::Local { shared, .. } => shared,
            // The link drops the reply when its connection is lost.
            Backend::Remote(_) => return reply.await.map_err(|_| EngineError::Stopped),
        };
        let mut stopped = shared.stopped.subscribe();
        let engine_stopped = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        tokio::select! {
            outcome = &mut reply => outcome.map_err(|_| EngineError::Stopped),
            // A command queued behind the stop is never applied; every reply the engine sent
            // has arrived by now, so `try_recv` is the final answer.
            () = engine_stopped => reply.try_recv().map_err(|_| EngineError::Stopped),
        }
    }

    /// Submits and waits for the durable outcome (from a plain thread).
    pub fn execute_blocking(&self, command: Command) -> Result<Outcome, EngineError> {
        match self.submit_blocking(command, true)? {
            Some(rx) => rx.blocking_recv().map_err(|_| EngineError::Stopped),
            None => Err(EngineError::Stopped),
        }
    }

    /// Writes a snapshot now (after every command queued before this call); returns its seq.
    pub fn snapshot_blocking(&self) -> Result<u64, EngineError> {
        let (tx, rx) = oneshot::channel();
        let (queue, _) = self.local()?;
        queue.send(Request::Snapshot(tx)).map_err(|_| EngineError::Stopped)?;
        match rx.blocking_recv() {
            Ok(Ok(seq)) => Ok(seq),
            _ => Err(EngineError::Stopped),
        }
    }

    /// Runs `f` against a state in which every command submitted before this call is applied
    /// and durable, and returns its result with that state's seq. For bootstrapping mirrors
    /// (subscribe from the returned seq + 1). Locally `f` runs on the engine thread and must be
    /// quick, the engine waits for it; a remote engine sends its whole state and `f` runs here.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Exchange) -> R + Send + 'static,
    ) -> Result<(u64, R), EngineError> {
        if let Backend::Remote(remote) = &self.backend {
            let exchange = remote.state().await?;
            return Ok((exchange.seq(), f(&exchange)));
        }
        let (tx, rx) = oneshot::channel();
        let read: ReadFn = Box::new(move |exchange: &Exchange| {
            let _ = tx.send((exchange.seq(), f(exchange)));
        });
        self.try_send_local(Request::Read(read))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Events of every command from `from_seq` on (a batch may begin a little before it). Use
    /// `status().seq + 1` for new events only.
    pub fn subscribe(&self, from_seq: u64) -> Result<Subscription, SubscribeError> {
        match &self.backend {
            Backend::Local { shared, .. } => shared.hub.subscribe(from_seq),
            Backend::Remote(remote) => remote.subscribe(from_seq),
        }
    }

    /// For a remote engine, the last status its link reported (`running` is false while the
    /// link is down).
    pub fn status(&self) -> EngineStatus {
        match &self.backend {
            Backend::Local { shared, .. } => EngineStatus {
                seq: shared.seq.load(Ordering::Acquire),
                batches: shared.batches.load(Ordering::Relaxed),
                snapshot_seq: shared.snapshot_seq.load(Ordering::Relaxed),
                subscribers_cut_off: shared.hub.cut_off.load(Ordering::Relaxed),
                running: shared.running.load(Ordering::Acquire),
            },
            Backend::Remote(remote) => remote.status(),
        }
    }

    /// The engine's histograms (commands per batch, journal commit time) since it started:
    /// a few atomic loads (for a remote engine, the last ones its link reported).
    pub fn stats(&self) -> EngineStats {
        match &self.backend {
            Backend::Local { shared, .. } => shared.stats.snapshot(),
            Backend::Remote(remote) => remote.stats(),
        }
    }
}

/// The running engine. Dropping it stops the thread after the commands already queued.
#[derive(Debug)]
pub struct Engine {
    handle: EngineHandle,
    thread: Option<JoinHandle<Exchange>>,
    _lock: Arc<DataDirLock>,
}

impl Engine {
    /// Locks the data directory, recovers (snapshot + journal, truncating a torn tail) and
    /// starts the engine thread.
    pub fn start(config: EngineConfig, clock: impl Clock) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| {
            bourse_journal::JournalError::Io { path: config.data_dir.clone(), source }
        })?;
        let lock = Arc::new(DataDirLock::acquire(&config.data_dir)?);
        let (journal, recovery) =
            FileJournal::open(&journal_dir(&config.data_dir), config.journal)?;
        let (mut exchange, snapshot_seq) = load_snapshot(&config.data_dir)?;
        if recovery.last_seq < snapshot_seq {
            return Err(RecoveryError::JournalBehindSnapshot {
                snapshot: snapshot_seq,
                journal: recovery.last_seq,
            }
            .into());
        }
        let replayed = apply_journal(&config.data_dir, &mut exchange, &mut |_, _, _| {})?;
        if exchange.seq() != recovery.last_seq {
            return Err(RecoveryError::Gap { after: exchange.seq(), got: recovery.last_seq }.into());
        }
        if config.check_invariants
            && let Err(e) = exchange.check_invariants()
        {
            return Err(RecoveryError::Snapshot {
                seq: exchange.seq(),
                source: bourse_core::SnapshotError::Inconsistent(e.0),
            }
            .into());
        }
        tracing::info!(
            seq = exchange.seq(),
            snapshot_seq,
            replayed,
            truncated_bytes = recovery.truncated_bytes,
            "engine recovered"
        );

        let snapshots = SnapshotStore::open(&snapshot_dir(&config.data_dir))?;
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            seq: AtomicU64::new(exchange.seq()),
            batches: AtomicU64::new(0),
            snapshot_seq: AtomicU64::new(snapshot_seq),
            running: AtomicBool::new(true),
            stopped: tokio::sync::watch::Sender::new(false),
            hub: Hub::new(
                exchange.seq() + 1,
                config.ring_batches,
                config.subscriber_queue_batches,
                config.subscribers_max,
            ),
            stats: Stats::new(),
        });
        let runner = Runner {
            exchange,
            journal: Some(Box::new(journal)),
            snapshots,
            last_snapshot: snapshot_seq,
            config,
            clock: Box::new(clock),
            rx,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("bourse-engine".into())
            .spawn(move || runner.run())
            .map_err(EngineError::Thread)?;
        Ok(Engine {
            handle: EngineHandle { backend: Backend::Local { tx, shared } },
            thread: Some(thread),
            _lock: lock,
        })
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Stops after every command queued before this call, writes a final snapshot and returns
    /// the final state.
    pub fn shutdown(mut self) -> Option<Exchange> {
        self.stop()
    }

    fn stop(&mut self) -> Option<Exchange> {
        let thread = self.thread.take()?;
        if let Backend::Local { tx, .. } = &self.handle.backend {
            let _ = tx.send(Request::Stop);
        }
        thread.join().ok()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Runner {
    exchange: Exchange,
    journal: Option<Box<dyn Journal>>,
    snapshots: SnapshotStore,
    last_snapshot: u64,
    config: EngineConfig,
    clock: Box<dyn Clock>,
    rx: Receiver<Request>,
    shared: Arc<Shared>,
}

/// One applied batch on its way to the journal writer.
struct Applied {
    time_ns: u64,
    commands: Vec<(Command, Option<Reply>)>,
    batch: EventBatch,
}

enum ToWriter {
    Batch(Applied),
    /// Answered once everything sent before it is durable.
    Barrier(oneshot::Sender<()>),
}

impl Runner {
    /// The engine thread applies batch N+1 while the writer thread journals batch N: the
    /// state runs ahead of the disk, but nobody sees it — replies and events leave only from
    /// the writer, after the fsync — and a snapshot waits for the writer to catch up first.
    fn run(mut self) -> Exchange {
        let (to_writer, from_engine) = crossbeam_channel::bounded::<ToWriter>(2);
        let writer = {
            let journal = self.journal.take();
            let shared = self.shared.clone();
            std::thread::Builder::new().name("bourse-journal".into()).spawn(move || match journal {
                Some(journal) => write_loop(journal, &from_engine, &shared),
                None => fatal("engine started without a journal"),
            })
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => fatal(&format!("cannot start the journal thread: {e}")),
        };

        let mut batch: Vec<(Command, Option<Reply>)> = Vec::with_capacity(self.config.batch_max);
        let mut stop = false;
        while !stop {
            let Ok(first) = self.rx.recv() else { break };
            let mut control = Some(first);
            // Drain what is queued, up to the batch limit; a control request ends the batch so
            // that it sees every command queued before it.
            loop {
                match control.take() {
                    Some(Request::Command(c, r)) => batch.push((c, r)),
                    Some(Request::Snapshot(reply)) => {
                        self.apply_batch(&mut batch, &to_writer);
                        let result = self.snapshot(&to_writer).map_err(|e| e.to_string());
                        let _ = reply.send(result);
                    }
                    Some(Request::Read(read)) => {
                        self.apply_batch(&mut batch, &to_writer);
                        self.barrier(&to_writer);
                        read(&self.exchange);
                    }
                    Some(Request::Stop) => {
                        stop = true;
                        break;
                    }
                    None => {}
                }
                if batch.len() >= self.config.batch_max {
                    break;
                }
                match self.rx.try_recv() {
                    Ok(request) => control = Some(request),
                    Err(_) => break,
                }
            }
            self.apply_batch(&mut batch, &to_writer);
            if self.config.snapshot_every > 0
                && self.exchange.seq() - self.last_snapshot >= self.config.snapshot_every
                && let Err(e) = self.snapshot(&to_writer)
            {
                tracing::error!(error = %e, "snapshot failed; will retry at the next interval");
                self.last_snapshot = self.exchange.seq();
            }
        }
        drop(to_writer);
        if writer.join().is_err() {
            fatal("the journal thread panicked");
        }
        if self.exchange.seq() > self.last_snapshot
            && let Err(e) = self.write_snapshot()
        {
            tracing::error!(error = %e, "final snapshot failed; the journal still has everything");
        }
        self.shared.running.store(false, Ordering::Release);
        // Requests queued behind the stop are dropped, so their submitters hear `Stopped`
        // (crossbeam keeps buffered messages while any sender lives).
        for request in self.rx.try_iter() {
            drop(request);
        }
        self.shared.stopped.send_replace(true);
        self.shared.hub.stop();
        tracing::info!(seq = self.exchange.seq(), "engine stopped");
        self.exchange
    }

    /// Stamps and applies one batch and hands it to the writer.
    fn apply_batch(
        &mut self,
        batch: &mut Vec<(Command, Option<Reply>)>,
        to_writer: &Sender<ToWriter>,
    ) {
        if batch.is_empty() {
            return;
        }
        let time_ns = self.clock.now_ns().max(self.exchange.time_ns());
        let mut events = Vec::with_capacity(batch.len() * 4);
        let mut ends = Vec::with_capacity(batch.len());
        for (command, _) in batch.iter() {
            let seq = self.exchange.seq() + 1;
            self.exchange.apply(seq, time_ns, command, &mut events);
            ends.push((seq, time_ns, events.len()));
            if self.config.check_invariants
                && let Err(e) = self.exchange.check_invariants()
            {
                fatal(&format!("after command {seq} ({command:?}): {e}"));
            }
        }
        let applied = Applied {
            time_ns,
            commands: std::mem::replace(batch, Vec::with_capacity(self.config.batch_max)),
            batch: EventBatch { commands: ends, events },
        };
        if to_writer.send(ToWriter::Batch(applied)).is_err() {
            fatal("the journal thread stopped");
        }
    }

    /// Waits until everything applied is durable, then writes a snapshot: a snapshot must
    /// never be ahead of the journal.
    fn snapshot(
        &mut self,
        to_writer: &Sender<ToWriter>,
    ) -> Result<u64, bourse_journal::JournalError> {
        self.barrier(to_writer);
        self.write_snapshot()
    }

    /// Waits until everything applied so far is durable (and published).
    fn barrier(&self, to_writer: &Sender<ToWriter>) {
        let (tx, rx) = oneshot::channel();
        if to_writer.send(ToWriter::Barrier(tx)).is_err() || rx.blocking_recv().is_err() {
            fatal("the journal thread stopped");
        }
    }

    fn write_snapshot(&mut self) -> Result<u64, bourse_journal::JournalError> {
        let seq = self.exchange.seq();
        let bytes = self.exchange.encode_snapshot();
        self.snapshots.write(seq, &bytes)?;
        self.snapshots.retain(self.config.snapshots_keep.max(1))?;
        self.last_snapshot = seq;
        self.shared.snapshot_seq.store(seq, Ordering::Relaxed);
        tracing::info!(seq, bytes = bytes.len(), "snapshot written");
        Ok(seq)
    }
}

/// The journal writer: appends each applied batch, makes it durable, then publishes its events
/// and answers its submitters.
fn write_loop(mut journal: Box<dyn Journal>, from_engine: &Receiver<ToWriter>, shared: &Shared) {
    let mut payload = Vec::with_capacity(256);
    for message in from_engine {
        let applied = match message {
            ToWriter::Batch(applied) => applied,
            ToWriter::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let Applied { time_ns, commands, batch } = applied;
        for ((command, _), &(seq, _, _)) in commands.iter().zip(&batch.commands) {
            if let Err(e) = Stamped::encode_parts(time_ns, command, &mut payload) {
                fatal(&format!("cannot encode command: {e}"));
            }
            if let Err(e) = journal.append(seq, &payload) {
                fatal(&format!("journal append failed: {e}"));
            }
        }
        // Durable before anything is acknowledged. A failed fsync leaves the file in an unknown
        // state: stop, and let recovery decide what is on disk.
        let started = Instant::now();
        if let Err(e) = journal.commit() {
            fatal(&format!("journal commit failed: {e}"));
        }
        let commit_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        shared.stats.journal_commit_ns.observe(commit_ns);
        shared.stats.batch_commands.observe(u64::try_from(commands.len()).unwrap_or(u64::MAX));
        shared.seq.store(batch.last_seq(), Ordering::Release);
        shared.batches.fetch_add(1, Ordering::Relaxed);
        // Subscribers get the batch before submitters hear back, so a client that reads its
        // own outcome and then subscribes from that seq misses nothing.
        let batch = Arc::new(batch);
        shared.hub.publish(batch.clone());
        let mut start = 0;
        for ((_, reply), &(seq, time_ns, end)) in commands.into_iter().zip(&batch.commands) {
            if let Some(reply) = reply {
                let events = batch.events.get(start..end).unwrap_or(&[]).to_vec();
                let _ = reply.send(Outcome { seq, time_ns, events });
            }
            start = end;
        }
    }
}

/// Storage failed under the engine: continuing could acknowledge what is not durable.
fn fatal(message: &str) -> ! {
    tracing::error!("{message}; stopping the process");
    eprintln!("bourse engine: {message}; stopping the process");
    std::process::abort()
}
