//! The wallet role inside `bourse serve`: one [`Coin`] per configured asset, its deposit scanner
//! task, and what the API and pages ask of it (addresses, deposits).

use crate::mirror::Mirror;
use anyhow::Context;
use bourse_core::AssetId;
use bourse_wallet::coin::{Coin, CoinConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::Notify;

/// A coin the exchange runs a wallet for, and the signal that makes its scanner look now.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub coin: Arc<Coin>,
    /// Wakes the deposit scanner.
    pub wake: Arc<Notify>,
    /// Wakes the withdrawal processor.
    pub wake_withdrawals: Arc<Notify>,
}

/// Opens every configured wallet; each must name an existing asset (add it first).
pub fn open(
    configs: &BTreeMap<String, CoinConfig>,
    mirror: &Mirror,
) -> anyhow::Result<HashMap<AssetId, Wallet>> {
    let mut wallets = HashMap::new();
    for (symbol, config) in configs {
        let symbol = symbol.to_ascii_uppercase();
        let asset = mirror.asset_by_symbol(&symbol).with_context(|| {
            format!("wallets.{symbol}: there is no asset {symbol} (add it with `bourse asset add`)")
        })?;
        let coin = Coin::new(asset.id, &symbol, asset.scale, config.clone())?;
        tracing::info!(coin = %symbol, node = %config.rpc_url, confirmations = config.confirmations, "wallet configured");
        let wallet = Wallet {
            coin: Arc::new(coin),
            wake: Arc::new(Notify::new()),
            wake_withdrawals: Arc::new(Notify::new()),
        };
        wallets.insert(asset.id, wallet);
    }
    Ok(wallets)
}

/// Starts each wallet's deposit scanner and withdrawal processor; they stop when the server
/// shuts down.
pub fn spawn(state: &crate::state::Shared) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for w in state.wallets.values() {
        let seen = state.clone();
        let on_change: Arc<bourse_wallet::deposits::OnChange> =
            Arc::new(move |user, seq| seen.note_user_seq(user, seq));
        let scanner = bourse_wallet::deposits::Scanner {
            coin: w.coin.clone(),
            store: state.store.clone(),
            engine: state.engine.clone(),
            wake: w.wake.clone(),
            on_change: on_change.clone(),
            clock: crate::now_ms,
        };
        tasks.push(tokio::spawn(bourse_wallet::deposits::run_scanner(
            scanner,
            state.shutdown.clone(),
        )));
        tasks.push(tokio::spawn(bourse_wallet::withdrawals::run_processor(
            w.coin.clone(),
            state.store.clone(),
            state.engine.clone(),
            w.wake_withdrawals.clone(),
            on_change,
            crate::now_ms,
            state.shutdown.clone(),
        )));
    }
    tasks
}

/// `POST /internal/wallets/{asset}/notify`: a node's `walletnotify` / `blocknotify` hook
/// (`curl -s -X POST http://127.0.0.1:8080/internal/wallets/LTC/notify`). It only makes the
/// scanner look now, and is answered only to loopback callers (the node runs beside bourse).
pub async fn notify(
    axum::extract::State(state): axum::extract::State<crate::state::Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    axum::extract::Path(asset): axum::extract::Path<String>,
) -> Result<axum::http::StatusCode, crate::error::ApiError> {
    if !peer.ip().is_loopback() {
        return Err(crate::error::ApiError::forbidden(
            "loopback_only",
            "only the local node may notify",
        ));
    }
    let wallet = crate::api::wallet::wallet(&state, &asset.to_ascii_uppercase())?;
    wallet.wake.notify_one();
    wallet.wake_withdrawals.notify_one();
    Ok(axum::http::StatusCode::ACCEPTED)
}
