//! The pure core of bourse: money, markets, order books, matching and the ledger.
//!
//! Everything that changes a balance or a book is a [`Command`] applied by
//! [`Exchange::apply`], which appends the resulting [`Event`]s. The core does no I/O, reads no
//! clock, spawns no thread and uses no randomness, so the same commands always give the same
//! state and events (see `snapshot.rs` for the state hash that proves it). Amounts are integers
//! of minor units; decimal strings exist only in [`decimal`], for the edges.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod book;
pub mod command;
pub mod decimal;
pub mod event;
mod exchange;
pub mod ids;
pub mod market;
mod matching;
mod secret;
mod snapshot;

pub use audit::{AssetTotals, InvariantError};
pub use command::{
    Command, MarketChange, OrderRef, OrderType, PlaceOrder, Side, Stamped, StpMode, TimeInForce,
};
pub use event::{EndReason, Event, Reject, WithdrawalState};
pub use exchange::{Account, AssetState, Exchange, OPEN_ORDERS_PER_USER_MAX, Withdrawal};
pub use ids::{
    AssetId, ClientOrderId, ExternalKey, MarketId, OrderId, Reason, Symbol, TradeId, UserId,
    WithdrawalId,
};
pub use market::{AssetSpec, MarketSpec, MarketStatus};
pub use secret::Secret;
pub use snapshot::{Snapshot, SnapshotError, StateHash};
