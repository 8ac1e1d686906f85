//! Public market data: time, health, assets, markets, tickers, depth, trades, candles.

use super::{ApiPath as Path, ApiQuery as Query};
use crate::error::{ApiError, ApiResult};
use crate::mirror::MarketInfo;
use crate::state::Shared;
use crate::views::{AssetView, CandleView, MarketView, TickerView, TradeView, units};
use axum::Json;
use axum::extract::State;
use bourse_core::TradeId;
use bourse_store::{Interval, LIST_LIMIT_MAX};
use serde::Deserialize;
use serde_json::{Value, json};

pub async fn time() -> Json<Value> {
    Json(json!({ "server_time_ms": crate::now_ms() }))
}

pub async fn health(State(state): State<Shared>) -> Json<Value> {
    let status = state.engine.status();
    let projected = *state.projected.borrow();
    let database = state.store.ping().await.is_ok();
    Json(json!({
        "status": if status.running && database { "ok" } else { "degraded" },
        "engine_running": status.running,
        "engine_seq": status.seq,
        "projected_seq": projected,
        "projector_lag": status.seq.saturating_sub(projected),
        "database": if database { "ok" } else { "unreachable" },
        "database_backend": state.store.backend(),
        "websocket_clients": state.hub.connections.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

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

pub async fn tickers(State(state): State<Shared>) -> ApiResult<Json<Vec<TickerView>>> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let tickers = state.tickers.lock().map_err(|_| ApiError::internal("tickers", "poisoned"))?;
    let now = crate::now_ms();
    Ok(Json(mirror.markets.keys().filter_map(|m| tickers.view(*m, now, &mirror)).collect()))
}

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
#[derive(Deserialize)]
pub struct DepthQuery {
    limit: Option<usize>,
}

/// The book's levels with the `update_id` they reflect: apply WebSocket diffs whose
/// `update_id` is greater.
pub async fn depth(
    State(state): State<Shared>,
    Path(symbol): Path<String>,
    Query(q): Query<DepthQuery>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({
        "market": info.symbol,
        "update_id": book.update_id,
        "bids": fmt(bids),
        "asks": fmt(asks),
    })))
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize)]
pub struct TradesQuery {
    limit: Option<u32>,
    before: Option<u64>,
}

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
#[derive(Deserialize)]
pub struct CandlesQuery {
    interval: String,
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<u32>,
}

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
