//! A client of an Ethereum node's JSON-RPC 2.0 over HTTP (geth, Nethermind, Erigon, Reth,
//! anvil). Every call has a timeout and a bounded reply; every failure is an [`RpcError`]
//! (nothing a node sends can panic); quantities are read exactly into integers, wei as u128.
//!
//! The client holds no keys and signs nothing: transactions arrive here already signed
//! ([`crate::tx`]).

use crate::hash::{BlockHash, TxHash};
use crate::keys::Address;
use crate::quantity::{self, de};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// JSON-RPC error codes the wallet acts on.
pub mod codes {
    /// The node has no such method (JSON-RPC 2.0).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are not what the method takes (JSON-RPC 2.0).
    pub const INVALID_PARAMS: i64 = -32602;
    /// geth's and most clients' code for a refused transaction or a failed call.
    pub const SERVER_ERROR: i64 = -32000;
    /// EIP-1474: the transaction was refused (anvil's code for every refusal of a send).
    pub const TRANSACTION_REJECTED: i64 = -32003;
    /// EIP-1474: the request exceeds a limit of the node or its provider (rate limiting).
    pub const LIMIT_EXCEEDED: i64 = -32005;
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No connection (refused, reset, DNS): the node is down or the URL is wrong.
    #[error("the node at {url} is unreachable: {reason}")]
    Unreachable {
        /// The node's URL.
        url: String,
        /// What the connection said.
        reason: String,
    },
    /// No full reply within the call's timeout. The call may still have taken effect: a
    /// transaction may be in the node's pool.
    #[error("the node did not answer within {0:?}")]
    Timeout(Duration),
    /// An HTTP status other than 2xx, without a JSON-RPC error in the body.
    #[error("the node answered HTTP {0}")]
    Http(u16),
    /// The node answered with a JSON-RPC error.
    #[error("node error {code}: {message}")]
    Node {
        /// The JSON-RPC error code (see [`codes`]).
        code: i64,
        /// The node's message (its wording differs between clients).
        message: String,
    },
    /// A reply that is not JSON-RPC, or whose result is not what the method returns.
    #[error("malformed reply from the node: {0}")]
    Malformed(String),
    /// A reply over the configured size bound.
    #[error("the node's reply is over {0} bytes")]
    TooLarge(usize),
}

/// What a node's refusal of `eth_sendRawTransaction` means, read from its message (whose
/// wording differs between clients; see [`RpcError::send_refusal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendRefusal {
    /// The node already has this very transaction: it was sent before. Not a failure.
    AlreadyKnown,
    /// The account's nonce is past this transaction's: this transaction, or another with the
    /// same nonce, was mined. Look the hash up to know which.
    NonceTooLow,
    /// A transaction with the same nonce is pending and this one does not pay enough more to
    /// replace it, or the fee is under the node's minimum.
    Underpriced,
    /// The sender cannot pay `value + gas_limit * max_fee_per_gas`.
    InsufficientFunds,
    /// The signature does not recover to an account on this chain: a wrong chain id, or a
    /// broken signature.
    InvalidSender,
    /// Any other refusal.
    Other,
}

impl RpcError {
    /// The node's error code, if the node itself refused the call.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Node { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The node's error message, if the node itself refused the call.
    pub fn node_message(&self) -> Option<&str> {
        match self {
            RpcError::Node { message, .. } => Some(message),
            _ => None,
        }
    }

    /// True when the call may work later unchanged (the node is down, slow, overloaded or
    /// rate-limiting).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RpcError::Unreachable { .. } | RpcError::Timeout(_) | RpcError::Http(429 | 502..=504)
        ) || self.code() == Some(codes::LIMIT_EXCEEDED)
    }

    /// True when the node does not serve the method.
    pub fn is_method_not_found(&self) -> bool {
        let message = self.node_message().unwrap_or_default().to_ascii_lowercase();
        self.code() == Some(codes::METHOD_NOT_FOUND)
            || message.contains("method not found")
            || message.contains("does not exist")
            || message.contains("not supported")
    }

    /// What a refusal of a sent transaction means, or `None` when the node did not refuse it
    /// (the call failed otherwise). The messages of geth, Erigon, Reth, Nethermind, Besu and
    /// anvil are known.
    pub fn send_refusal(&self) -> Option<SendRefusal> {
        let message = self.node_message()?.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| message.contains(w));
        Some(if has(&["already known", "known transaction", "already imported", "alreadyknown"]) {
            SendRefusal::AlreadyKnown
        } else if has(&["nonce too low", "oldnonce", "nonce has already been used"]) {
            SendRefusal::NonceTooLow
        } else if has(&["underpriced", "fee too low", "feetoolow"]) {
            SendRefusal::Underpriced
        } else if has(&["insufficient funds", "insufficient balance", "insufficientfunds"]) {
            SendRefusal::InsufficientFunds
        } else if has(&["invalid sender", "invalid chain id", "chain id", "invalidsignature"]) {
            SendRefusal::InvalidSender
        } else {
            SendRefusal::Other
        })
    }
}

