//! One coin the exchange runs a wallet for: its configuration (from the server's config file,
//! `[wallets.LTC]`) and its node connection.

use crate::rpc::{BitcoinRpc, RpcAuth, RpcConfig, RpcError, SCALE};
use bourse_core::decimal::parse_units;
use bourse_core::{AssetId, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[wallets.<SYMBOL>]`: a Bitcoin-family node's wallet.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinConfig {
    /// `http://127.0.0.1:9332`.
    pub rpc_url: String,
    /// With `rpc_password`; or `rpc_cookie_file`.
    #[serde(default)]
    pub rpc_user: Option<String>,
    #[serde(default)]
    pub rpc_password: Option<Secret>,
    #[serde(default)]
    pub rpc_cookie_file: Option<PathBuf>,
    /// The node wallet holding the exchange's coins (`/wallet/<name>`).
    #[serde(default)]
    pub wallet: Option<String>,
    /// Confirmations before a deposit is credited.
    #[serde(default = "default_confirmations")]
    pub confirmations: u32,
    /// Smaller deposits are recorded but not credited (decimal, in coins).
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub min_deposit: String,
    /// `legacy`, `p2sh-segwit` or `bech32`; the node's default when absent.
    #[serde(default)]
    pub address_type: Option<String>,
    /// Deposit addresses one user may have for this coin.
    #[serde(default = "default_addresses_max")]
    pub addresses_per_user_max: u32,
    #[serde(default = "default_scan_interval_ms")]
    pub scan_interval_ms: u64,
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// The fee a withdrawal pays the exchange (decimal, in coins), held with its amount.
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub withdrawal_fee: String,
    /// The smallest withdrawal (decimal, in coins).
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub withdrawal_min: String,
    /// The node wallet's passphrase, if it is encrypted: it is unlocked only for each send.
    #[serde(default)]
    pub passphrase: Option<Secret>,
    /// Withdrawals sent in one transaction at most.
    #[serde(default = "default_batch_max")]
    pub withdrawal_batch_max: u32,
    /// How far the hot wallet may fall short of what users hold before withdrawals of this coin
    /// pause (decimal, in coins). Network fees above the withdrawal fee eat into it.
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub reconcile_tolerance: String,
    /// How often held withdrawals are sent (one batch per pass).
    #[serde(default = "default_withdrawal_interval_ms")]
    pub withdrawal_interval_ms: u64,
    /// Withdrawal transactions aim at confirmation within this many blocks
    /// (`estimatesmartfee`).
    #[serde(default = "default_fee_target_blocks")]
    pub fee_target_blocks: u32,
    /// The fee rate when the node has no estimate (a quiet chain, a fresh node), in minor units
    /// per virtual byte (satoshi/vB; up to 3 decimals).
    #[serde(
        default = "default_fee_rate_fallback",
        deserialize_with = "bourse_core::decimal::deserialize_text"
    )]
    pub fee_rate_fallback: String,
    /// No estimate is used above this rate (minor units per virtual byte).
    #[serde(
        default = "default_fee_rate_max",
        deserialize_with = "bourse_core::decimal::deserialize_text"
    )]
    pub fee_rate_max: String,
    /// A credited deposit is watched until it has this many confirmations: if its transaction
    /// leaves the chain before then, the credit is reversed.
    #[serde(default = "default_reorg_watch")]
    pub reorg_watch_confirmations: u32,
}

fn default_fee_target_blocks() -> u32 {
    6
}
fn default_fee_rate_fallback() -> String {
    "10".into()
}
fn default_fee_rate_max() -> String {
    "1000".into()
}
fn default_reorg_watch() -> u32 {
    100
}

fn default_batch_max() -> u32 {
    100
}
fn default_withdrawal_interval_ms() -> u64 {
    30_000
}

fn default_confirmations() -> u32 {
    6
}
fn zero() -> String {
    "0".into()
}
fn default_addresses_max() -> u32 {
    20
}
fn default_scan_interval_ms() -> u64 {
    2_000
}
fn default_rpc_timeout_ms() -> u64 {
    30_000
}

/// How long a node probe is reused.
pub const HEALTH_TTL_S: i64 = 2;

/// A last block older than this is `delayed` (a Bitcoin-family chain aims at minutes).
pub const DELAYED_AFTER_S: i64 = 30 * 60;
/// ... and older than this `stalled`.
pub const STALLED_AFTER_S: i64 = 2 * 3600;

