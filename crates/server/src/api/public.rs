//! Public market data: time, health, assets, markets, tickers, depth, trades, candles.

use super::{ApiPath as Path, ApiQuery as Query};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::mirror::MarketInfo;
use crate::state::Shared;
use crate::views::{AssetView, CandleView, MarketView, TickerView, TradeView, units};
use axum::Json;
use axum::extract::State;
use bourse_core::TradeId;
use bourse_store::{Interval, LIST_LIMIT_MAX};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerTime {
    /// The server's clock, Unix milliseconds.
    pub server_time_ms: i64,
}

#[utoipa::path(get, path = "/time", tag = "public",
    responses((status = 200, description = "The server's clock", body = ServerTime)))]
pub async fn time() -> Json<ServerTime> {
    Json(ServerTime { server_time_ms: crate::now_ms() })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the engine runs and the database and every coin node answer, else `degraded`.
    pub status: &'static str,
    pub engine_running: bool,
    /// The last command the engine applied.
    pub engine_seq: u64,
    /// The last command the read model reflects.
    pub projected_seq: u64,
    pub projector_lag: u64,
    /// `ok` or `unreachable`.
    pub database: &'static str,
    /// `sqlite` or `postgres`.
    pub database_backend: &'static str,
    pub websocket_clients: usize,
    /// The coin nodes of the configured wallets.
    pub nodes: Vec<NodeView>,
    pub backup: BackupView,
}

/// Backups as the exchange recorded them.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupView {
    /// Backups are taken on a schedule (`[backup] dest` and `interval_s` are set).
    pub scheduled: bool,
    /// Seconds between scheduled backups.
    pub interval_s: u64,
    /// When the newest complete backup finished (Unix ms; absent if there is none).
    pub last_success_ms: Option<i64>,
    /// Its name and the engine seq it holds.
    pub last_name: Option<String>,
    pub last_seq: Option<u64>,
    /// The most recent attempt failed.
    pub last_attempt_failed: bool,
}

/// A coin node as the wallet sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub asset: String,
    pub reachable: bool,
    /// `main`, `test` or `regtest`.
    pub chain: String,
    pub blocks: u64,
    pub peers: u64,
    /// Seconds since the best block's timestamp.
    pub last_block_age_s: i64,
    /// `normal`, `delayed` (no block for 30 min), `stalled` (2 h), `syncing` or `unreachable`.
    pub state: &'static str,
    /// The node wallet's confirmed balance.
    pub hot_wallet_balance: String,
    /// Why the node is unreachable (empty otherwise).
    pub error: String,
    /// What users are owed in the coin at the last reconciliation (empty before the first).
    pub owed: String,
    /// How far the hot wallet fell short of it (negative: a surplus).
    pub shortfall: String,
    /// Withdrawals of the coin wait until the hot wallet covers users again.
    pub withdrawals_paused: bool,
    /// When the last reconciliation ran (Unix ms; absent before the first).
    pub reconciled_ms: Option<i64>,
}

/// How long the health check waits for each coin node.
const NODE_PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[utoipa::path(get, path = "/health", tag = "public",
    responses((status = 200, description = "Liveness of the engine, projector and database", body = Health)))]
pub async fn health(State(state): State<Shared>) -> Json<Health> {
    Json(health_of(&state).await)
}

