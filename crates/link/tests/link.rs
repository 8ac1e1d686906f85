//! The link against a real engine (journal in a temp directory) over real TCP on loopback:
//! commands and their outcomes, subscriptions rebuilt from the journal, state reads, the key,
//! hostile peers, reconnection and closing. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use bourse_core::*;
use bourse_engine::testing::{order, setup_commands};
use bourse_engine::{
    Engine, EngineConfig, EngineError, EngineHandle, Outcome, SubscribeError, Subscription,
    SystemClock,
};
use bourse_link::{LinkError, LinkGuard, LinkKey};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One command's seq, time and events.
type Applied = (u64, u64, Vec<Event>);

fn key() -> LinkKey {
    LinkKey::derive(b"the exchange's secret key")
}

/// Fails the test instead of hanging.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: not within {secs} s"),
    }
}

/// Polls `check` every 20 ms until it holds; fails after `secs`.
async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    within(secs, what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    started.elapsed()
}

async fn start_engine(dir: &Path, ring_batches: Option<usize>) -> Engine {
    let mut config = EngineConfig::new(dir);
    config.check_invariants = true;
    if let Some(ring) = ring_batches {
        config.ring_batches = ring;
    }
    tokio::task::spawn_blocking(move || Engine::start(config, SystemClock)).await.unwrap().unwrap()
}

/// Stops the engine off the runtime's threads (it joins its thread).
async fn stop_engine(engine: Engine) {
    tokio::task::spawn_blocking(move || drop(engine)).await.unwrap();
}

struct Server {
    addr: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn serve_on(listener: TcpListener, engine: EngineHandle, dir: &Path) -> Server {
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = watch::channel(false);
    let task =
        tokio::spawn(bourse_link::serve(listener, engine, dir.to_path_buf(), key(), stopped));
    Server { addr, stop, task }
}

async fn serve(engine: EngineHandle, dir: &Path) -> Server {
    serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), engine, dir)
}

impl Server {
    async fn shut(self) {
        self.stop.send_replace(true);
        within(5, "the link server stops", self.task).await.unwrap();
    }
}

async fn connect(addr: &str) -> (EngineHandle, LinkGuard) {
    within(10, "connect", bourse_link::connect(addr, key(), Duration::from_secs(5))).await.unwrap()
}

/// An engine with a link server in front of it.
struct Fixture {
    dir: tempfile::TempDir,
    engine: Engine,
    local: EngineHandle,
    server: Server,
}

impl Fixture {
    async fn new(ring_batches: Option<usize>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let engine = start_engine(dir.path(), ring_batches).await;
        let local = engine.handle();
        let server = serve(local.clone(), dir.path()).await;
        Fixture { dir, engine, local, server }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    async fn finish(self) {
        let Fixture { dir, engine, server, .. } = self;
        server.shut().await;
        stop_engine(engine).await;
        drop(dir);
    }
}

/// The `i`-th of a stream of orders that alternate buy (user 1) and sell (user 2) at one
/// price, so that every sell trades.
fn crossing(i: u64) -> Command {
    if i.is_multiple_of(2) {
        order(1, Side::Buy, 100_000_000)
    } else {
        order(2, Side::Sell, 100_000_000)
    }
}

fn deposit(i: u64) -> Command {
    Command::Deposit {
        user: UserId(1),
        asset: AssetId(2),
        amount: u128::from(i) + 1,
        key: ExternalKey::new(&format!("pipelined-{i}")).unwrap(),
    }
}

fn rejected(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Rejected { .. } | Event::OrderRejected { .. }))
}

fn has_trade(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Trade { .. }))
}

fn applied(outcome: &Outcome) -> Applied {
    (outcome.seq, outcome.time_ns, outcome.events.clone())
}

/// Reads `sub` until it has delivered command `through`, checking that the commands from
/// `from` on come once each, in order, with no gap. Only its first batch may begin before
/// `from` (a batch is never split); those commands are skipped.
async fn collect(sub: &mut Subscription, from: u64, through: u64) -> Vec<Applied> {
    let mut out: Vec<Applied> = Vec::new();
    let mut next = from;
    let mut first = true;
    within(20, &format!("events {from}..={through}"), async {
        while next <= through {
            let batch = sub.recv().await.expect("the subscription ended early");
            for (seq, time_ns, events) in batch.iter() {
                if first && seq < from {
                    continue;
                }
                assert_eq!(seq, next, "a gap or a duplicate in the feed");
                out.push((seq, time_ns, events.to_vec()));
                next += 1;
            }
            first = false;
        }
    })
    .await;
    assert_eq!(sub.next_seq(), through + 1);
    out
}

