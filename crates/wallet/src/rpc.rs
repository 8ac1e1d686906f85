//! A client of the Bitcoin Core JSON-RPC, as Bitcoin, Litecoin, Dogecoin and Bitcoin Cash nodes
//! serve it. Every call has a timeout and a bounded reply; every failure is an [`RpcError`]
//! (nothing a node sends can panic); amounts are read from the reply's text as exact decimals.

use bourse_core::Secret;
use bourse_core::decimal::{DecimalError, format_units, parse_units};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The Bitcoin family counts in 10^-8 of a coin.
pub const SCALE: u8 = 8;

/// Bitcoin Core error codes the wallet acts on.
pub mod codes {
    pub const MISC: i64 = -1;
    pub const INVALID_ADDRESS: i64 = -5;
    pub const INSUFFICIENT_FUNDS: i64 = -6;
    pub const INVALID_PARAMETER: i64 = -8;
    pub const WALLET_ERROR: i64 = -4;
    pub const WALLET_UNLOCK_NEEDED: i64 = -13;
    pub const WALLET_PASSPHRASE_INCORRECT: i64 = -14;
    pub const WALLET_NOT_FOUND: i64 = -18;
    pub const IN_WARMUP: i64 = -28;
    pub const METHOD_NOT_FOUND: i64 = -32601;
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("the node at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the node did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the node refused the RPC credentials")]
    Unauthorized,
    #[error("the node answered HTTP {0}")]
    Http(u16),
    #[error("node error {code}: {message}")]
    Node { code: i64, message: String },
    #[error("malformed reply from the node: {0}")]
    Malformed(String),
    #[error("the node's reply is over {0} bytes")]
    TooLarge(usize),
    #[error("cannot read the RPC cookie file: {0}")]
    Cookie(String),
}

impl RpcError {
    /// The node's error code, if the node itself refused the call.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Node { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the call may work later unchanged (the node is down, slow or starting).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RpcError::Unreachable { .. } | RpcError::Timeout(_) | RpcError::Http(502..=504)
        ) || self.code() == Some(codes::IN_WARMUP)
    }
}

pub type Result<T, E = RpcError> = std::result::Result<T, E>;

/// How the client proves itself to the node.
#[derive(Clone, Debug)]
pub enum RpcAuth {
    UserPass {
        user: String,
        password: Secret,
    },
    /// The node's `.cookie` file (`__cookie__:<hex>`), read again when the node refuses it (the
    /// node writes a new one at each start).
    CookieFile(PathBuf),
}

#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// `http://127.0.0.1:9332`.
    pub url: String,
    pub auth: RpcAuth,
    /// The wallet the wallet calls go to (`/wallet/<name>`); `None` for the node's default.
    pub wallet: Option<String>,
    pub timeout: Duration,
    /// Replies larger than this are refused.
    pub reply_bytes_max: usize,
}

impl RpcConfig {
    pub fn new(url: impl Into<String>, auth: RpcAuth) -> RpcConfig {
        RpcConfig {
            url: url.into(),
            auth,
            wallet: None,
            timeout: Duration::from_secs(30),
            reply_bytes_max: 32 << 20,
        }
    }
}

/// An amount in minor units as the node wrote it: sends are negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Amount(pub i128);

/// Parses a node's JSON number (`0.12345678`, `-1.5`, `21`) exactly at [`SCALE`]; refuses
/// exponents and more than 8 decimals.
pub fn parse_amount(text: &str) -> Result<i128, DecimalError> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let units = parse_units(digits, SCALE)?;
    let units = i128::try_from(units).map_err(|_| DecimalError::Overflow)?;
    Ok(if negative { -units } else { units })
}