/// Signed minor units as a decimal without trailing zeros (`-0.5`, `1`).
fn trimmed(units: i128) -> String {
    let text = bourse_core::decimal::format_units_trimmed(units.unsigned_abs(), SCALE);
    if units < 0 { format!("-{text}") } else { text }
}

/// The hot wallet against what the ledger owes users in the coin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    /// Every user's available + locked + held, less withdrawals already sent (their coins left).
    pub liabilities: i128,
    /// The node wallet's trusted balance.
    pub hot: i128,
    /// `liabilities - hot`: positive when coins are missing.
    pub shortfall: i128,
    /// Withdrawals wait: the shortfall is over the tolerance.
    pub paused: bool,
    pub at_ms: i64,
}

impl Coin {
    /// Whether the last reconciliation paused withdrawals.
    pub fn withdrawals_paused(&self) -> bool {
        self.reconciliation.lock().map(|r| r.as_ref().is_some_and(|r| r.paused)).unwrap_or(true)
    }
}

/// How a coin's node is doing, for the status page and `GET /health`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeHealth {
    pub asset: String,
    pub reachable: bool,
    /// `main`, `test`, `regtest`.
    pub chain: String,
    pub blocks: u64,
    pub peers: u64,
    /// Seconds since the best block's timestamp.
    pub last_block_age_s: i64,
    /// `normal`, `delayed`, `stalled`, `syncing`; `unreachable` when the node does not answer.
    pub state: &'static str,
    /// The node wallet's confirmed balance (decimal).
    pub hot_wallet_balance: String,
    /// Why the node is unreachable.
    pub error: String,
    /// What users are owed in the coin at the last reconciliation (decimal).
    pub owed: String,
    /// How much the hot wallet fell short of it (decimal; negative: a surplus).
    pub shortfall: String,
    /// Withdrawals wait until the hot wallet covers users again.
    pub withdrawals_paused: bool,
    /// When the last reconciliation ran (Unix ms; `None` before the first).
    pub reconciled_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoinConfigError {
    #[error("wallets.{symbol}: {message}")]
    Invalid { symbol: String, message: String },
}

/// A coin with its checked configuration and node connection.
#[derive(Debug)]
pub struct Coin {
    pub asset: AssetId,
    pub symbol: String,
    pub config: CoinConfig,
    /// [`CoinConfig::min_deposit`] in minor units.
    pub min_deposit: u128,
    /// [`CoinConfig::withdrawal_fee`] in minor units.
    pub withdrawal_fee: u128,
    /// [`CoinConfig::withdrawal_min`] in minor units.
    pub withdrawal_min: u128,
    /// [`CoinConfig::reconcile_tolerance`] in minor units.
    pub reconcile_tolerance: u128,
    /// [`CoinConfig::fee_rate_fallback`] in minor units per 1000 virtual bytes.
    pub fee_rate_fallback: u128,
    /// [`CoinConfig::fee_rate_max`] in minor units per 1000 virtual bytes.
    pub fee_rate_max: u128,
    /// The last reconciliation (the processor's, each pass); withdrawals wait while it shows a
    /// shortfall.
    pub reconciliation: std::sync::Mutex<Option<Reconciliation>>,
    /// The last node probe and when (Unix seconds).
    last_health: std::sync::Mutex<Option<(i64, NodeHealth)>>,
    pub rpc: BitcoinRpc,
}

