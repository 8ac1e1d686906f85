//! The other roles' side of the link: an [`EngineHandle`] whose engine is in another process.

use crate::LinkError;
use crate::frame::{Direction, FrameReader, FrameWriter};
use crate::key::{LinkKey, nonce};
use crate::wire::{self, Answer, Call, Challenge, Feed, Hello, Open, Proof, StatePart, Status};
use bourse_core::{Command, Exchange};
use bourse_engine::{
    EngineError, EngineHandle, EngineStats, EngineStatus, Outcome, Remote, StateFuture,
    SubscribeError, Subscription,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};

type Reader = FrameReader<BufReader<OwnedReadHalf>>;
type Writer = FrameWriter<BufWriter<OwnedWriteHalf>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands waiting to go out on the calls connection; `Busy` beyond.
const QUEUE_MAX: usize = 65_536;
/// A calls connection that hears nothing (not even a status, sent every 250 ms) for this long
/// is lost.
const SILENCE_MAX: Duration = Duration::from_secs(5);
/// Batches a subscription may have waiting for its reader.
const SUBSCRIPTION_QUEUE: usize = 1024;
/// The largest state accepted from the engine.
const STATE_MAX_BYTES: u64 = 8 << 30;
const STATE_TIMEOUT: Duration = Duration::from_secs(300);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Keeps the link open; dropping it (or [`LinkGuard::close`]) closes it for good.
#[derive(Debug)]
pub struct LinkGuard {
    inner: Arc<Inner>,
}

impl LinkGuard {
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        self.close();
    }
}

#[derive(Debug)]
struct Inner {
    addr: String,
    key: LinkKey,
    runtime: tokio::runtime::Handle,
    calls: mpsc::Sender<Call>,
    /// Replies waited for, by call id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    next_id: AtomicU64,
    /// A calls connection is up.
    up: AtomicBool,
    status: Mutex<Status>,
    closed: watch::Sender<bool>,
}

impl Inner {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Outcome>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    async fn wait_closed(&self) {
        let mut closed = self.closed.subscribe();
        let _ = closed.wait_for(|c| *c).await;
    }

    fn set_status(&self, status: Status) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
    }

    fn saw_seq(&self, seq: u64) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.seq = status.seq.max(seq);
    }
}

/// Connects to the engine's link at `addr`, waiting up to `wait` for it to come up (a wrong
/// key or version fails at once), and returns a handle to it with the guard that keeps the
/// link open. Must be called inside a tokio runtime, which the link's tasks then run on.
pub async fn connect(
    addr: &str,
    key: LinkKey,
    wait: Duration,
) -> Result<(EngineHandle, LinkGuard), LinkError> {
    let deadline = Instant::now() + wait;
    let (mut reader, writer) = loop {
        match open(addr, &key, Open::Calls).await {
            Ok(connection) => break connection,
            Err(e @ (LinkError::WrongKey(_) | LinkError::Protocol(_))) => return Err(e),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::info!(addr, error = %e, "waiting for the engine's link");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let first = match tokio::time::timeout(SILENCE_MAX, reader.read::<Answer>()).await {
        Ok(Ok(Some(Answer::Status(status)))) => status,
        _ => return Err(LinkError::Protocol("the engine sent no status".into())),
    };
    let (calls, queued) = mpsc::channel(QUEUE_MAX);
    let inner = Arc::new(Inner {
        addr: addr.to_string(),
        key,
        runtime: tokio::runtime::Handle::current(),
        calls,
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        up: AtomicBool::new(true),
        status: Mutex::new(first),
        closed: watch::Sender::new(false),
    });
    tokio::spawn(run_calls(inner.clone(), queued, Some((reader, writer))));
    tracing::info!(addr, "engine link up");
    let handle = EngineHandle::remote(Arc::new(RemoteEngine { inner: inner.clone() }));
    Ok((handle, LinkGuard { inner }))
}

/// Opens a connection and runs the handshake: the server proves it holds the key, then this
/// end does, and says what the connection is for.
async fn open(addr: &str, key: &LinkKey, purpose: Open) -> Result<(Reader, Writer), LinkError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| LinkError::Timeout { addr: addr.to_string(), secs: 5 })?
        .map_err(|source| LinkError::Connect { addr: addr.to_string(), source })?;
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut reader = FrameReader::new(BufReader::new(r));
    let mut writer = FrameWriter::new(BufWriter::new(w));
    let handshake = async {
        let client = nonce()?;
        writer.write(&Hello { version: wire::VERSION, nonce: client }).await?;
        writer.flush().await?;
        let challenge: Challenge = reader
            .read()
            .await?
            .ok_or_else(|| LinkError::Protocol("the engine closed during the handshake".into()))?;
        if challenge.version != wire::VERSION {
            return Err(LinkError::Protocol(format!(
                "the engine speaks link version {}, this process {}: run one bourse version",
                challenge.version,
                wire::VERSION
            )));
        }
        if key.server_proof(&client, &challenge.nonce) != blake3::Hash::from_bytes(challenge.proof)
        {
            return Err(LinkError::WrongKey(addr.to_string()));
        }
        let proof = *key.client_proof(&client, &challenge.nonce).as_bytes();
        writer.write(&Proof { proof, open: purpose }).await?;
        writer.flush().await?;
        let session = key.session(&client, &challenge.nonce);
        reader.seal(session, Direction::ToClient);
        writer.seal(session, Direction::ToServer);
        Ok(())
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| LinkError::Timeout { addr: addr.to_string(), secs: 5 })??;
    Ok((reader, writer))
}