/// The REST health and the status page.
pub async fn health_of(state: &Shared) -> Health {
    let status = state.engine.status();
    let projected = *state.projected.borrow();
    let database = state.store.ping().await.is_ok();
    let now_s = crate::now_ms() / 1000;
    if !state.config.roles.wallet && !state.wallets.is_empty() {
        // The wallet role reconciles in another process: its last word is in the store.
        match state.store.reconciliations().await {
            Ok(rows) => {
                for row in rows {
                    if let Some(w) = state.wallets.get(&row.asset) {
                        w.chain.adopt_reconciliation(&row);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the reconciliations"),
        }
    }
    let probes = state.wallets.values().map(|w| w.chain.health(NODE_PROBE_WAIT, now_s));
    let mut nodes: Vec<NodeView> = futures_util::future::join_all(probes)
        .await
        .into_iter()
        .map(|h| NodeView {
            asset: h.asset,
            reachable: h.reachable,
            chain: h.chain,
            blocks: h.blocks,
            peers: h.peers,
            last_block_age_s: h.last_block_age_s,
            state: h.state,
            hot_wallet_balance: h.hot_wallet_balance,
            error: h.error,
            owed: h.owed,
            shortfall: h.shortfall,
            withdrawals_paused: h.withdrawals_paused,
            reconciled_ms: h.reconciled_ms,
        })
        .collect();
    nodes.sort_by(|a, b| a.asset.cmp(&b.asset));
    let backup = backup_view(state).await;
    let nodes_ok = nodes.iter().all(|n| n.reachable && !n.withdrawals_paused);
    Health {
        status: if status.running && database && nodes_ok { "ok" } else { "degraded" },
        engine_running: status.running,
        engine_seq: status.seq,
        projected_seq: projected,
        projector_lag: status.seq.saturating_sub(projected),
        database: if database { "ok" } else { "unreachable" },
        database_backend: state.store.backend(),
        websocket_clients: state.hub.connections.load(std::sync::atomic::Ordering::Relaxed),
        nodes,
        backup,
    }
}

async fn backup_view(state: &Shared) -> BackupView {
    let config = &state.config.backup;
    // The newest attempt; only when it failed is the last good one another row.
    let newest = state.store.recent_backups(1).await.ok().and_then(|r| r.into_iter().next());
    let last_attempt_failed = newest.as_ref().is_some_and(|r| !r.ok);
    let last = match newest {
        Some(newest) if newest.ok => Some(newest),
        Some(_) => state.store.last_good_backup().await.ok().flatten(),
        None => None,
    };
    BackupView {
        scheduled: config.dest.is_some() && config.interval_s > 0,
        interval_s: config.interval_s,
        last_success_ms: last.as_ref().map(|b| b.finished_at_ms),
        last_name: last.as_ref().map(|b| b.name.clone()),
        last_seq: last.as_ref().map(|b| b.seq),
        last_attempt_failed,
    }
}

#[utoipa::path(get, path = "/assets", tag = "public", responses(
    (status = 200, description = "Every asset with its precision", body = Vec<AssetView>),
    (status = 500, description = "Internal error", body = ErrorBody)))]
pub async fn assets(State(state): State<Shared>) -> ApiResult<Json<Vec<AssetView>>> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    Ok(Json(
        mirror
            .assets
            .values()
            .map(|a| AssetView { symbol: a.symbol.clone(), scale: a.scale })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/markets", tag = "public", responses(
    (status = 200, description = "Every market with its grid and fees", body = Vec<MarketView>),
    (status = 500, description = "Internal error", body = ErrorBody)))]
pub async fn markets(State(state): State<Shared>) -> ApiResult<Json<Vec<MarketView>>> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    Ok(Json(mirror.markets.values().map(MarketView::new).collect()))
}

pub fn market(state: &Shared, symbol: &str) -> ApiResult<MarketInfo> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    mirror
        .market_by_symbol(symbol)
        .cloned()
        .ok_or_else(|| ApiError::not_found("unknown_market", format!("no market {symbol:?}")))
}

#[utoipa::path(get, path = "/tickers", tag = "public", responses(
    (status = 200, description = "The 24 h ticker of every market", body = Vec<TickerView>),
    (status = 500, description = "Internal error", body = ErrorBody)))]
pub async fn tickers(State(state): State<Shared>) -> ApiResult<Json<Vec<TickerView>>> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let tickers = state.tickers.lock().map_err(|_| ApiError::internal("tickers", "poisoned"))?;
    let now = crate::now_ms();
    Ok(Json(mirror.markets.keys().filter_map(|m| tickers.view(*m, now, &mirror)).collect()))
}

#[utoipa::path(get, path = "/markets/{market}/ticker", tag = "public",
    params(("market" = String, Path, description = "Market symbol, e.g. `BTC-USDT`")),
    responses(
        (status = 200, description = "The market's 24 h ticker", body = TickerView),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody)))]