/// What the journal says, rebuilt locally.
async fn journal_events(dir: PathBuf, from: u64) -> Vec<Applied> {
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        bourse_engine::replay_events(&dir, from, &mut |seq, time_ns, events| {
            out.push((seq, time_ns, events.to_vec()));
        })
        .unwrap();
        out
    })
    .await
    .unwrap()
}

/// 1. Commands sent over the link are applied by the engine, and their outcomes are the ones
///    the engine published; status and stats follow within a heartbeat or so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_the_link_are_what_the_engine_applied() {
    let fx = Fixture::new(None).await;
    let mut local_sub = fx.local.subscribe(1).unwrap();
    let (remote, _guard) = connect(&fx.server.addr).await;
    assert!(!remote.is_local());
    assert!(remote.status().running);
    assert_eq!(remote.status().seq, 0);
    assert_eq!(remote.stats().commands, 0);

    let mut outcomes = Vec::new();
    for command in setup_commands().into_iter().chain([crossing(0), crossing(1)]) {
        let outcome = within(5, "execute", remote.execute(command)).await.unwrap();
        assert!(!rejected(&outcome.events), "{outcome:?}");
        // A caller's own command is in the status as soon as its outcome is (read-your-writes
        // waits on the status), not a heartbeat later.
        assert!(remote.status().seq >= outcome.seq);
        outcomes.push(outcome);
    }
    let seqs: Vec<u64> = outcomes.iter().map(|o| o.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert!(has_trade(&outcomes[6].events), "the sell crosses the buy: {:?}", outcomes[6]);
    assert_eq!(fx.local.status().seq, 7);

    // Exactly what the engine published for those seqs, times included.
    let published = collect(&mut local_sub, 1, 7).await;
    assert_eq!(outcomes.iter().map(applied).collect::<Vec<_>>(), published);

    // The pushed status (stats included) catches up within a few heartbeats.
    eventually(2, "remote stats", || remote.stats().commands == 7).await;
    assert_eq!(remote.stats().commands, fx.local.stats().commands);
    assert_eq!(remote.stats().batch_commands.count, fx.local.stats().batch_commands.count);
    let status = remote.status();
    assert!(status.running);
    assert_eq!(status.batches, fx.local.status().batches);

    // A remote handle cannot do what only the engine's process can, and is not finished.
    assert!(matches!(remote.snapshot_blocking(), Err(EngineError::NotLocal)));
    assert!(!remote.finished());
    fx.finish().await;
}

/// 2. A subscription from seq 1, long after the ring forgot it, is rebuilt from the journal
///    by the server — every command once, in order, as a local replay gives it — and then
///    carries on live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_subscriptions_are_rebuilt_from_the_journal_then_go_live() {
    let fx = Fixture::new(Some(2)).await;
    let (remote, _guard) = connect(&fx.server.addr).await;
    let setup = setup_commands();
    let n_setup = setup.len() as u64;
    for command in setup {
        within(5, "setup", remote.execute(command)).await.unwrap();
    }
    const ORDERS: u64 = 200;
    let mut trades = 0;
    for i in 0..ORDERS {
        let outcome = within(5, "order", remote.execute(crossing(i))).await.unwrap();
        assert!(!rejected(&outcome.events), "{outcome:?}");
        trades += usize::from(has_trade(&outcome.events));
    }
    assert_eq!(trades, ORDERS as usize / 2);
    let n = n_setup + ORDERS;
    assert_eq!(fx.local.status().seq, n);
    assert!(fx.local.status().batches >= n, "one command per batch");
    // The ring holds only the last two batches: the engine itself cannot serve seq 1.
    assert!(matches!(fx.local.subscribe(1), Err(SubscribeError::TooOld { .. })));

    let mut sub = remote.subscribe(1).unwrap();
    let got = collect(&mut sub, 1, n).await;
    let journal = journal_events(fx.path(), 1).await;
    assert_eq!(journal.len() as u64, n);
    assert_eq!(got, journal);

    // Commands after the catch-up arrive live on the same subscription.
    let mut later = Vec::new();
    for i in ORDERS..ORDERS + 10 {
        later.push(applied(&within(5, "later order", remote.execute(crossing(i))).await.unwrap()));
    }
    let live = collect(&mut sub, n + 1, n + 10).await;
    assert_eq!(live, later);
    // Nothing else comes: no duplicate after the last one.
    assert!(tokio::time::timeout(Duration::from_millis(300), sub.recv()).await.is_err());
    fx.finish().await;
}

