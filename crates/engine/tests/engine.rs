//! The engine runner against a real data directory: durability across restarts, snapshots,
//! subscriptions, the directory lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_core::*;
use bourse_engine::testing::{order, setup_commands};
use bourse_engine::*;

struct FixedClock(u64);
impl Clock for FixedClock {
    fn now_ns(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.check_invariants = true;
    config
}

#[test]
fn acknowledged_commands_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path()), FixedClock(0)).unwrap();
    let handle = engine.handle();
    for command in setup_commands() {
        let outcome = handle.execute_blocking(command).unwrap();
        assert!(!matches!(outcome.events[..], [Event::Rejected { .. }]), "{outcome:?}");
    }
    let outcome = handle.execute_blocking(order(1, Side::Buy, 100_000_000)).unwrap();
    assert_eq!(outcome.seq, 6);
    assert!(matches!(outcome.events[0], Event::OrderAccepted { .. }));
    let hash = engine.shutdown().unwrap().state_hash();

    let engine = Engine::start(config(dir.path()), FixedClock(0)).unwrap();
    assert_eq!(engine.handle().status().seq, 6);
    let state = engine.shutdown().unwrap();
    assert_eq!(state.state_hash(), hash);
    assert_eq!(state.open_orders_count(), 1);

    // Both replays reach the same state.
    let scratch = replay(dir.path(), ReplayFrom::Scratch).unwrap();
    let snap = replay(dir.path(), ReplayFrom::LatestSnapshot).unwrap();
    assert_eq!(scratch.exchange.state_hash(), hash);
    assert_eq!(snap.exchange.state_hash(), hash);
    assert_eq!(snap.snapshot_seq, 6);
    assert_eq!(scratch.replayed, 6);
}

#[test]
fn recovery_replays_the_journal_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path()), FixedClock(0)).unwrap();
    let handle = engine.handle();
    for command in setup_commands() {
        handle.execute_blocking(command).unwrap();
    }
    assert_eq!(handle.snapshot_blocking().unwrap(), 5);
    for i in 0..50 {
        handle.execute_blocking(order(1, Side::Buy, 100_000_000 + i * 10_000)).unwrap();
    }
    // Simulate a crash after the last acknowledgement: no final snapshot.
    let hash = {
        let replayed = replay(dir.path(), ReplayFrom::Scratch).unwrap();
        replayed.exchange.state_hash()
    };
    std::mem::forget(engine); // keeps the lock: the next start in this process must fail
    let locked = Engine::start(config(dir.path()), FixedClock(0));
    assert!(
        matches!(locked, Err(EngineError::Journal(bourse_journal::JournalError::Locked { .. }))),
        "{locked:?}"
    );

    let from_snapshot = replay(dir.path(), ReplayFrom::LatestSnapshot).unwrap();
    assert_eq!(from_snapshot.snapshot_seq, 5);
    assert_eq!(from_snapshot.replayed, 50);
    assert_eq!(from_snapshot.exchange.state_hash(), hash);
}

#[test]
fn subscribers_see_every_event_in_order_and_can_resume() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path()), FixedClock(0)).unwrap();
    let handle = engine.handle();
    let mut live = handle.subscribe(1).unwrap();
    let mut replies = Vec::new();
    for command in setup_commands() {
        replies.push(handle.submit_blocking(command, true).unwrap().unwrap());
    }
    for i in 0..20 {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        replies.push(
            handle.submit_blocking(order(1 + i % 2, side, 100_000_000), true).unwrap().unwrap(),
        );
    }
    let outcomes: Vec<Outcome> = replies.into_iter().map(|r| r.blocking_recv().unwrap()).collect();
    let mut seen: Vec<(u64, Vec<Event>)> = Vec::new();
    while seen.len() < outcomes.len() {
        let batch = live.blocking_recv().unwrap();
        seen.extend(batch.iter().map(|(seq, _, events)| (seq, events.to_vec())));
    }
    let expected: Vec<(u64, Vec<Event>)> =
        outcomes.iter().map(|o| (o.seq, o.events.clone())).collect();
    assert_eq!(seen, expected);
    assert!(seen.iter().any(|(_, events)| events.iter().any(|e| matches!(e, Event::Trade { .. }))));

    // A late subscriber resumes from the ring, and drains its backlog without waiting:
    // `try_recv` hands out every queued batch in order, then `None`.
    let mut late = handle.subscribe(10).unwrap();
    let batch = late.blocking_recv().unwrap();
    assert!(batch.first_seq() <= 10 && batch.last_seq() >= 10);
    let mut next = batch.last_seq() + 1;
    while let Some(batch) = late.try_recv() {
        assert_eq!(batch.first_seq(), next);
        next = batch.last_seq() + 1;
    }
    assert_eq!(next, outcomes.len() as u64 + 1);
    assert_eq!(late.next_seq(), next);
    drop(engine);
    assert!(matches!(handle.subscribe(1), Err(SubscribeError::Stopped)));
}