pub async fn ticker(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
) -> ApiResult<Json<TickerView>> {
    let info = market(&state, &symbol)?;
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let tickers = state.tickers.lock().map_err(|_| ApiError::internal("tickers", "poisoned"))?;
    tickers
        .view(info.id, crate::now_ms(), &mirror)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("unknown_market", "no such market"))
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DepthQuery {
    /// Levels per side, 1 to 5000 (default 100).
    limit: Option<usize>,
}

/// A book snapshot; each level is `[price, quantity]` as decimal strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Depth {
    pub market: String,
    /// Apply WebSocket diffs whose `update_id` is greater than this.
    pub update_id: u64,
    /// Best (highest) first.
    #[schema(schema_with = crate::views::names::levels)]
    pub bids: Vec<[String; 2]>,
    /// Best (lowest) first.
    #[schema(schema_with = crate::views::names::levels)]
    pub asks: Vec<[String; 2]>,
}

/// The book's levels with the `update_id` they reflect: apply WebSocket diffs whose
/// `update_id` is greater.
#[utoipa::path(get, path = "/markets/{market}/depth", tag = "public",
    params(("market" = String, Path, description = "Market symbol"), DepthQuery),
    responses(
        (status = 200, description = "The order book's levels", body = Depth),
        (status = 400, description = "`bad_query`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody)))]
pub async fn depth(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    Query(q): Query<DepthQuery>,
) -> ApiResult<Json<Depth>> {
    let info = market(&state, &symbol)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 5000);
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let book = mirror.books.get(&info.id).cloned().unwrap_or_default();
    drop(mirror);
    let (bids, asks) = book.levels(limit);
    let (b, qs) = (info.base.scale, info.quote.scale);
    let fmt = |levels: Vec<(u128, u128)>| -> Vec<[String; 2]> {
        levels.into_iter().map(|(p, v)| [units(p, qs), units(v, b)]).collect()
    };
    Ok(Json(Depth {
        market: info.symbol,
        update_id: book.update_id,
        bids: fmt(bids),
        asks: fmt(asks),
    }))
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TradesQuery {
    /// 1 to the list maximum (default 100).
    limit: Option<u32>,
    /// Only trades with a smaller id (the cursor for older trades).
    before: Option<u64>,
}

/// Recent trades, newest first.
#[utoipa::path(get, path = "/markets/{market}/trades", tag = "public",
    params(("market" = String, Path, description = "Market symbol"), TradesQuery),
    responses(
        (status = 200, description = "Trades, newest first", body = Vec<TradeView>),
        (status = 400, description = "`bad_query`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn trades(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    Query(q): Query<TradesQuery>,
) -> ApiResult<Json<Vec<TradeView>>> {
    let info = market(&state, &symbol)?;
    let limit = q.limit.unwrap_or(100).clamp(1, LIST_LIMIT_MAX);
    let rows = state.store.trades(info.id, q.before.map(TradeId), limit).await?;
    Ok(Json(rows.iter().map(|t| TradeView::new(t, &info)).collect()))
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// One of `1m`, `5m`, `15m`, `1h`, `4h`, `1d`.
    interval: String,
    /// Earliest candle open time, Unix ms.
    from: Option<i64>,
    /// Latest candle open time, Unix ms.
    to: Option<i64>,
    /// 1 to the list maximum (default 500).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/markets/{market}/candles", tag = "public",
    params(("market" = String, Path, description = "Market symbol"), CandlesQuery),
    responses(
        (status = 200, description = "OHLCV candles", body = Vec<CandleView>),
        (status = 400, description = "`bad_query`, `bad_interval`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn candles(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    Query(q): Query<CandlesQuery>,
) -> ApiResult<Json<Vec<CandleView>>> {
    let info = market(&state, &symbol)?;
    let interval = Interval::parse(&q.interval).ok_or_else(|| {
        ApiError::bad_request("bad_interval", "interval must be one of 1m, 5m, 15m, 1h, 4h, 1d")
    })?;
    let limit = q.limit.unwrap_or(500).clamp(1, LIST_LIMIT_MAX);
    let rows = state.store.candles(info.id, interval, q.from, q.to, limit).await?;
    Ok(Json(rows.iter().map(|c| CandleView::new(c, &info)).collect()))
}
