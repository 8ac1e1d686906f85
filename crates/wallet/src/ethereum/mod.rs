//! Ether (`[wallets.ETH] chain = "ethereum"`): the exchange's keys come from one HD seed — the
//! hot wallet at `m/44'/60'/0'/0/0`, each deposit address at the next index, so every key can be
//! derived again from the seed alone. The scan ([`scan`]) follows blocks for transfers to
//! deposit addresses and credits each once, as the Bitcoin family's does; the processor
//! ([`send`]) sweeps credited deposits into the hot wallet and sends withdrawals, one
//! transaction each, signed here and recorded before they are broadcast.
//!
//! Amounts: the chain counts wei (10^-18 ether); the asset counts minor units of its own scale
//! (at most 18). A payment's wei below one minor unit is not credited and stays in the wallet.

pub mod scan;
pub mod send;

use crate::coin::{NodeHealth, Reconciliation};
use crate::deposits::{DepositPolicy, WalletError};
use crate::withdrawals::{RequestError, WithdrawalPolicy};
use bourse_core::decimal::{SCALE_MAX, format_units_trimmed, parse_units};
use bourse_core::{AssetId, Secret, UserId};
use bourse_engine::EngineHandle;
use bourse_eth::{Address, BlockTag, EthRpc, RpcConfig, RpcError, Seed, SigningKey};
use bourse_store::{DepositAddressRow, NewDepositAddress, Store, StoreError, WithdrawalRow};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[wallets.<SYMBOL>]` with `chain = "ethereum"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthConfig {
    /// `http://127.0.0.1:8545`.
    pub rpc_url: String,
    /// The chain the keys sign for (1: mainnet); the node must report the same.
    pub chain_id: u64,
    /// The HD seed: a BIP-39 phrase or hex seed bytes. Or `seed_file`, a file holding it.
    #[serde(default)]
    pub seed: Option<Secret>,
    #[serde(default)]
    pub seed_file: Option<PathBuf>,
    /// Blocks on top of a deposit's before it is credited.
    #[serde(default = "default_confirmations")]
    pub confirmations: u32,
    /// Smaller deposits are recorded but not credited (decimal, in ether).
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub min_deposit: String,
    #[serde(default = "default_addresses_max")]
    pub addresses_per_user_max: u32,
    #[serde(default = "default_scan_interval_ms")]
    pub scan_interval_ms: u64,
    /// Blocks one scan reads at most (a node far ahead is caught up over several scans).
    #[serde(default = "default_blocks_per_scan")]
    pub blocks_per_scan: u64,
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// The fee a withdrawal pays the exchange (decimal, in ether), held with its amount.
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub withdrawal_fee: String,
    /// The smallest withdrawal (decimal, in ether).
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub withdrawal_min: String,
    /// How often withdrawals are sent and deposits swept.
    #[serde(default = "default_withdrawal_interval_ms")]
    pub withdrawal_interval_ms: u64,
    /// Withdrawals sent per pass at most.
    #[serde(default = "default_batch_max")]
    pub withdrawal_batch_max: u32,
    /// How far the wallet (hot wallet and unswept deposit addresses) may fall short of what
    /// users hold before withdrawals pause (decimal, in ether). Gas for sweeps and withdrawals
    /// is paid from the wallet: withdrawal fees are meant to cover it.
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub reconcile_tolerance: String,
    /// A deposit address is swept once it holds at least this much (decimal, in ether) and
    /// more than the sweep's gas.
    #[serde(default = "zero", deserialize_with = "bourse_core::decimal::deserialize_text")]
    pub sweep_min: String,
    /// No transaction pays more per gas than this (decimal, in gwei).
    #[serde(
        default = "default_max_fee_gwei",
        deserialize_with = "bourse_core::decimal::deserialize_text"
    )]
    pub max_fee_per_gas_gwei: String,
    /// A credited deposit is watched until it has this many confirmations.
    #[serde(default = "default_reorg_watch")]
    pub reorg_watch_confirmations: u32,
}

