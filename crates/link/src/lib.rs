//! The engine link: the roles of a split deployment (gateway, wallet, worker, admin) reach the
//! engine's process over TCP, and an [`EngineHandle`](bourse_engine::EngineHandle) built by
//! [`connect`] behaves as a local one — commands with their durable outcomes, event
//! subscriptions from any sequence number, the state for bootstrapping, status and stats.
//!
//! - `serve` (`server.rs`) runs in the engine's process: each connection authenticates, then
//!   opens one of three kinds of stream (`wire.rs`): calls (commands in, outcomes and a status
//!   every 250 ms out), a subscription (event batches; a start older than the engine's
//!   in-memory ring is rebuilt from the journal), or the state (the canonical snapshot
//!   encoding, in chunks).
//! - `connect` (`client.rs`) keeps one calls connection (reconnecting when it is lost), opens
//!   a connection per subscription and per state read.
//! - Both ends prove they hold the link key, derived from the exchange's `secret_key`, and
//!   every frame after that carries a keyed BLAKE3 tag over its direction, its number and its
//!   bytes (`frame.rs`): a frame changed, dropped, replayed or reordered on the way ends the
//!   connection. Frames are not encrypted: run the link on loopback or a private network.
//! - Everything is bounded: frame sizes, connections, calls in flight per connection, the
//!   time a handshake, a connect or a write may take.

mod client;
mod frame;
mod key;
mod server;
mod wire;

pub use client::{LinkGuard, connect};
pub use key::LinkKey;
pub use server::serve;

/// Why the link could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach the engine's link at {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("the engine's link at {0} holds another key: both processes need the same secret_key")]
    WrongKey(String),
    #[error("the engine's link at {addr} did not answer within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("engine link: {0}")]
    Protocol(String),
    #[error("engine link: {0}")]
    Io(#[from] std::io::Error),
}