/// Keeps the calls connection: sends queued commands, routes outcomes to their callers, and
/// reconnects when the connection is lost (the replies then waited for are dropped).
async fn run_calls(
    inner: Arc<Inner>,
    mut queued: mpsc::Receiver<Call>,
    mut connection: Option<(Reader, Writer)>,
) {
    let mut retry = RETRY_MIN;
    loop {
        if inner.is_closed() {
            return;
        }
        let (reader, writer) = match connection.take() {
            Some(c) => c,
            None => match open(&inner.addr, &inner.key, Open::Calls).await {
                Ok(c) => {
                    tracing::info!(addr = inner.addr, "engine link up again");
                    c
                }
                Err(e) => {
                    tracing::warn!(addr = inner.addr, error = %e, "engine link down");
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = inner.wait_closed() => return,
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            },
        };
        retry = RETRY_MIN;
        inner.up.store(true, Ordering::Release);
        let result = drive(&inner, &mut queued, reader, writer).await;
        inner.up.store(false, Ordering::Release);
        // Calls not sent are dropped, then every reply waited for (nobody will answer these on
        // another connection). In this order, a call queued meanwhile either goes out on the
        // next connection or has its reply dropped: none waits forever.
        while queued.try_recv().is_ok() {}
        inner.pending().clear();
        if let Err(e) = result {
            tracing::warn!(addr = inner.addr, error = %e, "engine link lost; reconnecting");
        }
    }
}

async fn drive(
    inner: &Arc<Inner>,
    queued: &mut mpsc::Receiver<Call>,
    mut reader: Reader,
    mut writer: Writer,
) -> Result<(), LinkError> {
    let answers = inner.clone();
    // Reading a frame must not be cancelled halfway: it runs on its own task.
    let mut read = tokio::spawn(async move {
        loop {
            let answer = match tokio::time::timeout(SILENCE_MAX, reader.read::<Answer>()).await {
                Err(_) => return Err(LinkError::Protocol("the engine went silent".into())),
                Ok(answer) => answer?,
            };
            match answer {
                None => return Err(LinkError::Protocol("the engine closed the link".into())),
                Some(Answer::Status(status)) => answers.set_status(status),
                Some(Answer::Outcome { id, seq, time_ns, events }) => {
                    // The seq a caller just got is in the status at once (read-your-writes
                    // waits on it), not only at the next heartbeat.
                    answers.saw_seq(seq);
                    if let Some(reply) = answers.pending().remove(&id) {
                        let _ = reply.send(wire::outcome(seq, time_ns, events));
                    }
                }
                // The caller hears of it as a lost reply.
                Some(Answer::Failed { id, error }) => {
                    tracing::debug!(id, ?error, "the engine refused a command");
                    answers.pending().remove(&id);
                }
            }
        }
    });
    let result = loop {
        tokio::select! {
            call = queued.recv() => {
                let Some(call) = call else { break Ok(()) };
                let mut sent = writer.write(&call).await;
                while sent.is_ok() && let Ok(call) = queued.try_recv() {
                    sent = writer.write(&call).await;
                }
                if let Err(e) = sent {
                    break Err(e);
                }
                if let Err(e) = writer.flush().await {
                    break Err(e);
                }
            }
            read_result = &mut read => {
                break read_result.map_err(|e| LinkError::Protocol(e.to_string())).and_then(|r| r);
            }
            () = inner.wait_closed() => break Ok(()),
        }
    };
    read.abort();
    result
}

#[derive(Debug)]
struct RemoteEngine {
    inner: Arc<Inner>,
}

impl Remote for RemoteEngine {
    fn submit(
        &self,
        command: Command,
        reply: Option<oneshot::Sender<Outcome>>,
    ) -> Result<(), EngineError> {
        let inner = &self.inner;
        if inner.is_closed() || !inner.up.load(Ordering::Acquire) {
            return Err(EngineError::Stopped);
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(reply) = reply {
            inner.pending().insert(id, reply);
        }
        match inner.calls.try_send(Call { id, command }) {
            Ok(()) => Ok(()),
            Err(e) => {
                inner.pending().remove(&id);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => EngineError::Busy,
                    mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
                })
            }
        }
    }

    fn subscribe(&self, from_seq: u64) -> Result<Subscription, SubscribeError> {
        if self.inner.is_closed() {
            return Err(SubscribeError::Stopped);
        }
        let (tx, subscription) = Subscription::relay(SUBSCRIPTION_QUEUE, from_seq);
        self.inner.runtime.spawn(follow(self.inner.clone(), from_seq, tx));
        Ok(subscription)
    }

    fn state(&self) -> StateFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            match tokio::time::timeout(STATE_TIMEOUT, read_state(&inner)).await {
                Ok(Ok(exchange)) => Ok(exchange),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the engine's state over the link");
                    Err(EngineError::Stopped)
                }
                Err(_) => Err(EngineError::Stopped),
            }
        })
    }

    fn status(&self) -> EngineStatus {
        let up = self.inner.up.load(Ordering::Acquire);
        let mut status =
            self.inner.status.lock().unwrap_or_else(PoisonError::into_inner).engine_status();
        status.running &= up;
        status
    }

    fn stats(&self) -> EngineStats {
        self.inner.status.lock().unwrap_or_else(PoisonError::into_inner).engine_stats()
    }

    fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// Relays a subscription: connects (retrying while the engine is unreachable), then forwards