fn default_confirmations() -> u32 {
    12
}
fn zero() -> String {
    "0".into()
}
fn default_addresses_max() -> u32 {
    5
}
fn default_scan_interval_ms() -> u64 {
    2_000
}
fn default_blocks_per_scan() -> u64 {
    500
}
fn default_rpc_timeout_ms() -> u64 {
    30_000
}
fn default_withdrawal_interval_ms() -> u64 {
    30_000
}
fn default_batch_max() -> u32 {
    50
}
fn default_max_fee_gwei() -> String {
    "500".into()
}
fn default_reorg_watch() -> u32 {
    64
}

/// The gas a plain transfer takes.
pub const TRANSFER_GAS: u64 = bourse_eth::tx::TRANSFER_GAS;

/// A last block older than this is `delayed` (blocks come every 12 s).
pub const DELAYED_AFTER_S: i64 = 5 * 60;
/// ... and older than this `stalled`.
pub const STALLED_AFTER_S: i64 = 30 * 60;

/// A deposit address row is read again at every refresh until it is this old (by its
/// `created_ms`): on PostgreSQL ids are taken when an insert starts, so a row can become visible
/// after a row with a higher id; the rows of the last moments are read again so that one is not
/// passed over.
pub const ADDRESS_SETTLE_MS: i64 = 2 * 60 * 1000;

/// How many times [`EthCoin::new_address`] tries an index before it gives up: another process
/// may take the same one at the same moment.
pub const NEW_ADDRESS_ATTEMPTS: u32 = 5;

/// The deposit addresses this process knows, and how far into the store's rows it has read.
#[derive(Debug, Default)]
struct AddressCache {
    /// Address → (user, HD index).
    map: HashMap<Address, (UserId, u32)>,
    /// Every row of the asset up to this id is in `map` (or was not this wallet's): a refresh
    /// reads the rows after it. Only rows older than [`ADDRESS_SETTLE_MS`] move it.
    settled_id: i64,
    /// The highest id read (rows between the two are read again).
    seen_id: i64,
    /// The highest HD index the store refused (its address recorded under a label this wallet
    /// cannot read): allocation goes past it.
    refused: u32,
}

/// An Ethereum wallet with its checked configuration, keys and node connection.
pub struct EthCoin {
    pub asset: AssetId,
    pub symbol: String,
    pub scale: u8,
    pub config: EthConfig,
    /// Wei in one minor unit of the asset.
    pub wei_per_unit: u128,
    pub min_deposit: u128,
    pub withdrawal_fee: u128,
    pub withdrawal_min: u128,
    pub reconcile_tolerance: u128,
    /// [`EthConfig::sweep_min`] in wei.
    pub sweep_min_wei: u128,
    /// [`EthConfig::max_fee_per_gas_gwei`] in wei.
    pub max_fee_per_gas_wei: u128,
    seed: Seed,
    hot_key: SigningKey,
    pub hot_address: Address,
    pub rpc: EthRpc,
    pub reconciliation: std::sync::Mutex<Option<Reconciliation>>,
    last_health: std::sync::Mutex<Option<(i64, NodeHealth)>>,
    /// Deposit addresses → (user, HD index): loaded from the store on first use, then
    /// completed with the rows after the last one read at each use (the gateway of another
    /// process makes addresses too).
    addresses: tokio::sync::Mutex<AddressCache>,
    /// Deposit addresses that may hold something to sweep (HD index).
    pub(crate) to_sweep: std::sync::Mutex<std::collections::BTreeSet<u32>>,
}

impl std::fmt::Debug for EthCoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthCoin")
            .field("symbol", &self.symbol)
            .field("hot_address", &self.hot_address)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("wallets.{symbol}: {message}")]
pub struct EthConfigError {
    symbol: String,
    message: String,
}

/// The label a deposit address carries: its owner and HD path.
pub fn label(user: UserId, index: u32) -> String {
    format!("bourse:user:{} m/44'/60'/0'/0/{index}", user.0)
}

/// The HD index a deposit address's label names.
fn label_index(label: &str) -> Option<u32> {
    label.rsplit_once("/0'/0/").and_then(|(_, i)| i.parse().ok())
}

