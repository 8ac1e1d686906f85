//! One wallet whatever its chain: `[wallets.<SYMBOL>]` with `chain = "bitcoin"` (the default:
//! Bitcoin, Litecoin, Dogecoin … through the Bitcoin Core JSON-RPC) or `chain = "ethereum"`,
//! and what the server asks of a wallet (addresses, withdrawals, health, its tasks).

use crate::coin::{Coin, CoinConfig, NodeHealth};
use crate::deposits::WalletError;
use crate::ethereum::{EthCoin, EthConfig};
use crate::task::{Context, Worker};
use crate::withdrawals::RequestError;
use bourse_core::{AssetId, UserId};
use bourse_engine::EngineHandle;
use bourse_store::{DepositAddressRow, Store, WithdrawalRow};
use serde::{Deserialize, Deserializer, de::Error as _};
use std::sync::Arc;
use std::time::Duration;

/// A wallet's configuration.
#[derive(Clone, Debug)]
pub enum WalletConfig {
    Bitcoin(CoinConfig),
    Ethereum(EthConfig),
}

impl<'de> Deserialize<'de> for WalletConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WalletConfig, D::Error> {
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let chain = match table.remove("chain") {
            None => "bitcoin".to_string(),
            Some(serde_json::Value::String(chain)) => chain,
            Some(other) => return Err(D::Error::custom(format!("chain must be a name: {other}"))),
        };
        let table = serde_json::Value::Object(table);
        match chain.as_str() {
            "bitcoin" => serde_json::from_value(table).map(WalletConfig::Bitcoin),
            "ethereum" => serde_json::from_value(table).map(WalletConfig::Ethereum),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown chain {other:?} (bitcoin or ethereum)"
                )));
            }
        }
        .map_err(D::Error::custom)
    }
}

impl WalletConfig {
    /// The node's address, for the log.
    pub fn rpc_url(&self) -> &str {
        match self {
            WalletConfig::Bitcoin(c) => &c.rpc_url,
            WalletConfig::Ethereum(c) => &c.rpc_url,
        }
    }
}

/// An open wallet.
#[derive(Clone, Debug)]
pub enum Chain {
    Bitcoin(Arc<Coin>),
    Ethereum(Arc<EthCoin>),
}

impl Chain {
    /// Checks `config` for the asset and connects (lazily: nothing is asked of the node yet).
    pub fn open(
        asset: AssetId,
        symbol: &str,
        scale: u8,
        config: &WalletConfig,
    ) -> Result<Chain, String> {
        Ok(match config {
            WalletConfig::Bitcoin(c) => Chain::Bitcoin(Arc::new(
                Coin::new(asset, symbol, scale, c.clone()).map_err(|e| e.to_string())?,
            )),
            WalletConfig::Ethereum(c) => Chain::Ethereum(Arc::new(
                EthCoin::new(asset, symbol, scale, c.clone()).map_err(|e| e.to_string())?,
            )),
        })
    }

    pub fn asset(&self) -> AssetId {
        match self {
            Chain::Bitcoin(c) => c.asset,
            Chain::Ethereum(c) => c.asset,
        }
    }

    pub fn symbol(&self) -> &str {
        match self {
            Chain::Bitcoin(c) => &c.symbol,
            Chain::Ethereum(c) => &c.symbol,
        }
    }

    /// The asset's decimals.
    pub fn scale(&self) -> u8 {
        match self {
            Chain::Bitcoin(_) => crate::rpc::SCALE,
            Chain::Ethereum(c) => c.scale,
        }
    }

    /// Before a deposit is credited.
    pub fn confirmations(&self) -> u32 {
        match self {
            Chain::Bitcoin(c) => c.config.confirmations,
            Chain::Ethereum(c) => c.config.confirmations,
        }
    }

    pub fn addresses_per_user_max(&self) -> u32 {
        match self {
            Chain::Bitcoin(c) => c.config.addresses_per_user_max,
            Chain::Ethereum(c) => c.config.addresses_per_user_max,
        }
    }

    /// Minor units.
    pub fn min_deposit(&self) -> u128 {
        match self {
            Chain::Bitcoin(c) => c.min_deposit,
            Chain::Ethereum(c) => c.min_deposit,
        }
    }

    /// Minor units, held with each withdrawal.
    pub fn withdrawal_fee(&self) -> u128 {
        match self {
            Chain::Bitcoin(c) => c.withdrawal_fee,
            Chain::Ethereum(c) => c.withdrawal_fee,
        }
    }

    /// Minor units.
    pub fn withdrawal_min(&self) -> u128 {
        match self {
            Chain::Bitcoin(c) => c.withdrawal_min,
            Chain::Ethereum(c) => c.withdrawal_min,
        }
    }