/// The result of a call.
pub type Result<T, E = RpcError> = std::result::Result<T, E>;

/// Where and how the client calls the node.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// The node's HTTP endpoint: `http://127.0.0.1:8545`.
    pub url: String,
    /// The longest one call may take, from connecting to the last byte of the reply.
    pub timeout: Duration,
    /// Replies larger than this are refused (a block with full transactions is a few MiB at
    /// most).
    pub reply_bytes_max: usize,
}

impl RpcConfig {
    /// `url` with a 30 s timeout and 32 MiB replies at most.
    pub fn new(url: impl Into<String>) -> RpcConfig {
        RpcConfig { url: url.into(), timeout: Duration::from_secs(30), reply_bytes_max: 32 << 20 }
    }
}

/// Which state a read sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockTag {
    /// The head of the node's chain.
    Latest,
    /// The head plus the node's pending pool (for nonces: counts pending transactions).
    Pending,
    /// The latest block the consensus layer holds safe from reorganisation.
    Safe,
    /// The latest finalized block.
    Finalized,
    /// The genesis block.
    Earliest,
    /// The block at a height.
    Number(u64),
}

impl BlockTag {
    fn param(self) -> Value {
        Value::String(match self {
            BlockTag::Latest => "latest".into(),
            BlockTag::Pending => "pending".into(),
            BlockTag::Safe => "safe".into(),
            BlockTag::Finalized => "finalized".into(),
            BlockTag::Earliest => "earliest".into(),
            BlockTag::Number(n) => quantity::quantity(u128::from(n)),
        })
    }
}

/// A block with its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// The height.
    #[serde(deserialize_with = "de::u64")]
    pub number: u64,
    /// This block's hash.
    pub hash: BlockHash,
    /// The previous block's hash: a reorganisation shows as a parent that is not the hash
    /// seen at the height below.
    pub parent_hash: BlockHash,
    /// Unix seconds.
    #[serde(deserialize_with = "de::u64")]
    pub timestamp: u64,
    /// EIP-1559's base fee, in wei; absent before London.
    #[serde(default, rename = "baseFeePerGas", deserialize_with = "de::opt_u128")]
    pub base_fee_per_gas_wei: Option<u128>,
    /// The transactions, in block order.
    pub transactions: Vec<Transaction>,
}

/// A transaction as a node reports it, mined or pending. Call data is not kept, only whether
/// there was any (a plain transfer has none).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// The transaction's hash.
    pub hash: TxHash,
    /// The sender.
    pub from: Address,
    /// The recipient; `None` for a contract creation.
    #[serde(default)]
    pub to: Option<Address>,
    /// What the recipient receives, in wei.
    #[serde(rename = "value", deserialize_with = "de::u128")]
    pub value_wei: u128,
    /// The sender's nonce.
    #[serde(deserialize_with = "de::u64")]
    pub nonce: u64,
    /// True for no call data (`0x`): a plain transfer. A transfer with data calls code, and
    /// the value may go elsewhere than `to`.
    #[serde(rename = "input", deserialize_with = "empty_data")]
    pub input_is_empty: bool,
    /// The block's height, once mined.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub block_number: Option<u64>,
    /// The block's hash, once mined.
    #[serde(default)]
    pub block_hash: Option<BlockHash>,
}

/// Whether a mined transaction did what it said (a failed one still paid its gas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// `status` 1: executed; the value moved.
    Succeeded,
    /// `status` 0: reverted; no value moved, the fee was paid.
    Failed,
}

impl<'de> Deserialize<'de> for ReceiptStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ReceiptStatus, D::Error> {
        match de::u64(d)? {
            1 => Ok(ReceiptStatus::Succeeded),
            0 => Ok(ReceiptStatus::Failed),
            other => Err(D::Error::custom(format!("receipt status {other}"))),
        }
    }
}