impl EthCoin {
    /// Checks `config` for the asset (at most 18 decimals: no unit smaller than a wei).
    pub fn new(
        asset: AssetId,
        symbol: &str,
        scale: u8,
        config: EthConfig,
    ) -> Result<EthCoin, EthConfigError> {
        let invalid = |message: String| EthConfigError { symbol: symbol.to_string(), message };
        if scale > SCALE_MAX || scale > 18 {
            return Err(invalid(format!("the asset has {scale} decimals; ether has 18")));
        }
        let phrase = match (&config.seed, &config.seed_file) {
            (Some(seed), None) => seed.expose().trim().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("seed_file {}: {e}", path.display())))?
                .trim()
                .to_string(),
            _ => return Err(invalid("set seed or seed_file (not both)".into())),
        };
        let seed = if phrase.contains(' ') {
            Seed::from_phrase(&phrase, "")
        } else {
            Seed::from_hex(phrase.trim_start_matches("0x"))
        }
        .map_err(|e| invalid(format!("seed: {e}")))?;
        let hot_key = seed.derive(0).map_err(|e| invalid(format!("seed: {e}")))?;
        let hot_address = bourse_eth::address_of(&hot_key);
        if config.confirmations == 0 {
            return Err(invalid("confirmations must be at least 1".into()));
        }
        if config.reorg_watch_confirmations < config.confirmations {
            return Err(invalid("reorg_watch_confirmations must be at least confirmations".into()));
        }
        if config.withdrawal_batch_max == 0 || config.blocks_per_scan == 0 {
            return Err(invalid(
                "withdrawal_batch_max and blocks_per_scan must be positive".into(),
            ));
        }
        let units = |name: &str, text: &str| {
            parse_units(text, scale).map_err(|e| invalid(format!("{name}: {e}")))
        };
        let wei_per_unit = 10u128.pow(u32::from(18 - scale));
        let sweep_min_wei =
            parse_units(&config.sweep_min, 18).map_err(|e| invalid(format!("sweep_min: {e}")))?;
        let max_fee_per_gas_wei = parse_units(&config.max_fee_per_gas_gwei, 9)
            .map_err(|e| invalid(format!("max_fee_per_gas_gwei: {e}")))?;
        if max_fee_per_gas_wei == 0 {
            return Err(invalid("max_fee_per_gas_gwei must be positive".into()));
        }
        let mut rpc = RpcConfig::new(config.rpc_url.clone());
        rpc.timeout = Duration::from_millis(config.rpc_timeout_ms.max(1));
        let rpc = EthRpc::new(rpc).map_err(|e| invalid(e.to_string()))?;
        Ok(EthCoin {
            asset,
            symbol: symbol.to_string(),
            scale,
            min_deposit: units("min_deposit", &config.min_deposit)?,
            withdrawal_fee: units("withdrawal_fee", &config.withdrawal_fee)?,
            withdrawal_min: units("withdrawal_min", &config.withdrawal_min)?,
            reconcile_tolerance: units("reconcile_tolerance", &config.reconcile_tolerance)?,
            config,
            wei_per_unit,
            sweep_min_wei,
            max_fee_per_gas_wei,
            seed,
            hot_key,
            hot_address,
            rpc,
            reconciliation: std::sync::Mutex::new(None),
            last_health: std::sync::Mutex::new(None),
            addresses: tokio::sync::Mutex::new(AddressCache::default()),
            to_sweep: std::sync::Mutex::new(Default::default()),
        })
    }

    pub fn deposit_policy(&self) -> DepositPolicy {
        DepositPolicy {
            asset: self.asset,
            symbol: self.symbol.clone(),
            confirmations: self.config.confirmations,
            min_deposit: self.min_deposit,
            scale: self.scale,
        }
    }

    pub fn withdrawal_policy(&self) -> WithdrawalPolicy {
        WithdrawalPolicy {
            asset: self.asset,
            scale: self.scale,
            fee: self.withdrawal_fee,
            min: self.withdrawal_min,
        }
    }

    /// What the wallet holds: the hot wallet and every deposit address (minor units).
    pub async fn holdings(&self, store: &dyn Store) -> Result<i128, WalletError> {
        let mut wei =
            self.rpc.balance(&self.hot_address, BlockTag::Latest).await.map_err(eth_error)?;
        for address in self.addresses(store).await?.keys() {
            let balance = self.rpc.balance(address, BlockTag::Latest).await.map_err(eth_error)?;
            wei = wei.saturating_add(balance);
        }
        Ok(i128::try_from(self.units(wei)).unwrap_or(i128::MAX))
    }

    /// Whether the last reconciliation paused withdrawals.
    pub fn withdrawals_paused(&self) -> bool {
        self.reconciliation.lock().map(|r| r.as_ref().is_some_and(|r| r.paused)).unwrap_or(true)
    }

    /// Minor units in `wei` (what is below one unit is left out).
    pub fn units(&self, wei: u128) -> u128 {
        wei / self.wei_per_unit
    }

    /// Wei in `units`; `None` if that does not fit.
    pub fn wei(&self, units: u128) -> Option<u128> {
        units.checked_mul(self.wei_per_unit)
    }

    pub(crate) fn hot_key(&self) -> &SigningKey {
        &self.hot_key
    }

    pub(crate) fn key(&self, index: u32) -> Result<SigningKey, WalletError> {
        self.seed.derive(index).map_err(|e| WalletError::Limit(format!("key {index}: {e}")))
    }

    /// Checks that the node is on the configured chain: nothing is signed for another.
    pub(crate) async fn check_chain(&self) -> Result<(), WalletError> {
        let id = self.rpc.chain_id().await.map_err(eth_error)?;
        if id != self.config.chain_id {
            return Err(WalletError::Limit(format!(
                "the node is on chain {id}, the wallet signs for chain {}",
                self.config.chain_id
            )));
        }
        Ok(())
    }

    /// The deposit addresses (address → user and HD index), with every one the store holds for
    /// the asset, whichever process made it: each call first reads the rows after the last one
    /// it read (one query on the primary key, usually empty).
    pub async fn addresses(
        &self,
        store: &dyn Store,
    ) -> Result<HashMap<Address, (UserId, u32)>, WalletError> {
        let mut cache = self.addresses.lock().await;
        self.refresh(store, &mut cache).await?;
        Ok(cache.map.clone())
    }

    /// Adds the rows after `cache.settled_id` to the cache. An address new to it may hold
    /// something to sweep (all of them at start; later, those another process made).
    async fn refresh(
        &self,
        store: &dyn Store,
        cache: &mut AddressCache,
    ) -> Result<(), WalletError> {
        let rows = store.asset_deposit_addresses(self.asset, cache.settled_id).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut settling = true;
        let mut new = Vec::new();
        let last_id = rows.last().map_or(0, |r| r.id);
        for row in rows {
            // Rows come by id: the settled ones are those before the first recent one.
            settling = settling && row.created_ms <= now_ms.saturating_sub(ADDRESS_SETTLE_MS);
            if settling {
                cache.settled_id = row.id;
            }
            let (Ok(address), Some(index)) =
                (Address::parse(&row.address), label_index(&row.label))
            else {
                if row.id > cache.seen_id {
                    tracing::warn!(coin = %self.symbol, address = %row.address, "a deposit address this wallet did not make; ignored");
                }
                continue;
            };
            if cache.map.insert(address, (row.user, index)).is_none() {
                new.push(index);
            }
        }
        cache.seen_id = cache.seen_id.max(last_id);
        if let Ok(mut to_sweep) = self.to_sweep.lock() {
            to_sweep.extend(new);
        }
        Ok(())
    }

    /// A new deposit address for `user`: the next HD index. One allocation at a time in this
    /// process; another process allocating the same index at the same moment makes the store
    /// refuse one of the two (the asset's addresses are unique), and the refused one reads the
    /// addresses again and tries further on, [`NEW_ADDRESS_ATTEMPTS`] times at most. The n-th
    /// try leaves 2^(n-1) - 1 indices free below it: a process making addresses one after the
    /// other would otherwise take each next index first, and the other never get one (the
    /// indices left free are never used: harmless, every address is recorded with its index).
    pub async fn new_address(
        &self,
        store: &dyn Store,
        user: UserId,
        now_ms: i64,
    ) -> Result<DepositAddressRow, WalletError> {
        let max = self.config.addresses_per_user_max;
        if store.deposit_addresses(user, self.asset, max).await?.len() >= max as usize {
            return Err(WalletError::Limit(format!(
                "at most {max} {} deposit addresses per account",
                self.symbol
            )));
        }
        let mut cache = self.addresses.lock().await;
        let mut attempt = 1;
        loop {
            self.refresh(store, &mut cache).await?;
            let highest = cache.map.values().map(|(_, i)| *i).max().unwrap_or(0);
            let index = highest.max(cache.refused).saturating_add(1 << (attempt - 1));
            if index >= 1 << 31 {
                return Err(WalletError::Limit("no HD index left".into()));
            }
            let address = bourse_eth::address_of(&self.key(index)?);
            let row = NewDepositAddress {
                user,
                asset: self.asset,
                address: address.checksummed(),
                label: label(user, index),
                created_ms: now_ms,
            };
            match store.insert_deposit_address(&row).await {
                Ok(id) => {
                    cache.map.insert(address, (user, index));
                    return Ok(DepositAddressRow {
                        id,
                        user,
                        asset: self.asset,
                        address: row.address,
                        label: row.label,
                        created_ms: now_ms,
                    });
                }
                Err(StoreError::Conflict(what)) => {
                    cache.refused = cache.refused.max(index);
                    if attempt >= NEW_ADDRESS_ATTEMPTS {
                        return Err(StoreError::Conflict(what).into());
                    }
                    tracing::info!(coin = %self.symbol, index, what, "another process took the deposit address index; trying further on");
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Records a withdrawal and holds its amount plus the fee. Refused, nothing held, for
    /// anything but a `0x` address (with a valid checksum if it has one), the zero address, the
    /// wallet's own addresses, an amount under the minimum or over the balance.
    pub async fn request(
        &self,
        store: &dyn Store,
        engine: &EngineHandle,
        r: &crate::withdrawals::Request<'_>,
    ) -> Result<WithdrawalRow, RequestError> {
        let address = self.check_address(store, r.address).await?;
        let policy = self.withdrawal_policy();
        let r = crate::withdrawals::Request { address: &address, ..*r };
        crate::withdrawals::record_and_hold(&policy, store, engine, &r).await
    }

    /// `text` as an address withdrawals may go to, checksummed: a `0x` address (with a valid
    /// checksum if it has one), not the zero address, not one of the wallet's own.
    pub async fn check_address(
        &self,
        store: &dyn Store,
        text: &str,
    ) -> Result<String, RequestError> {
        let text = text.trim();
        let bad = || RequestError::BadAddress(text.to_string());
        let to = Address::parse(text).map_err(|_| bad())?;
        if to == Address([0; 20]) || to == self.hot_address {
            return Err(bad());
        }
        if self.addresses(store).await?.contains_key(&to) {
            return Err(bad());
        }
        Ok(to.checksummed())
    }

    /// The node's state (probed at most once per [`crate::coin::HEALTH_TTL_S`]) with the last
    /// reconciliation; a node that does not answer within `wait` is unreachable.
    pub async fn health(&self, wait: Duration, now_s: i64) -> NodeHealth {
        let cached = self.last_health.lock().ok().and_then(|c| c.clone());
        let mut health = match cached {
            Some((at, h)) if now_s.saturating_sub(at) < crate::coin::HEALTH_TTL_S => h,
            _ => {
                let h = self.probe(wait, now_s).await;
                if let Ok(mut c) = self.last_health.lock() {
                    *c = Some((now_s, h.clone()));
                }
                h
            }
        };
        if let Ok(Some(r)) = self.reconciliation.lock().map(|r| r.clone()) {
            health.owed = signed(r.liabilities, self.scale);
            health.shortfall = signed(r.shortfall, self.scale);
            health.withdrawals_paused = r.paused;
            health.reconciled_ms = Some(r.at_ms);
        }
        health
    }

    async fn probe(&self, wait: Duration, now_s: i64) -> NodeHealth {
        let probe = async {
            let chain = self.rpc.chain_id().await?;
            let height = self.rpc.block_number().await?;
            let tip = self.rpc.block(height).await?;
            // A dev node has no peers to count (anvil lacks the method).
            let peers = match self.rpc.call::<String>("net_peerCount", serde_json::json!([])).await
            {
                Ok(peers) => peers,
                Err(e) if e.is_method_not_found() => "0x0".to_string(),
                Err(e) => return Err(e),
            };
            let balance = self.rpc.balance(&self.hot_address, BlockTag::Latest).await?;
            Ok::<_, RpcError>((chain, height, tip, peers, balance))
        };
        let mut health = NodeHealth {
            asset: self.symbol.clone(),
            state: "unreachable",
            ..NodeHealth::default()
        };
        match tokio::time::timeout(wait, probe).await {
            Ok(Ok((chain, height, tip, peers, balance))) => {
                let time = tip.map_or(0, |b| i64::try_from(b.timestamp).unwrap_or(i64::MAX));
                let age = now_s.saturating_sub(time).max(0);
                health.reachable = true;
                health.chain = format!("ethereum:{chain}");
                health.blocks = height;
                health.peers = bourse_eth::quantity::parse_quantity_u64(&peers).unwrap_or(0);
                health.last_block_age_s = age;
                health.hot_wallet_balance = format_units_trimmed(self.units(balance), self.scale);
                health.state = if chain != self.config.chain_id {
                    "wrong_chain"
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
}

/// Signed minor units as a decimal without trailing zeros.
fn signed(units: i128, scale: u8) -> String {
    let text = format_units_trimmed(units.unsigned_abs(), scale);
    if units < 0 { format!("-{text}") } else { text }
}

/// An Ethereum node's error as a wallet error.
pub(crate) fn eth_error(e: RpcError) -> WalletError {
    WalletError::Eth(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PHRASE: &str = "test test test test test test test test test test test junk";

    fn config(extra: &str) -> EthConfig {
        toml::from_str(&format!(
            "rpc_url = \"http://127.0.0.1:1\"\nchain_id = 31337\nseed = \"{PHRASE}\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn configurations_are_checked() {
        let coin = EthCoin::new(AssetId(3), "ETH", 18, config("")).unwrap();
        assert_eq!(
            coin.hot_address.checksummed(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "index 0 of the seed"
        );
        assert_eq!((coin.wei_per_unit, coin.max_fee_per_gas_wei), (1, 500_000_000_000));
        assert!(!format!("{coin:?}").contains("junk"), "the seed stays out of debug output");
        let eight = EthCoin::new(AssetId(3), "ETH", 8, config("min_deposit = \"0.01\"")).unwrap();
        assert_eq!((eight.wei_per_unit, eight.min_deposit), (10_000_000_000, 1_000_000));
        assert_eq!(eight.units(12_345_678_901_234_567_890), 1_234_567_890);
        let error = |c: EthConfig| EthCoin::new(AssetId(3), "ETH", 18, c).unwrap_err().to_string();
        assert!(error(config("seed_file = \"/x\"")).contains("not both"));
        assert!(error(config("confirmations = 0")).contains("at least 1"));
        assert!(error(config("min_deposit = \"0.1234567890123456789\"")).contains("min_deposit"));
        assert!(error(config("max_fee_per_gas_gwei = \"0\"")).contains("positive"));
        let bad_seed = toml::from_str::<EthConfig>(
            "rpc_url = \"http://x\"\nchain_id = 1\nseed = \"not a phrase at all\"",
        )
        .unwrap();
        assert!(error(bad_seed).contains("seed"));
    }

    #[test]
    fn labels_carry_the_index() {
        assert_eq!(label(UserId(7), 12), "bourse:user:7 m/44'/60'/0'/0/12");
        assert_eq!(label_index(&label(UserId(7), 12)), Some(12));
        assert_eq!(label_index("bourse:user:7"), None);
    }
}