/// 3. The state read over the link is the engine's, at the same seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_read_over_the_link_is_the_engines() {
    let fx = Fixture::new(None).await;
    let (remote, _guard) = connect(&fx.server.addr).await;
    let empty = within(10, "remote read", remote.read(|ex| ex.state_hash())).await.unwrap();
    assert_eq!(empty, within(5, "local read", fx.local.read(|ex| ex.state_hash())).await.unwrap());
    for command in setup_commands().into_iter().chain((0..9).map(crossing)) {
        within(5, "execute", remote.execute(command)).await.unwrap();
    }
    let (seq, hash) = within(10, "remote read", remote.read(|ex| ex.state_hash())).await.unwrap();
    let (local_seq, local_hash) =
        within(5, "local read", fx.local.read(|ex| ex.state_hash())).await.unwrap();
    assert_eq!(seq, 14);
    assert_eq!((seq, hash), (local_seq, local_hash));
    assert_ne!(hash, empty.1);
    let (_, orders) = remote.read(|ex| ex.open_orders_count()).await.unwrap();
    assert_eq!(orders, 1, "five buys, four sells: one buy rests");
    fx.finish().await;
}

/// 4. A peer with another key is refused at once, on both sides; peers sending garbage are
///    dropped; neither harms the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_and_garbage_are_refused_and_the_server_goes_on() {
    let fx = Fixture::new(None).await;
    let addr = fx.server.addr.clone();

    let started = Instant::now();
    let wrong = within(
        10,
        "connect with a wrong key",
        bourse_link::connect(&addr, LinkKey::derive(b"other"), Duration::from_secs(5)),
    )
    .await;
    assert!(matches!(wrong, Err(LinkError::WrongKey(_))), "{wrong:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "not at once: {:?}", started.elapsed());

    let (remote, guard) = connect(&addr).await;
    let outcome = within(5, "execute", remote.execute(setup_commands().remove(0))).await.unwrap();
    assert_eq!(outcome.seq, 1);
    drop(guard);

    // Hostile peers: 100 random bytes, a frame of 4 GiB announced, a frame announced and never
    // sent, and nothing at all.
    let mut random = [0u8; 100];
    blake3::Hasher::new().update(b"garbage").finalize_xof().fill(&mut random);
    let mut slow_frame = 200u32.to_be_bytes().to_vec();
    slow_frame.extend_from_slice(&[1, 2, 3]);
    let garbage: Vec<Vec<u8>> =
        vec![random.to_vec(), 0xFFFF_FFFFu32.to_be_bytes().to_vec(), slow_frame, Vec::new()];
    let mut hostile = Vec::new();
    for bytes in &garbage {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
        hostile.push(stream);
    }

    // While they are connected, a good client works.
    let (remote, _guard) = connect(&addr).await;
    let outcome = within(5, "execute", remote.execute(setup_commands().remove(1))).await.unwrap();
    assert_eq!(outcome.seq, 2);
    assert!(!rejected(&outcome.events));

    // Each hostile connection is closed by the server (the slow ones at the handshake's
    // 5 s limit) without it having sent anything that passes for a handshake.
    let closes = hostile.into_iter().map(|mut stream| {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut received = 0;
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return received,
                    Ok(n) => received += n,
                }
            }
        })
    });
    for close in closes {
        let received = within(10, "a hostile peer is dropped", close).await.unwrap();
        // The random bytes may happen to decode as a hello: it then gets a challenge, no more.
        assert!(received < 200, "{received} bytes sent to a hostile peer");
    }

    // And afterwards: the good client still works, a new one connects, subscriptions and
    // reads still work.
    let outcome = within(5, "execute", remote.execute(setup_commands().remove(2))).await.unwrap();
    assert_eq!(outcome.seq, 3);
    let (again, _guard2) = connect(&addr).await;
    let mut sub = again.subscribe(1).unwrap();
    let events = collect(&mut sub, 1, 3).await;
    assert_eq!(events.last().unwrap(), &applied(&outcome));
    let (seq, _) = within(10, "read", again.read(|ex| ex.seq())).await.unwrap();
    assert_eq!(seq, 3);
    fx.finish().await;
}