/// What mining a transaction did.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The transaction's hash.
    pub transaction_hash: TxHash,
    /// Succeeded or failed (reverted).
    pub status: ReceiptStatus,
    /// The block's height.
    #[serde(deserialize_with = "de::u64")]
    pub block_number: u64,
    /// The block's hash: after a reorganisation, the receipt may be in another block.
    pub block_hash: BlockHash,
    /// The sender.
    pub from: Address,
    /// The recipient; `None` for a contract creation.
    #[serde(default)]
    pub to: Option<Address>,
    /// Gas the transaction used.
    #[serde(deserialize_with = "de::u64")]
    pub gas_used: u64,
    /// What each unit of gas cost, base fee and tip, in wei.
    #[serde(rename = "effectiveGasPrice", deserialize_with = "de::u128")]
    pub effective_gas_price_wei: u128,
}

impl Receipt {
    /// The fee the sender paid, `gas_used * effective_gas_price`, in wei; `None` on overflow
    /// (a node's nonsense, not a fee).
    pub fn fee_wei(&self) -> Option<u128> {
        u128::from(self.gas_used).checked_mul(self.effective_gas_price_wei)
    }
}

fn empty_data<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    match text.strip_prefix("0x") {
        Some(hex) => Ok(hex.is_empty()),
        None => Err(D::Error::custom("call data is `0x` and hex digits")),
    }
}

#[derive(Deserialize)]
struct Reply<T> {
    #[serde(default)]
    id: Value,
    result: Option<T>,
    #[serde(default)]
    error: Option<NodeError>,
}

#[derive(Deserialize)]
struct NodeError {
    code: i64,
    #[serde(default)]
    message: String,
}

/// A connection to one node.
#[derive(Debug)]
pub struct EthRpc {
    http: reqwest::Client,
    config: RpcConfig,
    next_id: AtomicU64,
}

