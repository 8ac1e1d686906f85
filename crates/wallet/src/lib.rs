//! The wallet role: the only part of bourse that holds coin-node credentials and moves coins.
//!
//! - [`rpc`]: a client of the Bitcoin Core JSON-RPC (Bitcoin, Litecoin, Dogecoin, Bitcoin Cash
//!   ... nodes): bounded replies, timeouts, typed errors, exact amounts (a node's JSON numbers are
//!   read as decimal text, never as floats).
//!
//! - [`chain`]: one wallet whatever its chain (`[wallets.X] chain = "bitcoin" | "ethereum"`).
//! - [`coin`]: a Bitcoin-family coin's configuration (`[wallets.LTC]`) and node connection.
//! - [`deposits`]: deposit addresses, and the scan that credits each deposit exactly once.
//! - [`withdrawals`]: holds, batched sends that are never repeated, confirmations.
//! - [`ethereum`]: ether — HD deposit addresses, block scanning, sweeps, withdrawals signed
//!   here and never sent twice (the node client is the `bourse-eth` crate).
//! - [`alert`]: operator alerts (logged, and recorded in the store's `operator_alerts`).
//!
//! Amounts here are minor units (`u128`/`i128`) at the coin's scale (8 for the Bitcoin family;
//! wei on the Ethereum chain, converted at the edge).

pub mod alert;
pub mod chain;
pub mod coin;
pub mod deposits;
pub mod ethereum;
pub mod rpc;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;
pub mod withdrawals;
