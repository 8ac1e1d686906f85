//! The wallet role: the only part of bourse that holds coin-node credentials and moves coins.
//!
//! - [`rpc`]: a client of the Bitcoin Core JSON-RPC (Bitcoin, Litecoin, Dogecoin, Bitcoin Cash
//!   ... nodes): bounded replies, timeouts, typed errors, exact amounts (a node's JSON numbers are
//!   read as decimal text, never as floats).
//!
//! Amounts here are minor units (`u128`/`i128`) at the coin's scale (8 for the Bitcoin family).

pub mod rpc;