/// Minor units as the decimal string the node reads (`"0.12345678"`); never a float.
pub fn amount_text(units: u128) -> String {
    format_units(units, SCALE)
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get().trim_matches('"');
        parse_amount(text)
            .map(Amount)
            .map_err(|e| D::Error::custom(format!("amount {text:?}: {e}")))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChainInfo {
    /// `main`, `test`, `regtest`.
    pub chain: String,
    pub blocks: u64,
    pub headers: u64,
    pub bestblockhash: String,
    #[serde(default)]
    pub initialblockdownload: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BlockHeader {
    pub hash: String,
    pub height: u64,
    /// Unix seconds.
    pub time: i64,
    pub confirmations: i64,
}

/// One wallet entry of `listsinceblock` / `listtransactions`: a transaction's effect on one
/// address of the wallet.
#[derive(Clone, Debug, Deserialize)]
pub struct WalletEntry {
    pub txid: String,
    #[serde(default)]
    pub address: Option<String>,
    /// `receive`, `send`, `generate`, `immature`, `orphan`.
    pub category: String,
    pub amount: Amount,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub vout: u32,
    /// Negative when the transaction conflicts with the best chain (it was double-spent or
    /// reorganised away).
    pub confirmations: i64,
    #[serde(default)]
    pub blockhash: Option<String>,
    #[serde(default)]
    pub blockheight: Option<u64>,
    #[serde(default)]
    pub fee: Option<Amount>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub abandoned: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SinceBlock {
    pub transactions: Vec<WalletEntry>,
    /// Entries that left the best chain since the given block (with `include_removed`).
    #[serde(default)]
    pub removed: Vec<WalletEntry>,
    /// The hash to pass next time.
    pub lastblock: String,
}

/// `gettransaction`: the whole transaction as the wallet sees it.
#[derive(Clone, Debug, Deserialize)]
pub struct WalletTransaction {
    pub txid: String,
    pub amount: Amount,
    #[serde(default)]
    pub fee: Option<Amount>,
    pub confirmations: i64,
    #[serde(default)]
    pub blockhash: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub details: Vec<TransactionDetail>,
}

/// One output of a [`WalletTransaction`] that concerns the wallet.
#[derive(Clone, Debug, Deserialize)]
pub struct TransactionDetail {
    #[serde(default)]
    pub address: Option<String>,
    /// `receive` or `send`.
    pub category: String,
    pub amount: Amount,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub vout: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct WalletInfo {
    pub walletname: String,
    /// Absent for an unencrypted wallet; 0 when locked.
    #[serde(default)]
    pub unlocked_until: Option<i64>,
}

#[derive(Deserialize)]
struct Reply<T> {
    result: Option<T>,
    error: Option<NodeError>,
}

#[derive(Deserialize)]
struct NodeError {
    code: i64,
    message: String,
}

/// A connection to one node (and one of its wallets).
#[derive(Debug)]
pub struct BitcoinRpc {
    http: reqwest::Client,
    config: RpcConfig,
    next_id: AtomicU64,
}

impl BitcoinRpc {
    pub fn new(config: RpcConfig) -> Result<BitcoinRpc> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| RpcError::Unreachable {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(BitcoinRpc { http, config, next_id: AtomicU64::new(1) })
    }

    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    fn credentials(&self) -> Result<(String, String)> {
        match &self.config.auth {
            RpcAuth::UserPass { user, password } => {
                Ok((user.clone(), password.expose().to_string()))
            }
            RpcAuth::CookieFile(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| RpcError::Cookie(format!("{}: {e}", path.display())))?;
                let (user, pass) = text.trim().split_once(':').ok_or_else(|| {
                    RpcError::Cookie(format!("{}: no `user:password`", path.display()))
                })?;
                Ok((user.to_string(), pass.to_string()))
            }
        }
    }

    /// One call: to the node (`wallet` false) or to the configured wallet.
    pub async fn call<T: DeserializeOwned>(
        &self,
        wallet: bool,
        method: &str,
        params: Value,
    ) -> Result<T> {
        let url = match (&self.config.wallet, wallet) {
            (Some(name), true) => {
                format!("{}/wallet/{name}", self.config.url.trim_end_matches('/'))
            }
            _ => self.config.url.clone(),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body =
            serde_json::json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let (user, pass) = self.credentials()?;
        let sent = self.http.post(&url).basic_auth(user, Some(pass)).json(&body).send().await;
        let mut response = sent.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RpcError::Unauthorized);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if bytes.len() + chunk.len() > self.config.reply_bytes_max {
                return Err(RpcError::TooLarge(self.config.reply_bytes_max));
            }
            bytes.extend_from_slice(&chunk);
        }
        let reply: Reply<T> = match serde_json::from_slice(&bytes) {
            Ok(reply) => reply,
            // Bitcoin Core answers errors with HTTP 404/500 and a JSON body; anything else that
            // is not JSON is the HTTP status.
            Err(_) if !(200..300).contains(&status) => return Err(RpcError::Http(status)),
            Err(e) => return Err(RpcError::Malformed(format!("{method}: {e}"))),
        };
        if let Some(e) = reply.error {
            return Err(RpcError::Node { code: e.code, message: e.message });
        }
        if !(200..300).contains(&status) {
            return Err(RpcError::Http(status));
        }
        match reply.result {
            Some(result) => Ok(result),
            None => serde_json::from_value(Value::Null)
                .map_err(|_| RpcError::Malformed(format!("{method}: no result"))),
        }
    }

    fn transport(&self, e: reqwest::Error) -> RpcError {
        if e.is_timeout() {
            RpcError::Timeout(self.config.timeout)
        } else {
            RpcError::Unreachable { url: self.config.url.clone(), reason: e.to_string() }
        }
    }

    // ---- the node -----------------------------------------------------------------------

    pub async fn chain_info(&self) -> Result<ChainInfo> {
        self.call(false, "getblockchaininfo", serde_json::json!([])).await
    }

    pub async fn connection_count(&self) -> Result<u64> {
        self.call(false, "getconnectioncount", serde_json::json!([])).await
    }

    pub async fn block_hash(&self, height: u64) -> Result<String> {
        self.call(false, "getblockhash", serde_json::json!([height])).await
    }

    pub async fn block_header(&self, hash: &str) -> Result<BlockHeader> {
        self.call(false, "getblockheader", serde_json::json!([hash, true])).await
    }

    /// Whether the node takes `address` as one of its network's (a regtest node refuses a
    /// mainnet address).
    pub async fn address_is_valid(&self, address: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Valid {
            isvalid: bool,
        }
        let v: Valid = self.call(false, "validateaddress", serde_json::json!([address])).await?;
        Ok(v.isvalid)
    }

    /// The fee rate for confirmation within `blocks`, in minor units per 1000 virtual bytes;
    /// `None` when the node has no estimate (a fresh or quiet chain).
    pub async fn estimate_fee_rate(&self, blocks: u32) -> Result<Option<u128>> {
        #[derive(Deserialize)]
        struct Estimate {
            #[serde(default)]
            feerate: Option<Amount>,
        }
        let e: Estimate = self.call(false, "estimatesmartfee", serde_json::json!([blocks])).await?;
        Ok(e.feerate.and_then(|a| u128::try_from(a.0).ok()))
    }

    // ---- the wallet ---------------------------------------------------------------------

    pub async fn create_wallet(&self, name: &str) -> Result<()> {
        let _: Value = self.call(false, "createwallet", serde_json::json!([name])).await?;
        Ok(())
    }

    pub async fn load_wallet(&self, name: &str) -> Result<()> {
        let _: Value = self.call(false, "loadwallet", serde_json::json!([name])).await?;
        Ok(())
    }

    pub async fn wallet_info(&self) -> Result<WalletInfo> {
        self.call(true, "getwalletinfo", serde_json::json!([])).await
    }

    /// A new receiving address with `label`; `address_type` `legacy`, `p2sh-segwit` or
    /// `bech32` (the node's default when `None`).
    pub async fn new_address(&self, label: &str, address_type: Option<&str>) -> Result<String> {
        let params = match address_type {
            Some(t) => serde_json::json!([label, t]),
            None => serde_json::json!([label]),
        };
        self.call(true, "getnewaddress", params).await
    }

    /// Wallet entries in blocks after `block` (all with `None`), and those removed from the best
    /// chain since; `target_confirmations` sets which block `lastblock` names.
    pub async fn list_since_block(
        &self,
        block: Option<&str>,
        target_confirmations: u32,
    ) -> Result<SinceBlock> {
        let block = block.map_or(Value::String(String::new()), |b| Value::String(b.to_string()));
        self.call(
            true,
            "listsinceblock",
            serde_json::json!([block, target_confirmations.max(1), true, true]),
        )
        .await
    }

    pub async fn transaction(&self, txid: &str) -> Result<WalletTransaction> {
        self.call(true, "gettransaction", serde_json::json!([txid, true])).await
    }

    /// The wallet's spendable balance with at least `min_confirmations`, in minor units.
    pub async fn balance(&self, min_confirmations: u32) -> Result<i128> {
        let a: Amount =
            self.call(true, "getbalance", serde_json::json!(["*", min_confirmations])).await?;
        Ok(a.0)
    }

    /// The wallet's trusted balance: confirmed coins plus its own unconfirmed change (not
    /// payments to it that are still unconfirmed).
    pub async fn trusted_balance(&self) -> Result<i128> {
        #[derive(Deserialize)]
        struct Mine {
            trusted: Amount,
        }
        #[derive(Deserialize)]
        struct Balances {
            mine: Mine,
        }
        let b: Balances = self.call(true, "getbalances", serde_json::json!([])).await?;
        Ok(b.mine.trusted.0)
    }

    /// One transaction paying every `(address, minor units)` at `fee_rate` (minor units per
    /// 1000 virtual bytes); `comment` is kept in the wallet with it (the withdrawal ids, to find
    /// the transaction again after a crash). Returns the txid. Addresses must be distinct.
    pub async fn send_many(
        &self,
        outputs: &[(String, u128)],
        comment: &str,
        fee_rate: u128,
    ) -> Result<String> {
        let mut amounts = serde_json::Map::new();
        for (address, units) in outputs {
            amounts.insert(address.clone(), Value::String(amount_text(*units)));
        }
        // sendmany takes its explicit fee rate per virtual byte, with 3 decimals.
        let per_vbyte = format!("{}.{:03}", fee_rate / 1000, fee_rate % 1000);
        let params =
            serde_json::json!(["", amounts, 1, comment, [], null, null, "unset", per_vbyte]);
        self.call(true, "sendmany", params).await
    }

    /// Unlocks an encrypted wallet for `seconds`.
    pub async fn unlock(&self, passphrase: &Secret, seconds: u64) -> Result<()> {
        let _: Value = self
            .call(true, "walletpassphrase", serde_json::json!([passphrase.expose(), seconds]))
            .await?;
        Ok(())
    }

    pub async fn lock(&self) -> Result<()> {
        let _: Value = self.call(true, "walletlock", serde_json::json!([])).await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(parse_amount("0.12345678"), Ok(12_345_678));
        assert_eq!(parse_amount("-1.50000000"), Ok(-150_000_000));
        assert_eq!(parse_amount("21"), Ok(2_100_000_000));
        assert_eq!(parse_amount("0.000000001"), Err(DecimalError::TooPrecise { scale: 8 }));
        assert_eq!(parse_amount("1e-8"), Err(DecimalError::Syntax));
        assert_eq!(parse_amount(""), Err(DecimalError::Syntax));
        assert_eq!(amount_text(12_345_678), "0.12345678");
        let e: WalletEntry = serde_json::from_str(
            r#"{"txid":"ab","category":"receive","amount":0.10000001,"vout":1,"confirmations":-2}"#,
        )
        .unwrap();
        assert_eq!((e.amount, e.confirmations), (Amount(10_000_001), -2));
        assert!(
            serde_json::from_str::<WalletEntry>(
                r#"{"txid":"ab","category":"receive","amount":1e400,"confirmations":1}"#
            )
            .is_err()
        );
    }
}