    /// How far holdings may fall short of liabilities (minor units).
    pub fn reconcile_tolerance(&self) -> u128 {
        match self {
            Chain::Bitcoin(c) => c.reconcile_tolerance,
            Chain::Ethereum(c) => c.reconcile_tolerance,
        }
    }

    /// What the wallet holds on its chain (minor units).
    pub async fn holdings(&self, store: &dyn Store) -> Result<i128, WalletError> {
        match self {
            Chain::Bitcoin(c) => Ok(c.holdings().await?),
            Chain::Ethereum(c) => c.holdings(store).await,
        }
    }

    /// A new deposit address for `user`, up to the per-user limit.
    pub async fn new_address(
        &self,
        store: &dyn Store,
        user: UserId,
        now_ms: i64,
    ) -> Result<DepositAddressRow, WalletError> {
        match self {
            Chain::Bitcoin(c) => crate::deposits::new_address(c, store, user, now_ms).await,
            Chain::Ethereum(c) => c.new_address(store, user, now_ms).await,
        }
    }

    /// `text` as an address withdrawals may go to, in the form the chain keeps it (trimmed;
    /// checksummed on Ethereum), or `BadAddress`. What a whitelist compares.
    pub async fn check_address(
        &self,
        store: &dyn Store,
        text: &str,
    ) -> Result<String, RequestError> {
        match self {
            Chain::Bitcoin(c) => crate::withdrawals::check_address(c, text).await,
            Chain::Ethereum(c) => c.check_address(store, text).await,
        }
    }

    /// Records a withdrawal and holds its amount plus the fee (see each chain's rules).
    pub async fn request_withdrawal(
        &self,
        store: &dyn Store,
        engine: &EngineHandle,
        r: &crate::withdrawals::Request<'_>,
    ) -> Result<WithdrawalRow, RequestError> {
        match self {
            Chain::Bitcoin(c) => crate::withdrawals::request(c, store, engine, r).await,
            Chain::Ethereum(c) => c.request(store, engine, r).await,
        }
    }

    /// Takes `row` as the last reconciliation: a process without the wallet role shows what
    /// the wallet's process recorded.
    pub fn adopt_reconciliation(&self, row: &bourse_store::ReconciliationRow) {
        let slot = match self {
            Chain::Bitcoin(c) => &c.reconciliation,
            Chain::Ethereum(c) => &c.reconciliation,
        };
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(crate::coin::Reconciliation {
                liabilities: row.liabilities,
                hot: row.hot,
                shortfall: row.shortfall,
                paused: row.paused,
                at_ms: row.at_ms,
            });
        }
    }

    pub async fn health(&self, wait: Duration, now_s: i64) -> NodeHealth {
        match self {
            Chain::Bitcoin(c) => c.health(wait, now_s).await,
            Chain::Ethereum(c) => c.health(wait, now_s).await,
        }
    }

    /// Starts the deposit scanner (with `scan`) and the withdrawal processor (with `process`);
    /// they run until `stop`.
    pub fn spawn(
        &self,
        scan: Context,
        process: Context,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        match self {
            Chain::Bitcoin(coin) => vec![
                tokio::spawn(crate::deposits::run_scanner(
                    Worker { coin: coin.clone(), cx: scan },
                    stop.clone(),
                )),
                tokio::spawn(crate::withdrawals::run_processor(
                    Worker { coin: coin.clone(), cx: process },
                    stop,
                )),
            ],
            Chain::Ethereum(coin) => {
                tracing::info!(coin = %coin.symbol, hot_wallet = %coin.hot_address, "ethereum wallet");
                vec![
                    tokio::spawn(crate::ethereum::scan::run_scanner(
                        Worker { coin: coin.clone(), cx: scan },
                        stop.clone(),
                    )),
                    tokio::spawn(crate::ethereum::send::run_processor(
                        Worker { coin: coin.clone(), cx: process },
                        stop,
                    )),
                ]
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_picks_the_configuration() {
        let bitcoin: WalletConfig =
            toml::from_str("rpc_url = \"http://x\"\nrpc_cookie_file = \"/c\"").unwrap();
        assert!(matches!(bitcoin, WalletConfig::Bitcoin(_)), "bitcoin by default");
        let ethereum: WalletConfig = toml::from_str(
            "chain = \"ethereum\"\nrpc_url = \"http://x\"\nchain_id = 1\nseed_file = \"/s\"",
        )
        .unwrap();
        assert!(matches!(ethereum, WalletConfig::Ethereum(_)));
        let unknown = toml::from_str::<WalletConfig>("chain = \"monero\"\nrpc_url = \"http://x\"");
        assert!(unknown.unwrap_err().to_string().contains("unknown chain"));
        let mixed = toml::from_str::<WalletConfig>(
            "chain = \"ethereum\"\nrpc_url = \"http://x\"\nchain_id = 1\nwallet = \"hot\"",
        );
        assert!(mixed.unwrap_err().to_string().contains("unknown field"), "fields are checked");
    }
}