impl Coin {
    /// Checks `config` for the asset (which must have the Bitcoin family's 8 decimals).
    pub fn new(
        asset: AssetId,
        symbol: &str,
        scale: u8,
        config: CoinConfig,
    ) -> Result<Coin, CoinConfigError> {
        let invalid =
            |message: String| CoinConfigError::Invalid { symbol: symbol.to_string(), message };
        if scale != SCALE {
            return Err(invalid(format!(
                "the asset has {scale} decimals; a Bitcoin-family coin has {SCALE}"
            )));
        }
        let auth = match (&config.rpc_user, &config.rpc_password, &config.rpc_cookie_file) {
            (Some(user), Some(password), None) => {
                RpcAuth::UserPass { user: user.clone(), password: password.clone() }
            }
            (None, None, Some(path)) => RpcAuth::CookieFile(path.clone()),
            _ => {
                return Err(invalid(
                    "set rpc_user and rpc_password, or rpc_cookie_file (not both)".into(),
                ));
            }
        };
        if config.confirmations == 0 {
            return Err(invalid("confirmations must be at least 1".into()));
        }
        let min_deposit = parse_units(&config.min_deposit, SCALE)
            .map_err(|e| invalid(format!("min_deposit: {e}")))?;
        let withdrawal_fee = parse_units(&config.withdrawal_fee, SCALE)
            .map_err(|e| invalid(format!("withdrawal_fee: {e}")))?;
        let withdrawal_min = parse_units(&config.withdrawal_min, SCALE)
            .map_err(|e| invalid(format!("withdrawal_min: {e}")))?;
        let reconcile_tolerance = parse_units(&config.reconcile_tolerance, SCALE)
            .map_err(|e| invalid(format!("reconcile_tolerance: {e}")))?;
        // Per virtual byte with 3 decimals = per 1000 virtual bytes, the node's unit.
        let fee_rate_fallback = parse_units(&config.fee_rate_fallback, 3)
            .map_err(|e| invalid(format!("fee_rate_fallback: {e}")))?;
        let fee_rate_max = parse_units(&config.fee_rate_max, 3)
            .map_err(|e| invalid(format!("fee_rate_max: {e}")))?;
        if fee_rate_fallback == 0 || fee_rate_fallback > fee_rate_max {
            return Err(invalid(
                "fee_rate_fallback must be above zero and at most fee_rate_max".into(),
            ));
        }
        if config.fee_target_blocks == 0 {
            return Err(invalid("fee_target_blocks must be at least 1".into()));
        }
        if config.reorg_watch_confirmations < config.confirmations {
            return Err(invalid("reorg_watch_confirmations must be at least confirmations".into()));
        }
        if config.withdrawal_batch_max == 0 {
            return Err(invalid("withdrawal_batch_max must be at least 1".into()));
        }
        let mut rpc = RpcConfig::new(config.rpc_url.clone(), auth);
        rpc.wallet = config.wallet.clone();
        rpc.timeout = Duration::from_millis(config.rpc_timeout_ms.max(1));
        let rpc = BitcoinRpc::new(rpc).map_err(|e: RpcError| invalid(e.to_string()))?;
        Ok(Coin {
            asset,
            symbol: symbol.to_string(),
            config,
            min_deposit,
            withdrawal_fee,
            withdrawal_min,
            reconcile_tolerance,
            fee_rate_fallback,
            fee_rate_max,
            reconciliation: std::sync::Mutex::new(None),
            last_health: std::sync::Mutex::new(None),
            rpc,
        })
    }

    /// The node's state (probed at most once per [`HEALTH_TTL_S`]: `/health` is public, and each
    /// probe is four calls to the node) with the last reconciliation; a node that does not
    /// answer within `wait` is unreachable.
    pub async fn health(&self, wait: Duration, now_s: i64) -> NodeHealth {
        let cached = self.last_health.lock().ok().and_then(|c| c.clone());
        let mut health = match cached {
            Some((at, h)) if now_s.saturating_sub(at) < HEALTH_TTL_S => h,
            _ => {
                let h = self.probe(wait, now_s).await;
                if let Ok(mut c) = self.last_health.lock() {
                    *c = Some((now_s, h.clone()));
                }
                h
            }
        };
        if let Ok(Some(r)) = self.reconciliation.lock().map(|r| r.clone()) {
            health.owed = trimmed(r.liabilities);
            health.shortfall = trimmed(r.shortfall);
            health.withdrawals_paused = r.paused;
            health.reconciled_ms = Some(r.at_ms);
        }
        health
    }

    async fn probe(&self, wait: Duration, now_s: i64) -> NodeHealth {
        let probe = async {
            let chain = self.rpc.chain_info().await?;
            let peers = self.rpc.connection_count().await?;
            let tip = self.rpc.block_header(&chain.bestblockhash).await?;
            let balance = self.rpc.balance(1).await?;
            Ok::<_, RpcError>((chain, peers, tip, balance))
        };
        let mut health = NodeHealth {
            asset: self.symbol.clone(),
            state: "unreachable",
            ..NodeHealth::default()
        };
        match tokio::time::timeout(wait, probe).await {
            Ok(Ok((chain, peers, tip, balance))) => {
                let age = now_s.saturating_sub(tip.time).max(0);
                health.reachable = true;
                health.chain = chain.chain;
                health.blocks = chain.blocks;
                health.peers = peers;
                health.last_block_age_s = age;
                health.hot_wallet_balance = bourse_core::decimal::format_units_trimmed(
                    u128::try_from(balance).unwrap_or(0),
                    SCALE,
                );
                health.state = if chain.initialblockdownload {
                    "syncing"
                } else if age > STALLED_AFTER_S {
                    "stalled"
                } else if age > DELAYED_AFTER_S {
                    "delayed"
                } else {
                    "normal"
                };
            }
            Ok(Err(e)) => health.error = e.to_string(),
            Err(_) => health.error = format!("no answer within {wait:?}"),
        }
        health
    }

