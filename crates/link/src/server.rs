//! The engine's side of the link: accepts connections, checks the key, and serves calls,
//! subscriptions and state reads from a local [`EngineHandle`].

use crate::LinkError;
use crate::frame::{Direction, FrameReader, FrameWriter};
use crate::key::{LinkKey, nonce};
use crate::wire::{self, Answer, Call, Challenge, Feed, Hello, Open, Proof, StatePart, Status};
use bourse_engine::{EngineHandle, SubscribeError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

/// Connections open at once; more are closed at accept.
const CONNECTIONS_MAX: usize = 64;
/// State reads and journal catch-ups (each costs the engine's process a copy of the state or a
/// replay) running at once; more wait their turn.
const HEAVY_MAX: usize = 2;
/// Commands of one calls connection the engine may have at once; the connection is not read
/// while they are all out.
const CALLS_IN_FLIGHT_MAX: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer that takes longer than this to take a frame is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a calls connection hears the engine's status (its heartbeat).
const STATUS_EVERY: Duration = Duration::from_millis(250);
const STATE_CHUNK: usize = 1 << 20;
/// Commands per batch when a subscription is rebuilt from the journal.
const REPLAY_CHUNK: usize = 1024;

type Reader = FrameReader<BufReader<OwnedReadHalf>>;
type Writer = FrameWriter<BufWriter<OwnedWriteHalf>>;

#[derive(Debug, Clone)]
struct Context {
    engine: EngineHandle,
    data_dir: PathBuf,
    key: LinkKey,
    shutdown: watch::Receiver<bool>,
    heavy: Arc<Semaphore>,
}

/// Serves `engine` (whose data directory is `data_dir`) on `listener` until `shutdown` turns
/// true.
pub async fn serve(
    listener: TcpListener,
    engine: EngineHandle,
    data_dir: PathBuf,
    key: LinkKey,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let heavy = Arc::new(Semaphore::new(HEAVY_MAX));
    let context = Context { engine, data_dir, key, shutdown, heavy };
    let mut stop = context.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "engine link: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "engine link: too many connections; closing a new one");
            continue;
        };
        let context = context.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match connection(stream, context).await {
                Ok(()) => tracing::debug!(%peer, "engine link connection closed"),
                Err(e) => tracing::warn!(%peer, error = %e, "engine link connection ended"),
            }
        });
    }
}

async fn connection(stream: TcpStream, context: Context) -> Result<(), LinkError> {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut reader = FrameReader::new(BufReader::new(r));
    let mut writer = FrameWriter::new(BufWriter::new(w));
    let open =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut reader, &mut writer, &context.key))
            .await
            .map_err(|_| LinkError::Protocol("no handshake within 5 s".into()))??;
    let mut stop = context.shutdown.clone();
    let work = async {
        match open {
            Open::Calls => calls(reader, writer, &context.engine).await,
            Open::Subscribe { from_seq } => subscription(writer, &context, from_seq).await,
            Open::State => {
                let _turn = context.heavy.acquire().await;
                state(writer, &context.engine).await
            }
        }
    };
    tokio::select! {
        result = work => result,
        _ = stop.wait_for(|s| *s) => Ok(()),
    }
}

async fn handshake(
    reader: &mut Reader,
    writer: &mut Writer,
    key: &LinkKey,
) -> Result<Open, LinkError> {
    let closed = || LinkError::Protocol("closed during the handshake".into());
    let hello: Hello = reader.read().await?.ok_or_else(closed)?;
    let server = nonce()?;
    let proof = *key.server_proof(&hello.nonce, &server).as_bytes();
    writer.write(&Challenge { version: wire::VERSION, nonce: server, proof }).await?;
    writer.flush().await?;
    if hello.version != wire::VERSION {
        return Err(LinkError::Protocol(format!(
            "a peer speaking link version {} (this engine: {})",
            hello.version,
            wire::VERSION
        )));
    }
    let proof: Proof = reader.read().await?.ok_or_else(closed)?;
    if key.client_proof(&hello.nonce, &server) != blake3::Hash::from_bytes(proof.proof) {
        return Err(LinkError::Protocol("a peer without the link key".into()));
    }
    let session = key.session(&hello.nonce, &server);
    reader.seal(session, Direction::ToServer);
    writer.seal(session, Direction::ToClient);
    Ok(proof.open)
}

async fn send<T: serde::Serialize>(writer: &mut Writer, message: &T) -> Result<(), LinkError> {
    tokio::time::timeout(WRITE_TIMEOUT, writer.write(message))
        .await
        .map_err(|_| LinkError::Protocol("the peer stopped reading".into()))?
}

async fn flush(writer: &mut Writer) -> Result<(), LinkError> {
    tokio::time::timeout(WRITE_TIMEOUT, writer.flush())
        .await
        .map_err(|_| LinkError::Protocol("the peer stopped reading".into()))?
}

fn status(engine: &EngineHandle) -> Answer {
    Answer::Status(Status::of(engine.status(), &engine.stats()))
}