/// batches until the connection ends, which ends the subscription.
async fn follow(
    inner: Arc<Inner>,
    from_seq: u64,
    tx: mpsc::Sender<Arc<bourse_engine::EventBatch>>,
) {
    let mut retry = RETRY_MIN;
    let mut reader = loop {
        if tx.is_closed() {
            return;
        }
        match open(&inner.addr, &inner.key, Open::Subscribe { from_seq }).await {
            Ok((reader, _writer)) => break reader,
            Err(e) => {
                tracing::debug!(error = %e, "engine link: cannot subscribe yet");
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = inner.wait_closed() => return,
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    };
    let relay = async {
        loop {
            match reader.read::<Feed>().await {
                Ok(Some(Feed::Batch { commands, events })) => {
                    match wire::event_batch(commands, events) {
                        Ok(batch) => {
                            if tx.send(Arc::new(batch)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "engine link: a bad batch");
                            return;
                        }
                    }
                }
                Ok(Some(Feed::Refused(reason))) => {
                    tracing::warn!(reason, "the engine refused a subscription");
                    // Not at once again: the subscriber resubscribes when this one ends.
                    tokio::time::sleep(RETRY_MAX).await;
                    return;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "engine link: a subscription ended");
                    return;
                }
            }
        }
    };
    // Also ends when the subscriber drops its subscription, even with no event coming.
    tokio::select! {
        () = relay => {}
        () = inner.wait_closed() => {}
        () = tx.closed() => {}
    }
}

async fn read_state(inner: &Inner) -> Result<Exchange, LinkError> {
    let (mut reader, _writer) = open(&inner.addr, &inner.key, Open::State).await?;
    let closed = || LinkError::Protocol("the state ended early".into());
    let (seq, total) = match reader.read::<StatePart>().await?.ok_or_else(closed)? {
        StatePart::Begin { seq, bytes } if bytes <= STATE_MAX_BYTES => (seq, bytes),
        StatePart::Begin { bytes, .. } => {
            return Err(LinkError::Protocol(format!("a state of {bytes} bytes is too big")));
        }
        StatePart::Refused(reason) => return Err(LinkError::Protocol(reason)),
        _ => return Err(LinkError::Protocol("the state did not begin".into())),
    };
    let mut bytes = Vec::with_capacity(usize::try_from(total.min(1 << 30)).unwrap_or(0));
    loop {
        match reader.read::<StatePart>().await?.ok_or_else(closed)? {
            StatePart::Chunk(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > total {
                    return Err(LinkError::Protocol("the state is longer than announced".into()));
                }
            }
            StatePart::End if bytes.len() as u64 == total => break,
            _ => return Err(LinkError::Protocol("the state is broken".into())),
        }
    }
    let exchange = tokio::task::spawn_blocking(move || Exchange::restore(&bytes))
        .await
        .map_err(|e| LinkError::Protocol(e.to_string()))?
        .map_err(|e| LinkError::Protocol(format!("the engine's state does not decode: {e}")))?;
    if exchange.seq() != seq {
        return Err(LinkError::Protocol("the state is not at the announced seq".into()));
    }
    Ok(exchange)
}
