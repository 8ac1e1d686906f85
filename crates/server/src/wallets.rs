//! The wallet role inside `bourse serve`: one [`Chain`] per configured asset, its deposit scanner
//! and withdrawal processor tasks, and the hook a node notifies.

use crate::mirror::Mirror;
use anyhow::Context;
use bourse_core::AssetId;
use bourse_wallet::chain::{Chain, WalletConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::Notify;

/// A coin the exchange runs a wallet for, and the signal that makes its scanner look now.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub chain: Chain,
    /// Wakes the deposit scanner.
    pub wake: Arc<Notify>,
    /// Wakes the withdrawal processor.
    pub wake_withdrawals: Arc<Notify>,
}

/// Opens every configured wallet; each must name an existing asset (add it first).
pub fn open(
    configs: &BTreeMap<String, WalletConfig>,
    mirror: &Mirror,
) -> anyhow::Result<HashMap<AssetId, Wallet>> {
    let mut wallets = HashMap::new();
    for (symbol, config) in configs {
        let symbol = symbol.to_ascii_uppercase();
        let asset = mirror.asset_by_symbol(&symbol).with_context(|| {
            format!("wallets.{symbol}: there is no asset {symbol} (add it with `bourse asset add`)")
        })?;
        let chain =
            Chain::open(asset.id, &symbol, asset.scale, config).map_err(anyhow::Error::msg)?;
        tracing::info!(coin = %symbol, node = %config.rpc_url(), confirmations = chain.confirmations(), "wallet configured");
        let wallet = Wallet {
            chain,
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
        let cx = |wake: &Arc<Notify>| bourse_wallet::task::Context {
            store: state.store.clone(),
            engine: state.engine.clone(),
            wake: wake.clone(),
            on_change: on_change.clone(),
            clock: crate::now_ms,
        };
        tasks.extend(w.chain.spawn(cx(&w.wake), cx(&w.wake_withdrawals), state.shutdown.clone()));
    }
    tasks
}

/// The node hook's route, in a process that runs the wallet role (on the gateway's listener, or
/// on `[admin] listen` of a process without the gateway): elsewhere nobody would hear it.
pub fn notify_routes(state: &crate::state::Shared) -> axum::Router<crate::state::Shared> {
    let router = axum::Router::new();
    if !state.config.roles.wallet {
        return router;
    }
    router.route("/internal/wallets/{asset}/notify", axum::routing::post(notify))
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