/// Commands in, each answered with its outcome once durable; a status first and every
/// [`STATUS_EVERY`].
async fn calls(
    mut reader: Reader,
    mut writer: Writer,
    engine: &EngineHandle,
) -> Result<(), LinkError> {
    let (answers, mut answered) = mpsc::channel::<Answer>(CALLS_IN_FLIGHT_MAX);
    let in_flight = Arc::new(Semaphore::new(CALLS_IN_FLIGHT_MAX));
    let heartbeat_engine = engine.clone();
    let mut write = tokio::spawn(async move {
        let mut tick = tokio::time::interval(STATUS_EVERY);
        loop {
            tokio::select! {
                answer = answered.recv() => {
                    let Some(answer) = answer else { return Ok(()) };
                    send(&mut writer, &answer).await?;
                    while let Ok(answer) = answered.try_recv() {
                        send(&mut writer, &answer).await?;
                    }
                }
                _ = tick.tick() => send(&mut writer, &status(&heartbeat_engine)).await?,
            }
            flush(&mut writer).await?;
        }
    });
    let read = async {
        while let Some(Call { id, command }) = reader.read::<Call>().await? {
            let Ok(slot) = in_flight.clone().acquire_owned().await else { break };
            // Submitted here, in the order the calls came (as a local submitter's commands are
            // applied in its order); only the wait for the outcome runs on a task of its own.
            let submitted = engine.try_submit(command);
            let engine = engine.clone();
            let answers = answers.clone();
            tokio::spawn(async move {
                let result = match submitted {
                    Ok(reply) => engine.outcome(reply).await,
                    Err(e) => Err(e),
                };
                let answer = match result {
                    Ok(o) => {
                        Answer::Outcome { id, seq: o.seq, time_ns: o.time_ns, events: o.events }
                    }
                    Err(e) => Answer::Failed { id, error: (&e).into() },
                };
                let _ = answers.send(answer).await;
                drop(slot);
            });
        }
        Ok::<(), LinkError>(())
    };
    let result = tokio::select! {
        read = read => read,
        written = &mut write => written.map_err(|e| LinkError::Protocol(e.to_string()))?,
    };
    write.abort();
    result
}

/// Event batches from `from_seq` on. A start older than the engine's ring is rebuilt from the
/// journal first; the connection ends when the engine stops or cuts this subscriber off.
async fn subscription(
    mut writer: Writer,
    context: &Context,
    from_seq: u64,
) -> Result<(), LinkError> {
    let engine = &context.engine;
    let mut next = from_seq;
    loop {
        match engine.subscribe(next) {
            Ok(mut sub) => {
                while let Some(batch) = sub.recv().await {
                    send(&mut writer, &Feed::batch(&batch)).await?;
                    while let Some(batch) = sub.try_recv() {
                        send(&mut writer, &Feed::batch(&batch)).await?;
                    }
                    flush(&mut writer).await?;
                }
                return Ok(());
            }
            Err(SubscribeError::TooOld { .. }) => {
                let after = {
                    let _turn = context.heavy.acquire().await;
                    replay(&mut writer, engine, &context.data_dir, next).await?
                };
                if after <= next {
                    return Err(LinkError::Protocol(format!(
                        "the journal has nothing from seq {next} on"
                    )));
                }
                next = after;
            }
            Err(e) => {
                send(&mut writer, &Feed::Refused(e.to_string())).await?;
                return flush(&mut writer).await;
            }
        }
    }
}

/// Sends the events of the journal's commands from `from` on (rebuilt on a blocking thread);
/// returns the seq after the last one sent.
async fn replay(
    writer: &mut Writer,
    engine: &EngineHandle,
    data_dir: &Path,
    from: u64,
) -> Result<u64, LinkError> {
    tracing::info!(from, "engine link: a subscriber catches up from the journal");
    let (tx, mut rx) = mpsc::channel::<Feed>(4);
    let data_dir = data_dir.to_path_buf();
    // The journal file may hold a batch written but not yet synced: only what is durable
    // goes out (the live subscription that follows sends the rest).
    let durable = engine.status().seq;
    let reader = tokio::task::spawn_blocking(move || {
        let mut commands = Vec::new();
        let mut events = Vec::new();
        let mut closed = false;
        let result = bourse_engine::replay_events(&data_dir, from, &mut |seq, time, batch| {
            if closed || seq > durable {
                return;
            }
            events.extend_from_slice(batch);
            commands.push((seq, time, events.len() as u64));
            if commands.len() >= REPLAY_CHUNK {
                let feed = Feed::Batch {
                    commands: std::mem::take(&mut commands),
                    events: std::mem::take(&mut events),
                };
                closed = tx.blocking_send(feed).is_err();
            }
        });
        if !closed && !commands.is_empty() {
            let _ = tx.blocking_send(Feed::Batch { commands, events });
        }
        result
    });
    let mut next = from;
    while let Some(feed) = rx.recv().await {
        if let Feed::Batch { commands, .. } = &feed
            && let Some((seq, _, _)) = commands.last()
        {
            next = seq + 1;
        }
        send(writer, &feed).await?;
        flush(writer).await?;
    }
    match reader.await {
        Ok(Ok(_)) => Ok(next),
        Ok(Err(e)) => Err(LinkError::Protocol(format!("cannot read the journal: {e}"))),
        Err(e) => Err(LinkError::Protocol(e.to_string())),
    }
}

/// The engine's state in its canonical encoding. The engine clones it between two batches;
/// the encoding happens off its thread.
async fn state(mut writer: Writer, engine: &EngineHandle) -> Result<(), LinkError> {
    let (seq, exchange) = match engine.read(|exchange| exchange.clone()).await {
        Ok(read) => read,
        Err(e) => {
            send(&mut writer, &StatePart::Refused(e.to_string())).await?;
            return flush(&mut writer).await;
        }
    };
    let bytes = tokio::task::spawn_blocking(move || exchange.encode_snapshot())
        .await
        .map_err(|e| LinkError::Protocol(e.to_string()))?;
    send(&mut writer, &StatePart::Begin { seq, bytes: bytes.len() as u64 }).await?;
    for chunk in bytes.chunks(STATE_CHUNK) {
        send(&mut writer, &StatePart::Chunk(chunk.to_vec())).await?;
    }
    send(&mut writer, &StatePart::End).await?;
    flush(&mut writer).await
}