/// Binds `addr` again, retrying while the port is not yet free.
async fn rebind(addr: &str) -> TcpListener {
    within(10, "rebind the link's port", async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
}

/// 5. When the link server goes away the remote handle reports it (commands fail, status not
///    running, subscriptions end); when it comes back on the same address the handle reconnects
///    by itself and a subscription resumes from its `next_seq()` with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_reconnects_when_the_link_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start_engine(dir.path(), None).await;
    let local = engine.handle();
    let server = serve(local.clone(), dir.path()).await;
    let addr = server.addr.clone();
    let (remote, _guard) = connect(&addr).await;
    for command in setup_commands() {
        within(5, "setup", remote.execute(command)).await.unwrap();
    }
    let mut sub = remote.subscribe(1).unwrap();
    collect(&mut sub, 1, 5).await;

    server.shut().await;
    // The subscription ends, and the handle sees the link down.
    let ended = within(6, "the subscription ends", sub.recv()).await;
    assert!(ended.is_none(), "{ended:?}");
    eventually(6, "status not running", || !remote.status().running).await;
    let down = within(5, "execute while down", remote.execute(crossing(0))).await;
    assert!(matches!(down, Err(EngineError::Stopped)), "{down:?}");
    assert!(!remote.finished(), "a lost link is not a closed one");

    // Meanwhile the engine goes on (commands from its own process).
    for i in 0..4 {
        within(5, "local execute", local.execute(crossing(i))).await.unwrap();
    }
    assert_eq!(local.status().seq, 9);

    let server = serve_on(rebind(&addr).await, local.clone(), dir.path());
    let took = eventually(8, "reconnected", || remote.status().running).await;
    assert!(took < Duration::from_secs(5), "reconnecting took {took:?}");
    let outcome =
        within(5, "execute after reconnecting", remote.execute(crossing(4))).await.unwrap();
    assert_eq!(outcome.seq, 10);
    assert!(!rejected(&outcome.events));
    eventually(2, "status after reconnecting", || remote.status().seq == 10).await;

    // The subscription that ended resumes where it stopped: the commands applied while the
    // link was down, then the new one.
    assert_eq!(sub.next_seq(), 6);
    let mut resumed = remote.subscribe(sub.next_seq()).unwrap();
    let events = collect(&mut resumed, 6, 10).await;
    assert_eq!(events, journal_events(dir.path().to_path_buf(), 6).await);
    assert_eq!(events.last().unwrap(), &applied(&outcome));

    server.shut().await;
    stop_engine(engine).await;
}

/// 6. Closing the link (dropping its guard) ends the handle for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_link_is_finished() {
    let fx = Fixture::new(None).await;
    let (remote, guard) = connect(&fx.server.addr).await;
    within(5, "execute", remote.execute(setup_commands().remove(0))).await.unwrap();
    let mut sub = remote.subscribe(2).unwrap();
    assert!(!remote.finished());

    drop(guard);
    assert!(remote.finished());
    assert!(matches!(remote.subscribe(1), Err(SubscribeError::Stopped)));
    let refused = remote.execute(setup_commands().remove(1)).await;
    assert!(matches!(refused, Err(EngineError::Stopped)), "{refused:?}");
    // The subscription opened before ends too, and the link stops saying it runs.
    assert!(within(5, "the subscription ends", sub.recv()).await.is_none());
    eventually(5, "status not running", || !remote.status().running).await;
    // The engine did not see the refused command.
    assert_eq!(fx.local.status().seq, 1);
    fx.finish().await;
}

/// 7. Commands queued through one remote handle without waiting are applied in the order they
///    were queued, as with a local handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_commands_are_applied_in_order() {
    let fx = Fixture::new(None).await;
    let (remote, _guard) = connect(&fx.server.addr).await;
    for command in setup_commands() {
        within(5, "setup", remote.execute(command)).await.unwrap();
    }
    const N: u64 = 500;
    let replies: Vec<_> = (0..N).map(|i| remote.try_submit(deposit(i)).unwrap()).collect();
    let mut seqs = Vec::new();
    for (i, reply) in replies.into_iter().enumerate() {
        let outcome = within(10, "a queued command's outcome", reply).await.unwrap();
        assert!(!rejected(&outcome.events), "{outcome:?}");
        // The deposit's amount tells which one it was.
        let amount = outcome.events.iter().find_map(|e| match e {
            Event::DepositCredited { amount, .. } => Some(*amount),
            _ => None,
        });
        assert_eq!(amount, Some(i as u128 + 1), "{outcome:?}");
        seqs.push(outcome.seq);
    }
    let expected: Vec<u64> = (6..6 + N).collect();
    assert_eq!(seqs, expected, "applied out of the order they were queued in");
    fx.finish().await;
}

/// 8. An engine that stops behind a live link: the handle says so, commands fail rather than
///    hang, and subscriptions end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_stopped_behind_the_link_is_reported() {
    let fx = Fixture::new(None).await;
    let (remote, _guard) = connect(&fx.server.addr).await;
    within(5, "execute", remote.execute(setup_commands().remove(0))).await.unwrap();
    let mut sub = remote.subscribe(2).unwrap();
    let Fixture { dir, engine, local, server } = fx;
    stop_engine(engine).await;
    assert!(local.finished());

    eventually(3, "status not running", || !remote.status().running).await;
    assert_eq!(remote.status().seq, 1);
    let refused = within(5, "execute", remote.execute(setup_commands().remove(1))).await;
    assert!(matches!(refused, Err(EngineError::Stopped)), "{refused:?}");
    assert!(within(10, "the subscription ends", sub.recv()).await.is_none());
    server.shut().await;
    drop(dir);
}