    /// The fee rate for a withdrawal transaction, in minor units per 1000 virtual bytes: the
    /// node's estimate for [`CoinConfig::fee_target_blocks`] (at most `fee_rate_max`), or
    /// `fee_rate_fallback` when it has none.
    pub async fn fee_rate(&self) -> Result<u128, RpcError> {
        Ok(match self.rpc.estimate_fee_rate(self.config.fee_target_blocks).await? {
            Some(rate) if rate > 0 => rate.min(self.fee_rate_max),
            _ => self.fee_rate_fallback,
        })
    }

    /// What the wallet holds: the node wallet's trusted balance (minor units).
    pub async fn holdings(&self) -> Result<i128, RpcError> {
        self.rpc.trusted_balance().await
    }

    /// Where this coin's operator alerts come from.
    pub fn alert_source(&self) -> String {
        format!("wallet:{}", self.symbol)
    }

    pub fn withdrawal_policy(&self) -> crate::withdrawals::WithdrawalPolicy {
        crate::withdrawals::WithdrawalPolicy {
            asset: self.asset,
            scale: SCALE,
            fee: self.withdrawal_fee,
            min: self.withdrawal_min,
        }
    }

    pub fn deposit_policy(&self) -> crate::deposits::DepositPolicy {
        crate::deposits::DepositPolicy {
            asset: self.asset,
            symbol: self.symbol.clone(),
            confirmations: self.config.confirmations,
            min_deposit: self.min_deposit,
            scale: SCALE,
        }
    }

    /// The label a deposit address carries in the node's wallet.
    pub fn label(user: bourse_core::UserId) -> String {
        format!("bourse:user:{}", user.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<CoinConfig, toml::de::Error> {
        toml::from_str(&format!("rpc_url = \"http://127.0.0.1:1\"\n{extra}"))
    }

    #[test]
    fn configurations_are_checked() {
        let ok = config("rpc_user = \"u\"\nrpc_password = \"p\"\nmin_deposit = \"0.001\"").unwrap();
        let coin = Coin::new(AssetId(1), "LTC", 8, ok.clone()).unwrap();
        assert_eq!((coin.min_deposit, coin.config.confirmations), (100_000, 6));
        assert!(!format!("{coin:?}").contains("\"p\""), "the password stays out of debug output");
        let error = |c: CoinConfig, scale: u8| {
            Coin::new(AssetId(1), "LTC", scale, c).unwrap_err().to_string()
        };
        assert!(error(ok.clone(), 18).contains("has 18 decimals"));
        let both =
            config("rpc_user = \"u\"\nrpc_password = \"p\"\nrpc_cookie_file = \"/x\"").unwrap();
        assert!(error(both, 8).contains("not both"));
        let none = config("").unwrap();
        assert!(error(none, 8).contains("rpc_user and rpc_password"));
        assert_eq!((coin.fee_rate_fallback, coin.fee_rate_max), (10_000, 1_000_000));
        let fees = config("rpc_cookie_file = \"/x\"\nfee_rate_fallback = \"2.5\"").unwrap();
        assert_eq!(Coin::new(AssetId(1), "LTC", 8, fees).unwrap().fee_rate_fallback, 2_500);
        let fees = config("rpc_cookie_file = \"/x\"\nfee_rate_fallback = \"0.0001\"").unwrap();
        assert!(error(fees, 8).contains("fee_rate_fallback"));
        let fees = config("rpc_cookie_file = \"/x\"\nfee_rate_fallback = \"2000\"").unwrap();
        assert!(error(fees, 8).contains("at most fee_rate_max"));
        let watch = config("rpc_cookie_file = \"/x\"\nreorg_watch_confirmations = 3").unwrap();
        assert!(error(watch, 8).contains("reorg_watch_confirmations"));
        let zero = config("rpc_cookie_file = \"/x\"\nconfirmations = 0").unwrap();
        assert!(error(zero, 8).contains("at least 1"));
        let bad = config("rpc_cookie_file = \"/x\"\nmin_deposit = \"0.000000001\"").unwrap();
        assert!(error(bad, 8).contains("min_deposit"));
        assert!(
            config("rpc_cookie_file = \"/x\"\nunknown = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