#[test]
fn a_slow_subscriber_is_cut_off_and_the_engine_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.subscriber_queue_batches = 2;
    config.ring_batches = 4;
    let engine = Engine::start(config, FixedClock(0)).unwrap();
    let handle = engine.handle();
    let mut slow = handle.subscribe(1).unwrap();
    for command in setup_commands() {
        handle.execute_blocking(command).unwrap();
    }
    for _ in 0..10 {
        handle.execute_blocking(order(1, Side::Buy, 100_000_000)).unwrap();
    }
    assert_eq!(handle.status().seq, 15);
    assert_eq!(handle.status().subscribers_cut_off, 1);
    // It drains what was queued, then sees the end of its feed.
    let mut received = 0;
    while slow.blocking_recv().is_some() {
        received += 1;
    }
    assert_eq!(received, 2);
    // Too far behind for the ring: it must resync from state.
    assert!(matches!(handle.subscribe(slow.next_seq()), Err(SubscribeError::TooOld { .. })));
    assert!(handle.subscribe(handle.status().seq + 1).is_ok());
}

/// An engine read in flight: done once the engine thread ran it.
type HeldRead<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(u64, ()), EngineError>> + 'a>>;

/// Holds the engine thread inside a read until the returned sender is used (or dropped), so
/// that every command submitted meanwhile waits in the queue and lands in one batch. The
/// returned future finishes once the read ran.
fn hold_engine(handle: &EngineHandle) -> (std::sync::mpsc::Sender<()>, HeldRead<'_>) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let (release, held) = std::sync::mpsc::channel::<()>();
    let mut read = Box::pin(handle.read(move |_| {
        let _ = held.recv();
    }));
    // The first poll queues the read; it cannot finish before the release.
    assert!(matches!(read.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Pending));
    (release, read)
}

#[test]
fn stats_count_batches_commands_and_journal_commits() {
    use std::task::{Context, Poll, Waker};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path()), FixedClock(0)).unwrap();
    let handle = engine.handle();
    let empty = handle.stats();
    assert_eq!(
        (empty.commands, empty.batch_commands.count, empty.journal_commit_ns.count),
        (0, 0, 0)
    );

    // One batch per command while each waits for its outcome...
    let setup = setup_commands();
    for command in setup.clone() {
        handle.execute_blocking(command).unwrap();
    }
    // ...and 40 commands in one batch, queued while the engine is held.
    let (release, mut read) = hold_engine(&handle);
    let queued: Vec<_> = (0..40)
        .map(|i| {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            handle.submit_blocking(order(1 + i % 2, side, 100_000_000), true).unwrap().unwrap()
        })
        .collect();
    release.send(()).unwrap();
    let outcomes: Vec<Outcome> = queued.into_iter().map(|r| r.blocking_recv().unwrap()).collect();
    assert_eq!(outcomes.last().unwrap().seq, 45);
    let Poll::Ready(Ok((read_seq, ()))) =
        read.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("the read did not finish before the commands queued behind it");
    };
    assert_eq!(read_seq, setup.len() as u64);

    let commands = setup.len() as u64 + 40;
    let batches = setup.len() as u64 + 1;
    let stats = handle.stats();
    assert_eq!(handle.status().batches, batches);
    assert_eq!(stats.commands, commands);
    assert_eq!(stats.batch_commands.count, batches);
    assert_eq!(stats.batch_commands.sum, commands);
    // Five batches of 1, one of 40 (in `le="64"`).
    let cumulative: Vec<(u64, u64)> = stats.batch_commands.cumulative().collect();
    assert_eq!(cumulative[0], (1, 5));
    assert_eq!(cumulative[5], (32, 5));
    assert_eq!(cumulative[6], (64, 6));
    assert_eq!(cumulative.last(), Some(&(4096, 6)));

    // One journal commit per batch.
    let fsync = stats.journal_commit_ns;
    assert!(fsync.count >= 1);
    assert_eq!(fsync.count, batches);
    assert!(fsync.sum > 0);
    assert_eq!(fsync.bounds, JOURNAL_COMMIT_BOUNDS_NS);
    let cumulative: Vec<u64> = fsync.cumulative().map(|(_, n)| n).collect();
    assert!(cumulative.windows(2).all(|w| w[0] <= w[1]), "{fsync:?}");
    assert!(cumulative.last().copied().unwrap() <= fsync.count, "{fsync:?}");
    assert!(fsync.buckets.iter().sum::<u64>() <= fsync.count);

    // Counted since this process started the engine, not since the journal began.
    drop(engine);
    let engine = Engine::start(config(dir.path()), FixedClock(0)).unwrap();
    let stats = engine.handle().stats();
    assert_eq!((stats.commands, stats.batch_commands.count), (0, 0));
    assert_eq!(engine.handle().status().seq, commands);
}
