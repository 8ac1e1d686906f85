//! The Ethereum side of the wallet: a JSON-RPC client of an Ethereum node ([`rpc`]), the hot
//! wallet's keys and addresses ([`keys`]), and EIP-1559 transactions signed locally ([`tx`]).
//!
//! Amounts are wei in `u128` everywhere (2^128 wei is about 3.4 * 10^20 ether, more than
//! exists); quantities from a node are read exactly and a value that does not fit is an error.
//! Nothing here uses a float, reads the clock for a decision, or panics on what a node sends.
//! Keys are derived and transactions signed in memory, without I/O: the node only ever sees
//! signed bytes.
//!
//! `testing` (a feature) starts a real anvil node for tests.

pub mod hash;
pub mod keys;
pub mod quantity;
mod rlp;
pub mod rpc;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tx;

pub use hash::{BlockHash, TxHash, keccak256};
pub use keys::{Address, Phrase, Seed, SigningKey, address_of};
pub use rlp::RlpError;
pub use rpc::{
    Block, BlockTag, EthRpc, Receipt, ReceiptStatus, RpcConfig, RpcError, SendRefusal, Transaction,
};
pub use tx::{Eip1559Tx, SignedTx, TxError};
