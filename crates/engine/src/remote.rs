//! An engine in another process. The link crate (`bourse-link`) implements [`Remote`]; an
//! [`EngineHandle::remote`](crate::EngineHandle::remote) built on it submits, reads and
//! subscribes exactly as a local handle does, so the roles around the engine do not know
//! where it runs.

use crate::runner::{EngineError, EngineStatus, Outcome};
use crate::stats::EngineStats;
use crate::subscribe::{SubscribeError, Subscription};
use bourse_core::{Command, Exchange};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::oneshot;

/// The state of a remote engine, on its way.
pub type StateFuture = Pin<Box<dyn Future<Output = Result<Exchange, EngineError>> + Send>>;

pub trait Remote: Send + Sync + std::fmt::Debug {
    /// Queues `command` for the engine without waiting: `Busy` when the link's queue is full,
    /// `Stopped` while the link is down. `reply`, when given, gets the durable outcome, or is
    /// dropped if the remote engine refused the command (its queue was full) or the connection
    /// is lost first (the command may then have been applied or not; its events tell).
    fn submit(
        &self,
        command: Command,
        reply: Option<oneshot::Sender<Outcome>>,
    ) -> Result<(), EngineError>;

    /// Events from `from_seq` on, as a local subscription gives them. The subscription ends
    /// when the connection is lost; resubscribe from its `next_seq()`.
    fn subscribe(&self, from_seq: u64) -> Result<Subscription, SubscribeError>;

    /// The engine's whole state at some seq at least as new as the last status the link
    /// reported.
    fn state(&self) -> StateFuture;

    /// The last status the link reported; `running` is false while the link is down.
    fn status(&self) -> EngineStatus;

    /// The last measurements the link reported.
    fn stats(&self) -> EngineStats;

    /// The link was closed for good (this process is stopping).
    fn closed(&self) -> bool;
}