impl EthRpc {
    /// A client of the node at `config.url`. Connects at the first call, not here.
    pub fn new(config: RpcConfig) -> Result<EthRpc> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| RpcError::Unreachable {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(EthRpc { http, config, next_id: AtomicU64::new(1) })
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// One call of `method` with `params` (a JSON array), its result read as `T`. A `null`
    /// result reads as `None` when `T` is an `Option`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let sent = self.http.post(&self.config.url).json(&body).send().await;
        let mut response = sent.map_err(|e| self.transport(method, e))?;
        let status = response.status().as_u16();
        let max = self.config.reply_bytes_max;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(RpcError::TooLarge(max));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(method, e))? {
            if bytes.len().saturating_add(chunk.len()) > max {
                return Err(RpcError::TooLarge(max));
            }
            bytes.extend_from_slice(&chunk);
        }
        let reply: Reply<T> = match serde_json::from_slice(&bytes) {
            Ok(reply) => reply,
            Err(_) if !(200..300).contains(&status) => return Err(RpcError::Http(status)),
            Err(e) => return Err(RpcError::Malformed(format!("{method}: {e}"))),
        };
        if let Some(e) = reply.error {
            tracing::debug!(method, code = e.code, message = %e.message, "node refused a call");
            return Err(RpcError::Node { code: e.code, message: e.message });
        }
        if !(200..300).contains(&status) {
            return Err(RpcError::Http(status));
        }
        if reply.id != id {
            return Err(RpcError::Malformed(format!(
                "{method}: reply id {} for call {id}",
                reply.id
            )));
        }
        match reply.result {
            Some(result) => Ok(result),
            None => serde_json::from_value(Value::Null)
                .map_err(|_| RpcError::Malformed(format!("{method}: no result"))),
        }
    }

    fn transport(&self, method: &str, e: reqwest::Error) -> RpcError {
        tracing::debug!(method, error = %e, "node call failed");
        if e.is_timeout() {
            RpcError::Timeout(self.config.timeout)
        } else {
            RpcError::Unreachable { url: self.config.url.clone(), reason: e.to_string() }
        }
    }

    async fn quantity(&self, method: &str, params: Value) -> Result<u128> {
        let text: String = self.call(method, params).await?;
        quantity::parse_quantity(&text)
            .map_err(|e| RpcError::Malformed(format!("{method}: {text:?}: {e}")))
    }

    async fn quantity_u64(&self, method: &str, params: Value) -> Result<u64> {
        let value = self.quantity(method, params).await?;
        u64::try_from(value)
            .map_err(|_| RpcError::Malformed(format!("{method}: {value} is over 64 bits")))
    }

    /// `eth_chainId`: the EIP-155 chain id transactions must be signed for.
    pub async fn chain_id(&self) -> Result<u64> {
        self.quantity_u64("eth_chainId", serde_json::json!([])).await
    }

    /// `eth_blockNumber`: the height of the node's head.
    pub async fn block_number(&self) -> Result<u64> {
        self.quantity_u64("eth_blockNumber", serde_json::json!([])).await
    }

    /// `eth_getBlockByNumber` with full transactions; `None` above the head.
    pub async fn block(&self, number: u64) -> Result<Option<Block>> {
        self.call(
            "eth_getBlockByNumber",
            serde_json::json!([BlockTag::Number(number).param(), true]),
        )
        .await
    }

    /// `eth_getTransactionByHash`; `None` when the node knows no such transaction.
    pub async fn transaction(&self, hash: &TxHash) -> Result<Option<Transaction>> {
        self.call("eth_getTransactionByHash", serde_json::json!([hash])).await
    }

    /// `eth_getTransactionReceipt`; `None` until the transaction is mined.
    pub async fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>> {
        self.call("eth_getTransactionReceipt", serde_json::json!([hash])).await
    }

    /// `eth_getBalance`: the account's balance at `block`, in wei.
    pub async fn balance(&self, address: &Address, block: BlockTag) -> Result<u128> {
        self.quantity("eth_getBalance", serde_json::json!([address, block.param()])).await
    }

    /// `eth_getTransactionCount`: the account's next nonce as of `block`
    /// ([`BlockTag::Pending`] counts the node's pending transactions too).
    pub async fn transaction_count(&self, address: &Address, block: BlockTag) -> Result<u64> {
        self.quantity_u64("eth_getTransactionCount", serde_json::json!([address, block.param()]))
            .await
    }

    /// `eth_gasPrice`: the node's suggested legacy gas price (base fee plus tip), in wei.
    pub async fn gas_price(&self) -> Result<u128> {
        self.quantity("eth_gasPrice", serde_json::json!([])).await
    }

    /// `eth_maxPriorityFeePerGas`: the node's suggested tip per gas, in wei. A node without the
    /// method gets `eth_gasPrice` less the head's base fee (its own suggestion of a tip).
    pub async fn max_priority_fee(&self) -> Result<u128> {
        match self.quantity("eth_maxPriorityFeePerGas", serde_json::json!([])).await {
            Err(e) if e.is_method_not_found() => {
                let price = self.gas_price().await?;
                let base_fee = self.latest_base_fee().await?.unwrap_or(0);
                Ok(price.saturating_sub(base_fee))
            }
            other => other,
        }
    }

    /// The base fee of the head block, in wei; `None` before London.
    pub async fn latest_base_fee(&self) -> Result<Option<u128>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Header {
            #[serde(default, deserialize_with = "de::opt_u128")]
            base_fee_per_gas: Option<u128>,
        }
        let header: Option<Header> =
            self.call("eth_getBlockByNumber", serde_json::json!(["latest", false])).await?;
        let header = header.ok_or_else(|| RpcError::Malformed("no latest block".into()))?;
        Ok(header.base_fee_per_gas)
    }

    /// `eth_sendRawTransaction`: hands a signed transaction to the node; its hash. A refusal
    /// is an [`RpcError::Node`] whose [`RpcError::send_refusal`] says why: sending the same
    /// bytes again is safe and gives [`SendRefusal::AlreadyKnown`] or
    /// [`SendRefusal::NonceTooLow`], never a second transfer (one nonce is mined once).
    pub async fn send_raw_transaction(&self, raw: &[u8]) -> Result<TxHash> {
        self.call("eth_sendRawTransaction", serde_json::json!([format!("0x{}", hex::encode(raw))]))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TX: &str = r#"{
        "hash": "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b",
        "from": "0xa7d9ddbe1f17865597fbd27ec712455208b6b76d",
        "to": "0xf02c1c8e6114b1dbe8937a39260b5b0a374432bb",
        "value": "0xf3dbb76162000",
        "nonce": "0x15",
        "input": "0x",
        "blockNumber": "0x5daf3b",
        "blockHash": "0x1d59ff54b1eb26b013ce3cb5fc9dab3705b415a67127a003c3e61eb445bb8df2",
        "gas": "0xc350",
        "type": "0x0"
    }"#;

    #[test]
    fn transactions_read_exactly() {
        let tx: Transaction = serde_json::from_str(TX).unwrap();
        assert_eq!(tx.value_wei, 4_290_000_000_000_000);
        assert_eq!((tx.nonce, tx.block_number, tx.input_is_empty), (21, Some(6_139_707), true));
        assert_eq!(tx.from.to_string(), "0xa7d9ddBE1f17865597fBD27EC712455208B6B76d");
        // Pending: no block yet; a contract creation: no `to`; call data.
        let pending = TX
            .replace(r#""blockNumber": "0x5daf3b""#, r#""blockNumber": null"#)
            .replace(r#""to": "0xf02c1c8e6114b1dbe8937a39260b5b0a374432bb""#, r#""to": null"#)
            .replace(r#""input": "0x""#, r#""input": "0x6060""#);
        let tx: Transaction = serde_json::from_str(&pending).unwrap();
        assert_eq!((tx.block_number, tx.to, tx.input_is_empty), (None, None, false));
        // A value over u128 is an error, never a wrapped number.
        let huge = TX.replace("0xf3dbb76162000", &format!("0x1{}", "0".repeat(32)));
        assert!(serde_json::from_str::<Transaction>(&huge).is_err());
        let float = TX.replace(r#""0xf3dbb76162000""#, "4.29e15");
        assert!(serde_json::from_str::<Transaction>(&float).is_err());
        let bad_address = TX.replace("0xa7d9ddbe1f17865597fbd27ec712455208b6b76d", "0xa7d9");
        assert!(serde_json::from_str::<Transaction>(&bad_address).is_err());
    }

    #[test]
    fn receipts_read_exactly() {
        let json = r#"{
            "transactionHash": "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b",
            "status": "0x1",
            "blockNumber": "0x10",
            "blockHash": "0x1d59ff54b1eb26b013ce3cb5fc9dab3705b415a67127a003c3e61eb445bb8df2",
            "from": "0xa7d9ddbe1f17865597fbd27ec712455208b6b76d",
            "to": "0xf02c1c8e6114b1dbe8937a39260b5b0a374432bb",
            "gasUsed": "0x5208",
            "effectiveGasPrice": "0x3b9aca07",
            "logs": []
        }"#;
        let receipt: Receipt = serde_json::from_str(json).unwrap();
        assert_eq!(receipt.status, ReceiptStatus::Succeeded);
        assert_eq!(receipt.fee_wei(), Some(21_000 * 1_000_000_007));
        let failed: Receipt =
            serde_json::from_str(&json.replace(r#""0x1","#, r#""0x0","#)).unwrap();
        assert_eq!(failed.status, ReceiptStatus::Failed);
        assert!(serde_json::from_str::<Receipt>(&json.replace(r#""0x1","#, r#""0x2","#)).is_err());
        let overflow = json.replace("0x3b9aca07", &format!("0x{}", "f".repeat(32)));
        assert_eq!(serde_json::from_str::<Receipt>(&overflow).unwrap().fee_wei(), None);
    }

    #[test]
    fn refusals_are_told_apart() {
        let node =
            |message: &str| RpcError::Node { code: codes::SERVER_ERROR, message: message.into() };
        for (message, refusal) in [
            ("already known", SendRefusal::AlreadyKnown),
            ("Known transaction: 4f2a", SendRefusal::AlreadyKnown),
            ("nonce too low: address 0xf39F, tx: 0 state: 1", SendRefusal::NonceTooLow),
            ("OldNonce", SendRefusal::NonceTooLow),
            ("replacement transaction underpriced", SendRefusal::Underpriced),
            ("insufficient funds for gas * price + value", SendRefusal::InsufficientFunds),
            ("invalid sender", SendRefusal::InvalidSender),
            ("invalid chain id for signer", SendRefusal::InvalidSender),
            ("transaction already imported", SendRefusal::AlreadyKnown),
            ("Insufficient funds for gas * price + value", SendRefusal::InsufficientFunds),
            ("execution reverted", SendRefusal::Other),
        ] {
            assert_eq!(node(message).send_refusal(), Some(refusal), "{message}");
        }
        assert_eq!(RpcError::Http(500).send_refusal(), None);
        assert!(RpcError::Http(503).is_transient());
        assert!(RpcError::Http(429).is_transient());
        assert!(!RpcError::Http(400).is_transient());
        assert!(
            RpcError::Node { code: codes::LIMIT_EXCEEDED, message: String::new() }.is_transient()
        );
        assert!(!node("nonce too low").is_transient());
        assert!(
            RpcError::Node { code: codes::METHOD_NOT_FOUND, message: "x".into() }
                .is_method_not_found()
        );
        assert!(
            node("the method eth_maxPriorityFeePerGas does not exist/is not available")
                .is_method_not_found()
        );
    }
}
